"""The report's page as sections, most important first: the answer (or that there is none yet),
every model at a glance, the caveats in one box; then the full comparison, the paired tests, the
ranking, the measured pros and cons, the most confused pairs, where the time went, and each run
with its provenance and plots. ``glance`` is also the terminal's summary."""

from __future__ import annotations

from pathlib import Path

from letterbench.evaluation.thresholds import USEFUL_FLOOR
from letterbench.recipes import describe_recipe
from letterbench.reporting import document as doc
from letterbench.reporting.columns import RunResult
from letterbench.reporting.comparisons import comparison_section
from letterbench.reporting.report_data import ReportData
from letterbench.reporting.tables import format_table, human
from letterbench.runs.records import EnsembleChoice

LEGEND = (
    "★ best in the row (for the train − validation gap: the smallest in size), and every value not "
    "significantly worse: in accuracy, McNemar's exact test against the best gives p ≥ 0.05; in "
    "top-3 accuracy and macro F1, the value's 95% interval reaches the best value. Intervals: 95% "
    "bootstrap over the test images (2,000 resamples)."
)


def _legend(data: ReportData) -> str:
    """The comparison's legend: the ★ rule, and what seeds and the ensemble mean here."""
    legend = LEGEND
    seeded = sorted({c.stage.seeds for c in data.finals if c.stage.seeds})
    if seeded:
        legend += (
            f" Models trained with several seeds ({'/'.join(map(str, seeded))}): each figure is the mean "
            "over the seeds ± its standard deviation across them, the interval is the bootstrap interval "
            "of the seed-averaged figure, and accuracy is compared with the Wilcoxon signed-rank test on "
            "each image's share of seeds right."
        )
    useless = [c.label for c in data.columns if c.not_useful]
    if useless:
        legend += (
            f" No ★ for a model not yet useful (at chance, or under {USEFUL_FLOOR:.0%} of the test letters "
            f"right): {', '.join(useless)}."
        )
    if data.ensemble:
        e = data.ensemble
        recorded = EnsembleChoice.from_dict(e.stage.chosen) if e.stage.chosen else None
        how = recorded.describe() if recorded else "the mean of all models"
        if len(e.members) > 1:
            legend += f" Ensemble = mean of the probabilities of {', '.join(e.members)}: {how}."
        else:  # the study chose one model: no ensemble, that model as predict and serve answer with it
            legend += (
                f" {e.label} = {e.members[0]} alone, its probabilities calibrated as predict and serve "
                f"answer with it; the study chose it as {how}."
            )
    return legend


def _top(data: ReportData) -> doc.Section:
    """The answer (or that there is none yet), every model at a glance, the caveats in one box."""
    r = data.ranking
    why = r.why[:1].upper() + r.why[1:] + "."
    if r.not_useful:  # these models do not read letters yet
        answer = doc.Para(why, "Not yet useful:", "note")
    else:
        answer = doc.Para(why, f"Recommendation: {r.recommendation}.", "recommendation")
    header, cells, best = glance(data)
    top = [answer, doc.Table(header, cells, best, compact=True)]
    if data.warnings:
        top.append(doc.Box("Read these numbers with care:", data.warnings))
    return doc.Section(None, top)


def _comparison(data: ReportData, comparison_plot: Path) -> doc.Section:
    rows = data.rows()
    table = doc.Table(
        ["metric", *[c.label for c in data.columns]],
        [[row.label, *row.text] for row in rows],
        [row.best for row in rows],
    )
    return doc.Section(
        "Comparison",
        [table, doc.Para(_legend(data)), doc.Figure(comparison_plot, "accuracy against cost")],
        "comparison",
    )


def _pros_cons(data: ReportData) -> doc.Section:
    cells = [
        [label, "\n".join(pc["pros"]) or "—", "\n".join(pc["cons"]) or "—"]
        for label, pc in data.pros_cons.items()
    ]
    return doc.Section(
        "Pros and cons (measured)", [doc.Table(["model", "pros", "cons"], cells, prose=True)], "pros-cons"
    )


def _confused(data: ReportData) -> doc.Section:
    confused = [
        (
            f"{c.label}:",
            ", ".join(f"{p.true}→{p.predicted} ({p.count})" for p in c.stage.most_confused[:5]) or "none",
        )
        for c in data.columns
    ]
    return doc.Section("Most confused pairs", [doc.Items(confused)], "confused")


TIME_TEXT = (
    "Each model's wall clock, part by part: training, and what surrounds it (validation, checkpoint "
    "writes, testing, calibration, measuring its speed, plots). A study's own parts (start-up, the "
    "ensemble choice, this report) are in its study.json."
)


def _run_section(result: RunResult, files: dict[str, Path]) -> doc.Section:
    # a confusion matrix's counts and the mistakes' captions are small: on a phone they keep
    # a readable width and scroll sideways instead of shrinking
    figures = [
        doc.Figure(path, f"{result.name} {kind}", wide=kind in ("confusion", "errors"))
        for kind, path in files.items()
    ]
    return doc.Section(result.name, [doc.Fields(_provenance(result)), *figures])


def sections(
    data: ReportData,
    plots: dict[str, dict[str, Path]],
    comparison_plot: Path,
    budget_plot: Path | None = None,
) -> list[doc.Section]:
    out = [_top(data), _comparison(data, comparison_plot)]
    out += [*filter(None, [comparison_section(data.comparisons)])]
    out += [
        doc.Section("Ranking", [doc.Items(data.ranking.items)], "ranking"),
        _pros_cons(data),
        _confused(data),
    ]
    if budget_plot is not None:
        time = [doc.Para(TIME_TEXT), doc.Figure(budget_plot, "time budget")]
        out.append(doc.Section("Where the time went", time, "time"))
    return out + [_run_section(result, plots.get(result.name, {})) for result in data.results]


def _provenance(r: RunResult) -> list[tuple[str, str]]:
    info, data = r.info, r.info.data
    recipe = info.recipe
    device = info.device or {}
    return [
        ("run", info.dir),
        (
            "data",
            f"{data.split}: trained on {data.train_used:,} images, validated on {data.val_used:,}, "
            f"tested on {data.test_used:,}; {data.verdict}",
        ),
        ("weights", info.pretrained + ("; " + "; ".join(info.notes) if info.notes else "")),
        ("recipe", f"{recipe.name}: {describe_recipe(recipe, data.extra_letters)}"),
        ("seed", str(info.seed)),
        ("trained on", f"{device.get('name')} (world size {device.get('world_size')})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info.versions.items() if k != "platform")),
    ]


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
