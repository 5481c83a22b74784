"""What several tests share: the CLI in this process and in a child process, a child killed after
some epochs, and the quickest training options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import letterbench
from letterbench.cli.main import main
from letterbench.runs.rundir import RunDir

FAST = ["--model", "timm:resnet10t", "--quiet", "--train-per-class", "12", "--set", "val_fraction=0.25"]


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def cli_process(*args, torchrun: int = 0) -> tuple[list[str], dict[str, str]]:
    """Command line and environment to run `letterbench ARGS` in a child process (under torchrun
    with that many processes if asked)."""
    launcher = (
        ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(torchrun)] if torchrun else []
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(letterbench.__file__).resolve().parents[1]),
    }  # the code imported here
    if torchrun:
        env["OMP_NUM_THREADS"] = "1"
    return [sys.executable, *launcher, "-m", "letterbench", *map(str, args)], env


def kill_after_epochs(cmd: list[str], env: dict, run: Path, epochs: int) -> int:
    """Start a training process, SIGKILL it as soon as ``epochs`` epochs are checkpointed, and
    return how many epochs its last checkpoint holds."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads((run / "progress.json").read_text())["epochs_done"] >= epochs:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return RunDir(run).load_checkpoint("last")["trainer"]["global_epoch"]


def killed_by_sigkill(*args) -> None:
    """A seed's work that the kernel kills (as the out-of-memory killer would)."""
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_long(*args) -> None:
    """A child's work that outlives any test: only a signal ends it."""
    time.sleep(120)
