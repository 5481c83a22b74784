"""The shapes of the files a run keeps (config, progress, metrics), checked when they are read, and
of a study's ensemble choice (``EnsembleChoice``, ``ensemble.json``).

A hand-edited or damaged file then gives one clear line naming the file and what is wrong with it,
instead of a KeyError deep in an evaluation. Only what readers rely on is required; everything else
a file holds passes through.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from letterbench.core.errors import TrainingError

METRICS_SCHEMA = "letterbench-metrics-3"  # what evaluate writes; RunDir.read_metrics reads no other


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class _ModelRecord(_Recorded):
    name: str
    pretrained: str
    notes: list[str]


class _DataRecord(_Recorded):
    split: str
    sha256: dict[str, str]
    data_dir: str
    train_per_class: int | None
    class_names: Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(min_length=2)
    ]  # a model needs 2+ classes


Share = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class _Epoch(_Recorded):
    phase: str
    epoch: Annotated[int, Field(ge=1)]
    global_epoch: Annotated[int, Field(ge=1)]
    train_loss: float
    train_acc: Share
    val_loss: float
    val_acc: Share
    lr: NonNegative
    images_per_s: Annotated[float, Field(gt=0)]
    train_time_s: NonNegative
    trainable: str


class RunProgress(_Recorded):
    """What a run's progress.json must hold for an evaluation to read it."""

    status: str
    history: Annotated[list[_Epoch], Field(min_length=1)]
    phase_times_s: dict[str, NonNegative]
    time_budget: dict[str, NonNegative] = None  # seconds by part of the run's wall clock


class _StageMetrics(_Recorded):
    test_images: Annotated[int, Field(ge=1)]
    accuracy: Share
    top3_accuracy: Share
    precision_macro: Share
    recall_macro: Share
    f1_macro: Share
    f1_weighted: Share
    roc_auc_micro: Share
    roc_auc_macro: Share | None
    log_loss: NonNegative


Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class _PerClass(_Recorded):
    precision: Share
    recall: Share
    f1: Share
    support: Count


class _Confused(_Recorded):
    true: str
    predicted: str
    count: Count


class _Fit(_Recorded):
    epoch: Annotated[int, Field(ge=1)]
    train_acc: Share | None
    val_acc: Share | None
    accuracy_gap: float | None


class _Overfitting(_Recorded):
    at_best: _Fit
    at_end: _Fit


# A field below without ``| None`` may be absent (a run evaluated by an older version) but not null:
# where it is present, the report reads it as this shape.
class _Stage(_Recorded):
    phase: str
    label: str
    metrics: _StageMetrics
    most_confused: list[_Confused]
    per_class: dict[str, _PerClass] = None
    confusion_matrix: Annotated[list[list[Count]], Field(min_length=2)] = None
    intervals: dict[str, Pair | float] = None
    overfitting: _Overfitting = None
    epoch: Annotated[int, Field(ge=1)] = None


class _Cost(_Recorded):
    parameters: Annotated[int, Field(ge=1)]
    flops_per_image: Annotated[float, Field(gt=0)]
    train_time_s: Annotated[dict[str, NonNegative], Field(min_length=1)]
    trainable_parameters: dict[str, Count] = None
    train_images_per_s: Positive = None
    inference_images_per_s: Positive = None
    latency_ms: Positive = None
    peak_memory_bytes: Count | None = None
    inference_batch: Annotated[int, Field(ge=1)] = None


class _RunData(_Recorded):
    split: str
    train_used: Count
    val_used: Count
    test_used: Count
    verdict: str


class _RunInfo(_Recorded):
    dir: str
    model: str
    label: str
    seed: int
    pretrained: str
    notes: list[str]
    recipe: dict[str, Any]
    data: _RunData
    versions: dict[str, str]


class RunMetrics(_Recorded):
    """What a run's metrics.json must hold for a report to read it."""

    schema_: str = Field(alias="schema")
    run: _RunInfo
    class_names: Annotated[list[str], Field(min_length=2)]
    stages: Annotated[list[_Stage], Field(min_length=1)]
    cost: _Cost
    time_budget: dict[str, NonNegative] = None  # seconds by part of the evaluation's wall clock


class _RecipeRecord(_Recorded):
    name: str
    model: str
    phases: Annotated[list[dict[str, Any]], Field(min_length=1)]


class RunConfig(_Recorded):
    """What a run's config.json must hold, with its types, to be resumed, evaluated or loaded."""

    recipe: _RecipeRecord
    seed: int
    model: _ModelRecord
    data: _DataRecord


def checked(path: Path, content: Any, model: type[BaseModel], fix: str = "") -> Any:
    """``content`` (read from ``path``) if it has the shape ``model`` describes; else one clear error."""
    try:
        model.model_validate(content)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            problem = f"no {where!r}"
        else:
            message = "not a JSON object" if err["type"] == "model_type" else err["msg"].lower()
            problem = f"{where}: {message}" if where else message
        raise TrainingError(f"{path} is damaged ({problem})" + (f"; {fix}" if fix else "")) from None
    return content


# ---------------------------------------------------------------- a study's ensemble.json


@dataclass
class EnsembleChoice:
    members: list[str]  # model names, in the order given
    images: int  # held-out images the choice was made on (0: not chosen, the mean of all)
    held_out: str  # which images those were, or why none
    candidates: list[dict[str, Any]] = field(default_factory=list)  # members, nll, accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any, models: list[str]) -> EnsembleChoice | None:
        """A recorded choice, if it is well formed and names only ``models`` (else None)."""
        try:
            choice = cls(**record)
        except TypeError:
            return None
        members, images = choice.members, choice.images
        if not (isinstance(members, list) and members and all(isinstance(m, str) for m in members)):
            return None
        if not set(members) <= set(models) or not isinstance(images, int) or isinstance(images, bool):
            return None
        return choice

    def _accuracy(self) -> str:
        scored = {frozenset(c["members"]): c["accuracy"] for c in self.candidates}
        chosen = scored.get(frozenset(self.members))
        singles = [v for k, v in scored.items() if len(k) == 1]
        if chosen is None or not singles:
            return "no scores recorded"
        return f"{100 * chosen:.1f}% against {100 * max(singles):.1f}% for the best single model"

    def describe(self) -> str:
        """How the members were chosen, in a clause: "the mean of all models (why)" or which images."""
        if not self.images:
            return f"the mean of all models ({self.held_out})"
        return (
            f"the subset of the models whose mean was the most accurate on {self.images:,} "
            f"{self.held_out} ({self._accuracy()})"
        )
