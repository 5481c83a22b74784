"""The report's judgement: which value in a row is best, how the models rank and which one to pick,
all computed from the measured numbers (what a reader should know about each: ``pros_cons.py``).

The recommendation rule, printed on the page: the most accurate model, unless a model that is not
significantly less accurate (McNemar's exact test on the same test images, p >= ``ALPHA``) needs
fewer FLOPs per image; then the cheapest such. The ★ marks the best value of a row and every value
not significantly worse: in accuracy by McNemar's test against the best, in top-3 accuracy and
macro F1 where the value's 95% bootstrap interval reaches the best value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from letterbench.evaluation.stats import ALPHA, not_useful
from letterbench.reporting.columns import Column
from letterbench.reporting.tables import human


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

    def label_for(self, columns: list[Column]) -> str:
        """The label, with the batch the inference speeds were measured at where the row says one."""
        if self.key != "inference_images_per_s":
            return self.label
        batches = sorted({c.cost.inference_batch for c in columns if c.cost.inference_batch})
        said = f"batch {batches[0]}" if len(batches) == 1 else "batch " + "/".join(map(str, batches))
        return self.label.replace("batch 256", said) if batches else self.label.replace("batch 256; ", "")

    def comparable(self, column: Column) -> float | None:
        """The value the ★ compares, or None where it takes no part (missing, measured under load)."""
        value = self.get(column)
        if value is None or (self.load and column.under_load(self.load)):
            return None
        return abs(value) if self.magnitude else value

    def bounds(self, column: Column) -> list[float] | None:
        """The figure's bootstrap interval, where it has one."""
        return (column.stage.intervals or {}).get(self.key) if self.interval else None

    def text(self, column: Column) -> str:
        value = self.get(column)
        dagger = " †" if value is not None and self.load and column.under_load(self.load) else ""
        bounds = self.bounds(column)
        ci = f" ({100 * bounds[0]:.1f}–{100 * bounds[1]:.1f})" if bounds and value is not None else ""
        std = (column.stage.seed_std or {}).get(self.key)
        if std is not None and value is not None and self.fmt is pct:  # several seeds: mean ± sd
            ci = f" ± {100 * std:.2f}" + ci
        quartiles = column.cost.spread(self.key) if self.load else None
        if quartiles and value is not None:  # a timed figure: the interquartile range of its samples
            ci = f" ({self.fmt(quartiles[0]).split()[0]}–{self.fmt(quartiles[1])})"
        return self.fmt(value) + ci + dagger


ROWS: list[Row] = [
    Row("accuracy", "Accuracy (95% interval)", lambda c: c.m.accuracy, True, pct, interval=True),
    Row(
        "top3_accuracy",
        "Top-3 accuracy (95% interval)",
        lambda c: c.m.top3_accuracy,
        True,
        pct,
        interval=True,
    ),
    Row(
        "real_world_top1",
        "Real-world top-1 (your letters, 95% interval)",
        lambda c: c.stage.real_world_top1,
        True,
        pct,
        interval=True,
    ),
    Row(
        "real_world_top3",
        "Real-world top-3 (your letters, 95% interval)",
        lambda c: c.stage.real_world_top3,
        True,
        pct,
        interval=True,
    ),
    Row("precision_macro", "Precision (macro)", lambda c: c.m.precision_macro, True, pct),
    Row("recall_macro", "Recall (macro)", lambda c: c.m.recall_macro, True, pct),
    Row("f1_macro", "F1 (macro, 95% interval)", lambda c: c.m.f1_macro, True, pct, interval=True),
    Row("f1_weighted", "F1 (weighted)", lambda c: c.m.f1_weighted, True, pct),
    Row("roc_auc_micro", "ROC AUC (micro)", lambda c: c.m.roc_auc_micro, True, _num),
    Row("roc_auc_macro", "ROC AUC (macro)", lambda c: c.m.roc_auc_macro, True, _num),
    Row("log_loss", "Test log loss", lambda c: c.m.log_loss, False, _num),
    Row(
        "accuracy_gap",
        "Train − validation accuracy (best epoch)",
        lambda c: c.gap,
        False,
        _or_na(lambda x: f"{100 * x:+.2f} pts"),
        magnitude=True,
    ),
    Row("parameters", "Parameters", lambda c: c.cost.parameters, False, _or_na(human)),
    Row(
        "trainable_parameters",
        "Trained parameters (this phase)",
        lambda c: c.cost.trainable,
        False,
        _or_na(human),
    ),
    Row("flops_per_image", "FLOPs per image", lambda c: c.cost.flops_per_image, False, _or_na(human)),
    Row(
        "train_time_s",
        "Training time (cumulative)",
        lambda c: c.cost.train_time_s,
        False,
        _or_na(lambda x: f"{x / 60:.1f} min"),
        load="train_load",
    ),
    Row(
        "train_images_per_s",
        "Training throughput (median, quartiles)",
        lambda c: c.cost.train_images_per_s,
        True,
        _or_na(lambda x: f"{x:,.0f} img/s"),
        load="train_load",
    ),
    Row(
        "inference_images_per_s",
        "Inference throughput (batch 256; median, quartiles)",
        lambda c: c.cost.inference_images_per_s,
        True,
        _or_na(lambda x: f"{x:,.0f} img/s"),
        load="inference_load",
    ),
    Row(
        "latency_ms",
        "Latency, one image (median, quartiles)",
        lambda c: c.cost.latency_ms,
        False,
        _or_na(lambda x: f"{x:.1f} ms"),
        load="inference_load",
    ),
    Row(
        "peak_memory_bytes",
        "Peak memory (training)",
        lambda c: c.cost.peak_memory_bytes,
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
    best = {i for i, v in values if v == target}
    reference = columns[min(best)]
    for i, _ in values:
        if row.key in ("accuracy", "real_world_top1"):
            p = columns[i].p_against(reference, real_world=row.key != "accuracy")
            if p is not None and p >= ALPHA:
                best.add(i)
        elif bounds := row.bounds(columns[i]):
            if (bounds[1] >= target) if row.higher else (bounds[0] <= target):
                best.add(i)
    return best


# ---------------------------------------------------------------- ranking


RULE = (
    "the most accurate model, unless a model that is not significantly less accurate (McNemar's exact "
    "test on the same test images, or with several seeds the Wilcoxon signed-rank test on each image's "
    f"share of seeds right; p ≥ {ALPHA}) needs fewer FLOPs per image; then the cheapest such model"
)


def _test_name(a: Column, b: Column) -> str:
    test = a.test_against(b)
    return "McNemar" if test is None or test["test"].startswith("McNemar") else "Wilcoxon"


def recommend(singles: list[Column]) -> tuple[Column, str]:
    """The recommended model and the sentence that says why, by ``RULE``."""
    top = max(singles, key=lambda c: c.accuracy)
    if len(singles) == 1:
        return top, f"the only model here: {pct(top.accuracy)} of the test letters right"
    p = {c.label: c.p_against(top) for c in singles if c is not top}
    alike = [c for c in singles if c is not top and p[c.label] is not None and p[c.label] >= ALPHA]
    cheaper = [c for c in alike if c.cost.flops_per_image < top.cost.flops_per_image]
    if cheaper:
        pick = min(cheaper, key=lambda c: c.cost.flops_per_image)
        return pick, (
            f"{pick.label} is not significantly less accurate than {top.label} ({pct(pick.accuracy)} vs "
            f"{pct(top.accuracy)}, {_test_name(pick, top)} p = {p[pick.label]:.2g}) and needs "
            f"{pick.cost.flops_per_image / top.cost.flops_per_image:.0%} of its FLOPs per image"
        )
    why = f"{top.label} has the highest test accuracy ({pct(top.accuracy)})"
    if alike:
        named = ", ".join(f"{c.label} (p = {p[c.label]:.2g})" for c in alike)
        return top, f"{why}; {named} not significantly different, but no cheaper"
    known = {k: v for k, v in p.items() if v is not None}
    if known:
        tests = {_test_name(c, top) for c in singles if c is not top}
        return (
            top,
            f"{why}, significantly above every other model ({'/'.join(sorted(tests))} p ≤ {max(known.values()):.2g})",
        )
    return top, f"{why}; no paired test was possible (no per-image predictions)"


def _per_point(c: Column, cost: float | None, load: str | None = None) -> float | None:
    """Cost per accuracy point; None where unknown or (for a speed) measured under load."""
    if not cost or not c.accuracy or (load and c.under_load(load)):
        return None
    return cost / (100 * c.accuracy)


def _argmin(values: dict[str, float | None]) -> str | None:
    known = {k: v for k, v in values.items() if v is not None}
    return min(known, key=known.get) if known else None


UNTRAINED_ADVICE = (
    "train longer or on more images: the smoke preset only checks that the tool works; "
    "`letterbench run --preset first` trains one model that reads letters in about 3 minutes on a CPU, "
    "`--preset quick` compares the study's models"
)


def usefulness(column: Column) -> str | None:
    """Why the column's model is not yet useful (``stats.not_useful``), or None."""
    classes = len(column.stage.per_class or {}) or None
    return not_useful(column.accuracy, column.m.test_images, classes)


@dataclass
class Leader:
    model: str | None  # the column with the least of the figure per point (None: none known)
    all: dict[str, float | None]


@dataclass
class EnsembleGain:
    accuracy: float
    gain_over_best_points: float
    flops_per_image: float | None
    members: list[str]


@dataclass
class Ranking:
    """Every ranking the report states: as data (``summary``: summary.json) and as sentences
    (``items``). ``recommendation`` is "none" where even the best model is not yet useful."""

    recommendation: str
    why: str
    not_useful: str | None
    rule: str
    order_by_accuracy: list[tuple[str, float]]
    p_against_most_accurate: dict[str, float | None]
    most_accurate: dict[str, Any]  # model, accuracy
    cheapest_per_accuracy_point: Leader
    fastest_training_per_accuracy_point: Leader
    smallest_train_val_gap: Leader | None
    ensemble: EnsembleGain | None = None
    items: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "items"}
        return out if self.ensemble is not None else {k: v for k, v in out.items() if k != "ensemble"}


def ranking(singles: list[Column], ensemble: Column | None) -> Ranking:
    """The rankings of ``singles`` (and the ensemble's gain). Where even the most accurate model is
    not yet useful, no model is recommended."""
    by_acc = sorted(singles, key=lambda c: -c.accuracy)
    pick, why = recommend(singles)
    verdict = usefulness(by_acc[0])
    if verdict is not None:
        pick = None
        why = f"these models are not yet useful, so none is recommended: the best, {by_acc[0].label}, is {verdict}; {UNTRAINED_ADVICE}"
    flops_pp = {c.label: _per_point(c, c.cost.flops_per_image) for c in singles}
    time_pp = {c.label: _per_point(c, c.cost.train_time_s, "train_load") for c in singles}
    gaps = {c.label: c.gap for c in singles}
    closest = _argmin({k: None if v is None else abs(v) for k, v in gaps.items()})
    result = Ranking(
        recommendation="none" if pick is None else pick.label,
        why=why,
        not_useful=verdict,
        rule=RULE,
        order_by_accuracy=[(c.label, c.accuracy) for c in by_acc],
        p_against_most_accurate={c.label: c.p_against(by_acc[0]) for c in by_acc[1:]},
        most_accurate={"model": by_acc[0].label, "accuracy": by_acc[0].accuracy},
        cheapest_per_accuracy_point=Leader(_argmin(flops_pp), flops_pp),
        fastest_training_per_accuracy_point=Leader(_argmin(time_pp), time_pp),
        smallest_train_val_gap=Leader(closest, gaps) if closest else None,
    )
    if ensemble is not None:
        gain = 100 * (ensemble.accuracy - by_acc[0].accuracy)
        result.ensemble = EnsembleGain(
            ensemble.accuracy, gain, ensemble.cost.flops_per_image, ensemble.members
        )
    result.items = _ranking_items(result)
    return result


def _ranking_items(r: Ranking) -> list[tuple[str, str]]:
    """The ranking as (lead, sentence) pairs, in order; both writers render these."""
    items = [("Most accurate:", f"{r.most_accurate['model']} ({pct(r.most_accurate['accuracy'])}).")]
    cheap, fast, gap = (
        r.cheapest_per_accuracy_point,
        r.fastest_training_per_accuracy_point,
        r.smallest_train_val_gap,
    )
    if cheap.model:
        figures = ", ".join(f"{k} {human(v)}FLOPs" for k, v in cheap.all.items() if v)
        items.append(
            ("Cheapest per point of accuracy:", f"{cheap.model} ({figures} per image per accuracy point).")
        )
    if fast.model:
        figures = ", ".join(f"{k} {v:.1f} s" for k, v in fast.all.items() if v)
        items.append(("Least training time per point of accuracy:", f"{fast.model} ({figures} per point)."))
    if gap:
        items.append(
            (
                "Smallest train − validation gap:",
                f"{gap.model} ("
                + ", ".join(f"{k} {100 * v:+.2f}" for k, v in gap.all.items() if v is not None)
                + " points at the best epoch). A positive gap is overfitting; a negative one (validation "
                "above training accuracy) means augmentation and dropout, active only in training, make "
                "training harder: it is not less overfitting, and a large one hints at underfitting.",
            )
        )
    if r.ensemble is not None:
        e = r.ensemble
        items.append(
            (
                "Ensemble:",
                f"{pct(e.accuracy)} ({', '.join(e.members)}), {e.gain_over_best_points:+.2f} points over "
                f"the best single model, at {human(e.flops_per_image)}FLOPs per image.",
            )
        )
    p = r.p_against_most_accurate
    order = " > ".join(
        f"{k} ({pct(v)}" + (f", p = {p[k]:.2g} against the first" if p.get(k) is not None else "") + ")"
        for k, v in r.order_by_accuracy
    )
    items.append(("Order by test accuracy:", order + "."))
    items.append(("Rule:", r.rule[0].upper() + r.rule[1:] + "."))
    return items
