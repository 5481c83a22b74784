"""Honest confidence: temperature scaling fitted on validation images, the unsure mark, TTA."""

from __future__ import annotations

import numpy as np
import pytest

from letterbench.evaluation.calibration import calibrate, calibration_error, fit_temperature, nll
from letterbench.evaluation.inference import softmax


def _overconfident(n: int = 4000, classes: int = 26, true_t: float = 2.5, seed: int = 0):
    """Logits whose labels are drawn from softmax(z), shown as z * true_t: T = true_t fixes them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, classes))
    z[np.arange(n), rng.integers(0, classes, n)] += 3.0
    p = softmax(z)
    labels = np.array([rng.choice(classes, p=row / row.sum()) for row in p.astype(np.float64)])
    return (z * true_t).astype(np.float32), labels


def test_temperature_scaling_recovers_the_temperature_and_lowers_the_error():
    logits, labels = _overconfident()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    assert nll(logits, labels, t) < nll(logits, labels)
    before = calibration_error(softmax(logits), labels)
    after = calibration_error(softmax(logits, t), labels)
    assert after < 0.4 * before
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()  # no answer changes
    record = calibrate(logits, labels)
    assert record["val_ece_after"] < record["val_ece_before"] and 0 < record["val_unsure_share"] < 1


def test_calibration_error_of_hand_made_predictions():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin 0.9: accuracy 0.5 vs 0.9 (2 images); bin 0.6: accuracy 1.0 vs 0.6 (2 images)
    assert calibration_error(probs, labels) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
