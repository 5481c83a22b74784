"""The comparison's rows: each figure of a column, how it is written, and which values get the ★:
the best of the row and every value not significantly worse (in accuracy by McNemar's test
against the best, in top-3 accuracy and macro F1 where the value's 95% bootstrap interval reaches
the best value). Speeds measured under load take no ★, and neither does any figure of a model
that is not yet useful (at chance, or below the usefulness floor): the best of guesses is no best."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from letterbench.evaluation.stats import ALPHA
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
        """The value the ★ compares, or None where it takes no part (missing, measured under load,
        or of a model that is not yet useful)."""
        value = self.get(column)
        if value is None or (self.load and column.under_load(self.load)) or column.not_useful:
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
    than two columns have a comparable value (``Row.comparable``: a model not yet useful has none)."""
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
