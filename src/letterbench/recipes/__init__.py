"""Recipes: how a model is trained, as data (the TOML files beside this module), and how one is
chosen. ``schema`` holds the type and its rules, ``resolve`` loading, ``--set``, the large-batch
mode and ``resolve_recipe``, ``describe`` the words that describe one."""

from letterbench.recipes.describe import describe_recipe, trained_on
from letterbench.recipes.resolve import (
    LR_RULES,
    apply_overrides,
    builtin_recipes,
    load_recipe,
    lr_factor,
    resolve_recipe,
    scale_batch,
)
from letterbench.recipes.schema import RESERVED, Phase, Recipe

__all__ = [
    "LR_RULES",
    "RESERVED",
    "Phase",
    "Recipe",
    "apply_overrides",
    "builtin_recipes",
    "describe_recipe",
    "load_recipe",
    "lr_factor",
    "resolve_recipe",
    "scale_batch",
    "trained_on",
]
