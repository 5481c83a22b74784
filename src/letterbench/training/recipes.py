"""Recipes: how a model is trained, as data.

A recipe is a TOML file (the built-in ones live in ``letterbench/recipes/``): the model,
its weights, batch size, label smoothing, augmentation, and a list of phases. A phase
says what trains (``all``, ``head``, ``last:N``), the optimiser, the LR schedule, the
epoch budget and an optional early-stopping rule. Any value can be overridden with
``--set dotted.key=value`` (``phases.0.epochs=3``, ``augment.flip=true``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from letterbench.errors import LetterbenchError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

OPTIMIZERS = {"sgd", "adam", "adamw"}
SCHEDULES = {"constant", "onecycle", "cosine", "plateau"}
BUILTIN = ("resnet18", "densenet121", "xception")


@dataclass
class Phase:
    name: str
    trainable: str = "all"
    epochs: int = 10
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "adam", "lr": 1e-3})
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "constant"})
    early_stopping: dict[str, Any] | None = None


@dataclass
class Recipe:
    name: str
    model: str
    phases: list[Phase]
    pretrained: str = "false"  # "true" | "false" | "auto"
    weights: str | None = None
    dropout: float | None = None
    batch_size: int = 128
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    augment: dict[str, Any] = field(default_factory=dict)
    # Images used to recompute BatchNorm statistics after each epoch ("precise BN"); 0 = off.
    precise_bn: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def pretrained_arg(self) -> bool | str:
        return {"true": True, "false": False, "auto": "auto"}[self.pretrained]


def _check_keys(where: str, given: dict, allowed: set[str]) -> None:
    unknown = set(given) - allowed
    if unknown:
        raise LetterbenchError(
            f"recipe {where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    raw = copy.deepcopy(raw)
    _check_keys(source, raw, {f.name for f in fields(Recipe)})
    phases_raw = raw.pop("phases", None)
    if not phases_raw:
        raise LetterbenchError(f"{source}: needs at least one [[phases]] table")
    phases = []
    for i, p in enumerate(phases_raw):
        _check_keys(f"{source} phase {i}", p, {f.name for f in fields(Phase)})
        phases.append(Phase(**p))
    for key in ("name", "model"):
        if key not in raw:
            raise LetterbenchError(f"{source}: missing required key {key!r}")
    recipe = Recipe(phases=phases, **raw)
    validate(recipe, source)
    return recipe


def validate(recipe: Recipe, source: str = "recipe") -> None:
    def bad(msg: str) -> None:
        raise LetterbenchError(f"{source}: {msg}")

    if str(recipe.pretrained).lower() not in ("true", "false", "auto"):
        bad(f"pretrained must be true, false or auto, got {recipe.pretrained!r}")
    recipe.pretrained = str(recipe.pretrained).lower()
    if not (isinstance(recipe.batch_size, int) and recipe.batch_size >= 2):
        bad(f"batch_size must be an integer >= 2, got {recipe.batch_size!r}")
    if not 0 <= recipe.label_smoothing < 1:
        bad(f"label_smoothing must be in [0, 1), got {recipe.label_smoothing}")
    if not 0 < recipe.val_fraction < 1:
        bad(f"val_fraction must be in (0, 1), got {recipe.val_fraction}")
    _check_keys(f"{source} augment", recipe.augment, {"rotate", "zoom", "shift", "flip"})
    names = [p.name for p in recipe.phases]
    if len(set(names)) != len(names):
        bad(f"phase names must differ, got {names}")
    for phase in recipe.phases:
        where = f"phase {phase.name!r}"
        if not (isinstance(phase.epochs, int) and phase.epochs >= 1):
            bad(f"{where}: epochs must be an integer >= 1, got {phase.epochs!r}")
        if phase.trainable not in ("all", "head") and not (
            phase.trainable.startswith("last:") and phase.trainable[5:].isdigit()
        ):
            bad(f"{where}: trainable must be all, head or last:N, got {phase.trainable!r}")
        if phase.optimizer.get("name") not in OPTIMIZERS:
            bad(f"{where}: optimizer.name must be one of {sorted(OPTIMIZERS)}")
        if not float(phase.optimizer.get("lr", 0)) > 0:
            bad(f"{where}: optimizer.lr must be > 0")
        if phase.schedule.get("name") not in SCHEDULES:
            bad(f"{where}: schedule.name must be one of {sorted(SCHEDULES)}")


def load_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by name, or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path in BUILTIN:
        text = resources.files("letterbench.recipes").joinpath(f"{name_or_path}.toml").read_text()
        source = f"built-in recipe {name_or_path}"
    elif path.suffix == ".toml" and path.is_file():
        text, source = path.read_text(), str(path)
    else:
        raise LetterbenchError(
            f"no recipe {name_or_path!r}: give a built-in name ({', '.join(BUILTIN)}) or a .toml file"
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LetterbenchError(f"{source}: not valid TOML ({exc})") from None
    return recipe_from_dict(raw, source)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply ``dotted.key=value`` overrides (values parsed as JSON, else taken as strings)."""
    raw = recipe.to_dict()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise LetterbenchError(f"--set {item!r}: expected KEY=VALUE, e.g. phases.0.epochs=3")
        node: Any = raw
        parts = key.split(".")
        for part in parts[:-1]:
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError):
                raise LetterbenchError(f"--set {item!r}: the recipe has no {key!r}") from None
            if node is None:
                raise LetterbenchError(f"--set {item!r}: {part!r} is not set in this recipe; set it whole")
        last = parts[-1]
        if isinstance(node, list):
            raise LetterbenchError(f"--set {item!r}: cannot replace a whole phase; set its keys")
        node[last] = _parse_value(value)
    return recipe_from_dict(raw, "recipe with --set overrides")
