"""The comparison report across evaluated runs: one table shaped like the study's, a ranking
computed from the numbers, measured pros and cons, an ensemble, and every plot.

Writes ``report.html`` (self-contained: plots embedded as data URIs, opens offline, fits a phone),
``report.md`` (plots beside it under ``img/``), ``summary.json`` and ``summary.csv``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from letterbench.errors import LetterbenchError
from letterbench.evaluation import SCHEMA, classification_metrics, load_predictions
from letterbench.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from letterbench.reporting.tables import format_table, human

# The recommendation rule, stated on the page: the most accurate model, unless a model within
# this many accuracy points costs at most half its FLOPs per image; then the cheapest such model.
CLOSE_POINTS = 0.5


@dataclass
class Column:
    label: str
    run_dir: Path | None
    stage: dict[str, Any]
    cost: dict[str, Any]
    is_final: bool = True
    members: list[str] = field(default_factory=list)

    @property
    def m(self) -> dict[str, Any]:
        return self.stage["metrics"]


# (key, label, getter, higher is better, formatter)
def _pct(x):
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _or_na(template: str):
    return lambda x: "n/a" if x is None else template.format(x)


def _num(x, digits=4):
    return "n/a" if x is None else f"{x:.{digits}f}"


ROWS: list[tuple[str, str, Any, bool, Any]] = [
    ("accuracy", "Accuracy", lambda c: c.m["accuracy"], True, _pct),
    ("top3_accuracy", "Top-3 accuracy", lambda c: c.m["top3_accuracy"], True, _pct),
    ("precision_macro", "Precision (macro)", lambda c: c.m["precision_macro"], True, _pct),
    ("recall_macro", "Recall (macro)", lambda c: c.m["recall_macro"], True, _pct),
    ("f1_macro", "F1 (macro)", lambda c: c.m["f1_macro"], True, _pct),
    ("f1_weighted", "F1 (weighted)", lambda c: c.m["f1_weighted"], True, _pct),
    ("roc_auc_micro", "ROC AUC (micro)", lambda c: c.m["roc_auc_micro"], True, _num),
    ("roc_auc_macro", "ROC AUC (macro)", lambda c: c.m["roc_auc_macro"], True, _num),
    ("log_loss", "Test log loss", lambda c: c.m["log_loss"], False, _num),
    (
        "accuracy_gap",
        "Overfitting: train − val accuracy (best epoch)",
        lambda c: c.stage.get("overfitting", {}).get("at_best", {}).get("accuracy_gap"),
        False,
        _pct,
    ),
    (
        "parameters",
        "Parameters",
        lambda c: c.cost.get("parameters"),
        False,
        lambda x: human(x) if x else "n/a",
    ),
    (
        "trainable_parameters",
        "Trained parameters (this phase)",
        lambda c: c.cost.get("trainable"),
        False,
        lambda x: human(x) if x else "n/a",
    ),
    (
        "flops_per_image",
        "FLOPs per image",
        lambda c: c.cost.get("flops_per_image"),
        False,
        lambda x: human(x) if x else "n/a",
    ),
    (
        "train_time_s",
        "Training time (cumulative)",
        lambda c: c.cost.get("train_time_s"),
        False,
        lambda x: "n/a" if x is None else f"{x / 60:.1f} min",
    ),
    (
        "train_images_per_s",
        "Training throughput",
        lambda c: c.cost.get("train_images_per_s"),
        True,
        _or_na("{:,.0f} img/s"),
    ),
    (
        "inference_images_per_s",
        "Inference throughput (batch 256)",
        lambda c: c.cost.get("inference_images_per_s"),
        True,
        _or_na("{:,.0f} img/s"),
    ),
    (
        "latency_ms",
        "Latency, one image",
        lambda c: c.cost.get("latency_ms"),
        False,
        _or_na("{:.1f} ms"),
    ),
    (
        "peak_memory_bytes",
        "Peak memory (training)",
        lambda c: c.cost.get("peak_memory_bytes"),
        False,
        lambda x: human(x, "B") if x else "n/a",
    ),
]


def _load_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.exists():
        raise LetterbenchError(
            f"{run_dir} has no predictions (no metrics.json); run `letterbench evaluate {run_dir}` first"
        )
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LetterbenchError(
            f"{path}: unreadable ({exc}); run `letterbench evaluate {run_dir}` again"
        ) from None
    if result.get("schema") != SCHEMA:
        raise LetterbenchError(f"{path}: schema {result.get('schema')!r}, expected {SCHEMA}; evaluate again")
    return result


def _columns(results: list[tuple[Path, dict[str, Any]]]) -> list[Column]:
    columns = []
    for run_dir, result in results:
        cost = result["cost"]
        times = cost["train_time_s"]
        elapsed = 0.0
        for i, stage in enumerate(result["stages"]):
            elapsed += times.get(stage["phase"], 0.0)
            stage_cost = {
                **cost,
                "train_time_s": elapsed,
                "trainable": cost["trainable_parameters"].get(stage["phase"]),
            }
            columns.append(
                Column(stage["label"], run_dir, stage, stage_cost, is_final=i == len(result["stages"]) - 1)
            )
    return columns


def _ensemble(finals: list[Column], class_names: list[str]) -> Column:
    probs, labels = [], None
    for col in finals:
        p, lab = load_predictions(col.run_dir, col.stage)
        probs.append(p)
        labels = lab
    stage = {
        "label": "Ensemble",
        "phase": "ensemble",
        **classification_metrics(np.mean(probs, 0), labels, class_names),
    }
    cost = {
        "parameters": sum(c.cost["parameters"] for c in finals),
        "flops_per_image": sum(c.cost["flops_per_image"] for c in finals),
        "train_time_s": sum(c.cost["train_time_s"] for c in finals),
        "inference_images_per_s": 1 / sum(1 / c.cost["inference_images_per_s"] for c in finals)
        if all(c.cost.get("inference_images_per_s") for c in finals)
        else None,
        "latency_ms": sum(c.cost["latency_ms"] for c in finals)
        if all(c.cost.get("latency_ms") for c in finals)
        else None,
    }
    return Column("Ensemble", None, stage, cost, members=[c.label for c in finals])


def _best(columns: list[Column], getter, higher: bool) -> set[int]:
    values = [(i, getter(c)) for i, c in enumerate(columns)]
    values = [(i, v) for i, v in values if v is not None]
    if len(values) < 2:
        return set()
    target = max(v for _, v in values) if higher else min(v for _, v in values)
    return {i for i, v in values if v == target}


def _ranking(singles: list[Column], ensemble: Column | None) -> dict[str, Any]:
    by_acc = sorted(singles, key=lambda c: -c.m["accuracy"])
    top = by_acc[0]
    close = [
        c
        for c in singles
        if top.m["accuracy"] - c.m["accuracy"] <= CLOSE_POINTS / 100
        and c.cost["flops_per_image"] <= top.cost["flops_per_image"] / 2
    ]
    pick = min(close, key=lambda c: c.cost["flops_per_image"]) if close else top
    if pick is top:
        why = (
            f"{top.label} has the highest test accuracy ({_pct(top.m['accuracy'])}) and no model within "
            f"{CLOSE_POINTS} points costs half its FLOPs or less"
        )
    else:
        why = (
            f"{pick.label} is within {CLOSE_POINTS} accuracy points of {top.label} "
            f"({_pct(pick.m['accuracy'])} vs {_pct(top.m['accuracy'])}) at "
            f"{pick.cost['flops_per_image'] / top.cost['flops_per_image']:.0%} of its FLOPs per image"
        )

    def per_point(c, key):
        return c.cost[key] / (100 * c.m["accuracy"]) if c.cost.get(key) and c.m["accuracy"] else None

    flops_pp = {c.label: per_point(c, "flops_per_image") for c in singles}
    time_pp = {c.label: per_point(c, "train_time_s") for c in singles}
    gaps = {c.label: c.stage.get("overfitting", {}).get("at_best", {}).get("accuracy_gap") for c in singles}
    cheapest = min((v, k) for k, v in flops_pp.items() if v is not None)
    fastest_train = min((v, k) for k, v in time_pp.items() if v is not None)
    least_over = (
        min((v, k) for k, v in gaps.items() if v is not None)
        if any(v is not None for v in gaps.values())
        else None
    )
    ranking = {
        "recommendation": pick.label,
        "why": why,
        "order_by_accuracy": [(c.label, c.m["accuracy"]) for c in by_acc],
        "most_accurate": {"model": top.label, "accuracy": top.m["accuracy"]},
        "cheapest_per_accuracy_point": {
            "model": cheapest[1],
            "flops_per_point": cheapest[0],
            "all": flops_pp,
        },
        "fastest_training_per_accuracy_point": {
            "model": fastest_train[1],
            "train_seconds_per_point": fastest_train[0],
            "all": time_pp,
        },
        "least_overfitting": {"model": least_over[1], "accuracy_gap": least_over[0], "all": gaps}
        if least_over
        else None,
    }
    if ensemble is not None:
        gain = ensemble.m["accuracy"] - top.m["accuracy"]
        ranking["ensemble"] = {
            "accuracy": ensemble.m["accuracy"],
            "gain_over_best_points": 100 * gain,
            "flops_per_image": ensemble.cost["flops_per_image"],
        }
    return ranking


def _pros_cons(singles: list[Column]) -> dict[str, dict[str, list[str]]]:
    out = {c.label: {"pros": [], "cons": []} for c in singles}
    if len(singles) < 2:
        return out
    for _key, label, getter, higher, fmt in ROWS:
        values = [(c, getter(c)) for c in singles if getter(c) is not None]
        if len(values) < 2 or len({v for _, v in values}) == 1:
            continue
        best = max(values, key=lambda t: t[1]) if higher else min(values, key=lambda t: t[1])
        worst = min(values, key=lambda t: t[1]) if higher else max(values, key=lambda t: t[1])
        out[best[0].label]["pros"].append(f"best {label[0].lower() + label[1:]}: {fmt(best[1])}")
        out[worst[0].label]["cons"].append(f"worst {label[0].lower() + label[1:]}: {fmt(worst[1])}")
    return out


# ---------------------------------------------------------------- output


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _comparison_plot(singles: list[Column], ensemble: Column | None, path: Path) -> None:
    from letterbench.reporting.plots import _save, plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for c in singles + ([ensemble] if ensemble else []):
        x = c.cost["flops_per_image"] / 1e9
        ax.scatter(x, 100 * c.m["accuracy"], s=60, marker="*" if c is ensemble else "o")
        ax.annotate(
            c.label, (x, 100 * c.m["accuracy"]), textcoords="offset points", xytext=(6, 4), fontsize=9
        )
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.12)  # room for the labels
    ax.set_xlabel("GFLOPs per image (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against cost")
    ax.grid(alpha=0.3)
    _save(fig, path)


def build_report(run_dirs: list[Path], out: Path) -> dict[str, Any]:
    if not run_dirs:
        raise LetterbenchError("name at least one evaluated run directory")
    results = [(Path(d), _load_metrics(Path(d))) for d in run_dirs]
    class_names = results[0][1]["class_names"]
    for run_dir, result in results[1:]:
        if result["class_names"] != class_names:
            raise LetterbenchError(
                f"{run_dir} has classes {''.join(result['class_names'])}, {results[0][0]} has "
                f"{''.join(class_names)}; only runs on the same split can be compared"
            )
    columns = _columns(results)
    finals = [c for c in columns if c.is_final]
    test_labels = [load_predictions(c.run_dir, c.stage)[1] for c in finals]
    if any(not np.array_equal(test_labels[0], t) for t in test_labels[1:]):
        raise LetterbenchError(
            "the runs were evaluated on different test sets; evaluate them on the same data"
        )
    ensemble = _ensemble(finals, class_names) if len(finals) > 1 else None
    table_cols = columns + ([ensemble] if ensemble else [])
    ranking = _ranking(finals, ensemble)
    pros_cons = _pros_cons(finals)

    out.mkdir(parents=True, exist_ok=True)
    img = out / "img"
    img.mkdir(exist_ok=True)
    _comparison_plot(finals, ensemble, img / "comparison.png")
    plots: dict[str, dict[str, Path]] = {}
    for run_dir, result in results:
        slug = run_dir.name
        plots[result["run"]["label"] + f" ({slug})"] = {}
        for kind, name in result.get("plots", {}).items():
            target = img / f"{slug}-{name}"
            shutil.copyfile(run_dir / name, target)
            plots[result["run"]["label"] + f" ({slug})"][kind] = target

    rows = []
    for key, label, getter, higher, fmt in ROWS:
        best = _best(table_cols, getter, higher)
        rows.append(
            {
                "key": key,
                "label": label,
                "higher_is_better": higher,
                "values": [getter(c) for c in table_cols],
                "text": [fmt(getter(c)) + (" ★" if i in best else "") for i, c in enumerate(table_cols)],
            }
        )
    partial = [r for _, r in results if r["run"]["data"].get("partial")]
    subsets = [r for _, r in results if r["run"]["data"].get("train_per_class")]
    warnings = []
    if partial:
        warnings.append("Data: " + partial[0]["run"]["data"]["verdict"] + ".")
    tested = [r for _, r in results if r["run"]["data"].get("test_per_class")]
    if tested:
        warnings.append(
            "Tested on a stratified subset of the test set: "
            + ", ".join(
                f"{r['run']['label']} {r['run']['data']['test_used']:,} images (at most "
                f"{r['run']['data']['test_per_class']} per class)"
                for r in tested
            )
            + "."
        )
    if subsets:
        warnings.append(
            "Trained on a stratified subset: "
            + ", ".join(
                f"{r['run']['label']} {r['run']['data']['train_per_class']} images per class" for r in subsets
            )
            + "."
        )
    for _, r in results:
        for note in r["run"]["notes"]:
            warnings.append(f"{r['run']['label']}: {note}")

    summary = {
        "columns": [c.label for c in table_cols],
        "rows": [{k: v for k, v in row.items() if k != "text"} for row in rows],
        "ranking": ranking,
        "pros_cons": pros_cons,
        "warnings": warnings,
        "runs": [
            {
                "dir": str(d),
                **{k: r["run"][k] for k in ("model", "label", "seed", "pretrained", "notes")},
                "recipe": r["run"]["recipe"]["name"],
                "data": {k: v for k, v in r["run"]["data"].items() if k != "class_names"},
            }
            for d, r in results
        ],
        "most_confused": {c.label: c.stage["most_confused"][:5] for c in table_cols},
    }
    atomic_write_json(out / "summary.json", summary)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", *summary["columns"]])
    for row in rows:
        writer.writerow([row["key"], *["" if v is None else v for v in row["values"]]])
    atomic_write_text(out / "summary.csv", buffer.getvalue())
    context = dict(
        columns=table_cols,
        rows=rows,
        ranking=ranking,
        pros_cons=pros_cons,
        warnings=warnings,
        results=results,
        plots=plots,
        out=out,
        ensemble=ensemble,
    )
    atomic_write_text(out / "report.md", _markdown(**context))
    atomic_write_bytes(out / "report.html", _html(**context).encode())
    summary["table"] = comparison_table(table_cols, rows)
    return summary


def comparison_table(columns: list[Column], rows: list[dict[str, Any]]) -> str:
    return format_table(["metric", *[c.label for c in columns]], [[r["label"], *r["text"]] for r in rows])


def _provenance(result: dict[str, Any]) -> list[tuple[str, str]]:
    run, data = result["run"], result["run"]["data"]
    recipe = run["recipe"]
    phases = "; ".join(
        f"{p['name']}: {p['trainable']}, {p['optimizer']['name']} lr {p['optimizer']['lr']}, "
        f"{p['schedule']['name']}, ≤{p['epochs']} epochs"
        for p in recipe["phases"]
    )
    return [
        ("run", run["dir"]),
        (
            "data",
            f"{data['split']}: trained on {data['train_used']:,} images, validated on {data['val_used']:,}, "
            f"tested on {result['stages'][-1]['metrics']['test_images']:,}; {data['verdict']}",
        ),
        ("weights", run["pretrained"] + ("; " + "; ".join(run["notes"]) if run["notes"] else "")),
        (
            "recipe",
            f"{recipe['name']} (batch {recipe['batch_size']}, label smoothing {recipe['label_smoothing']}, "
            f"augment {recipe['augment']}); {phases}",
        ),
        ("seed", str(run["seed"])),
        ("trained on", f"{run['device']['name']} (world size {run['device']['world_size']})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in run["versions"].items() if k != "platform")),
    ]


def _markdown(columns, rows, ranking, pros_cons, warnings, results, plots, out, ensemble) -> str:
    lines = ["# letterbench comparison report", ""]
    for w in warnings:
        lines.append(f"> **Note:** {w}")
    lines += [
        "",
        f"**Recommendation: {ranking['recommendation']}.** {ranking['why']}.",
        "",
        "## Comparison",
        "",
    ]
    lines.append("| metric | " + " | ".join(c.label for c in columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    for row in rows:
        lines.append(f"| {row['label']} | " + " | ".join(row["text"]) + " |")
    lines += [
        "",
        "★ best in the row."
        + (f" Ensemble = mean of the probabilities of {', '.join(ensemble.members)}." if ensemble else ""),
        "",
        "![accuracy against cost](img/comparison.png)",
        "",
        "## Ranking",
        "",
    ]
    lines += _ranking_lines(ranking)
    lines += ["", "## Pros and cons (measured)", "", "| model | pros | cons |", "|---|---|---|"]
    for label, pc in pros_cons.items():
        lines.append(f"| {label} | {'<br>'.join(pc['pros']) or '—'} | {'<br>'.join(pc['cons']) or '—'} |")
    lines += ["", "## Most confused pairs", ""]
    for c in columns:
        pairs = ", ".join(
            f"{p['true']}→{p['predicted']} ({p['count']})" for p in c.stage["most_confused"][:5]
        )
        lines.append(f"- **{c.label}**: {pairs or 'none'}")
    for (_run_dir, result), (title, files) in zip(results, plots.items(), strict=True):
        lines += ["", f"## {title}", ""]
        lines += [f"- **{k}**: {v}" for k, v in _provenance(result)]
        lines.append("")
        lines += [f"![{kind}](img/{path.name})" for kind, path in files.items()]
    return "\n".join(lines) + "\n"


def _ranking_lines(ranking) -> list[str]:
    lines = [
        f"1. **Most accurate:** {ranking['most_accurate']['model']} ({_pct(ranking['most_accurate']['accuracy'])})."
    ]
    cheap = ranking["cheapest_per_accuracy_point"]
    lines.append(
        f"2. **Cheapest per point of accuracy:** {cheap['model']} "
        f"({human(cheap['flops_per_point'])}FLOPs per image per accuracy point; "
        + ", ".join(f"{k} {human(v)}" for k, v in cheap["all"].items() if v)
        + ")."
    )
    fast = ranking["fastest_training_per_accuracy_point"]
    lines.append(
        f"3. **Least training time per point of accuracy:** {fast['model']} "
        f"({fast['train_seconds_per_point']:.1f} s per point)."
    )
    if ranking.get("least_overfitting"):
        lo = ranking["least_overfitting"]
        lines.append(
            f"4. **Least overfitting:** {lo['model']} (train − validation accuracy {_pct(lo['accuracy_gap'])} "
            "at its best epoch)."
        )
    if "ensemble" in ranking:
        e = ranking["ensemble"]
        lines.append(
            f"5. **Ensemble** of the models: {_pct(e['accuracy'])}, {e['gain_over_best_points']:+.2f} points "
            f"over the best single model, at {human(e['flops_per_image'])}FLOPs per image."
        )
    lines.append("")
    lines.append(
        "Order by test accuracy: " + " > ".join(f"{k} ({_pct(v)})" for k, v in ranking["order_by_accuracy"])
    )
    lines.append(
        f"Rule: the most accurate model, unless one within {CLOSE_POINTS} accuracy points needs at most half "
        "its FLOPs per image."
    )
    return lines


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;
line-height:1.45;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.6rem .8rem;margin:.5rem 0}
.rec{background:#e8f4ea;border-left:4px solid #2e8b57;padding:.6rem .8rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left}td.best{background:#e8f4ea;font-weight:600}
table.text td,table.text th{text-align:left;white-space:normal;vertical-align:top}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}dt{font-weight:600}dd{margin:0}
@media (max-width:600px){body{padding:.5rem}td,th{padding:.2rem .3rem;font-size:.8rem}}
"""


def _html(columns, rows, ranking, pros_cons, warnings, results, plots, out, ensemble) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>letterbench comparison report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>letterbench comparison report</h1>",
    ]
    parts += [f'<p class="warn"><strong>Note:</strong> {e(w)}</p>' for w in warnings]
    parts.append(
        f'<p class="rec"><strong>Recommendation: {e(ranking["recommendation"])}.</strong> {e(ranking["why"])}.</p>'
    )
    parts.append('<h2 id="comparison">Comparison</h2><div class="scroll"><table><thead><tr><th>metric</th>')
    parts += [f"<th>{e(c.label)}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="best">{e(t)}</td>' if t.endswith("★") else f"<td>{e(t)}</td>" for t in row["text"]
        )
        parts.append(f"<tr><td>{e(row['label'])}</td>{cells}</tr>")
    parts.append("</tbody></table></div>")
    parts.append(
        "<p>★ best in the row."
        + (f" Ensemble = mean of the probabilities of {e(', '.join(ensemble.members))}." if ensemble else "")
        + "</p>"
    )
    parts.append(f'<img src="{_data_uri(out / "img" / "comparison.png")}" alt="accuracy against cost">')
    parts.append('<h2 id="ranking">Ranking</h2><ul>')
    parts += [
        f"<li>{e(line.lstrip('0123456789. ').replace('**', ''))}</li>"
        for line in _ranking_lines(ranking)
        if line
    ]
    parts.append("</ul>")
    parts.append(
        '<h2 id="pros-cons">Pros and cons (measured)</h2><div class="scroll"><table class="text">'
        "<thead><tr><th>model</th><th>pros</th><th>cons</th></tr></thead><tbody>"
    )
    for label, pc in pros_cons.items():
        parts.append(
            f"<tr><td>{e(label)}</td><td>{'<br>'.join(map(e, pc['pros'])) or '—'}</td>"
            f"<td>{'<br>'.join(map(e, pc['cons'])) or '—'}</td></tr>"
        )
    parts.append("</tbody></table></div>")
    parts.append('<h2 id="confused">Most confused pairs</h2><ul>')
    for c in columns:
        pairs = ", ".join(
            f"{p['true']}→{p['predicted']} ({p['count']})" for p in c.stage["most_confused"][:5]
        )
        parts.append(f"<li><strong>{e(c.label)}</strong>: {e(pairs or 'none')}</li>")
    parts.append("</ul>")
    for (_run_dir, result), (title, files) in zip(results, plots.items(), strict=True):
        parts.append(f"<h2>{e(title)}</h2><dl>")
        parts += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _provenance(result)]
        parts.append("</dl>")
        parts += [f'<img src="{_data_uri(path)}" alt="{e(title)} {e(kind)}">' for kind, path in files.items()]
    parts.append("</body></html>")
    return "\n".join(parts)
