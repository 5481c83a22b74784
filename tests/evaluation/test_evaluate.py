"""Evaluation metrics, the comparison report (rendered in headless Chromium), and its error cases."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.evaluation.evaluate import classification_metrics, overfitting
from letterbench.reporting.report import build_report
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import trained_model


def test_metrics_on_hand_made_predictions():
    names = ["a", "b", "c"]
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],  # a -> a
            [0.3, 0.6, 0.1],  # a -> b
            [0.1, 0.7, 0.2],  # b -> b
            [0.2, 0.5, 0.3],  # b -> b
            [0.1, 0.2, 0.7],  # c -> c
            [0.5, 0.1, 0.4],  # c -> a
        ]
    )
    result = classification_metrics(probs, labels, names)
    m = result["metrics"]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top3_accuracy"] == 1.0
    # precision: a 1/2, b 2/3, c 1/1; recall: a 1/2, b 1, c 1/2
    assert m["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # F1 = 2PR / (P + R): a 1/2, b 0.8, c 2/3; two images per class, so weighted = macro.
    assert m["f1_macro"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert m["f1_weighted"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    # ROC AUC = share of (positive, negative) pairs scored in the right order, ties 1/2.
    # a: positives 0.8, 0.3 vs 0.1 0.2 0.1 0.5 -> 4 + 3 of 8; b: 0.7, 0.5 vs 0.1 0.6 0.2 0.1 -> 7/8; c: 8/8.
    assert result["per_class"]["a"]["roc_auc"] == pytest.approx(7 / 8)
    assert m["roc_auc_macro"] == pytest.approx((7 / 8 + 7 / 8 + 1) / 3)
    # micro: 6 positive scores (0.8 0.3 0.7 0.5 0.7 0.4) against 12 negative ones
    # (0.1 x6, 0.2 x3, 0.3, 0.5, 0.6): 12 + 9.5 + 12 + 10.5 + 12 + 10 = 66 of 72 pairs.
    assert m["roc_auc_micro"] == pytest.approx(66 / 72)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result["most_confused"] == [
        {"true": "a", "predicted": "b", "count": 1},
        {"true": "c", "predicted": "a", "count": 1},
    ]
    assert result["per_class"]["b"]["recall"] == 1.0 and result["per_class"]["c"]["support"] == 2


def test_overfitting_numbers():
    history = [
        {
            "phase": "p",
            "global_epoch": 1,
            "train_acc": 0.5,
            "val_acc": 0.5,
            "train_loss": 1.0,
            "val_loss": 1.0,
        },
        {
            "phase": "p",
            "global_epoch": 2,
            "train_acc": 0.9,
            "val_acc": 0.8,
            "train_loss": 0.3,
            "val_loss": 0.5,
        },
        {
            "phase": "p",
            "global_epoch": 3,
            "train_acc": 0.99,
            "val_acc": 0.79,
            "train_loss": 0.05,
            "val_loss": 0.7,
        },
    ]
    from letterbench.runs.records import EpochRecord

    result = overfitting([EpochRecord.model_construct(**h) for h in history])
    assert result["at_best"]["epoch"] == 2 and result["at_best"]["accuracy_gap"] == pytest.approx(0.1)
    assert result["at_end"]["epoch"] == 3 and result["at_end"]["loss_gap"] == pytest.approx(0.65)


def test_evaluate_writes_metrics_predictions_and_plots(two_runs):
    result = json.loads((two_runs / "xc" / "metrics.json").read_text())
    assert result["schema"] == "letterbench-metrics-3"
    assert [s["label"] for s in result["stages"]] == ["Xception", "Xception fine-tune"]
    for stage in result["stages"]:
        with np.load(two_runs / "xc" / stage["predictions"]) as npz:
            assert npz["probs"].shape == (78, 26) and np.allclose(npz["probs"].sum(1), 1, atol=1e-4)
        assert set(stage["metrics"]) >= {
            "accuracy",
            "top3_accuracy",
            "precision_macro",
            "recall_macro",
            "f1_macro",
            "roc_auc_micro",
            "roc_auc_macro",
        }
        assert len(stage["confusion_matrix"]) == 26 and "at_best" in stage["overfitting"]
    cost = result["cost"]
    assert cost["parameters"] == 21_994_050 and cost["flops_per_image"] > 1e9
    assert cost["inference_images_per_s"] > 0 and cost["latency_ms"] > 0 and cost["peak_memory_bytes"] > 0
    plots = RunDir(two_runs / "xc").plots()
    assert set(plots) == {"curves", "confusion", "roc", "errors"}
    for path in plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ensemble_of_identical_runs_equals_the_single_run(two_runs, tmp_path):
    shutil.copytree(two_runs / "r10", tmp_path / "copy")
    summary = build_report([two_runs / "r10", tmp_path / "copy"], tmp_path / "rep")
    rows = {row["key"]: row["values"] for row in summary["rows"]}
    assert summary["columns"][-1] == "Ensemble"
    for key in ("accuracy", "top3_accuracy", "f1_macro"):
        assert rows[key][-1] == pytest.approx(rows[key][0], abs=1e-6), key
    # the ensemble averages calibrated probabilities, as predict and serve do: its log loss is the
    # single run's after dividing by its temperature, not the plain one the model's column shows
    from letterbench.evaluation.inference import log_loss, recalibrated, run_temperature
    from letterbench.runs.rundir import RunDir

    run = RunDir(two_runs / "r10")
    probs, labels = run.load_predictions(run.phases()[-1])
    calibrated = log_loss(recalibrated(probs, run_temperature(run)), labels)
    assert run_temperature(run) != 1.0 and calibrated != pytest.approx(rows["log_loss"][0], abs=1e-4)
    assert rows["log_loss"][-1] == pytest.approx(calibrated, abs=1e-6)


def test_evaluate_refuses_unfinished_runs(two_runs, tmp_path, capsys):
    shutil.copytree(two_runs / "r10", tmp_path / "r")
    (tmp_path / "r" / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    assert main(["evaluate", str(tmp_path / "r")]) == 1
    assert "has not finished" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 1


def test_speed_figures_carry_the_spread_of_their_samples(two_runs):
    cost = json.loads((two_runs / "r10" / "metrics.json").read_text())["cost"]
    for key in ("train_images_per_s", "inference_images_per_s", "latency_ms"):
        q1, q3 = cost[f"{key}_spread"]
        assert q1 <= cost[key] <= q3, key
    assert cost["latency_ms_spread"][0] > 0


def test_evaluation_records_the_temperature_and_predict_uses_it(two_runs, tmp_path, capsys):
    from letterbench.evaluation.inference import run_temperature
    from letterbench.runs.rundir import RunDir

    run = RunDir(two_runs / "r10")
    calibration = run.read_metrics().stages[-1].calibration
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
    # TTA is the mean over the five views of each view's calibrated softmax, worked out here by hand
    import torch

    from letterbench.images.letters import prepare_file
    from letterbench.images.transforms import Preprocess, test_time_views

    model, names = trained_model(run)
    image = torch.from_numpy(prepare_file(tmp_path / "l.png").image[None])
    prepare = Preprocess(model.spec, "cpu", channels_last=False)
    with torch.no_grad():
        views = [model.float()(prepare(image, theta[None])) for theta in test_time_views()]
    mean = torch.stack([torch.softmax(v / calibration["temperature"], 1) for v in views]).mean(0)[0]
    expected = [(names[i], float(mean[i])) for i in mean.argsort(descending=True)[:3]]
    assert [t["letter"] for t in tta] == [c for c, _ in expected] and tta != answer["top3"]
    assert [t["probability"] for t in tta] == pytest.approx([p for _, p in expected], abs=1e-4)
    # without TTA: the one view's softmax of logits / T
    with torch.no_grad():
        plain = torch.softmax(model.float()(prepare(image)) / calibration["temperature"], 1)[0]
    assert [t["probability"] for t in answer["top3"]] == pytest.approx(
        plain.sort(descending=True).values[:3].tolist(), abs=1e-4
    )
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--run", str(run.path), "--unsure-below", "2", str(tmp_path / "l.png")])
    assert exited.value.code != 0
    assert "--unsure-below" in capsys.readouterr().err


def test_the_final_test_pass_is_the_inference_speed_measurement():
    """Batches timed in the test pass are the throughput samples (the first, a warm-up, left
    out); fewer than five are topped up by batches run for the measurement alone."""
    from letterbench.core.runtime import Load
    from letterbench.evaluation.inference import inference_speed
    from letterbench.models import create_model

    model, runtime = create_model("timm:test_resnet"), Runtime.create("cpu")
    load = Load(0.25)
    found = inference_speed(model, runtime, batch=8, measured=([9.0, 0.5, 0.25, 0.5, 1.0, 0.5], load))
    assert found["inference_images_per_s"] == 16.0  # 8 images / 0.5 s, the median of the five after the first
    assert found["inference_images_per_s_spread"] == [16.0, 16.0] and found["load"] == load.to_dict()
    topped = inference_speed(model, runtime, batch=8, measured=([9.0, 4.0], load))
    assert (
        topped["inference_images_per_s_spread"][1] > 2.0
    )  # real batches of this tiny net join the 2 img/s one
