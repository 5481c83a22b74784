"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from letterbench.core.errors import LetterbenchError
from letterbench.recipes import builtin_recipes, describe_recipe, load_recipe, resolve_recipe

REPO = Path(__file__).resolve().parents[2]


def test_one_recipe_resolver_for_every_kind_of_model(tmp_path):
    timm = resolve_recipe("timm:resnet10t")
    assert (timm.model, timm.name) == ("timm:resnet10t", "timm:resnet10t")
    assert timm.phases == load_recipe("resnet18").phases  # the registry's default recipe for timm models
    x = resolve_recipe("xception", total_epochs=5, lr=0.01, batch_size=16, overrides=["phases.1.epochs=7"])
    assert [p.epochs for p in x.phases] == [3, 7]  # shared out, then --set wins
    assert [p.optimizer.lr for p in x.phases] == pytest.approx([0.01, 0.001])  # ratio kept
    assert x.batch_size == 16
    custom = tmp_path / "mine.toml"
    custom.write_text(
        'name = "mine"\nmodel = "resnet18"\n[[phases]]\nname = "p"\nepochs = 2\n'
        'optimizer = { name = "adam", lr = 0.001 }\n'
    )
    mine = resolve_recipe("timm:resnet10t", str(custom))
    assert (mine.name, mine.model) == ("mine", "timm:resnet10t")
    with pytest.raises(LetterbenchError, match="say what to train"):
        resolve_recipe()


def test_the_guides_recipe_table_is_the_shipped_recipes():
    readme = (REPO / "docs" / "guide.md").read_text()
    rows = dict(
        re.findall(
            r"^\| `([\w-]+)` \| (.+) \|$", readme.split("| recipe | what it does |")[1].split("\n\n")[0], re.M
        )
    )
    assert set(rows) == set(builtin_recipes())
    for name, text in rows.items():
        assert text == describe_recipe(load_recipe(name)), (
            f"docs/guide.md's row for {name} differs from the recipe file"
        )


def test_phase_names_cannot_collide_with_run_checkpoints():
    for name in ("last", "best", "a/b"):
        with pytest.raises(LetterbenchError, match="phase name"):  # 'a/b' would be a folder
            resolve_recipe("resnet18", overrides=[f"phases.0.name={name}"])
