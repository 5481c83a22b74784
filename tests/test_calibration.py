"""Honest confidence: temperature scaling fitted on validation images, the unsure mark, TTA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from letterbench.calibration import calibrate, calibration_error, fit_temperature, nll, softmax
from letterbench.cli import main


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


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("calib")
    data = write_emnist(root / "emnist", synthetic_letters(12, seed=1), synthetic_letters(3, seed=2))
    common = ["--quiet", "--data-dir", str(data), "--set", "val_fraction=0.25"]
    assert (
        main(["train", "--model", "timm:resnet10t", "--epochs", "3", "--out", str(root / "r"), *common]) == 0
    )
    assert main(["evaluate", str(root / "r"), "--no-plots"]) == 0
    return root


def test_evaluation_records_the_temperature_and_predict_uses_it(evaluated_run, tmp_path, capsys):
    from letterbench.predict import run_temperature
    from letterbench.rundir import RunDir

    run = RunDir(evaluated_run / "r")
    calibration = run.read_metrics()["stages"][-1]["calibration"]
    assert calibration["val_nll_after"] <= calibration["val_nll_before"] + 1e-9
    assert {"test_ece_before", "test_ece_after", "unsure_below"} <= set(calibration)
    assert run_temperature(run) == pytest.approx(calibration["temperature"])

    from PIL import Image

    img = np.full((64, 64), 255, np.uint8)
    img[10:54, 28:36] = 0
    Image.fromarray(img).save(tmp_path / "l.png")
    capsys.readouterr()
    assert main(["predict", "--run", str(run.path), "--json", str(tmp_path / "l.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["temperatures"]["timm:resnet10t"] == pytest.approx(calibration["temperature"])
    answer = out["predictions"][0]
    assert answer["unsure"] == (answer["top3"][0]["probability"] < 0.5)
    assert main(["predict", "--run", str(run.path), "--unsure-below", "1", str(tmp_path / "l.png")]) == 0
    assert "(unsure)" in capsys.readouterr().out
    assert main(["predict", "--run", str(run.path), "--tta", "--json", str(tmp_path / "l.png")]) == 0
    tta = json.loads(capsys.readouterr().out)["predictions"][0]["top3"]
    assert tta != answer["top3"] and abs(sum(t["probability"] for t in tta)) <= 1 + 1e-6
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--run", str(run.path), "--unsure-below", "2", str(tmp_path / "l.png")])
    assert exited.value.code != 0
    assert "--unsure-below" in capsys.readouterr().err
