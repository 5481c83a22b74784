"""The report's judgement: how the models rank and which one to pick, all computed from the
measured numbers (which value of a row is best: ``rows.py``; what a reader should know about each
model: ``pros_cons.py``).

The recommendation rule, printed on the page: the most accurate model, unless a model that is not
significantly less accurate (McNemar's exact test on the same test images, p >= ``ALPHA``) needs
fewer FLOPs per image; then the cheapest such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from letterbench.evaluation.stats import ALPHA
from letterbench.reporting.columns import Column
from letterbench.reporting.rows import pct
from letterbench.reporting.tables import human

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
    "`letterbench run --preset first` trains one model that reads letters in minutes on a CPU, "
    "`--preset quick` compares the study's models"
)


def usefulness(column: Column) -> str | None:
    """Why the column's model is not yet useful (``stats.not_useful``), or None."""
    return column.not_useful


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
        items.append(_ensemble_item(r.ensemble))
    p = r.p_against_most_accurate
    order = " > ".join(
        f"{k} ({pct(v)}" + (f", p = {p[k]:.2g} against the first" if p.get(k) is not None else "") + ")"
        for k, v in r.order_by_accuracy
    )
    items.append(("Order by test accuracy:", order + "."))
    items.append(("Rule:", r.rule[0].upper() + r.rule[1:] + "."))
    return items


def _ensemble_item(e: EnsembleGain) -> tuple[str, str]:
    """The ensemble's line; where the study chose one model, that model, named as itself."""
    if len(e.members) == 1:
        return (
            "The study's choice:",
            f"{e.members[0]} alone ({pct(e.accuracy)} with its probabilities calibrated), chosen on "
            "held-out images over every mean of several models: predict and serve answer with it.",
        )
    return (
        "Ensemble:",
        f"{pct(e.accuracy)} ({', '.join(e.members)}), {e.gain_over_best_points:+.2f} points over "
        f"the best single model, at {human(e.flops_per_image)}FLOPs per image.",
    )
