"""What must work where the bad-input table expects a refusal: locks, restarts, resume overrides,
unique output names, image depths, warnings, atomic writes."""

from __future__ import annotations

import selectors
import signal
import subprocess
import time
from pathlib import Path

import torch
from helpers import FAST, cli, cli_process

from letterbench.runs.rundir import RunDir


def test_two_real_training_processes_on_one_folder(tiny_letters, tmp_path):
    run = tmp_path / "run"
    cmd, env = cli_process("train", *FAST, "--epochs", "40", "--data-dir", tiny_letters, "--out", run)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / "config.json").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert first.poll() is None  # still training while the second one was refused
    finally:
        first.send_signal(signal.SIGTERM)  # stop it at its last finished epoch
        first.wait()
    assert second.returncode == 1
    assert f"(PID {first.pid})" in second.stderr and "Traceback" not in second.stderr
    assert RunDir(run).status() == "interrupted"


# ---------------------------------------------------------------- restarts and resume overrides


def test_a_run_killed_in_its_first_epoch_starts_again(tiny_letters, tmp_path, capsys):
    args = [*FAST, "--epochs", "2", "--data-dir", tiny_letters]
    assert cli("train", *args, "--out", tmp_path / "straight") == 0
    run = tmp_path / "killed"
    cmd, env = cli_process("train", *args, "--out", run)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run / "config.json").exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not RunDir(run).has_checkpoint("last")
    capsys.readouterr()
    assert cli("train", "--resume", "--out", run, "--quiet") == 0
    assert "no finished epoch to resume from; starting the run again" in capsys.readouterr().out
    a = RunDir(tmp_path / "straight").load_checkpoint("last")["model"]
    b = RunDir(run).load_checkpoint("last")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # A plain rerun of a run that never finished an epoch starts it again too.
    (Path(run) / "checkpoints" / "last.pt").unlink()
    assert cli("train", *args, "--out", run) == 0
    assert "never finished an epoch; starting it again" in capsys.readouterr().out


def test_sigterm_before_the_first_epoch_ends_as_ctrl_c_does(tiny_letters, tmp_path):
    """SIGTERM while a run draws its extra letters (outside the training loop): one line, exit
    status 130, the folder's lock released, as for Ctrl-C; not a silent 143 with the lock left."""
    from letterbench.runs.rundir import LOCK_FILE

    run = tmp_path / "run"
    # minutes of drawing: 1,000 epochs would pick more than the whole pool
    big_pool = ["--set", "data.synthetic=0.5", "--set", "data.pool=200000"]
    cmd, env = cli_process(
        "train", *FAST, *big_pool, "--epochs", "1000", "--data-dir", tiny_letters, "--out", run
    )
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = ""
    with selectors.DefaultSelector() as waiting:  # until it says it is drawing (2 minutes at most)
        waiting.register(child.stdout, selectors.EVENT_READ)
        while "drawing the recipe's 200,000" not in said and waiting.select(timeout=120):
            line = child.stdout.readline()
            said += line
            if not line:
                break
    assert "drawing the recipe's 200,000 synthetic letters: about" in said, said
    assert (run / LOCK_FILE).exists()
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "train epoch" not in said + out  # stopped while it drew
    assert err.strip().splitlines()[-1].startswith("letterbench: interrupted") and "Traceback" not in err
    assert not (run / LOCK_FILE).exists()
