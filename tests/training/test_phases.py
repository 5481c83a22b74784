"""The training engine: learning, resume after a kill, stopping rules, phases, DDP, clear failures."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import cli

from letterbench.models import create_model, layer_units, set_trainable
from letterbench.runs.rundir import RunDir


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
