"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import FAST, best_validation_at, cli, tiny_train_data

from letterbench.core.errors import TrainingError
from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.data.splits import make_split
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model, layer_units, set_trainable
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import run_data, untrained_model
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import CheckpointObserver, Observer


def test_fit_without_observers_carries_the_best_weights_into_the_next_phase(tiny_letters, tmp_path):
    import torch

    from letterbench.core.runtime import Runtime
    from letterbench.training.engine import Trainer

    data = load_emnist(tiny_letters)
    split = make_split(data, 0.25, 0, 4)
    tensors = TrainData(
        data.train_images[split.train],
        data.train_labels[split.train],
        data.train_images[split.val],
        data.train_labels[split.val],
    )
    recipe = resolve_recipe("timm:resnet10t", "xception", epochs=1, batch_size=26, overrides=["precise_bn=0"])
    trainer = Trainer(
        recipe, create_model("timm:resnet10t"), tensors, Runtime(torch.device("cpu")), RunDir(tmp_path)
    )
    state = trainer.fit()  # two phases, nothing written to disk, nothing read from it
    assert [h["phase"] for h in state.history] == ["initial", "fine-tune"]
    assert not (tmp_path / "run").exists()


CPU = Runtime(torch.device("cpu"))


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        pytest.param("densenet121", marks=pytest.mark.slow),
        pytest.param("xception", marks=pytest.mark.slow),
        "timm:resnet10t",
    ],
)
def test_a_few_steps_lower_the_loss(tiny_letters, tmp_path, name):
    data = tiny_train_data(tiny_letters, per_class=4)
    torch.manual_seed(0)
    model = create_model(name)
    recipe = resolve_recipe(
        name,
        "resnet18",
        overrides=[
            "batch_size=26",
            "augment.rotate=0",
            "augment.zoom=0",
            "augment.shift=0",
            "phases.0.optimizer.name=adam",
            "phases.0.optimizer.lr=0.001",
            "phases.0.schedule.name=constant",
        ],
    )
    trainer = Trainer(recipe, model, data, CPU, RunDir(tmp_path), seed=0)
    trainer.start_phase(0)
    x = Preprocess(model.spec, "cpu")(data.train_images)

    def batch_loss() -> float:  # training-mode loss (batch statistics, fixed dropout masks)
        torch.manual_seed(123)
        model.train()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(x), data.train_labels).item()

    before = batch_loss()
    for _ in range(3):
        trainer.train_epoch()
    assert batch_loss() < 0.9 * before


def test_early_stopping_and_plateau_fire(tiny_letters, tmp_path):
    # threshold/min_delta of 1000%: no epoch after the first counts as an improvement.
    assert (
        cli(
            "train",
            *FAST,
            "--data-dir",
            tiny_letters,
            "--out",
            tmp_path / "r",
            "--epochs",
            "10",
            "--set",
            'phases.0.schedule={"name": "plateau", "factor": 0.5, "patience": 1, "threshold": 10}',
            "--set",
            'phases.0.early_stopping={"patience": 2, "min_delta": 1000}',
        )
        == 0
    )
    history = json.loads((tmp_path / "r" / "progress.json").read_text())["history"]
    assert len(history) == 3 and history[-1]["early_stop"]
    lrs = [h["lr"] for h in history]
    assert lrs[1] == lrs[0] and lrs[2] == pytest.approx(lrs[0] * 0.5)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_letters, tmp_path):
    data = tiny_train_data(tiny_letters, per_class=8)
    recipe = resolve_recipe("timm:resnet10t", epochs=5, overrides=["phases.0.schedule.name=constant"])

    class Diverge(Observer):  # after the first good epoch, an absurd learning rate
        def on_epoch_end(self, trainer, record):
            for group in trainer.optimizer.param_groups:
                group["lr"] = 1e30

    run = RunDir(tmp_path)
    trainer = Trainer(
        recipe, create_model("timm:resnet10t"), data, CPU, run, observers=[CheckpointObserver(run), Diverge()]
    )
    with pytest.raises(TrainingError, match="non-finite"):
        trainer.fit()
    kept = RunDir(tmp_path).load_checkpoint("last")
    assert kept["trainer"]["global_epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values() if t.is_floating_point())


def test_best_checkpoints_hold_the_epoch_of_the_lowest_validation_loss(tiny_letters, tmp_path, monkeypatch):
    """Validation loss lowest at epoch 2 of 4 (made so: ``best_validation_at``): best.pt and
    best-train.pt keep that epoch's weights (they score its recorded validation loss again), while
    last.pt moves on."""
    import torch.nn.functional as F

    from letterbench.evaluation.inference import predict_logits

    best_validation_at(monkeypatch, 2)
    run = RunDir(tmp_path / "r")
    args = [*FAST, "--data-dir", tiny_letters, "--epochs", "4", "--out", run.path]
    assert cli("train", *args, "--set", "phases.0.schedule.name=constant", "--lr", "0.1") == 0
    history = run.read_progress().to_json()["history"]
    losses = [h["val_loss"] for h in history]
    best_epoch = history[losses.index(min(losses))]["global_epoch"]
    assert best_epoch == 2 < history[-1]["global_epoch"] == 4, f"the premise failed: {losses}"
    config = run.read_config()
    data = run_data(run, None, config)
    val = config.split(data).val
    for name in ("best", "train"):
        model = untrained_model(run, config)
        kept = run.load_weights_into(model, name)
        assert kept["trainer"]["global_epoch"] == best_epoch, name
        logits = predict_logits(model, data.train_images[val], CPU)
        loss = F.cross_entropy(logits, data.train_labels[val]).item()
        assert loss == pytest.approx(min(losses), rel=1e-4), name
    last = run.load_checkpoint("last")
    assert last["trainer"]["global_epoch"] == history[-1]["global_epoch"]


def train_xception_one_epoch(data_dir, out, per_class: int, val_fraction: float, *weights_args) -> int:
    """`letterbench train --model xception`, one epoch per phase, on a tiny stratified subset."""
    return cli(
        "train",
        "--model",
        "xception",
        *weights_args,
        "--quiet",
        "--data-dir",
        data_dir,
        "--train-per-class",
        per_class,
        "--out",
        out,
        "--epochs",
        1,
        "--batch-size",
        26,
        "--set",
        f"val_fraction={val_fraction}",
    )


@pytest.mark.slow
def test_xception_phases_train_exactly_the_intended_parameters(tiny_letters, tmp_path):
    torch.manual_seed(0)
    torch.save(create_model("xception").state_dict(), tmp_path / "pretend-pretrained.pth")
    run = tmp_path / "x"
    assert (
        train_xception_one_epoch(tiny_letters, run, 4, 0.25, "--weights", tmp_path / "pretend-pretrained.pth")
        == 0
    )
    start = torch.load(tmp_path / "pretend-pretrained.pth", weights_only=True)
    phase1 = RunDir(run).load_checkpoint("initial")["model"]
    phase2 = RunDir(run).load_checkpoint("fine-tune")["model"]
    model = create_model("xception")
    set_trainable(model, "last:12")
    last12 = {f"base.{n}." for n, _ in layer_units(model.base)[-12:]}
    params = {n for n, _ in model.named_parameters()}

    def changed(a, b):
        return {k for k in a if not torch.equal(a[k], b[k])}

    head = {n for n in params if n.startswith("head.")}
    assert changed(start, phase1) == head  # weights and frozen-BN statistics stay put
    in_last12 = {k for k in phase2 if any(k.startswith(prefix) for prefix in last12)}
    assert changed(phase1, phase2) & params == head | (in_last12 & params)
    assert changed(phase1, phase2) - params <= in_last12  # only trained BNs update running stats
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["substituted_phases"] == []
    history = json.loads((run / "progress.json").read_text())["history"]
    assert [h["phase"] for h in history] == ["initial", "fine-tune"]
    assert [h["trainable"] for h in history] == ["head", "last:12"]


@pytest.mark.slow
def test_without_pretrained_weights_frozen_phases_train_everything(tiny_letters, tmp_path):
    run = tmp_path / "x"
    assert train_xception_one_epoch(tiny_letters, run, 2, 0.5, "--pretrained", "false") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["substituted_phases"] == ["initial", "fine-tune"]
    assert "trained the whole network" in config["model"]["notes"][-1]
    history = json.loads((run / "progress.json").read_text())["history"]
    assert [h["trainable"] for h in history] == ["all", "all"]
