"""Paired comparisons of the ranked models: which differences in test accuracy are real.

Every pair of final models (and the ensemble) scored on the same test images is compared image by
image (``letterbench.evaluation.stats.paired_difference``): the accuracy difference with its paired bootstrap
interval and McNemar's exact test (with several seeds, the Wilcoxon signed-rank test on each image's
share of seeds right). The report shows them as a matrix, ``summary.json`` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from letterbench.evaluation.stats import ALPHA, LEVEL, paired_difference
from letterbench.reporting import document as doc
from letterbench.reporting.columns import Column


def attach_outcomes(columns: list[Column]) -> None:
    """Set each model column's per-image outcome from its saved test predictions: right or wrong,
    or with several seeds the share of its seeds right (the ensemble's column has its own)."""
    for c in columns:
        if c.run is not None:
            right = [probs.argmax(1) == labels for probs, labels in c.predictions()]
            c.outcome = right[0] if len(right) == 1 else np.mean(right, 0)


@dataclass
class Comparison:
    """Model ``a`` against model ``b`` on the same test images: a's accuracy minus b's, its paired
    bootstrap interval and the paired test (``stats.paired_difference``'s record)."""

    a: str
    b: str
    difference: float
    interval: list[float]
    p: float
    record: dict[str, Any]

    @property
    def significant(self) -> bool:
        return self.p < ALPHA

    def summary(self) -> dict[str, Any]:
        """As summary.json holds it."""
        return {"a": self.a, "b": self.b, **self.record, "significant": self.significant}


def paired_comparisons(finals: list[Column], ensemble: Column | None) -> list[Comparison]:
    """Each pair of ranked models once, in column order; ``difference`` is a's accuracy minus b's."""
    ranked = [c for c in [*finals, *([ensemble] if ensemble else [])] if c.outcome is not None]
    found = []
    for a, b in combinations(ranked, 2):
        if len(a.outcome) == len(b.outcome):
            record = paired_difference(a.outcome, b.outcome)
            difference, interval, p = (record[k] for k in ("difference", "interval", "p"))
            found.append(Comparison(a.label, b.label, difference, interval, p, record))
    return found


def _signed(x: float, digits: int) -> str:
    """``x`` with its sign, and a zero (or what rounds to one) without: "0.00", never "-0.00"."""
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def _cell(c: Comparison, sign: int) -> str:
    lo, hi = (sign * 100 * x for x in c.interval)
    lo, hi = min(lo, hi), max(lo, hi)
    return (
        f"{_signed(sign * 100 * c.difference, 2)} pts ({_signed(lo, 1)} to {_signed(hi, 1)}), p = {c.p:.2g}"
    )


def comparison_section(comparisons: list[Comparison]) -> doc.Section | None:
    """A matrix: row model minus column model, in accuracy points, with interval and p-value."""
    if not comparisons:
        return None
    labels = list(dict.fromkeys([c.a for c in comparisons] + [c.b for c in comparisons]))
    cells = {(c.a, c.b): _cell(c, 1) for c in comparisons}
    cells |= {(c.b, c.a): _cell(c, -1) for c in comparisons}
    rows = [[a, *[cells.get((a, b), "—") for b in labels]] for a in labels]
    legend = (
        f"Row minus column, test accuracy in points, with its paired bootstrap {LEVEL:.0%} interval and "
        f"the p-value of McNemar's exact test on the images only one of the two gets right (for models "
        "trained with several seeds: the Wilcoxon signed-rank test on each image's share of seeds right). A p-value "
        f"below {ALPHA} is a difference the test set can tell apart; above it, the two are not "
        "significantly different on these images."
    )
    return doc.Section(
        "Paired comparisons",
        [doc.Table(["row − column", *labels], rows, prose=True), doc.Para(legend)],
        "paired",
    )
