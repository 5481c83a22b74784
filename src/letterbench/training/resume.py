"""`train --resume`: what the user's command may change in a run that has started (its epochs and
learning rate), what it may repeat (every option as recorded), and what it must not change (each
would make another run: refused with the recorded value and the given one)."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from letterbench.core.errors import TrainingError
from letterbench.recipes import Recipe
from letterbench.runs.records import RunConfig
from letterbench.runs.rundir import RunDir


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
    """The first key where two recipe dicts differ, as ``key: recorded X, given Y`` (numbers equal
    to nine significant digits are the same: 0.2 and 0.1 * 2 are one learning rate)."""
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
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (recorded, given))
    same = math.isclose(recorded, given, rel_tol=1e-9) if numbers else recorded == given
    return None if same else f"{where}: recorded {recorded!r}, given {given!r}"


def same_recipe(a: Recipe, b: Recipe) -> bool:
    """Whether two recipes train the same (through the schema: ``--set pretrained=false`` is the
    recorded ``"false"``; numbers to nine significant digits)."""
    return _first_difference(a.to_dict(), b.to_dict()) is None


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
    kept = config.recipe.to_dict()
    if "model" in given and given["model"] != kept["model"]:
        _refuse_change(out, f"--model: recorded {kept['model']!r}, given {given['model']!r}")
    if given.keys() & {"model", "recipe"}:
        return _same_recipe(out, kept, given, changes)
    for option, asked in _asked_recipes(config.recipe, given):
        difference = _first_difference(kept, asked.to_dict())
        if difference:
            _refuse_change(out, f"{option}: {difference}")
    return changes


def _asked_recipes(recipe: Recipe, given: dict[str, Any]) -> list[tuple[str, Recipe]]:
    """(option, the recorded recipe as that option would make it) for each recipe option given
    without --model or --recipe: each is read through the schema, as a new run would read it."""
    from letterbench.recipes import apply_overrides, scale_batch

    asked = [(f"--set {item}", apply_overrides(recipe, [item])) for item in given.get("set") or []]
    for name in ("batch_size", "pretrained", "weights"):
        if name in given:
            value = str(given[name]) if name == "weights" else given[name]
            asked.append((f"--{name.replace('_', '-')}", recipe.updated({(name,): value}, f"--{name}")))
    if "large_batch" in given:
        asked.append(("--large-batch", scale_batch(recipe, given["large_batch"])))
    return asked


def _same_recipe(
    out: Path | None, kept: dict, given: dict[str, Any], changes: ResumeChanges
) -> ResumeChanges:
    """With --model or --recipe: the recipe they resolve to must be the recorded one (but for the
    epochs and learning rates --epochs and --lr may change)."""
    from letterbench.recipes import resolve_recipe

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
    return recipe.updated(updates, "--resume with --epochs or --lr")


def record_changes(config: RunConfig, recipe: Recipe, changes: ResumeChanges) -> RunConfig:
    """The config with the changed recipe, and what changed when in its ``history``."""
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "changes": changes.given(),
        "recipe_before": config.recipe.to_dict(),
    }
    changed = {"recipe": recipe.to_dict(), "history": [*(config.history or []), entry]}
    return RunConfig.model_validate({**config.to_json(), **changed})
