"""The data layer: strict IDX parsing, orientation, splits, import, and download over real HTTP."""

from __future__ import annotations

import numpy as np
import torch

from letterbench.data.emnist import stratified_split

# An "F": not symmetric under any flip or transpose, so it proves the orientation fix.
GLYPH_F = np.zeros((28, 28), np.uint8)
GLYPH_F[4:24, 8:11] = 255  # the stem, on the left
GLYPH_F[4:7, 8:20] = 255  # top arm
GLYPH_F[12:15, 8:17] = 255  # middle arm


def test_stratified_split_is_seeded_and_balanced():
    labels = torch.arange(26).repeat(40)
    train_a, val_a = stratified_split(labels, 0.1, seed=3)
    train_b, val_b = stratified_split(labels, 0.1, seed=3)
    _, val_c = stratified_split(labels, 0.1, seed=4)
    assert torch.equal(val_a, val_b) and not torch.equal(val_a, val_c)
    assert len(val_a) == 104 and len(set(train_a.tolist()) & set(val_a.tolist())) == 0
    assert torch.bincount(labels[val_a]).tolist() == [4] * 26


# ---------------------------------------------------------------- archive, import
