"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

from letterbench.recipes import resolve_recipe
from letterbench.study.presets import PRESETS


def test_the_first_preset_and_the_reader_recipe_learn_from_real_and_synthetic_letters():
    first = resolve_recipe("smallcnn", overrides=list(PRESETS["first"].overrides))
    reader = resolve_recipe(recipe="reader")
    for recipe in (first, reader):
        assert recipe.synthetic_share > 0 and recipe.data.handwriting > 0 and recipe.augment.shear > 0
    assert "data" not in resolve_recipe("smallcnn").to_dict()  # the plain recipe draws as before
