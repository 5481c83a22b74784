"""A model's seeds trained at once ("seeds together"), each in a process of its own.

On a GPU, one small model leaves most of the card idle, and the work around its training (data,
validation, checkpoints, evaluation, plots) leaves it idle too. So ``letterbench run --seeds N``
trains a model's seeds side by side: each seed is the same ``train`` + ``evaluate`` it would be
alone, in a child process started with ``spawn`` (safe with CUDA), into its own run folder, under
its own lock, so it resumes on its own. Each child's lines are prefixed with its run's name. The
children share the CPU threads (each gets its share); a Ctrl-C (or SIGTERM) of the command stops
every child at its last finished epoch, and on Linux a child stops so when its parent dies.

Separate processes rather than one batched model (``torch.func.stack_module_state`` + ``vmap``):
every recipe, the CUDA-graph engine, precise BN and resume work unchanged, and each seed's result
is the one it would have alone (``tests/end_to_end/test_seeds_together.py`` states the tolerance).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

import torch

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.core.signals import run_child

INTERRUPTED = 130  # a child's exit status after a Ctrl-C or SIGTERM: it stopped at its last epoch


@dataclass
class Job:
    """One seed's work: ``work(*args)`` in a child process, its lines prefixed with ``name``."""

    name: str
    work: Callable[..., Any]
    args: tuple


def run_together(jobs: list[Job], at_once: int, runtime: Runtime) -> None:
    """Run ``jobs``, up to ``at_once`` at a time, each in a child process with a runtime built as
    ``runtime`` was (the last argument of every ``work``). Raises ``KeyboardInterrupt`` after
    stopping every child where the user interrupts, and a ``LetterbenchError`` naming each job
    that failed (its own error is on stderr) once the others have ended."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // min(at_once, len(jobs)))
    waiting, running, failed = list(jobs), {}, []
    try:
        while waiting or running:
            while waiting and len(running) < at_once:
                job = waiting.pop(0)
                made = (str(runtime.device), runtime.cuda_graphs, runtime.precision)
                payload = pickle.dumps((_child, (job, made, threads)))
                child = context.Process(target=run_child, args=(os.getpid(), payload), name=job.name)
                child.start()
                running[child.sentinel] = (child, job)
            for sentinel in wait(list(running)):
                child, job = running.pop(sentinel)
                child.join()
                if child.exitcode == INTERRUPTED:
                    raise KeyboardInterrupt(f"{job.name} was interrupted")
                if child.exitcode:
                    failed.append((job.name, child.exitcode))
                    waiting.clear()  # start nothing new; let the running ones finish
    except KeyboardInterrupt:
        _stop(child for child, _ in running.values())
        raise
    if failed:
        raise LetterbenchError(_failure(failed, at_once))


def _failure(failed: list[tuple[str, int]], at_once: int) -> str:
    """What stopped the seeds that failed: their own error (on stderr above), or a signal that
    killed them (the kernel's out-of-memory killer sends SIGKILL, likelier with seeds together)."""
    killed = [(name, signal.Signals(-code).name) for name, code in failed if code < 0]
    erred = [name for name, code in failed if code > 0]
    said = [f"{' and '.join(erred)} stopped on the error above"] if erred else []
    said += [f"{name} was killed by {signame}" for name, signame in killed]
    fix = "mend it, then run the same command again to resume"
    if killed:
        fewer = f"--seeds-together {max(1, at_once - 1)}"
        fix = f"run the same command again to resume, with {fewer} if memory ran out (SIGKILL is the out-of-memory killer's)"
    return f"{'; '.join(said)}; the other seeds are kept: {fix}"


def _stop(children) -> None:
    """Ask each child still running to stop at its last finished epoch (SIGTERM, which a child
    takes as Ctrl-C), and wait for it."""
    children = list(children)
    for child in children:
        if child.is_alive():
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join()


class _Prefixed(io.TextIOBase):
    """A text stream that writes each whole line to ``stream`` after ``prefix``."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix, self.partial = stream, prefix, ""

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.stream.write(f"{self.prefix}{line}\n" if line else "\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False  # several children share the terminal: lines, not progress bars


class _NotATerminal:
    """``stream`` in all but ``isatty``: no child draws progress bars on the shared terminal."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def isatty(self) -> bool:
        return False


def _child(job: Job, made: tuple[str, bool, str], threads: int) -> None:
    """A child's body: its own runtime, time budget and share of the CPU threads; one clear line
    for a letterbench error. A Ctrl-C in the terminal reaches the parent, which passes it on as
    SIGTERM (so no child is interrupted twice)."""
    from letterbench.core import timing
    from letterbench.core.signals import sigterm_as_interrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the parent's death sends SIGTERM: ``run_child``)
    sys.stdout = _Prefixed(sys.stdout, f"[{job.name}] ")
    sys.stderr = _NotATerminal(sys.stderr)
    torch.set_num_threads(threads)
    try:
        with sigterm_as_interrupt(), timing.budget():
            device, cuda_graphs, precision = made
            job.work(*job.args, Runtime.create(device, cuda_graphs=cuda_graphs, precision=precision))
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    except (LetterbenchError, OSError) as exc:  # the disk, the data, a run folder: said in one line
        print(f"letterbench: error: {job.name}: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print(f"letterbench: internal error in {job.name}: a bug, with its traceback above", file=sys.stderr)
        sys.exit(70)
    finally:
        sys.stdout.flush()
