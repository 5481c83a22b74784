"""A run's config.json and progress.json as records: what it trains and on what, and how far it
has come (one ``EpochRecord`` per finished epoch)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from letterbench.runs.records.base import NonNegative, Recorded, RecordedRecipe, RunKey, Share


class ModelRecord(Recorded):
    name: str  # the registered model (``resnet18``) or ``timm:<architecture>``
    pretrained: str  # the weights the base started from: none, or which ImageNet tag / file
    notes: list[str]  # what the model's build said (weights substituted, layers frozen...)


class DataRecord(Recorded):
    split: str  # the EMNIST split (letters, balanced, ...)
    sha256: dict[str, str]  # of each of the four files trained and tested on
    data_dir: str  # where they were read from
    train_per_class: int | None  # the stratified training subset per class; None: all
    class_names: Annotated[
        list[Annotated[str, Field(min_length=1)]], Field(min_length=2)
    ]  # a model needs 2+ classes
    train_used: int = None  # training images the run trained on
    val_used: int = None  # images it validated on (held out of them)
    # extra letters drawn for the recipe's data.synthetic share (its data.pool, or fewer on a short
    # run: ``letters_used``); a resume draws this many again. Unset: none, or a run from before.
    extra_letters: int = None


class EpochRecord(Recorded):
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


class RunProgress(Recorded):
    """A run's progress.json: rewritten after every epoch (behind that epoch's checkpoint)."""

    status: str  # running, finished, failed, interrupted
    history: Annotated[list[EpochRecord], Field(min_length=1)]
    phase_times_s: dict[str, NonNegative]  # seconds of training per phase
    time_budget: dict[str, NonNegative] = None  # seconds by part of the run's wall clock
    peak_memory: dict[str, Any] = None  # bytes and what kind of peak (GPU allocated, process RSS)
    phase: str = None  # the phase it is in (or ended in)
    epochs_done: int = None  # epochs finished, each behind its checkpoint
    best_val_loss: float = None  # the lowest validation loss so far (Infinity before the first epoch)

    @classmethod
    def built(cls, history: list[dict[str, Any]], **fields: Any) -> RunProgress:
        """What the trainer writes, built as it stands (before the first epoch too: no history, an
        infinite best loss); reading it back checks it."""
        return cls.model_construct(history=[EpochRecord.model_construct(**h) for h in history], **fields)

    def with_status(self, status: str) -> RunProgress:
        return self.model_copy(update={"status": status})

    @property
    def last(self) -> EpochRecord:
        return self.history[-1]


class RunConfig(Recorded):
    """A run's config.json: what it trains and on what, written when it starts (and again, with
    a ``history`` entry, when a resume changes its epochs or LR)."""

    recipe: RecordedRecipe  # read and checked whole as the recipe it was
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
