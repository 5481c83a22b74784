"""`letterbench train`: a training run from a recipe into a run directory, or its continuation."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from letterbench import __version__
from letterbench.data.emnist import (
    EmnistData,
    load_emnist,
    resolve_data_dir,
    stratified_split,
    stratified_subset,
)
from letterbench.distributed import barrier
from letterbench.errors import TrainingError
from letterbench.models import LetterModel, count_parameters, create_model
from letterbench.rundir import RunDir
from letterbench.runtime import Runtime
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import standard_observers, summary_writer_class
from letterbench.training.recipes import Recipe, recipe_from_dict


def package_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import timm

    return {
        "letterbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


@dataclass
class Split:
    """Indices into the official train set: what trains, what validates."""

    train: torch.Tensor
    val: torch.Tensor


def make_split(data: EmnistData, val_fraction: float, seed: int, train_per_class: int | None) -> Split:
    pool = torch.arange(len(data.train_labels))
    if train_per_class:
        pool = stratified_subset(data.train_labels, train_per_class, seed)
    train, val = stratified_split(data.train_labels[pool], val_fraction, seed)
    return Split(pool[train], pool[val])


@dataclass
class TrainOptions:
    """What a training run is asked to do, beyond its recipe."""

    data_dir: Path | None = None
    split: str = "letters"
    seed: int = 0
    train_per_class: int | None = None
    progress: bool = True
    compile: bool = False
    tensorboard: bool = False


def train(
    recipe: Recipe | None,
    out: str | Path | RunDir,
    runtime: Runtime,
    options: TrainOptions | None = None,
    resume: bool = False,
) -> RunDir:
    """Train ``recipe`` into run directory ``out``; with ``resume`` continue the run already there
    (its recorded recipe, seed and data are used, ``recipe`` may be None)."""
    run = out if isinstance(out, RunDir) else RunDir(out)
    options = options or TrainOptions()
    if resume:
        config = run.read_config()
        if run.status() == "finished":
            if runtime.dist.is_main:
                print(f"{run}: already finished; nothing to resume")
            return run
        recipe = recipe_from_dict(config["recipe"], str(run.config_file))
        data = run.load_data(options.data_dir, config)
        seed, per_class = config["seed"], config["data"]["train_per_class"]
    else:
        if not run.is_empty():
            state = run.status() if run.is_run() else "not a letterbench run"
            raise TrainingError(
                f"run directory {run} already exists ({state}); continue it with --resume, "
                "or pass another --out (nothing was overwritten)"
            )
        data = load_emnist(options.data_dir, options.split)
        seed, per_class, config = options.seed, options.train_per_class, None
    if options.tensorboard:
        summary_writer_class()  # every rank fails alike where tensorboard is missing
    barrier(runtime.dist)  # every rank has looked at the run directory before rank 0 writes into it
    chosen = make_split(data, recipe.val_fraction, seed, per_class)
    model, tensors = _model_and_tensors(recipe, data, chosen, seed, config if resume else None, runtime)
    main = runtime.dist.is_main
    observers = standard_observers(run, options.progress, options.tensorboard) if main else []
    trainer = Trainer(recipe, model, tensors, runtime, run, seed, observers, compile=options.compile)
    if not resume and main:
        run.write_config(_config(recipe, model, trainer, data, chosen, options, runtime))
    barrier(runtime.dist)
    if main and options.progress:
        print(
            f"{'resuming' if resume else 'training'} {recipe.name} on {len(chosen.train):,} images "
            f"(val {len(chosen.val):,}), {runtime.name}, world size {runtime.dist.world} -> {run}"
        )
    trainer.fit(resume=resume)
    return run


def _model_and_tensors(
    recipe: Recipe, data: EmnistData, chosen: Split, seed: int, resumed: dict | None, runtime: Runtime
) -> tuple[LetterModel, TrainData]:
    """The model to train (initialised from the seed; a resumed run's weights come from its
    checkpoint) and its training and validation images on the training device."""
    torch.manual_seed(seed)  # initial weights
    model = create_model(
        recipe.model,
        data.num_classes,
        pretrained=False if resumed else recipe.pretrained_arg,
        weights=None if resumed else recipe.weights,
        dropout=recipe.dropout,
    )
    if resumed:
        model.pretrained, model.notes = resumed["model"]["pretrained"], resumed["model"]["notes"]
    dev = runtime.device
    tensors = TrainData(
        data.train_images[chosen.train].to(dev),
        data.train_labels[chosen.train].to(dev),
        data.train_images[chosen.val].to(dev),
        data.train_labels[chosen.val].to(dev),
    )
    return model, tensors


def _config(
    recipe: Recipe,
    model: LetterModel,
    trainer: Trainer,
    data: EmnistData,
    chosen: Split,
    options: TrainOptions,
    runtime: Runtime,
) -> dict[str, Any]:
    """What a run records about itself in its config file."""
    substituted = trainer.substituted_phases()
    notes = list(model.notes)
    if substituted:
        notes.append(
            f"base not pretrained: phase(s) {', '.join(substituted)} trained the whole network "
            "instead of a frozen base"
        )
    return {
        "letterbench": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "seed": options.seed,
        "recipe": recipe.to_dict(),
        "model": {
            "name": model.name,
            "input": model.spec.to_dict(),
            "parameters": count_parameters(model)[0],
            "pretrained": model.pretrained,
            "notes": notes,
            "substituted_phases": substituted,
        },
        "data": {
            **data.provenance(),
            "data_dir": str(resolve_data_dir(options.data_dir).resolve()),
            "train_per_class": options.train_per_class,
            "train_used": len(chosen.train),
            "val_used": len(chosen.val),
            "class_names": data.class_names,
        },
        "device": runtime.describe(),
        "versions": package_versions(),
    }
