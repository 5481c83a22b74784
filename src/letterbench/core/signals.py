"""SIGTERM as Ctrl-C: what a scheduler, a container stop or ``kill`` sends ends a command the way
Ctrl-C does (``KeyboardInterrupt``), so a training run stops at its last finished epoch and says
how to resume."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the block, SIGTERM raises ``KeyboardInterrupt``; the handler before is put back after.
    Outside the main thread signals are left alone (Python allows handlers only there)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent: int) -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies; and where the
    parent ``parent`` (a PID) died already, before this could be set, end now. Called first thing
    in a child, before anything heavy is imported, so an orphan never outlives its parent for the
    seconds an import of torch takes."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass
    if os.getppid() != parent:
        os._exit(128 + signal.SIGTERM)


def run_child(parent: int, payload: bytes) -> None:
    """A child process's entry: ``die_with_parent``, then ``target(*args)`` from ``payload`` (pickled
    by the parent, so that unpickling, which imports the target's modules, comes after)."""
    die_with_parent(parent)
    import pickle

    target, args = pickle.loads(payload)
    target(*args)
