"""letterbench never deletes what it did not write: files of the user's own beside a run's files,
named like them, survive every command that cleans up after itself (evaluate forgetting stale
real-world readings, resume removing the temporaries of a killed write)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from letterbench.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "main-run"  # a small CNN, recipe phase "train"
sys.path.insert(0, str(FIXTURE.parent))
from make_main_run import TRAIN, tiny_data  # noqa: E402


def test_evaluate_without_real_world_forgets_only_the_runs_own_readings(tmp_path):
    run = Path(shutil.copytree(FIXTURE, tmp_path / "run"))
    own = run / "real-world-train.npz"  # the reading evaluate wrote for the run's phase
    own.write_bytes(b"stale reading")
    users = [run / "real-world-train-old.npz", run / "real-world-mine.npz", run / "real-world-.npz"]
    for path in users:
        path.write_bytes(b"the user's copy")
    data = tiny_data(tmp_path / "emnist")
    assert main(["evaluate", str(run), "--data-dir", str(data), "--no-plots"]) == 0
    assert not own.exists()  # stale: this evaluation read no folder
    for path in users:
        assert path.read_bytes() == b"the user's copy", path.name


def test_resume_removes_only_letterbenchs_own_temporaries(tmp_path):
    data = tiny_data(tmp_path / "emnist")
    run = tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(data), "--out", str(run)]
    assert main([*args, "--epochs", "1"]) == 0
    killed = [run / ".progress.json.k3x_9q2a.tmp", run / "checkpoints" / ".last.pt.a1b2c3d4.tmp"]
    killed.append(run / "checkpoints" / ".best.pt.4242.link.tmp")
    users = [run / ".report-draft.tmp", run / "checkpoints" / ".keep.tmp", run / ".notes.json.tmp"]
    users += [run / ".mine.txt.abcdefgh.tmp", run / "checkpoints" / ".config.json.abcdefgh.tmp"]
    for path in killed + users:
        path.write_bytes(b"x")
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    for path in killed:
        assert not path.exists(), path.name
    for path in users:
        assert path.read_bytes() == b"x", path.name
