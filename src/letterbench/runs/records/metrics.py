"""A run's metrics.json as a record (``RunMetrics``, schema ``METRICS_SCHEMA``): what
``letterbench evaluate`` measured of each phase's best model, and what the run cost."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from letterbench.runs.records.base import (
    Count,
    NonNegative,
    Pair,
    Positive,
    Recorded,
    RecordedRecipe,
    RunKey,
    Share,
)

METRICS_SCHEMA = "letterbench-metrics-3"  # what evaluate writes; RunDir.read_metrics reads no other


class StageMetrics(Recorded):
    """The study's figures of one phase's best model on the test images (scikit-learn's)."""

    test_images: Annotated[int, Field(ge=1)]
    accuracy: Share
    top3_accuracy: Share
    precision_macro: Share
    recall_macro: Share
    f1_macro: Share
    f1_weighted: Share
    roc_auc_micro: Share
    roc_auc_macro: Share | None  # None where no class has both kinds of example
    log_loss: NonNegative


class PerClass(Recorded):
    precision: Share
    recall: Share
    f1: Share
    support: Count


class Confused(Recorded):
    true: str
    predicted: str
    count: Count


class Fit(Recorded):
    """Training against validation at one epoch: accuracies, losses and their gaps."""

    epoch: Annotated[int, Field(ge=1)]
    train_acc: Share | None
    val_acc: Share | None
    accuracy_gap: float | None


class Overfitting(Recorded):
    at_best: Fit  # the epoch of the lowest validation loss (the one kept)
    at_end: Fit  # the phase's last epoch


# A field below without ``| None`` may be absent (a run evaluated by an older version) but not null:
# where it is present, the report reads it as this shape.
class Stage(Recorded):
    """One phase's best checkpoint on the test set (for Xception: the head-only model and the
    fine-tuned one, the study's two columns). The report adds the fields after ``epoch`` to the
    stages it shows (a model's seeds together, the ensemble, a ``--real-world`` reading)."""

    phase: str
    label: str
    metrics: StageMetrics
    most_confused: list[Confused]  # largest first
    per_class: dict[str, PerClass] = None  # by class name, with roc_auc (None where undefined)
    confusion_matrix: Annotated[list[list[Count]], Field(min_length=2)] = None  # rows true, columns predicted
    # 95% bootstrap intervals of accuracy, top3_accuracy and f1_macro over the test images, with the
    # level, resamples and seed (``evaluation.stats``)
    intervals: dict[str, Pair | float] = None
    overfitting: Overfitting = None
    epoch: Annotated[int, Field(ge=1)] = None  # the global epoch of the best checkpoint
    trainable: str = None  # what the phase really trained (all, where a frozen base had no weights)
    trainable_parameters: Count = None
    predictions: str = None  # the file in the run directory with the test probabilities
    # the temperature fitted on the validation split, its NLL and ECE before and after, the unsure
    # threshold and the validation share below it, the test ECE before and after
    calibration: dict[str, Any] = None
    real_world: dict[str, Any] = None  # the reading of a --real-world folder (``evaluation.real_world``)
    seeds: int | None = None  # the report's: seeds averaged in this column
    seed_std: dict[str, float] | None = None  # the report's: each figure's standard deviation over them
    real_world_top1: float | None = None  # the report's: top-1 and top-3 on a --real-world folder
    real_world_top3: float | None = None
    real_world_images: int | None = None
    chosen: dict[str, Any] | None = None  # the report's ensemble column: the recorded choice

    @property
    def gap(self) -> float | None:
        """Train - validation accuracy at the best epoch, where recorded."""
        return self.overfitting.at_best.accuracy_gap if self.overfitting else None

    @property
    def temperature(self) -> Any:
        """The temperature as recorded (checked by ``inference.checked_temperature``), or None."""
        return self.calibration.get("temperature") if isinstance(self.calibration, dict) else None


class Cost(Recorded):
    """What the run cost: its size, its training time and speeds, measured. Each speed comes with
    ``<name>_spread``, the quartiles [q1, q3] of the repeated samples behind it, and the CPU load
    other processes put on the machine meanwhile (``train_load``, ``inference_load``: under_load
    true makes the speed figures noise)."""

    parameters: Annotated[int, Field(ge=1)]
    flops_per_image: Annotated[float, Field(gt=0)]
    train_time_s: Annotated[dict[str, NonNegative], Field(min_length=1)]  # per phase, and total
    trainable_parameters: dict[str, Count] = None  # per phase
    train_images_per_s: Positive = None
    inference_images_per_s: Positive = None  # at ``inference_batch``
    latency_ms: Positive = None  # one image, median
    peak_memory_bytes: Count | None = None  # training's, of ``peak_memory_kind``
    inference_batch: Annotated[int, Field(ge=1)] = None
    train_load: dict[str, Any] = None
    inference_load: dict[str, Any] = None


class RunData(Recorded):
    """The data of the run's config, with the test subset it was evaluated on."""

    split: str
    train_used: Count
    val_used: Count
    test_used: Count
    verdict: str  # complete, or a partial copy (not comparable with published figures)
    sha256: dict[str, str] = None
    partial: bool = False
    train_per_class: int | None = None
    test_per_class: int | None = None
    class_names: list[str] = None
    extra_letters: int = None  # drawn for the recipe's data.synthetic share (the config's)


class RunInfo(Recorded):
    dir: str
    model: str
    label: str
    seed: int
    pretrained: str
    notes: list[str]
    recipe: RecordedRecipe
    data: RunData
    versions: dict[str, str]
    epochs_trained: int | None = None  # the global epoch it was evaluated at (a later one: stale)
    device: dict[str, Any] = None  # where it trained (``Runtime.describe``)

    @property
    def key(self) -> RunKey:
        return RunKey(self.model, self.seed)


class RunMetrics(Recorded):
    """A run's metrics.json (schema ``METRICS_SCHEMA``), written by ``letterbench evaluate``: the
    run, a ``Stage`` per phase in order, its ``Cost``, and the class names."""

    schema_: str = Field(alias="schema")
    run: RunInfo
    class_names: Annotated[list[str], Field(min_length=2)]
    stages: Annotated[list[Stage], Field(min_length=1)]
    cost: Cost
    time_budget: dict[str, NonNegative] = None  # seconds by part of the evaluation's wall clock
