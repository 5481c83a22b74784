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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_write_json, atomic_write_text, ensure_folder
from letterbench.reporting import document as doc
from letterbench.reporting.columns import Column, ColumnCost, RunResult
from letterbench.reporting.comparisons import (
    Comparison,
    attach_outcomes,
    comparison_section,
    paired_comparisons,
)
from letterbench.reporting.ensemble_column import ensemble_column
from letterbench.reporting.notes import report_notes
from letterbench.reporting.plots import plot_accuracy_against_cost, plot_time_budget
from letterbench.reporting.pros_cons import pros_cons
from letterbench.reporting.ranking import ROWS, Ranking, best_columns, ranking
from letterbench.reporting.real_world import attach_real_world
from letterbench.reporting.seeds import seed_groups, seed_stage
from letterbench.reporting.tables import format_table, human
from letterbench.runs.records import EnsembleChoice
from letterbench.runs.rundir import RunDir
from letterbench.training.recipes import describe_recipe, recipe_from_dict

TITLE = "letterbench comparison report"


def report_page(out: Path) -> Path:
    """The report's HTML page in its output folder."""
    return Path(out) / "report.html"


@dataclass
class ReportRow:
    """One row of the comparison: a figure of every column, its text, and the columns with a ★."""

    key: str
    label: str
    higher_is_better: bool
    values: list[float | None]
    text: list[str]
    best: set[int]
    intervals: list[list[float] | None]
    seed_std: list[float | None]

    def summary(self) -> dict[str, Any]:
        """As summary.json holds it."""
        fields = {k: getattr(self, k) for k in ("key", "label", "higher_is_better", "values", "intervals")}
        return {**fields, "seed_std": self.seed_std, "best": sorted(self.best)}


@dataclass
class ReportData:
    results: list[RunResult]
    columns: list[Column]  # every phase of every run, then the ensemble
    finals: list[Column]  # the last phase of each run: the models that are ranked
    ensemble: Column | None
    ranking: Ranking
    pros_cons: dict[str, dict[str, list[str]]]
    warnings: list[str]
    comparisons: list[Comparison]

    def rows(self) -> list[ReportRow]:
        return [
            ReportRow(
                row.key,
                row.label_for(self.columns),
                row.higher,
                [row.value(c) for c in self.columns],
                [row.text(c) for c in self.columns],
                best_columns(row, self.columns),
                [row.bounds(c) for c in self.columns],
                [(c.stage.seed_std or {}).get(row.key) for c in self.columns],
            )
            for row in ROWS
            if not row.key.startswith("real_world") or any(row.value(c) is not None for c in self.columns)
        ]


# ---------------------------------------------------------------- reading


def load_results(run_dirs: list[Path]) -> list[RunResult]:
    if not run_dirs:
        raise LetterbenchError("name at least one evaluated run directory")
    runs = [RunDir(d) for d in run_dirs]
    resolved = [run.path.resolve() for run in runs]
    twice = next((run for run, r in zip(runs, resolved, strict=True) if resolved.count(r) > 1), None)
    if twice is not None:
        raise LetterbenchError(f"{twice} is named twice; name each run directory once")
    results = [RunResult(run, run.read_metrics(), "") for run in runs]
    class_names = results[0].metrics.class_names
    for r in results[1:]:
        if r.metrics.class_names != class_names:
            raise LetterbenchError(
                f"{r.run} has classes {''.join(r.metrics.class_names)}, {results[0].run} has "
                f"{''.join(class_names)}; only runs on the same split can be compared"
            )
    for group in seed_groups(results):  # several seeds of a model: named by their seed
        for r in group:
            r.name = r.info.key._replace(seeded=len(group) > 1).label
    names = [r.name for r in results]
    for r in results:  # two runs of one model otherwise: tell them apart by their folders
        r.name = r.name if names.count(r.name) == 1 else f"{r.name} ({r.run.path})"
    return results


def _columns(results: list[RunResult]) -> list[Column]:
    """A column per phase of each model: of its run, or of its seeds' runs together (``seeds.py``)."""
    columns = []
    groups = seed_groups(results)
    names = [g[0].name if len(g) == 1 else g[0].info.label for g in groups]
    for group, name in zip(groups, names, strict=True):
        r, n = group[0], len(group)
        if names.count(name) > 1:  # two seed groups of one model (other recipes or data): their folders
            name = f"{name} ({r.run.path}, {n} seeds)"
        elapsed = np.zeros(n)
        stages = r.metrics.stages
        for i, stage in enumerate(stages):
            elapsed += [m.metrics.cost.train_time_s.get(stage.phase, 0.0) for m in group]
            label = name if i == 0 else f"{name} {stage.phase}"
            stage_cost = ColumnCost.of_stage(r.metrics.cost, stage.phase, float(elapsed.mean()))
            column = Column(
                label, r.run, stage, stage_cost, is_final=i == len(stages) - 1, model=r.info.model
            )
            column.seed_runs = [m.run for m in group[1:]]
            if n > 1:
                column.stage = seed_stage([m.metrics.stages[i] for m in group], column.predictions())
            columns.append(column)
    return columns


def report_data(results: list[RunResult], choice: EnsembleChoice | None = None) -> ReportData:
    columns = _columns(results)
    finals = [c for c in columns if c.is_final]
    class_names = results[0].metrics.class_names
    ensemble = ensemble_column(finals, class_names, choice) if len(finals) > 1 else None
    all_columns = columns + ([ensemble] if ensemble else [])
    attach_outcomes(all_columns)  # reads every run's saved test predictions
    attach_real_world(columns, ensemble, finals)  # and their readings of a --real-world folder
    return ReportData(
        results=results,
        columns=all_columns,
        finals=finals,
        ensemble=ensemble,
        ranking=ranking(finals, ensemble),
        pros_cons=pros_cons(finals),
        warnings=report_notes(results, columns),
        comparisons=paired_comparisons(finals, ensemble),
    )


# ---------------------------------------------------------------- sections


def _provenance(r: RunResult) -> list[tuple[str, str]]:
    info, data = r.info, r.info.data
    recipe = recipe_from_dict(info.recipe.to_json(), f"{r.run.path} recipe")
    device = info.device or {}
    return [
        ("run", info.dir),
        (
            "data",
            f"{data.split}: trained on {data.train_used:,} images, validated on {data.val_used:,}, "
            f"tested on {data.test_used:,}; {data.verdict}",
        ),
        ("weights", info.pretrained + ("; " + "; ".join(info.notes) if info.notes else "")),
        ("recipe", f"{recipe.name}: {describe_recipe(recipe)}"),
        ("seed", str(info.seed)),
        ("trained on", f"{device.get('name')} (world size {device.get('world_size')})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info.versions.items() if k != "platform")),
    ]


def time_budgets(results: list[RunResult]) -> dict[str, dict[str, float]]:
    """Each model's wall clock by part, over its seeds: its training (progress file) and its
    evaluation and plots (metrics file); models whose runs recorded none are left out."""
    bars: dict[str, dict[str, float]] = {}
    for r in results:
        try:
            trained = r.run.read_progress().time_budget or {}
        except LetterbenchError:
            trained = {}
        spent = [trained, r.metrics.time_budget or {}]
        if not any(spent):
            continue
        bar = bars.setdefault(r.info.label, {})
        for part in spent:
            for name, seconds in part.items():
                bar[name] = bar.get(name, 0.0) + seconds
    return bars


def sections(
    data: ReportData,
    plots: dict[str, dict[str, Path]],
    comparison_plot: Path,
    budget_plot: Path | None = None,
) -> list[doc.Section]:
    rows = data.rows()
    legend = (
        "★ best in the row (for the train − validation gap: the smallest in size), and every value not "
        "significantly worse: in accuracy, McNemar's exact test against the best gives p ≥ 0.05; in "
        "top-3 accuracy and macro F1, the value's 95% interval reaches the best value. Intervals: 95% "
        "bootstrap over the test images (2,000 resamples)."
    )
    seeded = sorted({c.stage.seeds for c in data.finals if c.stage.seeds})
    if seeded:
        legend += (
            f" Models trained with several seeds ({'/'.join(map(str, seeded))}): each figure is the mean "
            "over the seeds ± its standard deviation across them, the interval is the bootstrap interval "
            "of the seed-averaged figure, and accuracy is compared with the Wilcoxon signed-rank test on "
            "each image's share of seeds right."
        )
    if data.ensemble:
        chosen = data.ensemble.stage.chosen
        how = EnsembleChoice(**chosen).describe() if chosen else "the mean of all models"
        legend += f" Ensemble = mean of the probabilities of {', '.join(data.ensemble.members)}: {how}."
    r = data.ranking
    # First the answer (or that there is none yet), then every model at a glance, then the
    # caveats in one box; the full comparison follows.
    why = r.why[:1].upper() + r.why[1:] + "."
    if r.not_useful:  # these models do not read letters yet
        answer = doc.Para(why, "Not yet useful:", "note")
    else:
        answer = doc.Para(why, f"Recommendation: {r.recommendation}.", "recommendation")
    header, cells, best = glance(data)
    top = [answer, doc.Table(header, cells, best, compact=True)]
    if data.warnings:
        top.append(doc.Box("Read these numbers with care:", data.warnings))
    confused = [
        (
            f"{c.label}:",
            ", ".join(f"{p.true}→{p.predicted} ({p.count})" for p in c.stage.most_confused[:5]) or "none",
        )
        for c in data.columns
    ]
    out = [
        doc.Section(None, top),
        doc.Section(
            "Comparison",
            [
                doc.Table(
                    ["metric", *[c.label for c in data.columns]],
                    [[row.label, *row.text] for row in rows],
                    [row.best for row in rows],
                ),
                doc.Para(legend),
                doc.Figure(comparison_plot, "accuracy against cost"),
            ],
            "comparison",
        ),
        *filter(None, [comparison_section(data.comparisons)]),
        doc.Section("Ranking", [doc.Items(r.items)], "ranking"),
        doc.Section(
            "Pros and cons (measured)",
            [
                doc.Table(
                    ["model", "pros", "cons"],
                    [
                        [label, "\n".join(pc["pros"]) or "—", "\n".join(pc["cons"]) or "—"]
                        for label, pc in data.pros_cons.items()
                    ],
                    prose=True,
                )
            ],
            "pros-cons",
        ),
        doc.Section("Most confused pairs", [doc.Items(confused)], "confused"),
    ]
    if budget_plot is not None:
        out.append(
            doc.Section(
                "Where the time went",
                [
                    doc.Para(
                        "Each model's wall clock, part by part: training, and what surrounds it "
                        "(validation, checkpoint writes, testing, calibration, measuring its speed, "
                        "plots). A study's own parts (start-up, the ensemble choice, this report) are "
                        "in its study.json."
                    ),
                    doc.Figure(budget_plot, "time budget"),
                ],
                "time",
            )
        )
    for result in data.results:
        files = plots.get(result.name, {})
        # a confusion matrix's counts and the mistakes' captions are small: on a phone they keep
        # a readable width and scroll sideways instead of shrinking
        figures = [
            doc.Figure(path, f"{result.name} {kind}", wide=kind in ("confusion", "errors"))
            for kind, path in files.items()
        ]
        out.append(doc.Section(result.name, [doc.Fields(_provenance(result)), *figures]))
    return out


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


def glance(data: ReportData) -> tuple[list[str], list[list[str]], list[set[int]]]:
    """A model a row: accuracy and top-3 (with their ★), real-world top-1 where the models read a
    --real-world folder, FLOPs per image and training time. The report's first table and the
    terminal's summary; every other figure is in the report's full comparison."""
    rows = {row.key: row for row in data.rows()}
    keys = ["accuracy", "top3_accuracy"] + (["real_world_top1"] if "real_world_top1" in rows else [])
    header = ["model", "accuracy", "top-3"] + (["real-world"] if "real_world_top1" in rows else [])
    cells, best = [], []
    for i, c in enumerate(data.columns):
        line = [c.label]
        for key in keys:
            value = rows[key].values[i]
            line.append("n/a" if value is None else f"{100 * value:.2f}%")
        flops, seconds = c.cost.flops_per_image, c.cost.train_time_s
        line += [human(flops) if flops else "n/a", f"{seconds / 60:.1f} min" if seconds else "n/a"]
        cells.append(line)
        best.append({k for k, key in enumerate(keys) if i in rows[key].best})
    return [*header, "FLOPs/image", "training"], cells, best


def comparison_table(data: ReportData) -> str:
    """The terminal's summary (``glance``) within 100 columns."""
    header, cells, best = glance(data)
    lines = [
        [line[0][:28], *[doc.starred(text, k in stars) for k, text in enumerate(line[1:])]]
        for line, stars in zip(cells, best, strict=True)
    ]
    return format_table(header, lines)


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
        points.append(("Ensemble", data.ensemble.cost.flops_per_image, data.ensemble.accuracy, True))
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
