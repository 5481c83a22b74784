"""The report's judgement: which value in a row is best, how the models rank, which one to pick,
and what a reader should know about each, all computed from the measured numbers.

The recommendation rule, printed on the page: the most accurate model, unless a model within
``CLOSE_POINTS`` accuracy points needs at most half its FLOPs per image; then the cheapest such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from letterbench.reporting.tables import human
from letterbench.rundir import RunDir

CLOSE_POINTS = 0.5
# A ratio closer to 1 than this is "about the same" and not worth a sentence.
NOTABLE_RATIO = 1.1
# A train - validation accuracy gap (in points) below which a model's fit is unremarkable.
NOTABLE_GAP_POINTS = 2.0


@dataclass
class Column:
    """One column of the comparison: a phase of a run, or the ensemble."""

    label: str
    run: RunDir | None
    stage: dict[str, Any]
    cost: dict[str, Any]
    is_final: bool = True
    members: list[str] = field(default_factory=list)

    @property
    def m(self) -> dict[str, Any]:
        return self.stage["metrics"]

    @property
    def accuracy(self) -> float:
        return self.m["accuracy"]

    @property
    def gap(self) -> float | None:
        return self.stage.get("overfitting", {}).get("at_best", {}).get("accuracy_gap")

    def under_load(self, which: str) -> bool:
        """Whether a speed figure (``train_load`` or ``inference_load``) was measured under load."""
        return bool((self.cost.get(which) or {}).get("under_load"))


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _or_na(fmt: Callable[[float], str]) -> Callable[[float | None], str]:
    return lambda x: "n/a" if x is None else fmt(x)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    get: Callable[[Column], float | None]
    higher: bool  # higher is better
    fmt: Callable[[float | None], str]
    magnitude: bool = False  # compare sizes (|value|): the train - validation gap
    load: str | None = None  # the load record that makes this speed figure noise when under load
    interval: bool = False  # the stage holds a bootstrap interval of this figure under ``key``

    def value(self, column: Column) -> float | None:
        return self.get(column)

    def comparable(self, column: Column) -> float | None:
        """The value the ★ compares, or None where it takes no part (missing, measured under load)."""
        value = self.get(column)
        if value is None or (self.load and column.under_load(self.load)):
            return None
        return abs(value) if self.magnitude else value

    def bounds(self, column: Column) -> list[float] | None:
        """The figure's bootstrap interval, where it has one."""
        return column.stage.get("intervals", {}).get(self.key) if self.interval else None

    def text(self, column: Column) -> str:
        value = self.get(column)
        dagger = " †" if value is not None and self.load and column.under_load(self.load) else ""
        bounds = self.bounds(column)
        ci = f" ({100 * bounds[0]:.1f}–{100 * bounds[1]:.1f})" if bounds and value is not None else ""
        return self.fmt(value) + ci + dagger


ROWS: list[Row] = [
    Row("accuracy", "Accuracy (95% interval)", lambda c: c.m["accuracy"], True, pct, interval=True),
    Row(
        "top3_accuracy",
        "Top-3 accuracy (95% interval)",
        lambda c: c.m["top3_accuracy"],
        True,
        pct,
        interval=True,
    ),
    Row("precision_macro", "Precision (macro)", lambda c: c.m["precision_macro"], True, pct),
    Row("recall_macro", "Recall (macro)", lambda c: c.m["recall_macro"], True, pct),
    Row("f1_macro", "F1 (macro, 95% interval)", lambda c: c.m["f1_macro"], True, pct, interval=True),
    Row("f1_weighted", "F1 (weighted)", lambda c: c.m["f1_weighted"], True, pct),
    Row("roc_auc_micro", "ROC AUC (micro)", lambda c: c.m["roc_auc_micro"], True, _num),
    Row("roc_auc_macro", "ROC AUC (macro)", lambda c: c.m["roc_auc_macro"], True, _num),
    Row("log_loss", "Test log loss", lambda c: c.m["log_loss"], False, _num),
    Row(
        "accuracy_gap",
        "Train − validation accuracy (best epoch)",
        lambda c: c.gap,
        False,
        _or_na(lambda x: f"{100 * x:+.2f} pts"),
        magnitude=True,
    ),
    Row("parameters", "Parameters", lambda c: c.cost.get("parameters"), False, _or_na(human)),
    Row(
        "trainable_parameters",
        "Trained parameters (this phase)",
        lambda c: c.cost.get("trainable"),
        False,
        _or_na(human),
    ),
    Row("flops_per_image", "FLOPs per image", lambda c: c.cost.get("flops_per_image"), False, _or_na(human)),
    Row(
        "train_time_s",
        "Training time (cumulative)",
        lambda c: c.cost.get("train_time_s"),
        False,
        _or_na(lambda x: f"{x / 60:.1f} min"),
        load="train_load",
    ),
    Row(
        "train_images_per_s",
        "Training throughput",
        lambda c: c.cost.get("train_images_per_s"),
        True,
        _or_na(lambda x: f"{x:,.0f} img/s"),
        load="train_load",
    ),
    Row(
        "inference_images_per_s",
        "Inference throughput (batch 256)",
        lambda c: c.cost.get("inference_images_per_s"),
        True,
        _or_na(lambda x: f"{x:,.0f} img/s"),
        load="inference_load",
    ),
    Row(
        "latency_ms",
        "Latency, one image",
        lambda c: c.cost.get("latency_ms"),
        False,
        _or_na(lambda x: f"{x:.1f} ms"),
        load="inference_load",
    ),
    Row(
        "peak_memory_bytes",
        "Peak memory (training)",
        lambda c: c.cost.get("peak_memory_bytes"),
        False,
        _or_na(lambda x: human(x, "B")),
    ),
]


def best_columns(row: Row, columns: list[Column]) -> set[int]:
    """Indices of the columns whose value is best in ``row`` (ties share the ★); none where fewer
    than two columns have a comparable value."""
    values = [(i, row.comparable(c)) for i, c in enumerate(columns)]
    values = [(i, v) for i, v in values if v is not None]
    if len(values) < 2:
        return set()
    target = max(v for _, v in values) if row.higher else min(v for _, v in values)
    return {i for i, v in values if v == target}


# ---------------------------------------------------------------- ranking


def recommend(singles: list[Column]) -> tuple[Column, str]:
    """The recommended model and the sentence that says why, by the rule above."""
    top = max(singles, key=lambda c: c.accuracy)
    close = [
        c
        for c in singles
        if round(100 * (top.accuracy - c.accuracy), 9) <= CLOSE_POINTS  # 0.945 - 0.94 is not > 0.005
        and c.cost["flops_per_image"] <= top.cost["flops_per_image"] / 2
    ]
    if not close:
        return top, (
            f"{top.label} has the highest test accuracy ({pct(top.accuracy)}) and no model within "
            f"{CLOSE_POINTS} points costs half its FLOPs or less"
        )
    pick = min(close, key=lambda c: c.cost["flops_per_image"])
    return pick, (
        f"{pick.label} is within {CLOSE_POINTS} accuracy points of {top.label} "
        f"({pct(pick.accuracy)} vs {pct(top.accuracy)}) at "
        f"{pick.cost['flops_per_image'] / top.cost['flops_per_image']:.0%} of its FLOPs per image"
    )


def _per_point(c: Column, key: str, load: str | None = None) -> float | None:
    """Cost per accuracy point; None where unknown or (for a speed) measured under load."""
    if not c.cost.get(key) or not c.accuracy or (load and c.under_load(load)):
        return None
    return c.cost[key] / (100 * c.accuracy)


def _argmin(values: dict[str, float | None]) -> str | None:
    known = {k: v for k, v in values.items() if v is not None}
    return min(known, key=known.get) if known else None


def ranking(singles: list[Column], ensemble: Column | None) -> dict[str, Any]:
    """Every ranking the report states, as data (``summary.json``) and as sentences (``items``)."""
    by_acc = sorted(singles, key=lambda c: -c.accuracy)
    pick, why = recommend(singles)
    flops_pp = {c.label: _per_point(c, "flops_per_image") for c in singles}
    time_pp = {c.label: _per_point(c, "train_time_s", "train_load") for c in singles}
    gaps = {c.label: c.gap for c in singles}
    closest = _argmin({k: None if v is None else abs(v) for k, v in gaps.items()})
    result: dict[str, Any] = {
        "recommendation": pick.label,
        "why": why,
        "rule": f"the most accurate model, unless one within {CLOSE_POINTS} accuracy points needs at most "
        "half its FLOPs per image; then the cheapest such model",
        "order_by_accuracy": [(c.label, c.accuracy) for c in by_acc],
        "most_accurate": {"model": by_acc[0].label, "accuracy": by_acc[0].accuracy},
        "cheapest_per_accuracy_point": {"model": _argmin(flops_pp), "all": flops_pp},
        "fastest_training_per_accuracy_point": {"model": _argmin(time_pp), "all": time_pp},
        "smallest_train_val_gap": {"model": closest, "all": gaps} if closest else None,
    }
    if ensemble is not None:
        result["ensemble"] = {
            "accuracy": ensemble.accuracy,
            "gain_over_best_points": 100 * (ensemble.accuracy - by_acc[0].accuracy),
            "flops_per_image": ensemble.cost["flops_per_image"],
        }
    result["items"] = _ranking_items(result)
    return result


def _ranking_items(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The ranking as (lead, sentence) pairs, in order; both writers render these."""
    items = [("Most accurate:", f"{r['most_accurate']['model']} ({pct(r['most_accurate']['accuracy'])}).")]
    cheap = r["cheapest_per_accuracy_point"]
    if cheap["model"]:
        items.append(
            (
                "Cheapest per point of accuracy:",
                f"{cheap['model']} ("
                + ", ".join(f"{k} {human(v)}FLOPs" for k, v in cheap["all"].items() if v)
                + " per image per accuracy point).",
            )
        )
    fast = r["fastest_training_per_accuracy_point"]
    if fast["model"]:
        items.append(
            (
                "Least training time per point of accuracy:",
                f"{fast['model']} ("
                + ", ".join(f"{k} {v:.1f} s" for k, v in fast["all"].items() if v)
                + " per point).",
            )
        )
    gap = r["smallest_train_val_gap"]
    if gap:
        items.append(
            (
                "Smallest train − validation gap:",
                f"{gap['model']} ("
                + ", ".join(f"{k} {100 * v:+.2f}" for k, v in gap["all"].items() if v is not None)
                + " points at the best epoch). A positive gap is overfitting; a negative one (validation "
                "above training accuracy) means augmentation and dropout, active only in training, make "
                "training harder: it is not less overfitting, and a large one hints at underfitting.",
            )
        )
    if "ensemble" in r:
        e = r["ensemble"]
        items.append(
            (
                "Ensemble:",
                f"{pct(e['accuracy'])}, {e['gain_over_best_points']:+.2f} points over the best single "
                f"model, at {human(e['flops_per_image'])}FLOPs per image.",
            )
        )
    order = " > ".join(f"{k} ({pct(v)})" for k, v in r["order_by_accuracy"])
    items.append(("Order by test accuracy:", order + "."))
    items.append(("Rule:", r["rule"][0].upper() + r["rule"][1:] + "."))
    return items


# ---------------------------------------------------------------- pros and cons


def _ratio_sentence(
    c: Column, ref: Column, key: str, load: str | None, better: str, worse: str
) -> tuple[str, str] | None:
    """("pro" | "con", sentence) comparing ``c`` with ``ref`` on a cost where lower is better."""
    a, b = c.cost.get(key), ref.cost.get(key)
    if not a or not b or (load and (c.under_load(load) or ref.under_load(load))):
        return None
    ratio = b / a  # > 1: c needs less
    if ratio >= NOTABLE_RATIO:
        return "pro", better.format(r=ratio, ref=ref.label)
    if ratio <= 1 / NOTABLE_RATIO:
        return "con", worse.format(r=1 / ratio, ref=ref.label)
    return None


def _accuracy_sentences(c: Column, ref: Column, top: Column) -> tuple[str, str, float]:
    d = 100 * (c.accuracy - ref.accuracy)
    both = f"({pct(c.accuracy)} vs {pct(ref.accuracy)})"
    if abs(d) < 0.005:
        return "pro", f"as accurate as {ref.label} {both}", d
    if c is top:
        return "pro", f"most accurate: {d:+.2f} points over {ref.label} {both}", d
    return "con", f"{-d:.2f} points less accurate than {ref.label} {both}", d


def pros_cons(singles: list[Column]) -> dict[str, dict[str, list[str]]]:
    """A few measured, comparative sentences per model: each model against the most accurate one
    (the most accurate against the runner-up)."""
    out: dict[str, dict[str, list[str]]] = {c.label: {"pros": [], "cons": []} for c in singles}
    if len(singles) < 2:
        return out
    by_acc = sorted(singles, key=lambda c: -c.accuracy)
    top = by_acc[0]
    for c in singles:
        ref = by_acc[1] if c is top else top
        kind, sentence, d = _accuracy_sentences(c, ref, top)
        found = [(kind, sentence)]
        more_less = f"{abs(d):.1f} points {'more' if d > 0 else 'less'} accuracy"
        found += [
            _ratio_sentence(
                c,
                ref,
                "flops_per_image",
                None,
                "{r:.1f}x fewer FLOPs per image than {ref} for " + more_less,
                "{r:.1f}x the FLOPs per image of {ref}",
            ),
            _ratio_sentence(
                c,
                ref,
                "train_time_s",
                "train_load",
                "trains {r:.1f}x faster than {ref}",
                "takes {r:.1f}x longer to train than {ref}",
            ),
            _ratio_sentence(
                c,
                ref,
                "latency_ms",
                "inference_load",
                "answers one image {r:.1f}x faster than {ref}",
                "{r:.1f}x the single-image latency of {ref}",
            ),
            _ratio_sentence(
                c,
                ref,
                "peak_memory_bytes",
                None,
                "needs {r:.1f}x less memory to train than {ref}",
                "needs {r:.1f}x the training memory of {ref}",
            ),
        ]
        for kind, sentence in filter(None, found):
            out[c.label]["pros" if kind == "pro" else "cons"].append(sentence)
    _gap_sentences(singles, out)
    return out


def _gap_sentences(singles: list[Column], out: dict[str, dict[str, list[str]]]) -> None:
    known = [c for c in singles if c.gap is not None]
    if not known:
        return
    widest = max(known, key=lambda c: abs(c.gap))
    points = 100 * widest.gap
    if abs(points) < NOTABLE_GAP_POINTS:
        return
    if points > 0:
        sentence = f"overfits most: training accuracy {points:.1f} points above validation at its best epoch"
    else:
        sentence = (
            f"validation accuracy {-points:.1f} points above training accuracy at its best epoch: "
            "augmentation and dropout make training harder than validation; not overfitting, "
            "possibly underfitting"
        )
    out[widest.label]["cons"].append(sentence)
