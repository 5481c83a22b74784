"""Loading a recipe, ``--set``, the large-batch mode, and ``resolve_recipe``: the one way a
recipe is chosen, for `train`, `run`, the benches and the tests. Its type, fields, defaults and
rules are ``schema.Recipe``'s."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from letterbench.core.errors import LetterbenchError
from letterbench.recipes.schema import Recipe, set_path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def builtin_recipes() -> tuple[str, ...]:
    """Names of the recipes shipped in ``letterbench/recipes/``."""
    folder = resources.files("letterbench.recipes")
    return tuple(sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")))


def load_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by name, or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path in builtin_recipes():
        text = resources.files("letterbench.recipes").joinpath(f"{name_or_path}.toml").read_text()
        source = f"built-in recipe {name_or_path}"
    elif path.suffix == ".toml" and path.is_file():
        text, source = _recipe_text(path), str(path)
    else:
        raise LetterbenchError(
            f"no recipe {name_or_path!r}: give a built-in name ({', '.join(builtin_recipes())}) or a .toml file"
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LetterbenchError(f"{source}: not valid TOML ({exc})") from None
    return Recipe.from_dict(raw, source)


def _recipe_text(path: Path) -> str:
    """A recipe file's text: UTF-8, a leading byte-order mark (as some editors save) dropped."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LetterbenchError(
            f"{path}: not UTF-8 (byte {exc.start + 1} is not UTF-8 text); save it as UTF-8 and try again"
        ) from None


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: a string


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply ``dotted.key=value`` overrides (values parsed as JSON, else taken as strings)."""
    raw = recipe.tables()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise LetterbenchError(f"--set {item!r}: expected KEY=VALUE, e.g. phases.0.epochs=3")
        set_path(raw, _key_path(raw, item, key), parse_value(value))
    return Recipe.from_dict(raw, "recipe with --set " + ", ".join(overrides))


def _key_path(raw: dict[str, Any], item: str, key: str) -> tuple[str | int, ...]:
    """``phases.0.optimizer.lr`` as the path (``"phases", 0, "optimizer", "lr"``) into a recipe's
    dict form, refused with one line where the recipe has no such table."""
    node: Any = raw
    parts = key.split(".")
    path: list[str | int] = []
    for depth, part in enumerate(parts[:-1]):
        try:
            if isinstance(node, list) and int(part) < 0:
                raise IndexError("counted from the end")  # phases.-1: name the phase by its number
            step = int(part) if isinstance(node, list) else part
            node = node[step]
        except (KeyError, IndexError, ValueError):
            raise LetterbenchError(
                f"--set {item!r}: the recipe has no {key!r} (phases are numbered from 0)"
            ) from None
        if node is None:
            raise LetterbenchError(f"--set {item!r}: {part!r} is not set in this recipe; set it whole")
        if not isinstance(node, dict | list):
            raise LetterbenchError(
                f"--set {item!r}: {part!r} is a value ({node!r}), not a table with keys; "
                f"set it as --set {'.'.join(parts[: depth + 1])}=VALUE"
            )
        path.append(step)
    if isinstance(node, list):
        raise LetterbenchError(f"--set {item!r}: cannot replace a whole phase; set its keys")
    return (*path, parts[-1])


def resolve_recipe(
    model: str | None = None,
    recipe: str | None = None,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    epochs: int | None = None,
    total_epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    pretrained: str | None = None,
    weights: str | None = None,
    large_batch: int | None = None,
) -> Recipe:
    """The one way a recipe is chosen, for `train`, `run`, the benches and the tests.

    ``recipe`` (a built-in name or a TOML file) if given, else the registry's default recipe for
    ``model`` (``timm:<name>`` included); ``model`` with ``recipe`` swaps the recipe's model. Then
    the options, then the ``--set`` ``overrides`` last, so they win: ``epochs`` for every phase,
    or ``total_epochs`` shared out over the phases; ``lr`` for the first phase (later phases keep
    their ratio to it); ``batch_size``; ``pretrained``; ``weights`` (a local file).
    """
    from letterbench.models import choices_text, get_model

    if recipe is None and model is None:
        raise LetterbenchError(f"say what to train: --model {choices_text()}, or --recipe FILE")
    entry = get_model(model) if model is not None else None
    base = load_recipe(recipe if recipe is not None else entry.recipe)
    changes: dict[tuple, Any] = {}
    if entry is not None and base.model != entry.name:
        changes[("model",)] = entry.name
        if recipe is None:
            changes[("name",)] = entry.name
    changes.update(_option_changes(base, epochs, total_epochs, lr))
    for key, value in (("batch_size", batch_size), ("pretrained", pretrained), ("weights", weights)):
        if value is not None:
            changes[(key,)] = str(value) if key == "weights" else value
    swapped = model if ("model",) in changes else None
    said = _options_said(
        swapped, epochs, None if epochs else total_epochs, lr, batch_size, pretrained, weights
    )
    resolved = base.updated(changes, f"{base.name} with {said}") if changes else base
    if large_batch is not None:
        resolved = scale_batch(resolved, large_batch)
    if overrides:
        resolved = apply_overrides(resolved, list(overrides))
    _check_weights(resolved.weights)
    return resolved


def _options_said(*values: object) -> str:
    """The options given, as the command line spells them (what an error names)."""
    flags = ("--model", "--epochs", "--total-epochs", "--lr", "--batch-size", "--pretrained", "--weights")
    return ", ".join(
        f"{flag} {value}" for flag, value in zip(flags, values, strict=True) if value is not None
    )


def _option_changes(base: Recipe, epochs: int | None, total_epochs: int | None, lr: float | None) -> dict:
    """``--epochs`` (every phase), ``--total-epochs`` (shared out over the phases) and ``--lr``
    (the first phase's; the later phases keep their ratio to it) as changes to ``base``."""
    n, changes = len(base.phases), {}
    if epochs is not None:
        changes.update(base.with_epochs(epochs))
    elif total_epochs is not None:
        changes.update(
            {("phases", i, "epochs"): max(1, total_epochs // n + (i < total_epochs % n)) for i in range(n)}
        )
    if lr is not None:
        changes.update(base.with_lr(lr))
    return changes


def _check_weights(weights: str | None) -> None:
    if weights is not None and Path(weights).is_dir():
        raise LetterbenchError(
            f"--weights {weights}: a folder, not a file; give a safetensors or state-dict file"
        )
    if weights is not None and not Path(weights).is_file():
        raise LetterbenchError(f"--weights {weights}: no such file; give a safetensors or state-dict file")


LR_RULES = {"sgd": ("linear", 1.0), "adam": ("square root", 0.5), "adamw": ("square root", 0.5)}
LARGE_BATCH_WARMUP_EPOCHS = 1.0


def lr_factor(optimizer: str, base_batch: int, batch: int) -> float:
    """How a phase's LR scales with its batch: linearly for SGD (Goyal et al. 2017), with the
    square root for Adam (Malladi et al. 2022)."""
    return (batch / base_batch) ** LR_RULES[optimizer][1]


def scale_batch(recipe: Recipe, batch: int) -> Recipe:
    """The large-batch mode: ``recipe`` at batch ``batch``, each phase's LR scaled by its
    optimiser's rule (``lr_factor``), and a warm-up where the schedule has none of its own
    (one-cycle and cosine warm up already): a linear warm-up over the first epoch. Recorded in the
    recipe as ``batch_scaling``, so the run's config and report say so."""
    base = recipe.batch_scaling.base_batch_size if recipe.batch_scaling else recipe.batch_size
    changes: dict[tuple, Any] = {("batch_size",): batch, ("batch_scaling",): {"base_batch_size": base}}
    for i, phase in enumerate(recipe.phases):
        optimizer = phase.optimizer
        unscaled = optimizer.lr / lr_factor(optimizer.name, base, recipe.batch_size)
        changes[("phases", i, "optimizer", "lr")] = unscaled * lr_factor(optimizer.name, base, batch)
        if phase.schedule.name in ("constant", "plateau"):
            warm = max(phase.schedule.warmup_epochs, LARGE_BATCH_WARMUP_EPOCHS)
            changes[("phases", i, "schedule", "warmup_epochs")] = warm
    return recipe.updated(changes, f"{recipe.name} with --large-batch {batch}")
