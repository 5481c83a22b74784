"""The comparison report's rules on fixture data built so that each rule has one right answer.

Nothing under test is mocked: columns are built in memory (or from predictions saved in real run
directories) and handed to the real ``best_columns``, ``recommend``, ``ranking``, ``pros_cons``,
``ensemble_column`` and ``classification_metrics``. Every expected value is worked out by hand
in a comment beside it.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from letterbench.core.errors import LetterbenchError
from letterbench.evaluation.evaluate import classification_metrics
from letterbench.reporting.columns import Column, ColumnCost
from letterbench.reporting.ensemble_column import ensemble_column
from letterbench.reporting.pros_cons import pros_cons
from letterbench.reporting.ranking import ranking, recommend
from letterbench.reporting.rows import ROWS, best_columns
from letterbench.runs.records import Stage
from letterbench.runs.rundir import RunDir

ROW = {row.key: row for row in ROWS}
METRIC_KEYS = ("top3_accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted")


def make_column(
    label: str,
    accuracy: float,
    flops: float = 1e9,
    gap: float | None = 0.0,
    *,
    log_loss: float = 0.5,
    train_time_s: float = 600.0,
    latency_ms: float = 2.0,
    images_per_s: float = 5000.0,
    inference_under_load: bool = False,
    run: RunDir | None = None,
) -> Column:
    """A final-phase column; costs not named are equal across columns, so they decide nothing."""
    metrics = {key: accuracy for key in METRIC_KEYS}
    metrics.update(accuracy=accuracy, roc_auc_micro=0.99, roc_auc_macro=0.99, log_loss=log_loss)
    fit = {"epoch": 1, "train_acc": None, "val_acc": None, "accuracy_gap": gap}
    stage = {
        "phase": "train",
        "label": label,
        "metrics": {**metrics, "test_images": 1000},
        "overfitting": {"at_best": fit, "at_end": fit},
        "most_confused": [],
    }
    cost = ColumnCost(
        flops_per_image=flops,
        parameters=1_000_000,
        train_time_s=train_time_s,
        latency_ms=latency_ms,
        inference_images_per_s=images_per_s,
        peak_memory_bytes=2**30,
        train_images_per_s=1000.0,
        train_load={"under_load": False},
        inference_load={"under_load": inference_under_load},
    )
    return Column(label, run, Stage.model_validate(stage, strict=False), cost)


# ---------------------------------------------------------------- the ★


def test_star_goes_to_highest_accuracy_and_lowest_log_loss():
    columns = [
        make_column("A", 0.90, log_loss=0.40),
        make_column("B", 0.94, log_loss=0.30),
        make_column("C", 0.92, log_loss=0.25),
    ]
    assert best_columns(ROW["accuracy"], columns) == {1}  # 94% is the highest
    assert best_columns(ROW["log_loss"], columns) == {2}  # 0.25 is the lowest


def test_star_for_gap_goes_to_smallest_magnitude():
    # |+0.05| = 0.05, |-0.18| = 0.18, |+0.01| = 0.01: the +0.01 column; the signed minimum
    # (-0.18) must not win.
    columns = [
        make_column("A", 0.9, gap=0.05),
        make_column("B", 0.9, gap=-0.18),
        make_column("C", 0.9, gap=0.01),
    ]
    assert best_columns(ROW["accuracy_gap"], columns) == {2}
    assert ROW["accuracy_gap"].text(columns[1]) == "-18.00 pts"


def test_star_for_speed_skips_columns_measured_under_load():
    # A is fastest (1.0 ms, 9000 img/s) but was measured under load: it takes no part, so the star
    # goes to C (3.0 ms < 5.0 ms; 6000 img/s > 4000 img/s), and A's figures carry a dagger.
    columns = [
        make_column("A", 0.9, latency_ms=1.0, images_per_s=9000, inference_under_load=True),
        make_column("B", 0.9, latency_ms=5.0, images_per_s=4000),
        make_column("C", 0.9, latency_ms=3.0, images_per_s=6000),
    ]
    assert best_columns(ROW["latency_ms"], columns) == {2}
    assert best_columns(ROW["inference_images_per_s"], columns) == {2}
    assert ROW["latency_ms"].text(columns[0]) == "1.0 ms †"
    assert ROW["inference_images_per_s"].text(columns[0]).endswith(" †")
    assert ROW["latency_ms"].text(columns[2]) == "3.0 ms"


def test_ties_share_the_star_and_one_comparable_value_gets_none():
    tied = [make_column("A", 0.94), make_column("B", 0.94), make_column("C", 0.90)]
    assert best_columns(ROW["accuracy"], tied) == {0, 1}
    # only B's latency is comparable (A and C were measured under load): no star at all
    loaded = [
        make_column("A", 0.9, latency_ms=1.0, inference_under_load=True),
        make_column("B", 0.9, latency_ms=5.0),
        make_column("C", 0.9, latency_ms=2.0, inference_under_load=True),
    ]
    assert best_columns(ROW["latency_ms"], loaded) == set()
    # only one known gap
    gaps = [make_column("A", 0.9, gap=None), make_column("B", 0.9, gap=0.02)]
    assert best_columns(ROW["accuracy_gap"], gaps) == set()


# ---------------------------------------------------------------- the recommendation


def scored(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image outcomes of two models A and B on the same test images."""
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither, dtype=bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither, dtype=bool)
    return a, b


def with_outcome(column: Column, outcome: np.ndarray) -> Column:
    column.outcome = outcome
    return column


def test_recommend_keeps_a_significantly_better_model_even_when_another_is_cheaper():
    # 200 images: A right on 188, B on 170; 20 only A gets, 2 only B gets. McNemar: 2 of 22 discordant,
    # p = 2 (1 + 22 + 231) / 2^22 = 508 / 4194304 = 0.000121: B is significantly less accurate.
    a, b = scored(20, 2, 168, 10)
    singles = [
        with_outcome(make_column("A", 188 / 200, 4e9), a),
        with_outcome(make_column("B", 170 / 200, 2e9), b),
    ]
    pick, why = recommend(singles)
    assert pick.label == "A"
    assert (
        why
        == "A has the highest test accuracy (94.00%), significantly above every other model (McNemar p ≤ 0.00012)"
    )


@pytest.mark.parametrize(
    ("b_flops", "expected", "why"),
    [
        # 5 only A, 3 only B: p = 2 (1 + 8 + 28 + 56) / 256 = 0.7265625; B costs 1.6/4 = 40%.
        (
            1.6e9,
            "B",
            "B is not significantly less accurate than A (93.00% vs 94.00%, McNemar p = 0.73) and needs "
            "40% of its FLOPs per image",
        ),
        # The same accuracies, but B costs more: A, and the sentence says B is no different.
        (
            5e9,
            "A",
            "A has the highest test accuracy (94.00%); B (p = 0.73) not significantly different, but no cheaper",
        ),
    ],
)
def test_recommend_prefers_a_cheaper_model_that_is_not_significantly_worse(b_flops, expected, why):
    a, b = scored(5, 3, 183, 9)
    assert (a.sum(), b.sum()) == (188, 186)
    singles = [
        with_outcome(make_column("A", 188 / 200, 4e9), a),
        with_outcome(make_column("B", 186 / 200, b_flops), b),
    ]
    pick, sentence = recommend(singles)
    assert (pick.label, sentence) == (expected, why)


def test_recommend_picks_the_cheapest_of_the_models_no_different_from_the_best():
    # B and C are each 5:3 against A (p = 0.73); C is the cheaper: C.
    a, b = scored(5, 3, 183, 9)
    singles = [
        with_outcome(make_column("A", 188 / 200, 4e9), a),
        with_outcome(make_column("B", 186 / 200, 2e9), b),
        with_outcome(make_column("C", 186 / 200, 1e9), b.copy()),
    ]
    assert recommend(singles)[0].label == "C"


def test_star_marks_every_accuracy_not_significantly_below_the_best():
    a, b = scored(5, 3, 183, 9)  # p = 0.73: both starred
    alike = [with_outcome(make_column("A", 0.94), a), with_outcome(make_column("B", 0.93), b)]
    assert best_columns(ROW["accuracy"], alike) == {0, 1}
    a, b = scored(20, 2, 168, 10)  # p = 0.00012: only the best
    apart = [with_outcome(make_column("A", 0.94), a), with_outcome(make_column("B", 0.85), b)]
    assert best_columns(ROW["accuracy"], apart) == {0}
    # Top-3 accuracy: starred where the column's interval reaches the best value (0.97).
    cols = [make_column("A", 0.9), make_column("B", 0.9), make_column("C", 0.9)]
    for c, (value, bounds) in zip(
        cols, [(0.97, [0.95, 0.99]), (0.95, [0.93, 0.97]), (0.93, [0.91, 0.96])], strict=True
    ):
        c.m.top3_accuracy = value
        c.stage.intervals = {"top3_accuracy": bounds}
    assert best_columns(ROW["top3_accuracy"], cols) == {0, 1}


# ---------------------------------------------------------------- the ranking


def test_ranking_orders_and_per_point_winners():
    # FLOPs per accuracy point: A 4e9/94 = 42.6 M, B 1.8e9/90.1 = 20.0 M, C 4.2e9/85 = 49.4 M -> B
    # Training seconds per point: A 600/94 = 6.38, B 500/90.1 = 5.55, C 300/85 = 3.53 -> C
    # |gap|: A 0.05, B 0.01, C 0.18 -> B (signed minimum would be C)
    singles = [
        make_column("A", 0.940, 4.0e9, gap=0.05, train_time_s=600),
        make_column("B", 0.901, 1.8e9, gap=0.01, train_time_s=500),
        make_column("C", 0.850, 4.2e9, gap=-0.18, train_time_s=300),
    ]
    result = ranking(singles, None)
    assert result.most_accurate == {"model": "A", "accuracy": 0.940}
    assert result.order_by_accuracy == [("A", 0.940), ("B", 0.901), ("C", 0.850)]
    assert result.cheapest_per_accuracy_point.model == "B"
    assert result.cheapest_per_accuracy_point.all["B"] == pytest.approx(1.8e9 / 90.1)
    assert result.fastest_training_per_accuracy_point.model == "C"
    assert result.smallest_train_val_gap.model == "B"
    assert result.recommendation == "A"  # the most accurate; no per-image outcomes to test against
    items = dict(result.items)
    gap_text = items["Smallest train − validation gap:"]
    assert gap_text.startswith("B (A +5.00, B +1.00, C -18.00 points at the best epoch).")
    assert "a negative one (validation above training accuracy)" in gap_text
    assert "it is not less overfitting" in gap_text
    assert items["Order by test accuracy:"] == "A (94.00%) > B (90.10%) > C (85.00%)."


# ---------------------------------------------------------------- pros and cons


def test_pros_and_cons_sentences():
    # A is the top (compared with runner-up B); B and C are compared with A.
    # A vs B: +3.90 points; FLOPs ratio 1.8/4 = 0.45 <= 1/1.1 -> con "2.2x the FLOPs of B".
    # B vs A: FLOPs ratio 4/1.8 = 2.22 >= 1.1 -> pro with "3.9 points less accuracy".
    # C vs A: FLOPs ratio 4/4.2 = 0.952, inside (1/1.1, 1.1) -> no sentence. Every other cost is
    # equal (ratio 1) -> no sentence. Widest |gap| is C's -0.18 -> the negative-gap sentence.
    singles = [
        make_column("A", 0.940, 4.0e9, gap=0.05),
        make_column("B", 0.901, 1.8e9, gap=0.01),
        make_column("C", 0.850, 4.2e9, gap=-0.18),
    ]
    out = pros_cons(singles)
    assert out == {
        "A": {
            "pros": ["most accurate: +3.90 points over B (94.00% vs 90.10%)"],
            "cons": ["2.2x the FLOPs per image of B"],
        },
        "B": {
            "pros": ["2.2x fewer FLOPs per image than A for 3.9 points less accuracy"],
            "cons": ["3.90 points less accurate than A (90.10% vs 94.00%)"],
        },
        "C": {
            "pros": [],
            "cons": [
                "9.00 points less accurate than A (85.00% vs 94.00%)",
                "validation accuracy 18.0 points above training accuracy at its best epoch: "
                "augmentation and dropout make training harder than validation; not overfitting, "
                "possibly underfitting",
            ],
        },
    }
    sentences = [s for v in out.values() for s in v["pros"] + v["cons"]]
    assert not [s for s in sentences if re.search(r"\b[a-z][A-Z]", s)]  # no "rOC AUC"


def test_pros_and_cons_skip_speed_measured_under_load():
    # B answers 4x faster than A (2.0 / 0.5), but B's latency was measured under load: no sentence.
    a = make_column("A", 0.94, latency_ms=2.0)
    b = make_column("B", 0.93, latency_ms=0.5, inference_under_load=True)
    out = pros_cons([a, b])
    assert out["B"]["pros"] == []
    assert out["A"]["cons"] == []


# ---------------------------------------------------------------- the ensemble


def _random_probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    raw = rng.random((n, k))
    return raw / raw.sum(1, keepdims=True)


def test_ensemble_is_scored_from_mean_of_saved_probabilities(tmp_path):
    rng = np.random.default_rng(7)
    class_names = ["a", "b", "c", "d", "e"]
    labels = rng.integers(0, 5, 40)
    p1, p2 = _random_probs(rng, 40, 5), _random_probs(rng, 40, 5)
    runs = [RunDir(tmp_path / "one"), RunDir(tmp_path / "two")]
    for run, probs in zip(runs, (p1, p2), strict=True):
        run.save_predictions("train", probs, labels, class_names)
    finals = [make_column("One", 0.5, run=runs[0]), make_column("Two", 0.5, run=runs[1])]

    ensemble = ensemble_column(finals, class_names)

    mean = (p1.astype(np.float32) + p2.astype(np.float32)) / 2  # saved as float32
    expected_accuracy = np.mean(mean.argmax(1) == labels)
    top3 = np.argsort(-mean, axis=1)[:, :3]
    expected_top3 = np.mean([label in row for label, row in zip(labels, top3, strict=True)])
    assert ensemble.accuracy == pytest.approx(expected_accuracy)
    assert ensemble.m.top3_accuracy == pytest.approx(expected_top3)
    assert ensemble.members == ["One", "Two"]
    assert ensemble.cost.flops_per_image == 2e9  # 1e9 + 1e9

    runs[1].save_predictions("train", p2, (labels + 1) % 5, class_names)
    with pytest.raises(LetterbenchError, match="different test sets"):
        ensemble_column(finals, class_names)


# ---------------------------------------------------------------- the metrics


def test_top3_misses_a_true_class_ranked_last():
    # image 0: a top, right; 1: b top, right; 2: c 3rd, wrong but in top 3;
    # 3: d has the LOWEST probability (4th), wrong and outside the top 3.
    probs = np.array(
        [
            [0.70, 0.15, 0.10, 0.05],
            [0.10, 0.60, 0.20, 0.10],
            [0.50, 0.30, 0.15, 0.05],
            [0.40, 0.30, 0.20, 0.10],
        ]
    )
    result = classification_metrics(probs, np.array([0, 1, 2, 3]), ["a", "b", "c", "d"])
    assert Fraction(result["metrics"]["accuracy"]) == Fraction(1, 2)
    assert Fraction(result["metrics"]["top3_accuracy"]) == Fraction(3, 4)


def _pairwise_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Fraction of (positive, negative) pairs with the positive scored higher; ties count 1/2."""
    pos, neg = scores[positive], scores[~positive]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


@pytest.mark.filterwarnings("ignore:'k' \\(3\\) greater than or equal to:UserWarning")
def test_macro_auc_skips_a_class_with_no_examples():
    # class z never appears. x: positives {0.6, 0.3} vs negatives {0.3, 0.2, 0.5}:
    #   0.6 beats all 3; 0.3 ties 0.3 (1/2), beats 0.2, loses to 0.5 -> 4.5 / 6 = 0.75
    # y: positives {0.6, 0.7, 0.2} vs negatives {0.3, 0.5}: 2 + 2 + 0 -> 4 / 6 = 2/3
    # macro = (3/4 + 2/3) / 2 = 17/24
    probs = np.array([[0.6, 0.3, 0.1], [0.3, 0.5, 0.2], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    labels = np.array([0, 0, 1, 1, 1])
    result = classification_metrics(probs, labels, ["x", "y", "z"])
    per_class = result["per_class"]
    auc_x = _pairwise_auc(probs[:, 0], labels == 0)
    auc_y = _pairwise_auc(probs[:, 1], labels == 1)
    assert (auc_x, auc_y) == (0.75, pytest.approx(2 / 3))
    assert per_class["x"]["roc_auc"] == pytest.approx(auc_x)
    assert per_class["y"]["roc_auc"] == pytest.approx(auc_y)
    assert per_class["z"]["roc_auc"] is None
    assert per_class["z"]["support"] == 0
    assert result["metrics"]["roc_auc_macro"] == pytest.approx(17 / 24)


# ---------------------------------------------------------------- not yet useful


def _tested(column: Column, images: int, classes: int = 26) -> Column:
    column.m.test_images = images
    column.stage.per_class = {chr(97 + k): {} for k in range(classes)}
    return column


@pytest.mark.parametrize(
    "accuracy, images, verdict",
    [
        (0.047, 260, "at chance: 4.7% of 260 test letters right, where guessing gets 3.8%"),
        (0.30, 10_000, "below the usefulness floor: 30.0%"),  # far above chance, still no use
        (0.62, 260, None),
    ],
)
def test_no_model_is_recommended_where_even_the_best_is_not_yet_useful(accuracy, images, verdict):
    singles = [_tested(make_column("A", accuracy), images), _tested(make_column("B", accuracy * 0.9), images)]
    result = ranking(singles, None)
    if verdict is None:
        assert result.recommendation == "A" and result.not_useful is None
        return
    assert result.recommendation == "none" and verdict in result.not_useful
    assert result.why.startswith("these models are not yet useful, so none is recommended: the best, A, is")
    assert "--preset quick" in result.why


def test_models_not_yet_useful_take_no_star_in_any_row():
    # Five models at chance on 260 letters of 26 classes (3.8% is guessing): the best of guesses
    # is no best, so no row has a ★, although the values differ.
    at_chance = [
        _tested(make_column(label, acc, flops=flops, log_loss=loss), 260)
        for label, acc, flops, loss in [
            ("A", 0.047, 2e8, 3.2),
            ("B", 0.047, 5e8, 3.9),
            ("C", 0.062, 1e9, 3.3),
        ]
    ]
    assert all(best_columns(row, at_chance) == set() for row in ROWS)
    # Two useful models and one at chance that is the cheapest: the ★ for FLOPs goes to the
    # cheaper useful model (B, 5e8 < 1e9), not to the one that reads nothing (C, 2e8).
    mixed = [
        _tested(make_column("A", 0.92, flops=1e9), 260),
        _tested(make_column("B", 0.90, flops=5e8), 260),
        _tested(make_column("C", 0.04, flops=2e8), 260),
    ]
    assert best_columns(ROW["flops_per_image"], mixed) == {1}
    assert 2 not in best_columns(ROW["accuracy_gap"], mixed)  # C's gap is as small as the others'


# ---------------------------------------------------------------- the report's details


def test_a_difference_that_rounds_to_zero_is_printed_without_a_sign():
    from letterbench.reporting.comparisons import Comparison, _cell

    # -1e-9 points rounds to 0.00: "0.00", never "-0.00"; a real difference keeps its sign
    assert _cell(Comparison("A", "B", -1e-11, [-1e-11, 0.0], 1.0, {}), 1) == "0.00 pts (0.0 to 0.0), p = 1"
    assert _cell(Comparison("A", "B", -0.0156, [-0.094, 0.062], 1.0, {}), 1) == (
        "-1.56 pts (-9.4 to +6.2), p = 1"
    )


def test_the_inference_row_names_the_batch_its_speeds_were_measured_at():
    a, b = make_column("A", 0.9), make_column("B", 0.8)
    a.cost.inference_batch = b.cost.inference_batch = 16  # the smoke preset's
    assert (
        ROW["inference_images_per_s"].label_for([a, b])
        == "Inference throughput (batch 16; median, quartiles)"
    )
    b.cost.inference_batch = 256
    assert ROW["inference_images_per_s"].label_for([a, b]).startswith("Inference throughput (batch 16/256;")
    assert "batch" not in ROW["inference_images_per_s"].text(a)  # said once, in the label


def test_labels_of_close_points_do_not_overprint_each_other():
    import matplotlib.pyplot as plt

    from letterbench.reporting.plots import _place_labels

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    spots = {(1.10, 6.25): ["Xception fine-tune"], (1.35, 6.25): ["Ensemble"], (0.24, 4.69): ["ResNet-18"]}
    for x, y in spots:
        ax.scatter(x, y)
    ax.set_xscale("log")
    boxes = _place_labels(ax, spots)
    plt.close(fig)
    assert len(boxes) == 3
    assert not any(p.overlaps(q) for i, p in enumerate(boxes) for q in boxes[i + 1 :])
