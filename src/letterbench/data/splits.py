"""The train/validation split of a run: which official training images train and which validate,
drawn from the seed (and the training subset) so that any later command draws it again."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from letterbench.data.emnist import EmnistData, stratified_split, stratified_subset


@dataclass
class Split:
    """Indices into the official train set: what trains, what validates."""

    train: torch.Tensor
    val: torch.Tensor


def make_split(data: EmnistData, val_fraction: float, seed: int, train_per_class: int | None) -> Split:
    pool = torch.arange(len(data.train_labels))
    if train_per_class:
        pool = stratified_subset(data.train_labels, train_per_class, seed)
    train, val = stratified_split(data.train_labels[pool], val_fraction, seed)
    return Split(pool[train], pool[val])
