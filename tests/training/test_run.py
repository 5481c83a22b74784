"""The training engine: learning, resume after a kill, stopping rules, phases, DDP, clear failures."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import FAST, cli, tiny_train_data

from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.models import create_model
from letterbench.recipes import describe_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import Trainer
from letterbench.training.observers import CheckpointObserver, Observer
from letterbench.training.run import TrainOptions, train

CPU = Runtime(torch.device("cpu"))


class ObserverFault(Exception):
    pass


class FaultAfterFirstEpoch(Observer):
    def on_epoch_end(self, trainer, record):
        raise ObserverFault


def test_an_error_mid_run_leaves_its_folder_written_failed_and_resumable(tiny_letters, tmp_path):
    """Any error, not only Ctrl-C or a non-finite loss, ends the run's queued writes before the run
    lets go of its folder: the progress file says failed and counts the checkpointed epoch."""
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=2, overrides=["val_fraction=0.25"])
    options = TrainOptions(
        tiny_letters, train_per_class=12, progress=False, observers=(FaultAfterFirstEpoch(),)
    )
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(folder), CPU, options)
    progress = RunDir(folder).read_progress().to_json()
    assert progress["status"] == "failed" and progress["epochs_done"] == 1
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"] == 1
    train(None, RunDir(folder), CPU, TrainOptions(tiny_letters, progress=False), resume=True)
    assert RunDir(folder).read_progress().to_json()["status"] == "finished"
    assert RunDir(folder).read_progress().to_json()["epochs_done"] == 2


def test_the_error_that_ended_a_run_is_the_one_raised_when_recording_it_fails(
    tiny_letters, tmp_path, monkeypatch, capsys
):
    def disk_full(self, progress):
        raise OSError("No space left on device")

    monkeypatch.setattr(RunDir, "write_progress", disk_full)
    recipe = resolve_recipe("timm:resnet10t", epochs=2, overrides=["val_fraction=0.25"])
    options = TrainOptions(
        tiny_letters, train_per_class=12, progress=False, observers=(FaultAfterFirstEpoch(),)
    )
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(tmp_path / "run"), CPU, options)
    assert "letterbench: warning: ProgressObserver could not record the failed run" in capsys.readouterr().err


def test_a_failed_run_never_counts_an_epoch_whose_checkpoint_was_not_queued(
    tiny_letters, tmp_path, monkeypatch
):
    checkpoint = CheckpointObserver.on_epoch_end

    def fails_at_the_second_epoch(self, trainer, record):
        if record.record.global_epoch == 2:
            raise ObserverFault
        checkpoint(self, trainer, record)

    monkeypatch.setattr(CheckpointObserver, "on_epoch_end", fails_at_the_second_epoch)
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=3, overrides=["val_fraction=0.25"])
    with pytest.raises(ObserverFault):
        train(recipe, RunDir(folder), CPU, TrainOptions(tiny_letters, train_per_class=12, progress=False))
    progress = RunDir(folder).read_progress().to_json()
    assert progress["status"] == "failed" and progress["epochs_done"] == 1 and len(progress["history"]) == 1
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"] == 1


def test_a_checkpoint_that_fails_to_write_is_never_counted(tiny_letters, tmp_path, monkeypatch):
    """The write of epoch 2's ``last`` fails on the writer's thread; the error surfaces at the next
    epoch's save. progress.json then counts epoch 1, the last one whose checkpoint is on disk."""
    save = RunDir.save_checkpoint

    def fails_at_the_second_epoch(self, which, snapshot):
        if which == ["last"] and snapshot["trainer"]["global_epoch"] == 2:
            raise OSError("No space left on device")
        save(self, which, snapshot)

    monkeypatch.setattr(RunDir, "save_checkpoint", fails_at_the_second_epoch)
    folder = tmp_path / "run"
    recipe = resolve_recipe("timm:resnet10t", epochs=3, overrides=["val_fraction=0.25"])
    with pytest.raises(OSError, match="No space left"):
        train(recipe, RunDir(folder), CPU, TrainOptions(tiny_letters, train_per_class=12, progress=False))
    progress = RunDir(folder).read_progress().to_json()
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=False)["trainer"]["global_epoch"]
    assert progress["status"] == "failed" and progress["epochs_done"] == last == 1


def test_existing_run_dir_is_not_overwritten(tiny_letters, tmp_path, capsys):
    run = tmp_path / "r"
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "1") == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_corrupt_checkpoint_gives_clear_error(tiny_letters, tmp_path, capsys):
    run = tmp_path / "r"
    assert cli("train", *FAST, "--data-dir", tiny_letters, "--out", run, "--epochs", "3") == 0
    (run / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    assert cli("train", "--resume", "--out", run, "--quiet") == 1
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and err.count("\n") == 1


def test_bad_options_are_refused(tiny_letters, capsys):
    assert cli("train", "--model", "resnet18", "--set", "phases.0.epochs=0", "--data-dir", tiny_letters) == 1
    assert "phases.0.epochs: input should be greater than or equal to 1" in capsys.readouterr().err
    assert cli("train", "--model", "resnet18", "--set", "nonsense=1") == 1
    assert "unknown key" in capsys.readouterr().err
    assert cli("train", "--model", "nosuchnet") == 1
    assert cli("train", "--resume") == 1


def test_resume_restores_the_random_state_the_checkpoint_holds(tiny_letters, tmp_path):
    """Whatever random state the resuming process starts with, a resumed trainer's next draws are
    the ones the interrupted run would have made (dropout masks and anything else drawn from the
    global generator), for a one-phase recipe as for the two-phase one above."""
    data = tiny_train_data(tiny_letters, per_class=4)
    recipe = resolve_recipe("smallcnn", overrides=["batch_size=26"])
    run = RunDir(tmp_path)
    trainer = Trainer(recipe, create_model("smallcnn"), data, CPU, run, seed=0)
    trainer.start_phase(0)
    trainer.train_epoch()
    state = trainer.checkpoint_state()
    run.save_checkpoint("last", state)
    expected = torch.rand(8)  # the interrupted run's next draws
    torch.manual_seed(12345)  # a different process, a different state
    again = Trainer(recipe, create_model("smallcnn"), data, CPU, run, seed=0)
    again.resume()
    assert torch.equal(torch.rand(8), expected)


def test_the_extra_letters_are_drawn_in_steps_as_they_were_drawn_at_once(tiny_letters):
    """Drawing the pool in steps (to say how long it takes) draws exactly the letters one call
    drew: a recipe's runs and their resumes train on the same letters as before."""
    from letterbench.images.synthetic import synthetic_letters
    from letterbench.recipes import resolve_recipe
    from letterbench.training.run import synthetic_pool

    recipe = resolve_recipe("smallcnn", overrides=["data.synthetic=0.25", "data.pool=600"])
    images, labels = synthetic_pool(recipe, load_emnist(tiny_letters), seed=3)
    once_images, once_labels = synthetic_letters(600, 3)
    assert images.shape == (600, 28, 28)
    assert (images.numpy() == once_images).all() and (labels.numpy() == once_labels).all()


def test_a_short_run_on_few_images_draws_only_the_extra_letters_its_batches_hold(
    tiny_letters, tmp_path, capsys
):
    """A recipe's ``data.pool`` is drawn whole where its batches use that many extra letters (the
    first preset on 360 images per letter); a short run on few images draws no more than all its
    batches hold, says how many, and they are the first letters of the whole pool's draw."""
    from letterbench.images.synthetic import synthetic_letters
    from letterbench.training.run import letters_used, synthetic_pool

    recipe = resolve_recipe("smallcnn", overrides=["data.synthetic=0.25"], epochs=2)
    assert (recipe.synthetic_pool, recipe.batch_size, recipe.epochs) == (8320, 128, 2)
    first = resolve_recipe("smallcnn", overrides=["data.synthetic=0.25"], epochs=20)
    assert letters_used(first, 8424) == 8320  # 20 epochs of 66 batches would hold 56,760
    assert letters_used(recipe, 468) == 2 * 4 * 43  # 2 epochs of 4 batches, 43 extra letters each at most
    assert letters_used(recipe, 468, world=2) == 2 * 5 * 43  # each rank may end on a short batch
    out = tmp_path / "run"
    assert (
        cli(
            "train",
            "--model",
            "smallcnn",
            "--set",
            "data.synthetic=0.25",
            "--epochs",
            "2",
            "--data-dir",
            str(tiny_letters),
            "--out",
            str(out),
            "--set",
            "val_fraction=0.1",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert " on 468 images + 344 extra letters (val 52)" in printed, printed
    assert json.loads((out / "config.json").read_text())["data"]["extra_letters"] == 344
    # resumed for more epochs, it draws the letters it started with, not a larger count
    assert cli("train", "--resume", "--out", out, "--epochs", "3") == 0
    assert "resuming smallcnn on 468 images + 344 extra letters" in capsys.readouterr().out
    # the report's recipe line says what this run drew; the recipe's own description, its pool
    assert cli("evaluate", out, "--no-plots", "--data-dir", tiny_letters) == 0
    assert cli("report", out, "--out", tmp_path / "report") == 0
    assert (
        "synthetic letters (344 of 8,320 drawn, what its batches pick)"
        in (tmp_path / "report" / "report.md").read_text()
    )
    assert "synthetic letters (8,320 drawn)" in describe_recipe(recipe)
    images, labels = synthetic_pool(recipe, load_emnist(tiny_letters), seed=0, pool=336)
    drawn, drawn_labels = synthetic_letters(336, 0)
    assert (images.numpy() == drawn).all() and (labels.numpy() == drawn_labels).all()
