"""What must work where the bad-input table expects a refusal: locks, restarts, resume overrides,
unique output names, image depths, warnings, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST, cli, cli_process
from PIL import Image

from letterbench.core.fsutil import atomic_open, atomic_write_json
from letterbench.images.letters import prepare_file
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import LOCK_FILE, RunDir
from letterbench.runs.studydir import StudyDir
from letterbench.training.optim import build_scheduler

# ---------------------------------------------------------------- locks


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until it is killed."""
    code = (
        "import sys, time\n"
        "from letterbench.runs.rundir import RunDir\n"
        "with RunDir(sys.argv[1]).lock():\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    _, env = cli_process()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_by_name_and_a_killed_holder_blocks_nothing(
    tiny_letters, tmp_path, capsys
):
    run = tmp_path / "run"
    args = ["train", *FAST, "--epochs", "1", "--data-dir", tiny_letters, "--out", run]
    holder = _hold_lock(run)
    try:
        assert cli(*args) == 1
        err = capsys.readouterr().err
        assert f"in use by another letterbench process (PID {holder.pid})" in err
        assert err.count("letterbench: error:") == 1
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # nothing written beside it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()  # its exit, and its pipe closed
    # The kill leaves the lock file (with the dead PID) behind; the next run takes it over.
    assert (run / LOCK_FILE).read_text().strip() == str(holder.pid)
    assert cli(*args) == 0
    assert RunDir(run).status() == "finished"
    assert not (run / LOCK_FILE).exists()  # released and removed at the end


def test_a_study_folder_is_locked(tmp_path, capsys):
    from letterbench.cli.main import main

    study = StudyDir(tmp_path / "study")
    with study.lock():
        assert main(["run", "--preset", "smoke", "--models", "resnet18", "--out", str(study.path)]) == 1
    assert f"PID {os.getpid()}" in capsys.readouterr().err
    assert not study.path.exists()  # the lock created the folder, and nothing else was written


def test_evaluate_takes_its_run_folders_lock(tiny_letters, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli("train", *FAST, "--epochs", "1", "--data-dir", tiny_letters, "--out", run) == 0
    capsys.readouterr()
    with RunDir(run).lock():  # as a training still running there, or another evaluate, would
        assert cli("evaluate", run, "--no-plots") == 1
    err = capsys.readouterr().err
    assert f"in use by another letterbench process (PID {os.getpid()})" in err
    assert err.count("letterbench: error:") == 1 and len(err.strip().splitlines()) == 1
    assert not RunDir(run).metrics_file.exists()
    assert cli("evaluate", run, "--no-plots") == 0  # and released once the holder is done


def test_resume_removes_what_a_write_killed_halfway_left(tiny_letters, tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    assert cli("train", *FAST, "--epochs", "1", "--data-dir", tiny_letters, "--out", run.path) == 0
    half = []  # named as atomic_open names them (mkstemp), beside the file each was to replace
    for folder, name in ((run.checkpoint_dir, "best-train.pt"), (run.path, "progress.json")):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        os.write(fd, b"half a file")
        os.close(fd)
        half.append(Path(tmp))
    (run.path / "notes.tmp").write_text("mine")  # not an atomic write's name: never touched
    assert cli("train", "--resume", "--out", run.path) == 0
    assert not any(p.exists() for p in half) and (run.path / "notes.tmp").read_text() == "mine"


@pytest.mark.slow
def test_resume_trains_more_epochs_at_a_new_learning_rate_and_records_it(tiny_letters, tmp_path):
    run = RunDir(tmp_path / "run")
    assert cli("train", *FAST, "--epochs", "2", "--data-dir", tiny_letters, "--out", run.path) == 0
    before = run.load_checkpoint("last")["model"]
    assert cli("evaluate", run.path, "--no-plots") == 0
    assert cli("train", "--resume", "--out", run.path, "--epochs", "4", "--lr", "0.01", "--quiet") == 0
    # The test metrics of the 2-epoch model are not reported as the 4-epoch model's.
    assert cli("report", run.path, "--out", tmp_path / "report") == 1
    history = run.read_progress().to_json()["history"]
    assert [h["global_epoch"] for h in history] == [1, 2, 3, 4]
    # The schedule is rebuilt: a cosine from the new LR over the 2 epochs left, no second warm-up.
    assert history[2]["lr"] == pytest.approx(0.005, rel=1e-6)
    assert history[3]["lr"] == pytest.approx(0.0, abs=1e-9)
    config = run.read_config().to_json()
    assert config["recipe"]["phases"][0]["epochs"] == 4
    assert config["recipe"]["phases"][0]["optimizer"]["lr"] == pytest.approx(0.01)
    (change,) = config["history"]
    assert change["changes"] == {"epochs": 4, "lr": 0.01}
    assert change["recipe_before"]["phases"][0]["epochs"] == 2
    after = run.load_checkpoint("last")["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert run.status() == "finished"


@pytest.mark.slow
def test_a_finished_run_keeps_what_later_commands_need_and_no_more(tiny_letters, tmp_path, capsys):
    """A finished run's last checkpoint holds no optimiser state (unless --keep-optimizer-state),
    best and the phase's best are one file on disk, and --resume --epochs still goes on (the
    optimiser afresh, with a warning); evaluate and predict read the best checkpoints."""
    kept, lean = RunDir(tmp_path / "kept"), RunDir(tmp_path / "lean")
    args = [*FAST, "--epochs", "2", "--data-dir", tiny_letters]
    assert cli("train", *args, "--out", kept.path, "--keep-optimizer-state") == 0
    assert cli("train", *args, "--out", lean.path) == 0
    assert isinstance(kept.load_checkpoint("last")["optimizer"], dict)
    assert lean.load_checkpoint("last")["optimizer"] is None
    # the same training otherwise: the same weights in both
    a, b = kept.load_checkpoint("last")["model"], lean.load_checkpoint("last")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert lean.checkpoint("last").stat().st_size < 0.75 * kept.checkpoint("last").stat().st_size
    best, phase_best = lean.checkpoint("best").stat(), lean.checkpoint("train").stat()
    assert (best.st_ino, best.st_dev) == (phase_best.st_ino, phase_best.st_dev)  # one file, two names
    assert cli("evaluate", lean.path, "--no-plots") == 0
    capsys.readouterr()
    assert cli("train", "--resume", "--out", lean.path, "--epochs", "3", "--quiet") == 0
    assert (
        "warning: the optimiser's running state (momentum, Adam's moments) was dropped"
        in capsys.readouterr().err
    )
    assert [h["global_epoch"] for h in lean.read_progress().to_json()["history"]] == [1, 2, 3]
    assert lean.status() == "finished" and lean.load_checkpoint("last")["optimizer"] is None


def test_one_cycle_schedules_of_any_length_build():
    recipe = resolve_recipe("resnet18", epochs=1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for steps in range(1, 12):
        scheduler = build_scheduler(recipe.phases[0], optimizer, steps).main
        for _ in range(steps):
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        assert np.isfinite(optimizer.param_groups[0]["lr"])


def test_one_epoch_on_twelve_images_per_class(tiny_letters, tmp_path):
    args = ["--model", "resnet18", "--train-per-class", "12", "--epochs", "1", "--quiet"]
    assert cli("train", *args, "--data-dir", tiny_letters, "--out", tmp_path / "r") == 0


# ---------------------------------------------------------------- outputs never collide


def test_show_input_keeps_inputs_with_one_name_apart(two_runs_single, tmp_path, capsys):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        a = np.full((40, 40), 255, np.uint8)
        a[5:35, 10 if folder == "x" else 25 : 15 if folder == "x" else 30] = 0
        Image.fromarray(a).save(tmp_path / folder / ("letter.png" if folder == "x" else "letter.jpg"))
    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "x-letter.input.png").write_bytes(b"the user's own file")
    args = ["predict", tmp_path / "x/letter.png", tmp_path / "y/letter.jpg", "--run", two_runs_single]
    assert cli(*args, "--show-input", seen) == 0
    names = sorted(p.name for p in seen.iterdir())
    assert names == ["x-letter-2.input.png", "x-letter.input.png", "y-letter.input.png"]
    assert (seen / "x-letter.input.png").read_bytes() == b"the user's own file"
    first = (seen / "x-letter-2.input.png").read_bytes()
    assert first != (seen / "y-letter.input.png").read_bytes()
    assert cli(*args, "--show-input", seen) == 0  # again: its own earlier images are replaced
    assert len(list(seen.iterdir())) == 3


@pytest.fixture(scope="module")
def two_runs_single(tmp_path_factory):
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("one-run")
    data = write_emnist(root / "emnist", synthetic_letters(8, seed=1), synthetic_letters(2, seed=2))
    args = [*FAST, "--epochs", "1", "--train-per-class", "8", "--data-dir", data, "--out", root / "r"]
    assert cli("train", *args) == 0
    return root / "r"


# ---------------------------------------------------------------- image depths


def test_deep_and_float_images_read_like_8_bit(tmp_path):
    a = np.full((64, 64), 255, np.uint8)
    a[10:54, 28:36] = 0
    a[10:18, 20:44] = 0
    reference = tmp_path / "l8.png"
    Image.fromarray(a).save(reference)
    variants = {
        "l16.png": Image.fromarray(a.astype(np.uint16) * 257),
        "i32.tif": Image.fromarray(a.astype(np.int32) * 257),
        "f01.tif": Image.fromarray(a.astype(np.float32) / 255),
        "f255.tif": Image.fromarray(a.astype(np.float32)),
    }
    expected = prepare_file(reference).image
    assert expected is not None and expected.max() == 255
    for name, img in variants.items():
        img.save(tmp_path / name)
        got = prepare_file(tmp_path / name)
        assert got.error is None, (name, got.error)
        assert np.abs(got.image.astype(int) - expected).max() <= 1, name
    Image.fromarray(np.full((28, 28), np.nan, np.float32)).save(tmp_path / "nan.tif")
    assert "non-finite pixel values" in prepare_file(tmp_path / "nan.tif").error
    # A faint 16-bit image is not stretched into a letter, and a blank float image stays blank.
    Image.fromarray(np.full((32, 32), 30000, np.uint16)).save(tmp_path / "flat16.png")
    assert prepare_file(tmp_path / "flat16.png").error == "the image is blank (no ink found)"


# ---------------------------------------------------------------- warnings


@pytest.mark.slow
def test_imagenet_fallback_is_one_letterbench_warning_line(tiny_letters, tmp_path):
    cmd, env = cli_process(
        "train",
        "--model",
        "densenet121",
        "--pretrained",
        "auto",
        "--epochs",
        "1",
        "--train-per-class",
        "4",
        "--set",
        "val_fraction=0.5",
        "--quiet",
        "--data-dir",
        tiny_letters,
        "--out",
        tmp_path / "r",
    )
    env = {
        **env,
        "HF_HUB_OFFLINE": "1",
        "TORCH_HOME": str(tmp_path / "torch"),
        "HF_HOME": str(tmp_path / "hf"),
    }
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("letterbench: warning: ImageNet weights unavailable")


# ---------------------------------------------------------------- atomic writes


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    atomic_write_json(target, {"old": True})

    class Boom(Exception):
        pass

    def payload():
        yield b'{"half": '
        raise Boom

    with pytest.raises(Boom):
        with atomic_open(target, "wb") as handle:
            for chunk in payload():
                handle.write(chunk)
                handle.flush()
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path):
    """On a real 64 KiB file system: the second, larger write fails with ENOSPC."""
    small = tmp_path / "small"
    small.mkdir()
    code = (
        "import errno, sys\n"
        "from pathlib import Path\n"
        "from letterbench.core.fsutil import atomic_write_bytes\n"
        "target = Path(sys.argv[1]) / 'last.pt'\n"
        "atomic_write_bytes(target, b'old' * 1000)\n"
        "try:\n"
        "    atomic_write_bytes(target, b'new' * 100_000)\n"
        "except OSError as exc:\n"
        "    assert exc.errno == errno.ENOSPC, exc\n"
        "    print('ENOSPC')\n"
        "print(target.read_bytes() == b'old' * 1000, sorted(p.name for p in target.parent.iterdir()))\n"
    )
    _, env = cli_process()
    script = f'mount -t tmpfs -o size=64k none {small} && exec {sys.executable} -c "$0" {small}'
    proc = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", script, code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["ENOSPC", "True ['last.pt']"], proc.stdout
