"""Promises the guide makes that no other test held: the bug path's exit status and traceback, the
default preset and its printed reason, the paper preset's measured estimate, TensorBoard's purge on
resume, later phases' learning-rate ratio on `--resume --lr`, and the ensemble's tie rules."""

from __future__ import annotations

import types

import pytest
import torch

from letterbench.core.runtime import Runtime
from letterbench.recipes import resolve_recipe
from letterbench.study.runner import choose_preset, estimate_minutes

CPU = Runtime(torch.device("cpu"))


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
