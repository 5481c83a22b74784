"""The study's presets: how much data, how many epochs and seeds ``letterbench run`` uses. Kept
apart from ``study`` so that the command line can list them without importing what a study runs."""

from __future__ import annotations

from dataclasses import dataclass

# The source study's three models: what a study compares unless its preset or --models says.
STUDY_MODELS = ("resnet18", "densenet121", "xception")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    # how long it takes, as every text that says so quotes it (the README's presets table, the
    # guide, docs/benchmarks.md where it was measured, `run --help`, the line `run` starts with)
    takes: str = ""
    train_per_class: int | None = None  # stratified training subset, the same for every model; None = all
    test_per_class: int | None = None  # stratified test subset, the same for every model; None = all
    total_epochs: int | None = None  # per model, shared out over its phases; None = the recipe's
    overrides: tuple[str, ...] = ()  # --set overrides for every recipe
    large_batch: int | None = None  # the large-batch mode's batch (``scale_batch``); None = the recipe's
    seeds: int = 1  # seeds per model unless --seeds says otherwise
    speed_batch: int = 256  # the batch inference throughput is measured at
    models: tuple[str, ...] = STUDY_MODELS  # what the study trains unless --models says
    # seconds between checkpoints (0: every epoch): a GPU's epochs take a second or less, and
    # writing a checkpoint after each would cost more than training it
    checkpoint_every: float = 0.0


# Measured on a 2-core CPU with the partial EMNIST copy (docs/benchmarks.md, "Preset times").
FIRST_TAKES, SMOKE_TAKES, QUICK_TAKES = "about 2 minutes", "about 20 seconds", "about 4 minutes"
CPU_TIMED = ("first", "smoke", "quick")

PRESETS = {
    # One small model on 360 images per letter, the same work on any copy: a model that reads
    # letters in minutes on a 2-core CPU (docs/benchmarks.md), to serve and try before a study.
    "first": Preset(
        "first",
        "a first useful model on a CPU: the small CNN alone, trained on 360 images per letter (the "
        "same work on any copy of EMNIST) and tested on the whole test set; serve it, then run a study",
        takes=FIRST_TAKES,
        models=("smallcnn",),
        train_per_class=360,  # about the partial copy's count; the official copy's 4,800 would take 14x longer
        speed_batch=64,
        # the reader recipe's widening: real handwriting and synthetic letters on top of every
        # batch, and a wider slant, so that the page's first model reads how people write
        overrides=("data.synthetic=0.25", "data.handwriting=0.6", "augment.shear=0.2"),
    ),
    "smoke": Preset(
        "smoke",
        "4 images per class, one epoch per phase, inference speed at batch 16; for tests and trying the tool",
        takes=SMOKE_TAKES,
        train_per_class=4,
        test_per_class=3,
        total_epochs=1,
        overrides=("val_fraction=0.25", "batch_size=32"),
        speed_batch=16,
    ),
    # Sized from the engine's training throughput measured on the 2-core CPU this project runs on
    # (AMD EPYC, 2 threads: ResNet-18 93, DenseNet-121 56, Xception 29 images/s at the recipes'
    # batch sizes): 80 images per class for 5 epochs is about 10 minutes of training for the three
    # models, within 15 minutes with validation, precise BN and evaluation (see docs/benchmarks.md).
    "quick": Preset(
        "quick",
        "a real study sized for a 2-core CPU: every model trains on the same "
        "stratified subset (80 images per class) for 5 epochs and is tested on the same stratified "
        "test subset (60 per class)",
        train_per_class=80,
        test_per_class=60,
        total_epochs=5,
        takes=QUICK_TAKES,
    ),
    "paper": Preset(
        "paper",
        "the study's full recipes on the full data, ImageNet weights where they can be had, three seeds "
        "per model (a GPU affords them)",
        takes="hours on a CPU (it prints an estimate first); minutes on a GPU",
        seeds=3,
        checkpoint_every=30.0,
    ),
    "fast": Preset(
        "fast",
        "the paper preset in the large-batch mode, for a GPU: batch 1024, each recipe's learning rate "
        "scaled to it (linear for SGD, square root for Adam) with a warm-up, three seeds per model",
        large_batch=1024,
        takes="minutes on a GPU",
        seeds=3,
        checkpoint_every=30.0,
    ),
}
