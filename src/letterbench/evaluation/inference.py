"""Inference: a trained network's answers to letters, uint8 (N, 28, 28), on one path for all.

Evaluation's test pass, calibration's validation logits, the ensemble choice, the real-world
reading, export's parity check, ``predict`` and ``serve`` all score images here:

- ``predict_logits``: batches through ``Runtime.preprocess`` and the model (replayed as a CUDA
  graph, ``GraphedForward``, where a GPU scores many full batches);
- ``predict_probabilities``: calibrated probabilities, softmax(logits / T), and with test-time
  views the mean over the views of each view's calibrated probabilities;
- ``run_temperature``: the temperature a run's evaluation fitted, ``DEFAULT_TEMPERATURE`` where it
  has none (fitting it is ``calibration``'s);
- ``mean_probabilities``: the one mean of several models' (or seeds') probabilities;
- ``inference_speed``: throughput and latency, measured on ``predict_logits``'s own path;
- ``Scorer`` / ``network_scorers`` / ``torch_scorers``: one network (in memory, or a run's) behind
  the interface predict and serve use (an exported file's scorer is ``apps.exported``'s).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from letterbench.core.cuda_graphs import capture
from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.evaluation.stats import spread
from letterbench.images.transforms import Preprocess
from letterbench.models import LetterModel
from letterbench.recipes import trained_on
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import RunKey
from letterbench.runs.trained import trained_model

DEFAULT_TEMPERATURE = 1.0  # a run never evaluated: its probabilities are the plain softmax
GRAPH_MIN_BATCHES = 4  # fewer full batches than this are scored eagerly: a capture would cost more


# ---------------------------------------------------------------- probabilities


def softmax(logits: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """Calibrated probabilities: softmax(logits / T), float32."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float32) / temperature, dim=1).numpy()


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log of the probability given to the true class (clipped at 1e-12)."""
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def recalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Saved plain probabilities, softmax(logits), as softmax(logits / T): the logits are their
    logarithm up to a constant per image, which softmax ignores."""
    if temperature == DEFAULT_TEMPERATURE:
        return probs
    return softmax(np.log(np.clip(probs, 1e-30, None)), temperature)


def mean_probabilities(members: list[np.ndarray]) -> np.ndarray:
    """The mean of several models' (or seeds') probabilities for the same images: how letterbench
    averages seeds and ensembles, everywhere."""
    return members[0] if len(members) == 1 else np.mean(members, axis=0)


def checked_temperature(value: object, where: str, fix: str) -> float:
    """A recorded temperature as a float: finite and positive (softmax(logits / T) means nothing
    else), or one ``LetterbenchError`` naming where it was read and how to make it again."""
    try:
        t = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and 1e-3 <= t <= 1e3):
        raise LetterbenchError(f"{where}: damaged temperature {value!r} (a number from 0.001 to 1000); {fix}")
    return t


def fitted_temperature(run: RunDir) -> float | None:
    """The temperature evaluation fitted for the run's final model, or None (not evaluated); a
    damaged one is refused (``checked_temperature``)."""
    stage = run.final_stage()  # the phase load_trained_model loads
    if stage is None or stage.calibration is None or "temperature" not in stage.calibration:
        return None
    fix = f"run `letterbench evaluate {run.path}` again"
    return checked_temperature(stage.temperature, str(run.metrics_file), fix)


def run_temperature(run: RunDir) -> float:
    """The temperature the run's answers are divided by: the fitted one, else the default."""
    fitted = fitted_temperature(run)
    return DEFAULT_TEMPERATURE if fitted is None else fitted


def answering_temperature(run: RunDir) -> float:
    """``run_temperature`` for a run about to answer a user (predict, serve, export), with one
    warning where there is no evaluation to calibrate it: then the probabilities are the model's
    own, and its accuracy is unknown."""
    fitted = fitted_temperature(run)
    if fitted is None:
        why = "its metrics.json is damaged" if run.metrics_file.exists() else "it was never evaluated"
        warnings.warn(
            f"{run.path}: {why}, so its answers are uncalibrated and its accuracy unknown; "
            f"run `letterbench evaluate {run.path}`",
            stacklevel=2,
        )
        return DEFAULT_TEMPERATURE
    return fitted


# ---------------------------------------------------------------- the forward pass


@torch.no_grad()
def predict_logits(
    model: LetterModel,
    images: torch.Tensor,
    runtime: Runtime,
    batch_size: int = 512,
    timings: list[float] | None = None,
    theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (N, C), float32 on the CPU, for uint8 images (N, 28, 28), each seen through the
    affine view ``theta`` (2, 3) where given. ``timings`` receives the seconds of each full batch,
    results on the CPU (the test pass doubles as the inference-speed measurement)."""
    if len(images) == 0:
        raise LetterbenchError("no images to predict")
    runtime.prepare_model(model).eval()
    prepare = Preprocess.on(runtime, model.spec)
    graphed = None
    if (
        theta is None
        and timings is None
        and runtime.cuda_graphs
        and len(images) >= GRAPH_MIN_BATCHES * batch_size
    ):
        graphed = graphed_forward(model, prepare, runtime, images[:batch_size].to(runtime.device))
    out = []
    for start in range(0, len(images), batch_size):
        began = time.perf_counter()
        chunk = images[start : start + batch_size].to(runtime.device)
        if graphed is not None and len(chunk) == graphed.size:
            out.append(graphed(chunk).cpu())
            continue
        view = None if theta is None else theta.to(runtime.device).expand(len(chunk), 2, 3)
        with runtime.inference_autocast():
            out.append(model(prepare(chunk, view)).float().cpu())
        if timings is not None and len(chunk) == batch_size:
            timings.append(time.perf_counter() - began)
    return torch.cat(out)


def predict_probabilities(
    model: LetterModel,
    images: torch.Tensor,
    runtime: Runtime,
    temperature: float = DEFAULT_TEMPERATURE,
    views: torch.Tensor | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Calibrated probabilities (N, C): softmax(logits / ``temperature``); with ``views``
    (V, 2, 3), affine views of every image (test-time augmentation), the mean over the views of
    each view's calibrated probabilities."""
    if views is None:
        return softmax(predict_logits(model, images, runtime, batch_size).numpy(), temperature)
    per_view = [
        softmax(predict_logits(model, images, runtime, batch_size, theta=t).numpy(), temperature)
        for t in views
    ]
    return np.mean(per_view, axis=0, dtype=np.float64).astype(np.float32)


class GraphedForward:
    """``forward`` (uint8 images -> float logits, no gradients) captured as a CUDA graph for
    batches the size of ``example``. Call it with a batch of that size on the device: the logits,
    a fresh tensor. An eval-mode model changes no state, so nothing needs restoring."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor):
        self.device = example.device
        self.size = len(example)
        self.static = example.clone()
        with torch.no_grad():
            self.graph, self.out = capture(lambda: forward(self.static), self.device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.cuda.device(self.device):
            self.static.copy_(images, non_blocking=True)
            self.graph.replay()
            return self.out.clone()


def graphed_forward(model, prepare, runtime: Runtime, example: torch.Tensor) -> GraphedForward | None:
    """The eval-mode forward pass for batches like ``example``, as a CUDA graph; None (with a
    warning: the images are then scored eagerly, with the same results) where capture fails."""

    def forward(images: torch.Tensor) -> torch.Tensor:
        with runtime.autocast(cache=False):
            return model(prepare(images)).float()

    try:
        return GraphedForward(forward, example)
    except RuntimeError as exc:
        print(
            f"letterbench: warning: no CUDA graph for {type(model).__name__} ({exc}); scoring eagerly",
            file=sys.stderr,
        )
        return None


# ---------------------------------------------------------------- speed, on the same path


@torch.no_grad()
def inference_speed(
    model: LetterModel,
    runtime: Runtime,
    batch: int = 256,
    min_seconds: float = 2.0,
    measured: tuple[list[float], Any] | None = None,
) -> dict:
    """Throughput (images/s) at ``batch`` and single-image latency (ms), each as the median of
    repeated samples with their interquartile range (a noisy figure is visibly noisy), and the CPU
    load other processes put on the machine meanwhile. Every sample is a ``predict_logits`` call,
    the path evaluate and predict take. ``measured``: the seconds of each full batch of a test
    pass at ``batch`` just run, and the load measured over it: its batches after the first (a
    warm-up) are throughput samples, topped up to five by batches run for it alone."""
    images = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8)

    def run(x: torch.Tensor) -> None:
        predict_logits(model, x, runtime, batch_size=batch)

    reused = [batch / t for t in measured[0][1:]] if measured is not None else []  # the first warms up
    if not reused:
        run(images)  # warm-up
    with runtime.measure_load() as load:
        rates, start = list(reused), time.perf_counter()
        # a test pass's batches count; at least 5 samples, and 2 s of them where none were given
        while len(rates) < 50 and (
            len(rates) < 5 or (not reused and time.perf_counter() - start < min_seconds)
        ):
            t = time.perf_counter()
            run(images)
            rates.append(batch / (time.perf_counter() - t))
        latency = _latency(run, images)
    if reused:
        load = measured[1]  # the test pass's: most of the samples, if not all, come from it
    rate = spread(rates)
    return {
        "inference_images_per_s": rate["median"],
        "inference_images_per_s_spread": [rate["q1"], rate["q3"]],
        **latency,
        "load": load.to_dict(),
    }


def _latency(run, images: torch.Tensor) -> dict[str, Any]:
    """One image at a time, 15 times after a warm-up: the median and quartiles, in ms."""
    run(images[:1])
    latencies = []
    for _ in range(15):
        t = time.perf_counter()
        run(images[:1])
        latencies.append((time.perf_counter() - t) * 1000)
    latency = spread(latencies)
    return {"latency_ms": latency["median"], "latency_ms_spread": [latency["q1"], latency["q3"]]}


# ---------------------------------------------------------------- scorers


@dataclass
class Scorer:
    """One network, whatever runs it (PyTorch here, ONNX Runtime or TorchScript for an exported
    file): uint8 images (N, 28, 28) as ``letters`` prepares them -> calibrated probabilities
    (N, C). ``name`` names it (a run's ``RunKey``, or a file's model), ``model`` is the model it
    runs (a model's seeds are averaged); ``temperature`` is what its logits are divided by."""

    name: str
    model: str
    class_names: list[str]
    temperature: float
    probabilities: Callable[[np.ndarray], np.ndarray]
    trained_on: str | None = None  # what it learned from (``trained_on``); None where not recorded
    not_useful: str | None = None  # why its measured test accuracy makes it no use yet (``stats.not_useful``)


def measured_usefulness(run: RunDir) -> str | None:
    """Why the run's final model is not yet useful, by its evaluation; None where it is useful or
    was never evaluated."""
    from letterbench.evaluation.stats import not_useful

    stage = run.final_stage()
    if stage is None:
        return None
    return not_useful(stage.metrics.accuracy, stage.metrics.test_images, len(stage.per_class or {}) or None)


def network_scorers(
    networks: list[tuple[LetterModel, dict[str, Any]]], runtime: Runtime, views: torch.Tensor | None = None
) -> list[Scorer]:
    """A scorer per network in memory, on ``predict_probabilities``'s path (averaging the test-time
    ``views`` where given); each network comes with the Scorer's other fields: ``name``, ``model``,
    ``class_names``, and where known ``temperature`` (default ``DEFAULT_TEMPERATURE``),
    ``trained_on`` and ``not_useful``."""
    scorers = []
    for model, fields in networks:
        t = fields.get("temperature", DEFAULT_TEMPERATURE)

        def probabilities(images: np.ndarray, model=model, t=t) -> np.ndarray:
            return predict_probabilities(model, torch.from_numpy(images), runtime, t, views)

        scorers.append(Scorer(**{**fields, "temperature": t, "probabilities": probabilities}))
    return scorers


def torch_scorers(runs: dict[RunKey, RunDir], runtime: Runtime, tta: bool = False) -> list[Scorer]:
    """A scorer per run: its final model, with the temperature its evaluation fitted (the default
    where it was not evaluated), averaging test-time views where ``tta``."""
    from letterbench.images.transforms import test_time_views

    networks = []
    for key, run in runs.items():
        model, class_names = trained_model(run)
        fields = {
            "name": str(key),
            "model": key.model,
            "class_names": class_names,
            "temperature": answering_temperature(run),
            "trained_on": trained_on(run.read_config().recipe),
            "not_useful": measured_usefulness(run),
        }
        networks.append((model, fields))
    return network_scorers(networks, runtime, test_time_views() if tta else None)
