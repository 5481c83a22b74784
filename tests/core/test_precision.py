"""``--precision``: with ``auto``, a CPU that computes bf16 natively runs the passes without
gradients (validation, precise BN, testing, calibration, predictions) in bf16 and trains in
float32; ``float32`` computes everything in full precision. The suite itself runs in float32
(conftest), so these tests build the bf16 runtime on purpose, on any machine."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import synthetic_letters

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import PRECISION_ENV, Runtime, native_bf16_cpu
from letterbench.evaluation.inference import predict_logits
from letterbench.images.transforms import Preprocess
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import trained_model
from letterbench.training.stream import BatchStream
from letterbench.training.validation import precise_bn, validate

RUN = (
    Path(__file__).resolve().parents[1] / "fixtures" / "main-run"
)  # a small CNN trained on synthetic letters
BF16 = Runtime(torch.device("cpu"), inference_dtype=torch.bfloat16)
FULL = Runtime(torch.device("cpu"))


def test_auto_runs_the_passes_without_gradients_in_bf16_where_the_cpu_computes_it(monkeypatch):
    auto = Runtime.create("cpu", precision="auto")
    assert auto.amp_dtype is None  # training stays float32 on a CPU
    assert auto.inference_dtype == (torch.bfloat16 if native_bf16_cpu() else None)
    assert ("inference_precision" in auto.describe()) == native_bf16_cpu()
    full = Runtime.create("cpu", precision="float32")
    assert full.inference_dtype is None and "inference_precision" not in full.describe()
    assert BF16.describe()["inference_precision"] == "bfloat16" and BF16.describe()["precision"] == "float32"
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert Runtime.create("cpu").inference_dtype is None and Runtime.create("cpu").precision == "float32"
    monkeypatch.setenv(PRECISION_ENV, "fast")
    with pytest.raises(LetterbenchError, match="LETTERBENCH_PRECISION='fast': use one of auto, float32"):
        Runtime.create("cpu")


def letters(per_class: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = synthetic_letters(per_class, seed=5)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


@pytest.mark.parametrize("hardware", [True, False], ids=["cpu-with-bf16", "cpu-without-bf16"])
def test_auto_chooses_by_the_cpu_on_any_machine(monkeypatch, hardware):
    """Both of auto's branches, whichever CPU runs the suite: the CPU's answer is replaced (the
    decision is what is tested; the bf16 passes themselves run for real in the tests below)."""
    import letterbench.core.runtime as runtime

    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setattr(runtime, "native_bf16_cpu", lambda: hardware)
    auto = Runtime.create("cpu", precision="auto")
    assert auto.amp_dtype is None  # training stays float32 either way
    assert auto.inference_dtype == (torch.bfloat16 if hardware else None)
    assert auto.describe().get("inference_precision") == ("bfloat16" if hardware else None)
    assert Runtime.create("cpu", precision="float32").inference_dtype is None


def test_bf16_predictions_are_computed_in_bf16_and_agree_with_float32():
    model, _ = trained_model(RunDir(RUN))
    images, _ = letters()
    full, half = predict_logits(model, images, FULL), predict_logits(model, images, BF16)
    assert half.dtype == torch.float32 and half.shape == full.shape
    gap = (half - full).abs().max().item()
    assert 0 < gap < 0.05 * full.abs().max().item()  # bf16 was used, and is close
    assert (half.argmax(1) == full.argmax(1)).float().mean() >= 0.97
    probs = full.softmax(1), half.softmax(1)
    torch.testing.assert_close(probs[1], probs[0], atol=0.02, rtol=0)


def test_bf16_validation_and_precise_bn_agree_with_float32():
    model, _ = trained_model(RunDir(RUN))
    images, labels = letters()
    stream = BatchStream(images, labels, Preprocess(model.spec, "cpu"), 32)
    full, half = validate(model, stream, FULL), validate(model, stream, BF16)
    assert half.count == full.count == len(labels)
    assert half.loss != full.loss and half.loss == pytest.approx(full.loss, rel=0.05)
    assert abs(half.accuracy - full.accuracy) <= 0.03
    twin = copy.deepcopy(model)
    precise_bn(model, stream, FULL, 96)
    precise_bn(twin, stream, BF16, 96)
    norms = [
        (a, b)
        for a, b in zip(model.modules(), twin.modules(), strict=True)
        if isinstance(a, torch.nn.BatchNorm2d)
    ]
    assert norms
    for a, b in norms:
        assert not torch.equal(a.running_mean, b.running_mean)
        torch.testing.assert_close(b.running_mean, a.running_mean, atol=0.05, rtol=0.05)
        torch.testing.assert_close(b.running_var, a.running_var, atol=0.05, rtol=0.05)
