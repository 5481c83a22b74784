"""A model's seeds at once, a process each: a seed the kernel kills is named with its signal, and a
child never outlives its parent for the seconds its imports take."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import killed_by_sigkill

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.study.together import Job, run_together

pytestmark = pytest.mark.slow  # each test starts Python processes that import torch


def test_a_seed_killed_by_a_signal_is_named_with_the_signal_and_a_fix():
    jobs = [Job("resnet18 (seed 1)", killed_by_sigkill, ())]
    with pytest.raises(LetterbenchError) as caught:
        run_together(jobs, 2, Runtime(torch.device("cpu")))
    said = str(caught.value)
    assert "resnet18 (seed 1) was killed by SIGKILL" in said and "--seeds-together 1" in said
    assert "error above" not in said  # nothing is above: the child had no chance to say anything


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_child_whose_parent_dies_while_it_starts_ends_at_once(tmp_path):
    """The parent starts a child and dies at once, while the child is still importing: the child
    ends within seconds (before this, it ran on for the 20-30 s its imports and first epoch took)."""
    parent = (
        "import multiprocessing, os, pickle, sys\n"
        "from letterbench.core.signals import run_child\n"
        "from helpers import sleep_long\n"
        "if __name__ == '__main__':\n"
        "    context = multiprocessing.get_context('spawn')\n"
        "    payload = pickle.dumps((sleep_long, ()))\n"
        "    child = context.Process(target=run_child, args=(os.getpid(), payload))\n"
        "    child.start()\n"
        "    print(child.pid, flush=True)\n"
        "    os._exit(0)\n"
    )
    script = tmp_path / "parent.py"
    script.write_text(parent)
    tests = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env={"PYTHONPATH": tests}, timeout=60
    )
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the orphaned child is still running 10 s after its parent died"
