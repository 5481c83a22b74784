"""Uncertainty: bootstrap intervals, McNemar's exact test, paired differences, spreads."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from letterbench.evaluation.stats import (
    bootstrap_intervals,
    macro_f1_rows,
    mcnemar_exact,
    paired_difference,
    paired_test,
    spread,
)


def _outcomes(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither, dtype=bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_exact_on_a_table_worked_out_by_hand():
    # 8 images only A gets right, 2 only B: under H0 the split of 10 is Binomial(10, 1/2);
    # P(X <= 2) = (1 + 10 + 45) / 1024, two-sided: 112 / 1024 = 0.109375.
    a, b = _outcomes(8, 2, 50, 5)
    assert mcnemar_exact(a, b) == {"only_a": 8, "only_b": 2, "p": pytest.approx(112 / 1024, abs=1e-12)}
    # 10 against 0: 2 / 1024.
    a, b = _outcomes(10, 0, 3, 3)
    assert mcnemar_exact(a, b)["p"] == pytest.approx(2 / 1024, abs=1e-12)
    # An even split, and no discordant image at all: no evidence of a difference.
    assert mcnemar_exact(*_outcomes(4, 4, 10, 1))["p"] == pytest.approx(1.0)
    assert mcnemar_exact(*_outcomes(0, 0, 10, 1))["p"] == 1.0


def _probs(n: int, accuracy: float, classes: int = 26, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < accuracy, labels, (labels + rng.integers(1, classes, n)) % classes)
    probs = np.full((n, classes), 0.1 / (classes - 1))
    probs[np.arange(n), pred] = 0.9
    return probs, labels


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_images():
    widths = []
    for n in (200, 5000):
        probs, labels = _probs(n, 0.8)
        ci = bootstrap_intervals(probs, labels)
        accuracy = float((probs.argmax(1) == labels).mean())
        lo, hi = ci["accuracy"]
        assert lo < accuracy < hi
        f1 = f1_score(labels, probs.argmax(1), average="macro", labels=range(26), zero_division=0)
        assert ci["f1_macro"][0] < f1 < ci["f1_macro"][1]
        assert ci["top3_accuracy"][0] <= ci["top3_accuracy"][1]
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3  # about sqrt(25) = 5 times narrower


def test_bootstrap_interval_has_the_width_binomial_theory_gives():
    """Resampling the test images: the accuracy's 95% interval is about 2 x 1.96 x sqrt(p(1-p)/n)
    wide (the normal approximation, which is close at n = 4000), whatever the number of classes."""
    n, p = 4000, 0.8
    probs, labels = _probs(n, p, seed=5)
    accuracy = float((probs.argmax(1) == labels).mean())
    lo, hi = bootstrap_intervals(probs, labels)["accuracy"]
    theory = 2 * 1.96 * np.sqrt(accuracy * (1 - accuracy) / n)
    assert hi - lo == pytest.approx(theory, rel=0.15)
    assert (lo + hi) / 2 == pytest.approx(accuracy, abs=theory / 4)


def test_bootstrap_is_seeded():
    probs, labels = _probs(500, 0.7)
    assert bootstrap_intervals(probs, labels, seed=3) == bootstrap_intervals(probs, labels, seed=3)
    assert bootstrap_intervals(probs, labels, seed=3) != bootstrap_intervals(probs, labels, seed=4)


def test_macro_f1_of_each_row_matches_scikit_learn():
    rng = np.random.default_rng(1)
    true, pred = rng.integers(0, 7, (5, 40)), rng.integers(0, 7, (5, 40))
    pred[0] = true[0]
    expected = [
        f1_score(t, p, average="macro", labels=range(9), zero_division=0)
        for t, p in zip(true, pred, strict=True)
    ]
    assert macro_f1_rows(true, pred, 9) == pytest.approx(expected)


def test_paired_difference_of_a_model_with_itself_is_zero_and_not_significant():
    a, _ = _outcomes(8, 2, 50, 5)
    same = paired_difference(a, a)
    assert same["difference"] == 0 and same["interval"] == [0.0, 0.0] and same["p"] == 1.0
    a, b = _outcomes(30, 5, 100, 20)
    diff = paired_difference(a, b)
    assert diff["difference"] == pytest.approx(25 / 155)
    assert diff["interval"][0] < diff["difference"] < diff["interval"][1]
    assert diff["p"] < 0.001


def test_spread_is_median_and_quartiles():
    assert spread([1, 2, 3, 4, 100]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "samples": 5}


def test_wilcoxon_on_seed_shares_worked_out_by_hand():
    """Six images where model A's share of seeds right beats B's by six different margins, and one
    tie: the tie drops out, every signed rank is positive (W- = 0), and the exact two-sided p-value
    is 2 / 2**6 = 0.03125. With one seed each (right or wrong) the test is McNemar's."""
    a = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    b = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.5])
    result = paired_test(a, b)
    assert result["test"] == "Wilcoxon signed-rank test"
    assert result["p"] == pytest.approx(0.03125)
    assert paired_test(a > 0.9, b > 0.9)["test"] == "McNemar's exact test"
    assert paired_test(a, a)["p"] == 1.0


def test_bootstrap_over_seeds_averages_each_resample_over_the_seeds():
    probs, labels = _probs(600, 0.9, seed=3)
    single = bootstrap_intervals(probs, labels)
    assert bootstrap_intervals([probs, probs], labels) == single  # two identical seeds: the same model
    worse = probs.copy()
    worse[:300] = np.roll(worse[:300], 1, axis=1)  # a second seed that gets half the images wrong
    both = bootstrap_intervals([probs, worse], labels)
    alone = bootstrap_intervals(worse, labels)
    for key in ("accuracy", "top3_accuracy", "f1_macro"):
        assert alone[key][0] < both[key][0] < single[key][0]  # between the two seeds


def test_runs_that_differ_only_in_their_seed_form_one_group():
    from letterbench.reporting.seeds import seed_groups
    from letterbench.runs.records import RunInfo

    class Result:
        def __init__(self, label, seed, recipe="r"):
            data = {"split": "letters", "train_used": 10, "val_used": 2, "test_used": 5, "verdict": "partial"}
            info = {"dir": "-", "model": label, "label": label, "seed": seed, "pretrained": "none"}
            info |= {
                "notes": [],
                "recipe": {"name": recipe, "model": label, "phases": [{"name": "p"}]},
                "versions": {},
            }
            self.info = RunInfo.model_validate({**info, "data": data})

    a0, a1, b0, a1_again, c1 = (
        Result("A", 0),
        Result("A", 1),
        Result("B", 0),
        Result("A", 1),
        Result("A", 1, "s"),
    )
    assert [[id(r) for r in g] for g in seed_groups([a0, b0, a1, c1])] == [
        [id(a0), id(a1)],
        [id(b0)],
        [id(c1)],
    ]
    # the same seed twice is not a second seed: each run stays on its own
    assert len(seed_groups([a0, a1, a1_again])) == 3
