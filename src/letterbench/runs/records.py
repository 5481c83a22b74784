"""The files a run keeps (config, progress, metrics) as typed records, checked when they are
read, a run's identity (``RunKey``), and a study's ensemble choice (``EnsembleChoice``,
``ensemble.json``).

``RunDir`` returns these records and readers use their fields; a hand-edited or damaged file gives
one clear line naming the file and what is wrong with it, instead of a KeyError deep in an
evaluation. Only what readers rely on is declared; everything else a file holds passes through
(``to_json`` gives the file's content back, as it was read).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from letterbench.core.errors import TrainingError

METRICS_SCHEMA = "letterbench-metrics-3"  # what evaluate writes; RunDir.read_metrics reads no other


class RunKey(NamedTuple):
    """Which run: its model and seed. ``seeded``: named with its seed, as a model's further seeds
    are wherever several seeds of it are listed ("resnet18 (seed 1)"; the first is "resnet18")."""

    model: str
    seed: int
    seeded: bool = False

    def __str__(self) -> str:
        return f"{self.model} (seed {self.seed})" if self.seeded else self.model

    @property
    def label(self) -> str:
        """As the report names it: the model's display name, with the seed where ``seeded``."""
        from letterbench.models.registry import display_name

        name = display_name(self.model)
        return f"{name} (seed {self.seed})" if self.seeded else name


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    def to_json(self) -> dict[str, Any]:
        """The record as its file holds it: the keys it was read or built with, extras included."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class ModelRecord(_Recorded):
    name: str  # the registered model (``resnet18``) or ``timm:<architecture>``
    pretrained: str  # the weights the base started from: none, or which ImageNet tag / file
    notes: list[str]  # what the model's build said (weights substituted, layers frozen...)


class DataRecord(_Recorded):
    split: str  # the EMNIST split (letters, balanced, ...)
    sha256: dict[str, str]  # of each of the four files trained and tested on
    data_dir: str  # where they were read from
    train_per_class: int | None  # the stratified training subset per class; None: all
    class_names: Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(min_length=2)
    ]  # a model needs 2+ classes
    train_used: int = None  # training images the run trained on
    val_used: int = None  # images it validated on (held out of them)


Share = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class EpochRecord(_Recorded):
    """One finished epoch, as progress.json's ``history`` holds it (losses on the training and
    validation images, the LR at its end, its speed, and what trained)."""

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
    other_cpu_cores: float | None = None  # CPU other processes used meanwhile, in cores
    early_stop: bool = False  # the phase's early-stopping rule ended it here


class RunProgress(_Recorded):
    """A run's progress.json: rewritten after every epoch (behind that epoch's checkpoint)."""

    status: str  # running, finished, failed, interrupted
    history: Annotated[list[EpochRecord], Field(min_length=1)]
    phase_times_s: dict[str, NonNegative]  # seconds of training per phase
    time_budget: dict[str, NonNegative] = None  # seconds by part of the run's wall clock
    peak_memory: dict[str, Any] = None  # bytes and what kind of peak (GPU allocated, process RSS)

    @property
    def last(self) -> EpochRecord:
        return self.history[-1]


class RecipeRecord(_Recorded):
    """The recipe as the run recorded it (``Recipe.to_dict``); ``training.recipes`` reads it whole."""

    name: str
    model: str
    phases: Annotated[list[dict[str, Any]], Field(min_length=1)]
    val_fraction: float = 0.1
    dropout: float | None = None

    @property
    def phase_names(self) -> list[str]:
        return [str(p.get("name")) for p in self.phases]

    @property
    def epochs(self) -> int:
        """The most epochs it trains, over every phase (early stopping may end one sooner)."""
        return sum(int(p.get("epochs", 0)) for p in self.phases)


class StageMetrics(_Recorded):
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


Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class PerClass(_Recorded):
    precision: Share
    recall: Share
    f1: Share
    support: Count


class Confused(_Recorded):
    true: str
    predicted: str
    count: Count


class Fit(_Recorded):
    """Training against validation at one epoch: accuracies, losses and their gaps."""

    epoch: Annotated[int, Field(ge=1)]
    train_acc: Share | None
    val_acc: Share | None
    accuracy_gap: float | None


class Overfitting(_Recorded):
    at_best: Fit  # the epoch of the lowest validation loss (the one kept)
    at_end: Fit  # the phase's last epoch


# A field below without ``| None`` may be absent (a run evaluated by an older version) but not null:
# where it is present, the report reads it as this shape.
class Stage(_Recorded):
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


class Cost(_Recorded):
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


class RunData(_Recorded):
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


class RunInfo(_Recorded):
    dir: str
    model: str
    label: str
    seed: int
    pretrained: str
    notes: list[str]
    recipe: RecipeRecord
    data: RunData
    versions: dict[str, str]
    epochs_trained: int | None = None  # the global epoch it was evaluated at (a later one: stale)
    device: dict[str, Any] = None  # where it trained (``Runtime.describe``)

    @property
    def key(self) -> RunKey:
        return RunKey(self.model, self.seed)


class RunMetrics(_Recorded):
    """A run's metrics.json (schema ``METRICS_SCHEMA``), written by ``letterbench evaluate``: the
    run, a ``Stage`` per phase in order, its ``Cost``, and the class names."""

    schema_: str = Field(alias="schema")
    run: RunInfo
    class_names: Annotated[list[str], Field(min_length=2)]
    stages: Annotated[list[Stage], Field(min_length=1)]
    cost: Cost
    time_budget: dict[str, NonNegative] = None  # seconds by part of the evaluation's wall clock


class RunConfig(_Recorded):
    """A run's config.json: what it trains and on what, written when it starts (and again, with
    a ``history`` entry, when a resume changes its epochs or LR)."""

    recipe: RecipeRecord
    seed: int
    model: ModelRecord
    data: DataRecord
    command: list[str] = None  # the command line that started it
    device: dict[str, Any] = None  # ``Runtime.describe``: where it trained
    versions: dict[str, str] = None  # of letterbench, Python and the libraries
    history: list[dict[str, Any]] = None  # changes made on resume: when, what, the recipe before

    @property
    def key(self) -> RunKey:
        return RunKey(self.model.name, self.seed)

    def split(self, data):
        """The train/validation split the run trained with, drawn again (``data.splits``)."""
        from letterbench.data.splits import make_split

        return make_split(data, self.recipe.val_fraction, self.seed, self.data.train_per_class)


class Issue(NamedTuple):
    """One of pydantic's validation errors, as the messages that name it read it."""

    loc: tuple
    type: str
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None

    @classmethod
    def all_of(cls, exc: ValidationError) -> list[Issue]:
        return [cls(*(err.get(name) for name in cls._fields)) for err in exc.errors(include_url=False)]

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.loc)


def checked(path: Path, content: Any, model: type[BaseModel], fix: str = "") -> Any:
    """``content`` (read from ``path``) as the record ``model`` describes; else one clear error."""
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        issue = Issue.all_of(exc)[0]
        if issue.type == "missing":
            problem = f"no {issue.where!r}"
        else:
            message = "not a JSON object" if issue.type == "model_type" else issue.msg.lower()
            problem = f"{issue.where}: {message}" if issue.where else message
        raise TrainingError(f"{path} is damaged ({problem})" + (f"; {fix}" if fix else "")) from None


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
