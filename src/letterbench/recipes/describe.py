"""The words that describe a recipe: one line a person reads (the guide's recipe table, the
report's recipe column and the page are checked against or built from it)."""

from __future__ import annotations

import math

from letterbench.recipes.resolve import LR_RULES, lr_factor
from letterbench.recipes.schema import Phase, Recipe


def _batch_scaling(recipe: Recipe) -> str:
    """The large-batch mode's words, where it scaled the recipe (else nothing)."""
    if not recipe.batch_scaling:
        return ""
    base = recipe.batch_scaling.base_batch_size
    rules = dict.fromkeys(
        f"x{lr_factor(p.optimizer.name, base, recipe.batch_size):.3g} ({LR_RULES[p.optimizer.name][0]} rule)"
        for p in recipe.phases
    )
    return f" (large-batch mode: the recipe's batch {base} scaled up, LR " + ", ".join(rules) + ")"


def _drawn(recipe: Recipe, drawn: int | None) -> str:
    """The extra letters drawn: the recipe's pool, or the fewer a short run drew."""
    if drawn is None or drawn >= recipe.synthetic_pool:
        return f"{recipe.synthetic_pool:,} drawn"
    return f"{drawn:,} of {recipe.synthetic_pool:,} drawn, what its batches pick"


def describe_recipe(recipe: Recipe, drawn: int | None = None) -> str:
    """One line a person reads: what the recipe does (docs/guide.md's recipe table is checked
    against it); ``drawn``: the extra letters a run of it drew, where it drew fewer than its pool."""
    aug = recipe.augment.model_dump()
    augment = ", ".join(
        f"{label} ±{fmt(aug[key])}"
        for key, label, fmt in (
            ("rotate", "rotation", lambda v: f"{v:g}°"),
            ("zoom", "zoom", lambda v: f"{100 * v:g}%"),
            ("shift", "shift", lambda v: f"{100 * v:g}%"),
            ("shear", "slant", lambda v: f"{math.degrees(math.atan(v)):.3g}°"),
            ("thickness", "stroke", lambda v: f"{v:g} px"),
            ("blur", "blur", lambda v: f"{v:g}"),
            ("contrast", "gamma", lambda v: f"{v:g}"),
            ("elastic", "elastic", lambda v: f"{100 * v:g}%"),
        )
        if aug.get(key)
    )
    parts = [
        f"batch {recipe.batch_size}" + _batch_scaling(recipe),
        {"false": "from scratch", "auto": "ImageNet weights where available", "true": "ImageNet weights"}[
            recipe.pretrained
        ],
        *([f"dropout {recipe.dropout:g}"] if recipe.dropout else []),
        *([f"label smoothing {recipe.label_smoothing:g}"] if recipe.label_smoothing else []),
        f"augment: {augment or 'none'}" + (", flips" if aug.get("flip") else ""),
        *([f"precise BN on {recipe.precise_bn:,} images"] if recipe.precise_bn else []),
        *(
            [
                f"{100 * recipe.synthetic_share:g}% of each batch synthetic letters ({_drawn(recipe, drawn)})"
                if not recipe.data.handwriting
                else f"{100 * recipe.synthetic_share:g}% of each batch extra letters ({_drawn(recipe, drawn)}, "
                f"{100 * recipe.data.handwriting:g}% of them real handwriting)"
            ]
            if recipe.synthetic_share
            else []
        ),
    ]
    return "; ".join(parts + [_describe_phase(p) for p in recipe.phases])


_SCHEDULE_NAMES = {
    "onecycle": "one-cycle",
    "plateau": "reduce-on-plateau",
    "cosine": "cosine",
    "constant": "constant",
}
_OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def _describe_phase(phase: Phase) -> str:
    opt = phase.optimizer.model_dump(exclude_unset=True)  # the settings the recipe gave
    name = opt.pop("name")
    extras = []
    if opt.get("momentum") is not None and name == "sgd":
        extras.append(f"momentum {opt['momentum']:g}" + (" Nesterov" if opt.get("nesterov") else ""))
    if opt.get("weight_decay"):
        extras.append(f"weight decay {opt['weight_decay']:g}")
    sched = phase.schedule.model_dump(exclude_unset=True)
    schedule = _SCHEDULE_NAMES[sched.pop("name")] + (
        " (" + ", ".join(f"{k} {v:g}" for k, v in sched.items()) + ")" if sched else ""
    )
    stop = f", early stopping (patience {phase.early_stopping.patience})" if phase.early_stopping else ""
    trains = {"all": "whole network", "head": "head only"}.get(phase.trainable, phase.trainable)
    if phase.trainable.startswith("last:"):
        trains = f"head + last {phase.trainable[5:]} layers"
    return (
        f"phase {phase.name}: {trains}, {_OPTIMIZER_NAMES[name]} lr {opt['lr']:g}"
        + (" (" + ", ".join(extras) + ")" if extras else "")
        + f", {schedule}, {phase.epochs} epochs{stop}"
    )


def trained_on(recipe: Recipe) -> str:
    """What a run's model learned from, in words: EMNIST alone, or with extra letters mixed in
    (the ``reader`` recipe's way, which reads people's letters better)."""
    share, real, name = recipe.data.synthetic, recipe.data.handwriting, recipe.name
    if share and real:
        return f"EMNIST + {100 * share:g}% extra letters, real handwriting and synthetic ({name} recipe)"
    if share:
        return f"EMNIST + {100 * share:g}% synthetic letters ({name} recipe)"
    return f"EMNIST only ({name} recipe)"
