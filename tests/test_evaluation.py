"""Evaluation metrics, the comparison report (rendered in headless Chromium), and its error cases."""

from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from letterbench.cli.main import main
from letterbench.core.errors import LetterbenchError
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


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny trained and evaluated runs: a one-phase ResNet-10 and a two-phase Xception."""
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("eval")
    data = write_emnist(root / "emnist", synthetic_letters(8, seed=1), synthetic_letters(3, seed=2))
    common = ["--quiet", "--data-dir", str(data), "--train-per-class", "8", "--set", "val_fraction=0.25"]
    assert (
        main(["train", "--model", "timm:resnet10t", "--epochs", "3", "--out", str(root / "r10"), *common])
        == 0
    )
    assert (
        main(
            [
                "train",
                "--model",
                "xception",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--pretrained",
                "false",
                "--out",
                str(root / "xc"),
                *common,
            ]
        )
        == 0
    )
    for run in ("r10", "xc"):
        assert main(["evaluate", str(root / run)]) == 0
    return root


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


class _Collector(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "link", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.images, self.ids = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_report_has_every_section_embedded_images_and_valid_html(two_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(two_runs / "r10"), str(two_runs / "xc"), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>") and not parser.errors and not parser.stack
    assert {"comparison", "ranking", "pros-cons", "confused", "time"} <= set(parser.ids)
    # accuracy against cost, where the time went, and each run's 4 plots
    assert len(parser.images) == 2 + 4 * 2 and all(
        src.startswith("data:image/png;base64,") for src in parser.images
    )
    # seconds of training on a few images each: not yet useful, and the page says so first
    best = max(
        json.loads((two_runs / r / "metrics.json").read_text())["stages"][-1]["metrics"]["accuracy"]
        for r in ("r10", "xc")
    )
    assert best < 0.5 and "Recommendation:" not in page
    # first the answer, then every model at a glance, then the caveats in one box
    assert (
        page.index("Not yet useful:")
        < page.index('class="glance"')
        < page.index("Read these numbers with care:")
    )
    assert page.count('class="note caveats"') == 1 and "Note:" not in page
    for text in (
        "These models are not yet useful, so none is recommended",
        "Ensemble",
        "Xception fine-tune",
        "timm:resnet10t",
        "Most accurate",
        "Cheapest per point of accuracy",
        "Smallest train − validation gap",
        "FLOPs per image",
        "Peak memory",
        "stratified subset",
        "trained the whole network",
    ):
        assert text in page, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["columns"] == ["timm:resnet10t", "Xception", "Xception fine-tune", "Ensemble"]
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert (
        csv_lines[0] == "metric,timm:resnet10t,Xception,Xception fine-tune,Ensemble" and len(csv_lines) > 15
    )
    md = (out / "report.md").read_text()
    assert "| Accuracy (95% interval) |" in md and all(
        (out / "img" / p).exists() for p in re.findall(r"\]\(img/([^)]+)\)", md)
    )


# A copy of the page with a probe that, once everything has loaded, measures what a reader sees
# without scrolling sideways, and reports it to a wrapper page that shows the copy in a frame of
# the given width (a headless window cannot be made as narrow as a phone).
PROBE = """<script>window.addEventListener('load',()=>{
const vw=window.innerWidth, imgs=[...document.images];
const seen=(cell)=>{const r=cell.getBoundingClientRect(), box=cell.closest('.scroll').getBoundingClientRect();
  return r.width>0 && r.left>=0 && r.right<=Math.min(vw,box.right)+0.5;};
const rows=[...document.querySelectorAll('table.glance tbody tr')];
const heads=[...document.querySelectorAll('table.glance th')].map(h=>h.textContent);
const col=(name)=>heads.indexOf(name);
const full=rows.filter(r=>['accuracy','top-3','FLOPs/image','training'].every(n=>seen(r.cells[col(n)]))).length;
const acc=rows.filter(r=>seen(r.cells[col('accuracy')])).length;
const top=(q)=>document.querySelector(q).getBoundingClientRect().top;
const order=top('p.note, p.recommendation')<top('table.glance') && top('table.glance')<top('.caveats') ? 1 : 0;
const tables=[...document.querySelectorAll('table')].map(t=>t.scrollWidth);
parent.postMessage('viewport:'+vw+' rows:'+rows.length+' full:'+full+' accuracy:'+acc+' order:'+order
 +' glance_bottom:'+Math.round(document.querySelector('table.glance').getBoundingClientRect().bottom)
 +' images:'+imgs.length+' broken:'+imgs.filter(i=>!i.complete||i.naturalWidth===0).length
 +' width:'+document.documentElement.scrollWidth+' table:'+Math.max(...tables),'*');});</script></body>"""


def _seen_in_chromium(page: Path, width: int, tmp_path: Path) -> dict[str, int]:
    probe = page.parent / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    wrapper = page.parent / f"frame-{width}.html"
    wrapper.write_text(
        "<!DOCTYPE html><html><head><title>waiting</title></head><body style='margin:0'>"
        "<script>window.addEventListener('message',e=>{document.title=e.data;});</script>"
        f"<iframe src='probe.html' style='width:{width}px;height:844px;border:0'></iframe></body></html>"
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width + 100},900"]
    flags += ["--virtual-time-budget=10000", "--dump-dom", wrapper.as_uri()]
    result = subprocess.run(["chromium", *flags], capture_output=True, text=True, timeout=120)
    found = re.search(r"<title>(viewport:[^<]*)</title>", result.stdout)
    assert found, result.stdout[-500:] + result.stderr[-1000:]
    return {k: int(v) for k, v in (pair.split(":") for pair in found.group(1).split())}


@pytest.mark.parametrize("width", [1280, 390])
def test_report_reads_on_a_desktop_and_a_phone_in_headless_chromium(two_runs, tmp_path, width):
    """At 1280 px every model's accuracy, top-3, FLOPs and training time show without scrolling
    sideways, in the first screen; at 390 px (a phone) every model's accuracy does. The answer
    comes first, then the models, then the caveats; no image is missing; the page is no wider
    than the screen (the full comparison scrolls in its own box)."""
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    out = tmp_path / "report"
    build_report([two_runs / "r10", two_runs / "xc"], out)
    seen = _seen_in_chromium(out / "report.html", width, tmp_path)
    assert seen["viewport"] == width and seen["rows"] == 4, seen  # 3 columns and the ensemble
    assert (seen["images"], seen["broken"]) == (10, 0), seen
    assert seen["order"] == 1 and seen["width"] <= width, seen
    assert seen["accuracy"] == 4, seen
    if width >= 1280:
        assert seen["full"] == 4 and seen["glance_bottom"] <= 844, seen
    else:
        assert seen["table"] > width, seen  # the full comparison is wider, and scrolls in its box


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


def test_report_errors_are_clear(two_runs, tmp_path, capsys):
    shutil.copytree(two_runs / "r10", tmp_path / "nopred")
    (tmp_path / "nopred" / "metrics.json").unlink()
    assert (
        main(["report", str(two_runs / "r10"), str(tmp_path / "nopred"), "--out", str(tmp_path / "o")]) == 1
    )
    assert "has no predictions" in capsys.readouterr().err
    shutil.copytree(two_runs / "r10", tmp_path / "other")
    metrics = json.loads((tmp_path / "other" / "metrics.json").read_text())
    metrics["class_names"] = [str(i) for i in range(10)]
    (tmp_path / "other" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(LetterbenchError, match="only runs on the same split"):
        build_report([two_runs / "r10", tmp_path / "other"], tmp_path / "o")
    shutil.copytree(two_runs / "r10", tmp_path / "gone")
    for f in (tmp_path / "gone").glob("predictions-*.npz"):
        f.unlink()
    with pytest.raises(LetterbenchError, match="predictions missing or unreadable"):
        build_report([two_runs / "r10", tmp_path / "gone"], tmp_path / "o")


def test_evaluate_refuses_unfinished_runs(two_runs, tmp_path, capsys):
    shutil.copytree(two_runs / "r10", tmp_path / "r")
    (tmp_path / "r" / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    assert main(["evaluate", str(tmp_path / "r")]) == 1
    assert "has not finished" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 1


def test_report_carries_intervals_and_paired_comparisons(two_runs, tmp_path):
    from scipy.stats import binomtest

    out = tmp_path / "report"
    assert main(["report", str(two_runs / "r10"), str(two_runs / "xc"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("accuracy", "top3_accuracy", "f1_macro"):
        row = next(r for r in summary["rows"] if r["key"] == key)
        for value, (lo, hi) in zip(row["values"], row["intervals"], strict=True):
            assert lo <= value <= hi
    # Every pair of ranked models and the ensemble, each with McNemar's p as worked out here.
    right = {}
    for run in ("r10", "xc"):
        metrics = json.loads((two_runs / run / "metrics.json").read_text())
        with np.load(two_runs / run / metrics["stages"][-1]["predictions"]) as npz:
            probs, labels = npz["probs"], npz["labels"]
        right[run] = probs.argmax(1) == labels
        assert metrics["stages"][-1]["intervals"]["resamples"] == 2000
    pairs = summary["comparisons"]
    assert len(pairs) == 3  # ResNet-10 / Xception, each / ensemble
    first = pairs[0]
    only_a, only_b = int((right["r10"] & ~right["xc"]).sum()), int((~right["r10"] & right["xc"]).sum())
    assert (first["only_a"], first["only_b"]) == (only_a, only_b)
    expected = 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b).pvalue
    assert first["p"] == pytest.approx(expected)
    assert first["difference"] == pytest.approx(right["r10"].mean() - right["xc"].mean())
    md = (out / "report.md").read_text()
    assert "## Paired comparisons" in md and "p = " in md and "Accuracy (95% interval)" in md


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


def test_a_report_cut_short_by_a_full_disk_is_finished_by_the_same_command(
    two_runs, tmp_path, capsys, monkeypatch
):
    import errno

    import letterbench.reporting.report as report

    out = tmp_path / "report"
    command = ["report", str(two_runs / "r10"), "--out", str(out)]
    plot = report.plot_accuracy_against_cost

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "img" / "comparison.png"))

    monkeypatch.setattr(report, "plot_accuracy_against_cost", full_disk)
    assert main(command) == 1
    assert capsys.readouterr().err.count("letterbench: error:") == 1
    assert out.is_dir() and not (out / "summary.json").exists()  # cut short
    monkeypatch.setattr(report, "plot_accuracy_against_cost", plot)  # space freed
    assert main(command) == 0
    assert (out / "report.html").is_file() and "ranking" in json.loads((out / "summary.json").read_text())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["report", str(two_runs / "r10"), "--out", str(tmp_path / "mine")]) == 1  # still refused


def test_report_links_work_for_a_run_folder_with_spaces(two_runs, tmp_path):
    from urllib.parse import unquote

    spaced = Path(shutil.copytree(two_runs / "r10", tmp_path / "my run"))
    out = tmp_path / "report"
    assert main(["report", str(spaced), "--out", str(out)]) == 0
    links = re.findall(r"\]\((img/[^)\s]+)\)", (out / "report.md").read_text())
    assert links and any("my%20run" in link for link in links)
    assert all((out / unquote(link)).is_file() for link in links)


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
