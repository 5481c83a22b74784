"""How sure a test figure is: bootstrap intervals over the test images, and paired comparisons.

Test accuracy is measured on a sample of images; another sample would give another number. The
bootstrap redraws the test set with replacement (seeded, ``RESAMPLES`` times, vectorised with
NumPy in chunks) and reports the central ``LEVEL`` share of the redrawn figures. Two models scored
on the same images are compared image by image: McNemar's exact test asks whether the images only
one of them gets right split unevenly more than chance would allow (a two-sided binomial test on
the discordant images, SciPy), and a paired bootstrap gives an interval for their difference.

A model trained with several seeds is scored by the mean over its seeds: its figures on each
redrawn test set are averaged over the seeds (so an interval covers the test set's noise for the
seed-averaged model), and its per-image outcome is the share of its seeds that get the image
right. Two such models are compared with the Wilcoxon signed-rank test on those per-image shares
(with one seed each the shares are 0 or 1 and McNemar's exact test applies).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from letterbench.evaluation.thresholds import USEFUL_FLOOR

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
ALPHA = 0.05  # a difference with McNemar p below this is called significant
_CHUNK_CELLS = 4_000_000  # resamples x images per chunk: bounds the memory of one step


def _resamples(n: int, resamples: int, seed: int, members: int = 1) -> Iterator[np.ndarray]:
    """Index arrays (k, n) of test images drawn with replacement, ``resamples`` rows in all (the
    same rows for any ``members``, which only makes the chunks smaller)."""
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_CELLS // max(n * members, 1))
    for start in range(0, resamples, step):
        yield rng.integers(0, n, size=(min(step, resamples - start), n), dtype=np.int64)


def macro_f1_rows(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro F1 of each row of (k, n) label arrays, as scikit-learn computes it over all
    ``num_classes`` classes (a class with no true and no predicted image counts 0)."""
    k = true.shape[0]
    offset = np.arange(k)[:, None] * num_classes
    cells = k * num_classes
    hit = true == pred
    tp = np.bincount((offset + true)[hit], minlength=cells).reshape(k, num_classes)
    true_n = np.bincount((offset + true).ravel(), minlength=cells).reshape(k, num_classes)
    pred_n = np.bincount((offset + pred).ravel(), minlength=cells).reshape(k, num_classes)
    denom = true_n + pred_n
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape, dtype=np.float64), where=denom > 0)
    return f1.mean(1)


def percentile_interval(samples: np.ndarray, level: float) -> list[float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return [float(lo), float(hi)]


def bootstrap_intervals(
    probs: np.ndarray | list[np.ndarray],
    labels: np.ndarray,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any]:
    """Bootstrap intervals of accuracy, top-3 accuracy and macro F1 over the test images; for a list
    of probability arrays (one per seed of a model), of their mean over the seeds."""
    members = probs if isinstance(probs, list) else [probs]
    num_classes = members[0].shape[1]
    pred = np.stack([p.argmax(1) for p in members])  # (seeds, images)
    correct = (pred == labels).astype(np.float64)
    top3 = np.stack([(np.argsort(-p, axis=1)[:, :3] == labels[:, None]).any(1) for p in members]).astype(
        np.float64
    )
    acc, acc3, f1 = [], [], []
    for idx in _resamples(len(labels), resamples, seed, len(members)):
        acc.append(correct[:, idx].mean(2).mean(0))
        acc3.append(top3[:, idx].mean(2).mean(0))
        f1.append(np.mean([macro_f1_rows(labels[idx], member[idx], num_classes) for member in pred], 0))
    return {
        "level": level,
        "resamples": resamples,
        "seed": seed,
        "accuracy": percentile_interval(np.concatenate(acc), level),
        "top3_accuracy": percentile_interval(np.concatenate(acc3), level),
        "f1_macro": percentile_interval(np.concatenate(f1), level),
    }


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test on two models' per-image outcomes: ``only_a`` images only A gets
    right, ``only_b`` only B; p is the two-sided binomial probability of a split at least that
    uneven when either model is as likely to be the one right."""
    from scipy.stats import binomtest

    only_a = int(np.sum(a_correct & ~b_correct))
    only_b = int(np.sum(~a_correct & b_correct))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5, alternative="two-sided").pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": p}


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Whether two models differ on the same test images: McNemar's exact test where each outcome
    is right or wrong (0 or 1: one seed each), else the Wilcoxon signed-rank test on the per-image
    shares of seeds right (images both score alike drop out). ``test`` names the one used."""
    if np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all():
        return {"test": "McNemar's exact test", **mcnemar_exact(a.astype(bool), b.astype(bool))}
    from scipy.stats import wilcoxon

    # Shares are fractions k/N: differences equal in exact arithmetic must tie in floating point too.
    diff = np.round(a.astype(np.float64) - b.astype(np.float64), 9)
    p = 1.0 if not np.any(diff) else float(wilcoxon(diff, zero_method="wilcox").pvalue)
    return {"test": "Wilcoxon signed-rank test", "p": p}


def paired_difference(
    a_correct: np.ndarray,
    b_correct: np.ndarray,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> dict[str, Any]:
    """Accuracy of A minus accuracy of B on the same images, with its paired bootstrap interval
    (both models redrawn on the same resampled images), and the paired test (``paired_test``)."""
    diff = a_correct.astype(np.float64) - b_correct.astype(np.float64)
    samples = np.concatenate([diff[idx].mean(1) for idx in _resamples(len(diff), resamples, seed)])
    return {
        "difference": float(diff.mean()),
        "interval": percentile_interval(samples, level),
        "level": level,
        **paired_test(a_correct, b_correct),
    }


def spread(samples: list[float]) -> dict[str, float]:
    """Median and interquartile range of repeated measurements."""
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=np.float64), [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "samples": len(samples)}


def not_useful(accuracy: float, images: int | None, classes: int | None) -> str | None:
    """Why a model with this test accuracy is not yet useful, in a few words; None where it is.
    Not useful: not significantly above chance (a one-sided exact binomial test against 1/classes,
    p >= ``ALPHA``), or below ``USEFUL_FLOOR``. Where the image or class count is unknown, only the
    floor is checked."""
    if images and classes:
        from scipy.stats import binomtest

        chance, images = 1 / classes, int(round(images))  # several seeds: their mean count
        p = binomtest(round(accuracy * images), images, chance, alternative="greater").pvalue
        if p >= ALPHA:
            return (
                f"at chance: {100 * accuracy:.1f}% of {images:,} test letters right, where guessing "
                f"gets {100 * chance:.1f}% (binomial test p = {p:.2g})"
            )
    if accuracy < USEFUL_FLOOR:
        return f"below the usefulness floor: {100 * accuracy:.1f}% of the test letters right (a useful model reads at least {USEFUL_FLOOR:.0%})"
    return None
