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
from letterbench.reporting.report import build_report


class _Collector(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "wbr", "link", "hr", "input"}

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
const comp=[...document.querySelectorAll('#comparison + .scroll tbody tr:not(.name)')];
const values=comp.flatMap(r=>[...r.cells].slice(1));
const names=comp.filter(r=>{const n=r.previousElementSibling, shown=(c)=>c&&c.getBoundingClientRect().height>0;
  return shown(r.cells[0])||(n&&n.classList.contains('name')&&shown(n)&&n.textContent===r.cells[0].textContent);});
parent.postMessage('viewport:'+vw+' rows:'+rows.length+' full:'+full+' accuracy:'+acc+' order:'+order
 +' glance_bottom:'+Math.round(document.querySelector('table.glance').getBoundingClientRect().bottom)
 +' images:'+imgs.length+' broken:'+imgs.filter(i=>!i.complete||i.naturalWidth===0).length
 +' width:'+document.documentElement.scrollWidth+' table:'+Math.max(...tables)
 +' comparison:'+values.length+' comparison_seen:'+values.filter(seen).length+' named:'+names.length,'*');});</script></body>"""


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
    """At 1280 px and at 390 px (a phone) every model's accuracy, top-3, FLOPs and training time
    show without scrolling sideways, at 1280 px in the first screen; so does every value of the
    full comparison, each under its metric's name. The answer comes first, then the models, then
    the caveats; no image is missing; the page is no wider than the screen."""
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
    assert seen["accuracy"] == 4 and seen["full"] == 4, seen
    assert seen["comparison"] > 4 * 15 and seen["comparison_seen"] == seen["comparison"], seen
    assert seen["named"] == seen["comparison"] // 4, seen  # each row's metric shown with its values
    if width >= 1280:
        assert seen["glance_bottom"] <= 844, seen


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


def test_a_report_of_models_not_yet_useful_stars_none_of_them(two_runs, tmp_path):
    """Seconds of training on a few images: every model reads at chance, so no figure of any
    of them is "best" (a ★ on every guess says nothing), and the legend says why there is none."""
    out = tmp_path / "report"
    summary = build_report([two_runs / "r10", two_runs / "xc"], out)
    assert summary["ranking"]["not_useful"]  # the fixture's models are at chance
    assert all(row["best"] == [] for row in summary["rows"]), [r["key"] for r in summary["rows"] if r["best"]]
    assert "★" not in summary["table"]
    md = (out / "report.md").read_text()
    assert "No ★ for a model not yet useful" in md
    assert "★" not in md.split("## Comparison")[1].split("\n\n")[1]  # the comparison table


def test_a_study_s_choice_of_one_model_is_named_as_that_model_not_an_ensemble(two_runs, tmp_path):
    """A study whose held-out images chose Xception alone: the column that scores what predict and
    serve answer is named after Xception, and nothing calls one model an ensemble."""
    from letterbench.runs.records import EnsembleChoice

    choice = EnsembleChoice(members=["xception"], images=26, held_out="training images no model trained on")
    out = tmp_path / "report"
    summary = build_report([two_runs / "r10", two_runs / "xc"], out, choice)
    assert summary["columns"] == [
        "timm:resnet10t",
        "Xception",
        "Xception fine-tune",
        "Xception fine-tune (chosen)",
    ]
    assert summary["ensemble"]["members"] == ["Xception fine-tune"]
    md = (out / "report.md").read_text()
    assert "Ensemble" not in md and "ensemble of" not in md.lower()
    assert "Xception fine-tune (chosen) = Xception fine-tune alone" in md
    assert "**The study's choice:** Xception fine-tune alone" in md
