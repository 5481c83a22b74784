"""`letterbench train`: a training run from a recipe into a run directory, or its continuation."""

from __future__ import annotations

import platform
import string
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from letterbench import __version__
from letterbench.core import timing
from letterbench.core.distributed import barrier
from letterbench.core.errors import LetterbenchError, TrainingError
from letterbench.data.emnist import EmnistData, load_emnist, resolve_data_dir
from letterbench.data.splits import Split, make_split
from letterbench.images.synthetic import synthetic_letters
from letterbench.models import LetterModel, count_parameters, create_model
from letterbench.runs.records import RunConfig
from letterbench.runs.rundir import RunDir
from letterbench.runs.runtime import Runtime
from letterbench.runs.trained import run_data
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.observers import Observer, standard_observers, summary_writer_class
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
    observers: tuple[Observer, ...] = ()  # a caller's own, told about the run after the standard ones


@dataclass
class ResumeChanges:
    """What ``train --resume`` may change: the epochs of the phases left, and the learning rate
    from now on. Both rebuild the current phase's schedule over its remaining steps."""

    epochs: int | None = None
    lr: float | None = None

    def __bool__(self) -> bool:
        return self.epochs is not None or self.lr is not None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


# What `train --resume` cannot change (as command-line option names): each would make another run.
FIXED_ON_RESUME = (
    "model",
    "recipe",
    "set",
    "batch_size",
    "large_batch",
    "pretrained",
    "weights",
    "seed",
    "split",
    "train_per_class",
)


RECIPE_OPTIONS = ("model", "recipe", "set", "batch_size", "large_batch", "pretrained", "weights")


def _first_difference(recorded: Any, given: Any, where: str = "") -> str | None:
    """The first key where two recipe dicts differ, as ``key: recorded X, given Y``."""
    if isinstance(recorded, dict) and isinstance(given, dict):
        for key in sorted(set(recorded) | set(given), key=str):
            found = _first_difference(
                recorded.get(key), given.get(key), f"{where}.{key}" if where else str(key)
            )
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(given, list) and len(recorded) == len(given):
        return next(
            (
                d
                for i, (a, b) in enumerate(zip(recorded, given, strict=True))
                if (d := _first_difference(a, b, f"{where}.{i}"))
            ),
            None,
        )
    return None if recorded == given else f"{where}: recorded {recorded!r}, given {given!r}"


def _without_epochs_and_lr(recipe: dict[str, Any]) -> dict[str, Any]:
    phases = [{k: v for k, v in p.items() if k != "epochs"} for p in recipe["phases"]]
    for phase in phases:
        phase["optimizer"] = {k: v for k, v in phase["optimizer"].items() if k != "lr"}
    return {**recipe, "phases": phases}


def resume_options(out: Path | None, given: dict[str, Any], changes: ResumeChanges) -> ResumeChanges:
    """``train --resume`` with options: those equal to what the run recorded (the user's own
    command again) are accepted, and so are new ``--epochs``/``--lr``; any real change is refused
    with the recorded value and the given one. Returns the changes left to make."""
    refuse_on_resume(out, [])
    run = RunDir(out)
    if not run.config_file.exists():
        what = "no such folder" if not run.path.exists() else "no run has started there (no config.json)"
        raise TrainingError(
            f"--resume --out {out}: {what}; to start a run, give the same command without --resume"
        )
    if not given:
        return changes
    config = run.read_config()
    recorded = {
        "seed": config.seed,
        "split": config.data.split,
        "train_per_class": config.data.train_per_class,
    }
    for name in recorded.keys() & given.keys():
        if given[name] != recorded[name]:
            _refuse_change(
                out, f"--{name.replace('_', '-')}: recorded {recorded[name]!r}, given {given[name]!r}"
            )
    kept = recipe_from_dict(config.recipe.to_json(), str(run.config_file)).to_dict()
    if "model" in given and given["model"] != kept["model"]:
        _refuse_change(out, f"--model: recorded {kept['model']!r}, given {given['model']!r}")
    if given.keys() & {"model", "recipe"}:
        return _same_recipe(out, kept, given, changes)
    for option, key, value in _recipe_values(given):
        if _at(kept, key) != value:
            _refuse_change(out, f"{option}: recorded {key} = {_at(kept, key)!r}, given {value!r}")
    return changes


def _recipe_values(given: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(option, recipe key, value) of the recipe options given without --model or --recipe."""
    from letterbench.training.recipes import parse_value

    found = [("--set", *item.partition("=")[::2]) for item in given.get("set") or []]
    found = [(option, key, parse_value(value)) for option, key, value in found]
    for name in ("batch_size", "pretrained", "weights"):
        if name in given:
            value = str(given[name]) if name == "weights" else given[name]
            found.append((f"--{name.replace('_', '-')}", name, value))
    if "large_batch" in given:
        found.append(("--large-batch", "batch_size", given["large_batch"]))
    return found


def _at(recipe: dict[str, Any], key: str) -> Any:
    node: Any = recipe
    for part in key.split("."):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return None
    return node


def _same_recipe(
    out: Path | None, kept: dict, given: dict[str, Any], changes: ResumeChanges
) -> ResumeChanges:
    """With --model or --recipe: the recipe they resolve to must be the recorded one (but for the
    epochs and learning rates --epochs and --lr may change)."""
    from letterbench.training.recipes import resolve_recipe

    options = {k: given.get(k) for k in RECIPE_OPTIONS if k not in ("set", "recipe")}

    def resolved(**more: Any) -> dict[str, Any]:
        return resolve_recipe(
            recipe=given.get("recipe"), overrides=given.get("set") or [], **options, **more
        ).to_dict()

    if resolved(epochs=changes.epochs, lr=changes.lr) == kept:
        return ResumeChanges()  # the command that started the run, word for word
    plain = resolved()
    if _without_epochs_and_lr(plain) != _without_epochs_and_lr(kept):
        named = ", ".join(f"--{k.replace('_', '-')}" for k in RECIPE_OPTIONS if k in given)
        difference = _first_difference(_without_epochs_and_lr(kept), _without_epochs_and_lr(plain))
        _refuse_change(out, f"{named}: {difference}")
    return changes


def _refuse_change(out: Path | None, difference: str) -> None:
    raise TrainingError(
        f"--resume continues {out} as recorded in its config.json, and this would change it: "
        f"{difference}. Only --epochs and --lr can change a run that has started; train a new run "
        "into another --out instead"
    )


def refuse_on_resume(out: Path | None, given: list[str]) -> None:
    """A clear refusal of options ``--resume`` cannot honour (``given``: names from FIXED_ON_RESUME)."""
    if out is None:
        raise TrainingError("--resume needs the run directory: letterbench train --resume --out DIR")
    if given:
        raise TrainingError(
            f"--resume continues {out} as recorded in its config.json; "
            f"{', '.join('--' + name.replace('_', '-') for name in given)} cannot change a run that has "
            "started (--epochs and --lr can). Train a new run into another --out instead"
        )


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
    recipe = recipe_from_dict(config.recipe.to_json(), str(run.config_file))
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
        recipe = recipe_from_dict(config.recipe.to_json(), str(run.config_file))
        if changes:
            state = run.load_checkpoint("last")["trainer"]
            recipe = changed_recipe(recipe, state["phase_index"], state["epoch_in_phase"], changes)
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
    trainer = Trainer(recipe, model, tensors, runtime, run, seed, observers, compile=options.compile)
    if main:
        if not resume:
            run.write_config(_config(recipe, model, trainer, data, chosen, options, runtime))
        elif changes:
            run.write_config(_record_changes(config, recipe, changes))
    barrier(runtime.dist)
    if main and options.progress:
        print(
            f"{'resuming' if resume else 'training'} {recipe.name} on {len(chosen.train):,} images "
            f"(val {len(chosen.val):,}), {runtime.name}, world size {runtime.dist.world} -> {run}"
        )
    trainer.fit(resume=resume, rebuild_schedule=bool(changes))


def changed_recipe(recipe: Recipe, phase_index: int, epoch_in_phase: int, changes: ResumeChanges) -> Recipe:
    """The recipe with ``changes`` applied from phase ``phase_index`` on (the phases before it
    are done and stay as they were trained)."""
    phases = recipe.phases
    if changes.epochs is not None and changes.epochs < epoch_in_phase:
        raise TrainingError(
            f"--epochs {changes.epochs}: phase {phases[phase_index].name!r} has already trained "
            f"{epoch_in_phase} epochs; give at least that many"
        )
    updates = {}
    if changes.epochs is not None:
        updates.update(recipe.with_epochs(changes.epochs, phase_index))
    if changes.lr is not None:
        updates.update(recipe.with_lr(changes.lr, phase_index))
    return recipe.updated(updates, "recipe with --set overrides")


def _record_changes(config: RunConfig, recipe: Recipe, changes: ResumeChanges) -> RunConfig:
    """The config with the changed recipe, and what changed when in its ``history``."""
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "changes": changes.given(),
        "recipe_before": config.recipe.to_json(),
    }
    changed = {"recipe": recipe.to_dict(), "history": [*(config.history or []), entry]}
    return RunConfig.model_validate({**config.to_json(), **changed})


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
        images, labels = synthetic_pool(recipe, data, seed)
        tensors.synthetic_images, tensors.synthetic_labels = images.to(dev), labels.to(dev)
    return model, tensors


def synthetic_pool(recipe: Recipe, data: EmnistData, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The synthetic letters a run mixes into its batches: ``data.pool`` of them, drawn from the
    run's seed (the same on resume)."""
    if tuple(data.class_names) != tuple(string.ascii_lowercase):
        raise LetterbenchError(
            f"the recipe's data.synthetic mixes in letters a..z, but this data has the classes "
            f"{', '.join(data.class_names[:5])}...; train on EMNIST Letters or set data.synthetic=0"
        )
    images, labels = synthetic_letters(recipe.synthetic_pool, seed)
    return torch.from_numpy(images), torch.from_numpy(labels)


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
            },
            "device": runtime.describe(),
            "versions": package_versions(),
        }
    )
