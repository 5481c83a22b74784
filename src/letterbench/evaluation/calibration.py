"""Honest confidence: temperature scaling (Guo et al., 2017) fitted on a run's validation split.

A network trained with cross-entropy is usually over- or under-confident; dividing its logits by
one temperature T, chosen to minimise the negative log-likelihood of the validation images,
fixes most of that without changing any answer (the order of the classes is kept). Evaluation
fits T and records it with the expected calibration error before and after; ``predict`` and
``serve`` divide by it and mark an answer as unsure below a probability.
"""

from __future__ import annotations

import numpy as np
import torch

from letterbench.evaluation.inference import DEFAULT_TEMPERATURE, softmax
from letterbench.evaluation.thresholds import UNSURE_BELOW

TEMPERATURE_RANGE = (0.05, 20.0)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(logits / T)."""
    logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64) / temperature, dim=1)
    return float(-logp[torch.arange(len(labels)), torch.as_tensor(labels, dtype=torch.long)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in ``TEMPERATURE_RANGE`` minimising the NLL of ``labels`` (searched on log T)."""
    from scipy.optimize import minimize_scalar  # only evaluation fits

    low, high = np.log(TEMPERATURE_RANGE)
    best = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(low, high), method="bounded"
    )
    return float(np.exp(best.x))


def calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the image-weighted mean gap between the top-1 confidence and
    the accuracy, over ``bins`` equal-width confidence bins."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    right = (predicted == labels).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(right[inside].mean() - confidence[inside].mean())
    return float(total / len(labels))


def calibrate(val_logits: np.ndarray, val_labels: np.ndarray) -> dict[str, float]:
    """The temperature fitted on the validation split, with what it did there: NLL and expected
    calibration error before and after, and the share of images that would be marked unsure."""
    t = fit_temperature(val_logits, val_labels)
    after = softmax(val_logits, t)
    return {
        "temperature": t,
        "val_nll_before": nll(val_logits, val_labels),
        "val_nll_after": nll(val_logits, val_labels, t),
        "val_ece_before": calibration_error(softmax(val_logits), val_labels),
        "val_ece_after": calibration_error(after, val_labels),
        "unsure_below": UNSURE_BELOW,
        "val_unsure_share": float((after.max(1) < UNSURE_BELOW).mean()),
    }
