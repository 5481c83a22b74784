"""The comparison report across evaluated runs: one table shaped like the study's, a ranking
computed from the numbers, measured pros and cons, an ensemble, and every plot.

``build_report`` reads the runs, builds one ``ReportData`` (columns, rows, ranking, pros/cons,
warnings), turns it into sections, and writes ``report.html`` (self-contained: plots embedded,
opens offline, fits a phone), ``report.md`` (plots beside it under ``img/``), ``summary.json``
and ``summary.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_write_json, atomic_write_text, ensure_folder
from letterbench.reporting import document as doc
from letterbench.reporting.columns import RunResult
from letterbench.reporting.page import comparison_table, sections
from letterbench.reporting.plots import plot_accuracy_against_cost, plot_time_budget
from letterbench.reporting.report_data import ReportData, load_results, report_data, time_budgets
from letterbench.runs.records import EnsembleChoice
from letterbench.runs.rundir import RunDir

TITLE = "letterbench comparison report"


def report_page(out: Path) -> Path:
    """The report's HTML page in its output folder."""
    return Path(out) / "report.html"


# ---------------------------------------------------------------- writing


def _copy_plots(results: list[RunResult], img: Path) -> dict[str, dict[str, Path]]:
    plots: dict[str, dict[str, Path]] = {}
    for i, r in enumerate(results):
        plots[r.name] = {}
        for kind, source in r.run.plots().items():
            target = img / f"{i + 1}-{r.run.path.name}-{source.name}"
            shutil.copyfile(source, target)
            plots[r.name][kind] = target
    return plots


def _summary(data: ReportData) -> dict[str, Any]:
    return {
        "columns": [c.label for c in data.columns],
        "rows": [row.summary() for row in data.rows()],
        "ranking": data.ranking.summary(),
        "pros_cons": data.pros_cons,
        "warnings": data.warnings,
        "comparisons": [c.summary() for c in data.comparisons],
        "runs": [
            {
                "dir": str(r.run.path),
                "name": r.name,
                **{k: getattr(r.info, k) for k in ("model", "label", "seed", "pretrained", "notes")},
                "recipe": r.info.recipe.name,
                "data": {k: v for k, v in r.info.data.to_json().items() if k != "class_names"},
            }
            for r in data.results
        ],
        "most_confused": {c.label: [p.to_json() for p in c.stage.most_confused[:5]] for c in data.columns},
        "ensemble": {"members": data.ensemble.members, "chosen": data.ensemble.stage.chosen}
        if data.ensemble
        else None,
    }


REPORT_MARK = ".letterbench-report"  # in a report folder: letterbench writes (and rewrites) it


def _check_report_folder(out: Path) -> None:
    """The report goes into a new or empty folder, or over a report letterbench wrote there before;
    never over somebody else's files."""
    for part in (out, *out.parents):
        if part.exists() and not part.is_dir():
            raise LetterbenchError(
                f"report folder {out}: {part} is a file, not a folder; choose another --out"
            )
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        ours = (out / REPORT_MARK).is_file() or "ranking" in json.loads((out / "summary.json").read_text())
    except (OSError, ValueError, TypeError):
        ours = False
    if not ours:
        raise LetterbenchError(
            f"{out} holds files that are not a letterbench report; choose another --out (nothing was written)"
        )


def check_report_inputs(run_dirs: list[Path], out: Path) -> list[RunDir]:
    """The runs, once the output folder and every run are known to be fit for a report."""
    _check_report_folder(Path(out))
    return [r.run for r in load_results(run_dirs)]


def build_report(run_dirs: list[Path], out: Path, ensemble: EnsembleChoice | None = None) -> dict[str, Any]:
    """Compare evaluated runs; write the report files into ``out``; return the summary (with the
    terminal table under ``table``). ``ensemble``: the models the ensemble averages (else all)."""
    out = Path(out)
    _check_report_folder(out)
    data = report_data(load_results(run_dirs), ensemble)
    img = out / "img"
    ensure_folder(img, "report folder")
    # marked as letterbench's before anything else is written: a report cut short (a full disk)
    # is one the same command may write over, not somebody else's files
    atomic_write_text(out / REPORT_MARK, "letterbench report\n")
    budget_plot = img / "time-budget.png"
    bars = time_budgets(data.results)
    if bars:
        plot_time_budget(bars, budget_plot)
    comparison_plot = img / "comparison.png"
    points = [(c.label, c.cost.flops_per_image, c.accuracy, False) for c in data.finals]
    if data.ensemble:
        e = data.ensemble
        points.append((e.label, e.cost.flops_per_image, e.accuracy, True))
    classes = data.results[0].metrics.class_names
    plot_accuracy_against_cost(points, comparison_plot, chance=1 / len(classes) if classes else None)
    page = sections(data, _copy_plots(data.results, img), comparison_plot, budget_plot if bars else None)
    summary = _summary(data)
    atomic_write_json(out / "summary.json", summary)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", *summary["columns"]])
    for row in summary["rows"]:
        writer.writerow([row["key"], *["" if v is None else v for v in row["values"]]])
    atomic_write_text(out / "summary.csv", buffer.getvalue())
    atomic_write_text(out / "report.md", doc.to_markdown(TITLE, page, out))
    atomic_write_text(report_page(out), doc.to_html(TITLE, page))
    return {**summary, "table": comparison_table(data)}
