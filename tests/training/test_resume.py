"""Promises the guide makes that no other test held: the bug path's exit status and traceback, the
default preset and its printed reason, the paper preset's measured estimate, TensorBoard's purge on
resume, later phases' learning-rate ratio on `--resume --lr`, and the ensemble's tie rules."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.observers import Observer
from letterbench.training.run import TrainOptions, train

CPU = Runtime(torch.device("cpu"))


class StopAfter(Observer):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record.record.global_epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_purges_tensorboard_events_of_epochs_trained_again(tiny_letters, tmp_path):
    """The events of an epoch whose checkpoint never reached disk are dropped on resume: the
    reader TensorBoard uses sees each epoch once, with the value of the run that continued."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunDir(tmp_path / "run")
    recipe = resolve_recipe("timm:resnet10t", epochs=3, overrides=["val_fraction=0.25"])
    options = TrainOptions(tiny_letters, train_per_class=8, progress=False, tensorboard=True)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, run, CPU, dataclasses.replace(options, observers=(StopAfter(2),)))
    saved = tmp_path / "after-epoch-2"
    shutil.copytree(run.path, saved, ignore=shutil.ignore_patterns("tensorboard"))
    train(None, run, CPU, options, resume=True)  # epoch 3 logged
    # As if the process had died after logging epoch 3 but before its checkpoint reached disk:
    for name in ("checkpoints", "progress.json"):
        target = run.path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        (shutil.copytree if (saved / name).is_dir() else shutil.copyfile)(saved / name, target)
    train(None, run, CPU, options, resume=True)  # epoch 3 again
    events = EventAccumulator(str(run.tensorboard_dir / "train"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/train")]
    assert steps == [1, 2, 3], steps
    last = run.read_progress().to_json()["history"][-1]
    assert events.Scalars("loss/train")[-1].value == pytest.approx(last["train_loss"], rel=1e-6)


def test_resume_with_a_new_lr_keeps_the_later_phases_ratio_to_it(tiny_letters, tmp_path):
    """Two phases at LR 0.01 and 0.002 (ratio 0.2): resumed in the first with --lr 0.05, the
    second trains at 0.01."""
    run = tmp_path / "run"
    two_phases = ["val_fraction=0.25"]
    # stopped after the first epoch: an interrupted run in its first phase
    options = TrainOptions(tiny_letters, train_per_class=8, progress=False, observers=(StopAfter(1),))
    recipe = resolve_recipe(None, str(_two_phase_recipe(tmp_path)), overrides=two_phases)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, RunDir(run), CPU, options)
    recipe_before = RunDir(run).read_config().to_json()["recipe"]
    assert [p["optimizer"]["lr"] for p in recipe_before["phases"]] == [0.01, 0.002]
    assert main(["train", "--resume", "--out", str(run), "--lr", "0.05", "--quiet"]) == 0
    phases = RunDir(run).read_config().to_json()["recipe"]["phases"]
    assert phases[0]["optimizer"]["lr"] == pytest.approx(0.05)
    assert phases[1]["optimizer"]["lr"] == pytest.approx(0.01)
    second = [h for h in RunDir(run).read_progress().to_json()["history"] if h["phase"] == "second"]
    assert second and second[0]["lr"] == pytest.approx(0.01)  # a constant schedule: its LR as set


def _two_phase_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "two.toml"
    if not path.exists():
        path.write_text(
            'name = "two"\nmodel = "timm:resnet10t"\nbatch_size = 32\n\n'
            '[[phases]]\nname = "first"\nepochs = 2\n'
            'optimizer = { name = "sgd", lr = 0.01, momentum = 0.9 }\n'
            'schedule = { name = "constant" }\n\n'
            '[[phases]]\nname = "second"\nepochs = 1\n'
            'optimizer = { name = "sgd", lr = 0.002, momentum = 0.9 }\n'
            'schedule = { name = "constant" }\n'
        )
    return path


def test_resume_with_the_recorded_values_changes_nothing(tiny_letters, tmp_path):
    """The user's own values again, however typed, are no change: `--lr` equal to the phase's LR
    records no history entry and keeps the recorded LR exactly; `--set pretrained=false` is the
    recorded "false" read through the schema; a real change is still refused with both values."""
    out = tmp_path / "run"
    common = ["--quiet", "--data-dir", str(tiny_letters), "--train-per-class", "8"]
    start = ["train", "--model", "timm:resnet10t", "--epochs", "1", "--lr", "0.2", "--out", str(out)]
    assert main([*start, *common, "--set", "val_fraction=0.25"]) == 0
    before = RunDir(out).read_config()
    assert main(["train", "--resume", "--out", str(out), "--lr", "0.2", "--quiet"]) == 0
    assert main(["train", "--resume", "--out", str(out), "--set", "pretrained=false", "--quiet"]) == 0
    after = RunDir(out).read_config()
    assert after.history is None and after.recipe.phases[0].optimizer.lr == 0.2
    assert after.recipe == before.recipe
    assert main(["train", "--resume", "--out", str(out), "--set", "label_smoothing=0.3", "--quiet"]) == 1
