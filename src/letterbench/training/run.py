"""`letterbench train`: a training run from a recipe into a run directory, or its continuation."""

from __future__ import annotations

import platform
import string
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from letterbench import __version__
from letterbench.core import timing
from letterbench.core.distributed import barrier
from letterbench.core.errors import LetterbenchError, TrainingError
from letterbench.core.progress import in_steps
from letterbench.core.runtime import Runtime
from letterbench.data.emnist import EmnistData, load_emnist, resolve_data_dir
from letterbench.data.handwriting import pen_letters, training_choice
from letterbench.data.splits import Split, make_split
from letterbench.images.pen_letters import pen_letter_images
from letterbench.images.synthetic import synthetic_letters
from letterbench.models import LetterModel, count_parameters, create_model
from letterbench.recipes import Recipe
from letterbench.runs.records import RunConfig
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import run_data
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import Observer, standard_observers, summary_writer_class
from letterbench.training.resume import ResumeChanges, changed_recipe, record_changes, same_recipe
from letterbench.training.stream import extra_per_batch


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
class TrainOptions:
    """What a training run is asked to do, beyond its recipe."""

    data_dir: Path | None = None
    split: str = "letters"
    seed: int = 0
    train_per_class: int | None = None
    progress: bool = True
    compile: bool = False
    tensorboard: bool = False
    keep_optimizer: bool = False  # keep the optimiser's state in a finished run's last checkpoint
    checkpoint_every: float = 0.0  # seconds between checkpoints; 0: after every epoch
    observers: tuple[Observer, ...] = ()  # a caller's own, told about the run after the standard ones


def train(
    recipe: Recipe | None,
    out: str | Path | RunDir,
    runtime: Runtime,
    options: TrainOptions | None = None,
    resume: bool = False,
    changes: ResumeChanges | None = None,
) -> RunDir:
    """Train ``recipe`` into run directory ``out``; with ``resume`` continue the run already there
    (its recorded recipe, seed and data are used, ``recipe`` may be None; ``changes`` may give it
    more epochs or a new learning rate). A run with no finished epoch starts again from the start.
    The run directory is locked against other processes throughout."""
    run = out if isinstance(out, RunDir) else RunDir(out)
    options = options or TrainOptions()
    with timing.scope(run.path.name), run.lock(take=runtime.dist.is_main):
        if resume and runtime.dist.is_main:
            run.remove_temporaries()  # of a write killed halfway (kill -9): they are ours
        if resume and not run.has_checkpoint("last"):
            recipe, options = _restart_recorded(run, options, changes or ResumeChanges(), runtime)
            resume = False
        elif resume and run.status() == "finished" and not changes:
            if runtime.dist.is_main:
                print(
                    f"{run}: already finished; nothing to resume (--epochs N trains its last phase further)"
                )
            return run
        elif not resume:
            _clear_unstarted(run, runtime)
        _train_locked(recipe, run, runtime, options, resume, changes or ResumeChanges())
    return run


def _restart_recorded(
    run: RunDir, options: TrainOptions, changes: ResumeChanges, runtime: Runtime
) -> tuple[Recipe, TrainOptions]:
    """A run killed before its first epoch ended: start it again as it was recorded."""
    config = run.read_config()
    if runtime.dist.is_main:
        print(f"{run}: no finished epoch to resume from; starting the run again from its recorded recipe")
    recipe = config.recipe
    if changes:
        recipe = changed_recipe(recipe, 0, 0, changes)
    recorded = replace(
        options,
        split=config.data.split,
        seed=config.seed,
        train_per_class=config.data.train_per_class,
        data_dir=options.data_dir or config.data.data_dir,
    )
    _clear_unstarted(run, runtime, say=False)
    return recipe, recorded


def _clear_unstarted(run: RunDir, runtime: Runtime, say: bool = True) -> None:
    """Make way for a new run in ``run``: it must be empty, or a run that never finished an epoch
    (whose files letterbench removes, and only those)."""
    if run.is_empty() or not runtime.dist.is_main:
        return
    if run.has_checkpoint("last"):
        raise TrainingError(
            f"run directory {run} already exists ({run.status()}); continue it with --resume, "
            "or pass another --out (nothing was overwritten)"
        )
    if say and run.is_run():
        print(f"{run}: never finished an epoch; starting it again")
    run.clear_unstarted()


def _train_locked(
    recipe: Recipe | None,
    run: RunDir,
    runtime: Runtime,
    options: TrainOptions,
    resume: bool,
    changes: ResumeChanges,
) -> None:
    if resume:
        config = run.read_config()
        recipe = config.recipe
        if changes:
            state = run.load_checkpoint("last")["trainer"]
            recipe = changed_recipe(recipe, state["phase_index"], state["epoch_in_phase"], changes)
            if same_recipe(recipe, config.recipe):  # what was asked is what was recorded: nothing changes
                recipe, changes = config.recipe, ResumeChanges()
        with timing.part("data loading"):
            data = run_data(run, options.data_dir, config)
        seed, per_class = config.seed, config.data.train_per_class
    else:
        with timing.part("data loading"):
            data = load_emnist(options.data_dir, options.split)
        seed, per_class, config = options.seed, options.train_per_class, None
    if options.tensorboard:
        summary_writer_class()  # every rank fails alike where tensorboard is missing
    barrier(runtime.dist)  # every rank has looked at the run directory before rank 0 writes into it
    chosen = make_split(data, recipe.val_fraction, seed, per_class)
    model, tensors = _model_and_tensors(recipe, data, chosen, seed, config, runtime)
    main = runtime.dist.is_main
    observers = (
        standard_observers(run, options.progress, options.tensorboard, options.keep_optimizer) if main else []
    )
    observers += list(options.observers)
    trainer = Trainer(
        recipe, model, tensors, runtime, run, seed, observers, options.compile, options.checkpoint_every
    )
    if main:
        if not resume:
            run.write_config(_config(recipe, model, trainer, data, chosen, options, runtime))
        elif changes:
            run.write_config(record_changes(config, recipe, changes))
    barrier(runtime.dist)
    if main and options.progress:
        print(_starting(recipe, tensors, resume, runtime, run))
    trainer.fit(resume=resume, rebuild_schedule=bool(changes))


def _starting(recipe: Recipe, tensors: TrainData, resume: bool, runtime: Runtime, run: RunDir) -> str:
    """The line a training or a resume starts with: what it trains on, where, into which folder."""
    extra = "" if tensors.synthetic_labels is None else f" + {len(tensors.synthetic_labels):,} extra letters"
    return (
        f"{'resuming' if resume else 'training'} {recipe.name} on {len(tensors.train_labels):,} images{extra} "
        f"(val {len(tensors.val_labels):,}), {runtime.name}, world size {runtime.dist.world} -> {run}"
    )


def _model_and_tensors(
    recipe: Recipe, data: EmnistData, chosen: Split, seed: int, resumed: RunConfig | None, runtime: Runtime
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
    if resumed:  # a resumed run's config (its weights come from the checkpoint)
        model.pretrained, model.notes = resumed.model.pretrained, resumed.model.notes
    dev = runtime.device
    tensors = TrainData(
        data.train_images[chosen.train].to(dev),
        data.train_labels[chosen.train].to(dev),
        data.train_images[chosen.val].to(dev),
        data.train_labels[chosen.val].to(dev),
    )
    if recipe.synthetic_share:
        if resumed is None:
            count = letters_used(recipe, len(chosen.train), runtime.dist.world)
        else:  # as many as it drew when it started (a run from before the count drew its pool)
            count = resumed.data.extra_letters or recipe.synthetic_pool
        images, labels = synthetic_pool(recipe, data, seed, count)
        tensors.synthetic_images, tensors.synthetic_labels = images.to(dev), labels.to(dev)
    return model, tensors


def letters_used(recipe: Recipe, train_images: int, world: int = 1) -> int:
    """How many extra letters a run draws: the recipe's ``data.pool``, or fewer where its batches
    cannot hold that many (a short run on few images: no more than all its batches of all its
    epochs pick, with replacement, as every run picks them). The count is recorded in the run's
    config: a resume draws as many, the same letters, whatever its --epochs."""
    batches = train_images // recipe.batch_size + world  # at most, over every rank
    most = recipe.epochs * batches * extra_per_batch(recipe.batch_size, recipe.synthetic_share)
    return min(recipe.synthetic_pool, most)


def synthetic_pool(
    recipe: Recipe, data: EmnistData, seed: int, pool: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The extra letters a run mixes into its batches: ``pool`` of them (default ``data.pool``),
    drawn from the run's seed (the same on resume): synthetic letters, and a ``data.handwriting``
    share of real ones. The synthetic ones of a smaller count are the first of a larger one."""
    if tuple(data.class_names) != tuple(string.ascii_lowercase):
        raise LetterbenchError(
            f"the recipe's data.synthetic mixes in letters a..z, but this data has the classes "
            f"{', '.join(data.class_names[:5])}...; train on EMNIST Letters or set data.synthetic=0"
        )
    pool = recipe.synthetic_pool if pool is None else pool
    real = int(round(pool * recipe.data.handwriting))
    count, chunk = pool - real, 256
    what = f"drawing the recipe's {count:,} synthetic letters"
    drawn = in_steps(
        range(0, count, chunk), lambda i: synthetic_letters(min(chunk, count - i), seed, first=i), what
    )
    images = np.concatenate([d[0] for d in drawn]) if drawn else np.zeros((0, 28, 28), np.uint8)
    labels = np.concatenate([d[1] for d in drawn]) if drawn else np.zeros(0, np.int64)
    if real:  # real handwriting beside the synthetic letters (a recipe without it draws as before)
        letters = pen_letters()
        chosen = training_choice(letters, real, seed)
        images = np.concatenate([images, pen_letter_images(letters, chosen, seed)])
        labels = np.concatenate([labels, letters.labels[chosen].astype(np.int64)])
    return torch.from_numpy(images), torch.from_numpy(labels)


def _extra_letters(tensors: TrainData) -> dict[str, int]:
    """The count of extra letters drawn, for the config (nothing where the recipe mixes none)."""
    return {} if tensors.synthetic_labels is None else {"extra_letters": len(tensors.synthetic_labels)}


def _config(
    recipe: Recipe,
    model: LetterModel,
    trainer: Trainer,
    data: EmnistData,
    chosen: Split,
    options: TrainOptions,
    runtime: Runtime,
) -> RunConfig:
    """What a run records about itself in its config file."""
    substituted = trainer.substituted_phases()
    notes = list(model.notes)
    if substituted:
        notes.append(
            f"base not pretrained: phase(s) {', '.join(substituted)} trained the whole network "
            "instead of a frozen base"
        )
    return RunConfig.model_validate(
        {
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
                **_extra_letters(trainer.data),
            },
            "device": runtime.describe(),
            "versions": package_versions(),
        }
    )
