"""Promises the guide makes that no other test held: the bug path's exit status and traceback, the
default preset and its printed reason, the paper preset's measured estimate, TensorBoard's purge on
resume, later phases' learning-rate ratio on `--resume --lr`, and the ensemble's tie rules."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from letterbench.cli.boundary import run_command
from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.evaluation.ensemble import best_subset
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.study.runner import choose_preset, estimate_minutes
from letterbench.training.observers import Observer
from letterbench.training.run import TrainOptions, train

CPU = Runtime(torch.device("cpu"))


def test_a_bug_keeps_its_traceback_asks_for_a_report_and_exits_70(capsys):
    def broken(args: argparse.Namespace) -> int:
        return {}["a key no command has"]  # an error letterbench did not foresee: a bug

    assert run_command(broken, argparse.Namespace()) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'a key no command has'" in err
    assert "please report it with the traceback above" in err.splitlines()[-1]


def test_the_default_preset_follows_the_device_and_says_why():
    preset, why = choose_preset(None, CPU)
    assert preset.name == "quick" and why.startswith("preset quick: no GPU in use")
    # choosing reads the runtime's device and name only; no GPU is needed to see the choice
    gpu = types.SimpleNamespace(device=torch.device("cuda"), is_cuda=True, name="NVIDIA H200")
    preset, why = choose_preset(None, gpu)
    assert preset.name == "paper" and why == "preset paper: training on a GPU (NVIDIA H200)"
    assert choose_preset("smoke", gpu)[1] == "preset smoke (as asked)"


def test_the_paper_estimate_is_the_measured_rate_times_the_images_to_train(monkeypatch):
    """Epochs x training images (validation held out) / the engine's measured images per second."""
    import letterbench.training.throughput as throughput

    measured = []
    real = throughput.measure_train_throughput

    def measure(recipe, runtime, steps):
        rate = real(recipe, runtime, steps=steps)  # the real engine, timed for real
        measured.append(rate)
        return rate

    monkeypatch.setattr(throughput, "measure_train_throughput", measure)
    recipe = resolve_recipe("timm:test_resnet", epochs=3, overrides=["val_fraction=0.25"])
    minutes = estimate_minutes([recipe], 1000, CPU)
    (rate,) = measured
    assert rate > 0 and minutes == pytest.approx(3 * 1000 * 0.75 / rate / 60)


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


def _probs(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def test_ensemble_ties_go_to_the_lower_log_loss_then_to_fewer_models():
    labels = np.array([0, 1])
    # a and b are each right on both images: every subset is 100% accurate. b is surer (lower
    # log-loss) than a, and the mean of a and b lies between them: b alone wins.
    a = _probs([[0.6, 0.4], [0.4, 0.6]])
    b = _probs([[0.9, 0.1], [0.1, 0.9]])
    chosen, tried = best_subset({"a": a, "b": b}, labels)
    assert chosen == ["b"] and len(tried) == 3
    # c is b's twin: b, c and b + c tie in accuracy and log-loss, and the fewest models win,
    # the first named among equals
    chosen, _ = best_subset({"b": b, "c": b.copy()}, labels)
    assert chosen == ["b"]
