"""Paired comparisons of the ranked models: which differences in test accuracy are real.

Every pair of final models (and the ensemble) scored on the same test images is compared image by
image (``letterbench.stats.paired_difference``): the accuracy difference with its paired bootstrap
interval and McNemar's exact test. The report shows them as a matrix, ``summary.json`` keeps them.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from letterbench.reporting import document as doc
from letterbench.reporting.ranking import Column
from letterbench.stats import ALPHA, LEVEL, paired_difference


def outcomes(finals: list[Column], ensemble: Column | None) -> dict[str, np.ndarray]:
    """Per test image, whether each model got it right (from the saved predictions)."""
    predictions = {c.label: c.run.load_predictions(c.stage["phase"]) for c in finals}
    right = {label: probs.argmax(1) == labels for label, (probs, labels) in predictions.items()}
    if ensemble is not None:
        labels = next(iter(predictions.values()))[1]
        right[ensemble.label] = np.mean([p for p, _ in predictions.values()], 0).argmax(1) == labels
    return right


def paired_comparisons(finals: list[Column], ensemble: Column | None) -> list[dict[str, Any]]:
    """Each pair once, ``a`` before ``b`` in column order; ``difference`` is a's accuracy minus b's."""
    if len(finals) < 2:
        return []
    right = outcomes(finals, ensemble)
    found = []
    for a, b in combinations(right, 2):
        result = paired_difference(right[a], right[b])
        found.append({"a": a, "b": b, **result, "significant": result["p"] < ALPHA})
    return found


def _cell(c: dict[str, Any], sign: int) -> str:
    lo, hi = (sign * 100 * x for x in c["interval"])
    lo, hi = min(lo, hi), max(lo, hi)
    return f"{sign * 100 * c['difference']:+.2f} pts ({lo:+.1f} to {hi:+.1f}), p = {c['p']:.2g}"


def comparison_section(comparisons: list[dict[str, Any]]) -> doc.Section | None:
    """A matrix: row model minus column model, in accuracy points, with interval and p-value."""
    if not comparisons:
        return None
    labels = list(dict.fromkeys([c["a"] for c in comparisons] + [c["b"] for c in comparisons]))
    cells = {(c["a"], c["b"]): _cell(c, 1) for c in comparisons}
    cells |= {(c["b"], c["a"]): _cell(c, -1) for c in comparisons}
    rows = [[a, *[cells.get((a, b), "—") for b in labels]] for a in labels]
    legend = (
        f"Row minus column, test accuracy in points, with its paired bootstrap {LEVEL:.0%} interval and "
        f"the p-value of McNemar's exact test on the images only one of the two gets right. A p-value "
        f"below {ALPHA} is a difference the test set can tell apart; above it, the two are not "
        "significantly different on these images."
    )
    return doc.Section(
        "Paired comparisons",
        [doc.Table(["row − column", *labels], rows, prose=True), doc.Para(legend)],
        "paired",
    )
