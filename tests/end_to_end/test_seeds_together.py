"""Seeds trained together (``run --seeds-together K``): each seed trains in a process of its own,
into its own run folder, and ends where training it alone ends; a study killed while its seeds
train together resumes each seed on its own.

The stated tolerance: none. With the same number of CPU threads, a seed trained together is
bit for bit the seed trained alone: the same weights, history and predictions. A child gets its
share of the threads (on two cores, one each), so the seeds trained alone here use that share too;
on another count of threads, sums are added in another order, and a seed differs from itself as
it does whenever it is trained on another count of threads (after 20 epochs of the small CNN at
a learning rate of 0.2: weights up to 0.46 apart, losses within 3e-3). On a GPU each seed runs the
kernels it runs alone, within a seed's own run-to-run variation (cuDNN's autotuning may choose
other kernels while other seeds run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_letters, write_emnist
from helpers import cli_process

from letterbench.cli.main import main
from letterbench.runs.rundir import RunDir

TOLERANCE = 0.0  # largest difference of any weight from the seed trained alone, on the same threads
RUNS = ("smallcnn", "smallcnn-seed1")


def study_args(data: Path, out: Path, *more: str) -> list[str]:
    return ["run", "--preset", "first", "--seeds", "2", "--data-dir", str(data), "--out", str(out), *more]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Letters the small CNN learns in a few epochs: 10 training and 6 test images per class."""
    folder = tmp_path_factory.mktemp("letters")
    return write_emnist(folder, synthetic_letters(10, seed=1), synthetic_letters(6, seed=2))


@pytest.fixture(scope="module")
def alone(data, tmp_path_factory) -> Path:
    """The two seeds trained one after the other (as on a CPU by default), each on the threads a
    seed gets when two train together."""
    out = tmp_path_factory.mktemp("alone") / "study"
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))
    try:
        assert main([*study_args(data, out), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def assert_same_seeds(study: Path, reference: Path) -> None:
    for name in RUNS:
        a, b = RunDir(study / "runs" / name), RunDir(reference / "runs" / name)
        assert a.read_config().seed == b.read_config().seed == (1 if name.endswith("seed1") else 0)
        assert a.status() == b.status() == "finished"
        wa, wb = a.load_checkpoint("best")["model"], b.load_checkpoint("best")["model"]
        assert wa.keys() == wb.keys()
        worst = max(
            (wa[k].double() - wb[k].double()).abs().max().item() for k in wa if wa[k].is_floating_point()
        )
        assert worst <= TOLERANCE, f"{name}: a weight differs by {worst:g} from the seed trained alone"
        ha, hb = a.read_progress().history, b.read_progress().history
        assert [e.global_epoch for e in ha] == [e.global_epoch for e in hb] == list(range(1, 21))
        assert [e.val_loss for e in ha] == [e.val_loss for e in hb]
        pa, labels = a.load_predictions("train")
        pb, _ = b.load_predictions("train")
        assert np.array_equal(pa, pb) and abs((pa.argmax(1) == labels).mean() - 1 / 26) > 0.3
        assert a.is_evaluated() and len(a.plots()) == len(b.plots())


def test_seeds_trained_together_match_seeds_trained_alone(data, alone, tmp_path, capfd):
    out = tmp_path / "together"
    assert main(study_args(data, out, "--seeds-together", "2")) == 0
    printed = capfd.readouterr().out
    assert "Small CNN: 2 seeds at once, 2 processes" in printed
    # each child's lines carry its run's name, the epoch lines included
    for name in ("smallcnn (seed 0)", "smallcnn (seed 1)"):
        assert f"[{name}] {name}: training" in printed and f"[{name}] train epoch 20/20" in printed
    assert_same_seeds(out, alone)
    budget = json.loads((out / "study.json").read_text())["time_budget"]
    assert budget["parts"]["smallcnn (seeds together)"]["seeds together"] > 0
    for name in RUNS:  # each seed's own wall clock, part by part, in its own files
        run = RunDir(out / "runs" / name)
        assert (
            run.read_progress().time_budget["training"] > 0 and run.read_metrics().time_budget["testing"] > 0
        )


def test_a_study_killed_while_its_seeds_train_together_resumes_each_seed(data, alone, tmp_path, capfd):
    out = tmp_path / "killed"
    cmd, env = cli_process(*study_args(data, out, "--seeds-together", "2", "--quiet"))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            done = [_epochs_done(out / "runs" / name) for name in RUNS]
            if min(done) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and both children at once
        proc.wait()
    killed_at = [
        RunDir(out / "runs" / name).load_checkpoint("last")["trainer"]["global_epoch"] for name in RUNS
    ]
    assert all(3 <= epoch < 20 for epoch in killed_at), killed_at
    capfd.readouterr()
    assert main(study_args(data, out, "--seeds-together", "2", "--quiet")) == 0
    printed = capfd.readouterr().out
    for name in ("smallcnn (seed 0)", "smallcnn (seed 1)"):
        assert f"[{name}] {name}: resuming" in printed
    assert_same_seeds(out, alone)


def _epochs_done(run: Path) -> int:
    try:
        return json.loads((run / "progress.json").read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


def test_a_seed_that_fails_is_named_and_the_other_seed_is_kept(data, alone, tmp_path, capfd):
    """A seed whose checkpoint was damaged cannot resume: the study names that seed in one error
    line, the seed beside it still trains and is kept, and the damaged file is left as it was."""
    out = Path(shutil.copytree(alone, tmp_path / "study"))
    shutil.rmtree(out / "runs" / "smallcnn")  # seed 0 trains again
    damaged = RunDir(out / "runs" / "smallcnn-seed1")
    damaged.write_progress(damaged.read_progress().with_status("interrupted"))
    last = damaged.checkpoint("last")
    last.write_bytes(last.read_bytes()[:1000])
    capfd.readouterr()
    assert main(study_args(data, out, "--seeds-together", "2", "--quiet")) == 1
    said = capfd.readouterr().err.strip().splitlines()
    errors = [line for line in said if line.startswith("letterbench: error:")]
    assert len(errors) == 2, said
    assert (
        errors[0].startswith("letterbench: error: smallcnn (seed 1): ")
        and "corrupt or truncated" in errors[0]
    )
    assert errors[1].startswith("letterbench: error: smallcnn (seed 1) stopped on the error above")
    assert RunDir(out / "runs" / "smallcnn").status() == "finished"
    assert last.stat().st_size == 1000
