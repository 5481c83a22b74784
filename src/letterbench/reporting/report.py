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

from letterbench.errors import LetterbenchError
from letterbench.evaluation import classification_metrics, read_metrics
from letterbench.fsutil import atomic_write_json, atomic_write_text, ensure_folder
from letterbench.reporting import document as doc
from letterbench.reporting.comparisons import comparison_section, paired_comparisons
from letterbench.reporting.plots import plot_accuracy_against_cost
from letterbench.reporting.ranking import ROWS, Column, best_columns, pros_cons, ranking
from letterbench.reporting.tables import format_table
from letterbench.rundir import RunDir
from letterbench.stats import bootstrap_intervals
from letterbench.training.recipes import describe_recipe, recipe_from_dict

TITLE = "letterbench comparison report"


def report_page(out: Path) -> Path:
    """The report's HTML page in its output folder."""
    return Path(out) / "report.html"


@dataclass
class RunResult:
    run: RunDir
    metrics: dict[str, Any]
    name: str  # unique among the report's runs: labels and plot files use it

    @property
    def info(self) -> dict[str, Any]:
        return self.metrics["run"]


@dataclass
class ReportData:
    results: list[RunResult]
    columns: list[Column]  # every phase of every run, then the ensemble
    finals: list[Column]  # the last phase of each run: the models that are ranked
    ensemble: Column | None
    ranking: dict[str, Any]
    pros_cons: dict[str, dict[str, list[str]]]
    warnings: list[str]
    comparisons: list[dict[str, Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "key": row.key,
                "label": row.label,
                "higher_is_better": row.higher,
                "values": [row.value(c) for c in self.columns],
                "text": [row.text(c) for c in self.columns],
                "best": best_columns(row, self.columns),
                "intervals": [row.bounds(c) for c in self.columns],
            }
            for row in ROWS
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
    results = [RunResult(run, read_metrics(run), "") for run in runs]
    class_names = results[0].metrics["class_names"]
    for r in results[1:]:
        if r.metrics["class_names"] != class_names:
            raise LetterbenchError(
                f"{r.run} has classes {''.join(r.metrics['class_names'])}, {results[0].run} has "
                f"{''.join(class_names)}; only runs on the same split can be compared"
            )
    labels = [r.info["label"] for r in results]
    for r in results:  # two runs of one model: tell them apart by their folders
        r.name = (
            r.info["label"] if labels.count(r.info["label"]) == 1 else f"{r.info['label']} ({r.run.path})"
        )
    return results


def _columns(results: list[RunResult]) -> list[Column]:
    columns = []
    for r in results:
        cost, elapsed = r.metrics["cost"], 0.0
        stages = r.metrics["stages"]
        for i, stage in enumerate(stages):
            elapsed += cost["train_time_s"].get(stage["phase"], 0.0)
            label = r.name if i == 0 else f"{r.name} {stage['phase']}"
            stage_cost = {
                **cost,
                "train_time_s": elapsed,
                "trainable": cost["trainable_parameters"].get(stage["phase"]),
            }
            columns.append(Column(label, r.run, stage, stage_cost, is_final=i == len(stages) - 1))
    return columns


def ensemble_column(finals: list[Column], class_names: list[str]) -> Column:
    """The mean of the final models' saved test probabilities, scored like a model."""
    predictions = [c.run.load_predictions(c.stage["phase"]) for c in finals]
    labels = predictions[0][1]
    if any(not np.array_equal(labels, other) for _, other in predictions[1:]):
        raise LetterbenchError(
            "the runs were evaluated on different test sets; evaluate them on the same data"
        )
    probs = np.mean([p for p, _ in predictions], 0)
    stage = {
        "label": "Ensemble",
        "phase": "ensemble",
        **classification_metrics(probs, labels, class_names),
        "intervals": bootstrap_intervals(probs, labels),
    }

    def total(key):
        values = [c.cost.get(key) for c in finals]
        return sum(values) if all(values) else None

    inference = [c.cost.get("inference_images_per_s") for c in finals]
    cost = {
        "parameters": total("parameters"),
        "flops_per_image": total("flops_per_image"),
        "train_time_s": total("train_time_s"),
        "inference_images_per_s": 1 / sum(1 / v for v in inference) if all(inference) else None,
        "latency_ms": total("latency_ms"),
        "inference_load": {"under_load": any(c.under_load("inference_load") for c in finals)},
    }
    return Column("Ensemble", None, stage, cost, members=[c.label for c in finals])


def _training_images(r: RunResult) -> tuple:
    """What decides which images a run trained on: the data, the split, the subset, the seed and
    the validation fraction."""
    data = r.info["data"]
    return (
        tuple(sorted(data["sha256"].items())),
        data["split"],
        data.get("train_per_class"),
        r.info["seed"],
        r.info["recipe"]["val_fraction"],
    )


def _budget_warning(results: list[RunResult]) -> str | None:
    """Whether the models had equal training budgets (the same images, the same epochs), said plainly."""
    if len(results) < 2:
        return None
    epochs = {r.name: sum(p["epochs"] for p in r.info["recipe"]["phases"]) for r in results}
    same_images = len({_training_images(r) for r in results}) == 1
    if same_images and len(set(epochs.values())) == 1:
        return (
            f"Equal budget: every model trained on the same {results[0].info['data']['train_used']:,} images "
            f"for at most {epochs[results[0].name]} epochs and was tested on the same "
            f"{results[0].info['data']['test_used']:,} images."
        )
    return (
        "Unequal budgets, so the comparison mixes model and budget: "
        + ("the same training images, " if same_images else "different training images (")
        + ", ".join(
            f"{r.name} {r.info['data']['train_used']:,} images, at most {epochs[r.name]} epochs"
            for r in results
        )
        + ("." if same_images else ").")
    )


def _per_run(texts: dict[str, str], runs: int) -> str:
    """``text, every model`` where all runs say the same, else ``name text, name text``."""
    if len(texts) == runs > 1 and len(set(texts.values())) == 1:
        return next(iter(texts.values())) + ", the same for every model"
    return ", ".join(f"{name} {text}" for name, text in texts.items())


def _warnings(results: list[RunResult], columns: list[Column]) -> list[str]:
    out = []
    partial = [r for r in results if r.info["data"].get("partial")]
    if partial:
        out.append("Data: " + partial[0].info["data"]["verdict"] + ".")
    tested = {
        r.name: f"{r.info['data']['test_used']:,} images (at most {r.info['data']['test_per_class']} per class)"
        for r in results
        if r.info["data"].get("test_per_class")
    }
    if tested:
        out.append("Tested on a stratified subset of the test set: " + _per_run(tested, len(results)) + ".")
    subsets = {
        r.name: f"{r.info['data']['train_per_class']} images per class"
        for r in results
        if r.info["data"].get("train_per_class")
    }
    if subsets:
        out.append("Trained on a stratified subset: " + _per_run(subsets, len(results)) + ".")
    budget = _budget_warning(results)
    if budget:
        out.append(budget)
    loaded = [
        c.label for c in columns if c.run and (c.under_load("train_load") or c.under_load("inference_load"))
    ]
    if loaded:
        out.append(
            "† Speed measured while other processes loaded the CPU (" + ", ".join(loaded) + "): "
            "those figures are noise and take no ★; measure again on an idle machine."
        )
    for r in results:
        out += [f"{r.name}: {note}" for note in r.info["notes"]]
    return out


def report_data(results: list[RunResult]) -> ReportData:
    columns = _columns(results)
    finals = [c for c in columns if c.is_final]
    ensemble = ensemble_column(finals, results[0].metrics["class_names"]) if len(finals) > 1 else None
    if ensemble is None:  # one model: its test labels must still be there
        finals[0].run.load_predictions(finals[0].stage["phase"])
    return ReportData(
        results=results,
        columns=columns + ([ensemble] if ensemble else []),
        finals=finals,
        ensemble=ensemble,
        ranking=ranking(finals, ensemble),
        pros_cons=pros_cons(finals),
        warnings=_warnings(results, columns),
        comparisons=paired_comparisons(finals, ensemble),
    )


# ---------------------------------------------------------------- sections


def _provenance(r: RunResult) -> list[tuple[str, str]]:
    info, data = r.info, r.info["data"]
    recipe = recipe_from_dict(info["recipe"], f"{r.run.path} recipe")
    return [
        ("run", info["dir"]),
        (
            "data",
            f"{data['split']}: trained on {data['train_used']:,} images, validated on {data['val_used']:,}, "
            f"tested on {data['test_used']:,}; {data['verdict']}",
        ),
        ("weights", info["pretrained"] + ("; " + "; ".join(info["notes"]) if info["notes"] else "")),
        ("recipe", f"{recipe.name}: {describe_recipe(recipe)}"),
        ("seed", str(info["seed"])),
        ("trained on", f"{info['device']['name']} (world size {info['device']['world_size']})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items() if k != "platform")),
    ]


def sections(data: ReportData, plots: dict[str, dict[str, Path]], comparison_plot: Path) -> list[doc.Section]:
    rows = data.rows()
    legend = "★ best in the row (for the train − validation gap: the smallest in size)."
    if data.ensemble:
        legend += f" Ensemble = mean of the probabilities of {', '.join(data.ensemble.members)}."
    r = data.ranking
    top = [doc.Para(w, "Note:", "note") for w in data.warnings]
    top.append(doc.Para(f"{r['why']}.", f"Recommendation: {r['recommendation']}.", "recommendation"))
    confused = [
        (
            f"{c.label}:",
            ", ".join(f"{p['true']}→{p['predicted']} ({p['count']})" for p in c.stage["most_confused"][:5])
            or "none",
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
                    [[row["label"], *row["text"]] for row in rows],
                    [row["best"] for row in rows],
                ),
                doc.Para(legend),
                doc.Figure(comparison_plot, "accuracy against cost"),
            ],
            "comparison",
        ),
        *filter(None, [comparison_section(data.comparisons)]),
        doc.Section("Ranking", [doc.Items(r["items"])], "ranking"),
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
    for result in data.results:
        files = plots.get(result.name, {})
        figures = [doc.Figure(path, f"{result.name} {kind}") for kind, path in files.items()]
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
        "rows": [
            {k: v for k, v in row.items() if k not in ("text", "best")} | {"best": sorted(row["best"])}
            for row in data.rows()
        ],
        "ranking": {k: v for k, v in data.ranking.items() if k != "items"},
        "pros_cons": data.pros_cons,
        "warnings": data.warnings,
        "comparisons": data.comparisons,
        "runs": [
            {
                "dir": str(r.run.path),
                "name": r.name,
                **{k: r.info[k] for k in ("model", "label", "seed", "pretrained", "notes")},
                "recipe": r.info["recipe"]["name"],
                "data": {k: v for k, v in r.info["data"].items() if k != "class_names"},
            }
            for r in data.results
        ],
        "most_confused": {c.label: c.stage["most_confused"][:5] for c in data.columns},
    }


def comparison_table(data: ReportData) -> str:
    rows = data.rows()
    return format_table(
        ["metric", *[c.label for c in data.columns]],
        [
            [row["label"], *[t + (doc.STAR if i in row["best"] else "") for i, t in enumerate(row["text"])]]
            for row in rows
        ],
    )


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
        ours = "ranking" in json.loads((out / "summary.json").read_text())
    except (OSError, ValueError, TypeError):
        ours = False
    if not ours:
        raise LetterbenchError(
            f"{out} holds files that are not a letterbench report; choose another --out (nothing was written)"
        )


def build_report(run_dirs: list[Path], out: Path) -> dict[str, Any]:
    """Compare evaluated runs; write the report files into ``out``; return the summary (with the
    terminal table under ``table``)."""
    out = Path(out)
    _check_report_folder(out)
    data = report_data(load_results(run_dirs))
    img = out / "img"
    ensure_folder(img, "report folder")
    comparison_plot = img / "comparison.png"
    points = [(c.label, c.cost["flops_per_image"], c.accuracy, False) for c in data.finals]
    if data.ensemble:
        points.append(("Ensemble", data.ensemble.cost["flops_per_image"], data.ensemble.accuracy, True))
    plot_accuracy_against_cost(points, comparison_plot)
    page = sections(data, _copy_plots(data.results, img), comparison_plot)
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
