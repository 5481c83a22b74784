"""The batch stream: where every loop's batches come from (airbench's GPU-resident loader is the
model, ``legacy/airbench94.py``).

The images stay on the device as uint8. ``epoch()`` draws an epoch's permutation and every
image's augmentation matrix at once, on the CPU generator (so a seed gives the same batches on
any device), shards them for torchrun and moves them to the device in one copy; its batches are
views into those tensors, and ``inputs()`` gathers, warps, resizes and normalises a batch on the
device. Nothing in an epoch goes back to the host, so a GPU's queue never stalls on the loader.
Training, precise BN, evaluation and the throughput benchmark all read their batches from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from letterbench.core.distributed import DistInfo
from letterbench.images.augment import Augment
from letterbench.images.transforms import (
    STYLE_WIDTH,
    Preprocess,
    augments,
    random_affine,
    random_style,
    styles,
)


@dataclass
class Batch:
    """One batch: the indices of its images, their affine matrices and their style parameters
    (None: no such augmentation), all on the device."""

    index: torch.Tensor
    theta: torch.Tensor | None = None
    style: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.index)


class EpochPlan:
    """An epoch's batches: ``order`` (the images in the order they are used), ``theta`` and
    ``style`` (per used image) on the device, cut into ``steps`` batches of ``batch_size`` (the
    last one may be smaller)."""

    def __init__(
        self,
        order: torch.Tensor,
        theta: torch.Tensor | None,
        batch_size: int,
        steps: int,
        style: torch.Tensor | None = None,
    ):
        self.order, self.theta, self.style = order, theta, style
        self.batch_size, self.steps = batch_size, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Batch]:
        for step in range(self.steps):
            cut = slice(step * self.batch_size, min((step + 1) * self.batch_size, len(self.order)))
            yield Batch(
                self.order[cut],
                None if self.theta is None else self.theta[cut],
                None if self.style is None else self.style[cut],
            )


@dataclass
class Mix:
    """Extra training images (uint8, on the stream's device) and the share of every training batch
    drawn from them, with replacement. They come on top of the batch's own images, which stay the
    unmixed stream's: ``extra(batch_size)`` of them, so that they make ``share`` of the batch."""

    images: torch.Tensor
    labels: torch.Tensor
    share: float

    def extra(self, batch_size: int) -> int:
        return extra_per_batch(batch_size, self.share)


def extra_per_batch(batch_size: int, share: float) -> int:
    """The extra images on top of a batch of ``batch_size`` own ones that make ``share`` of it."""
    return max(1, round(batch_size * share / (1 - share)))


class BatchStream:
    """Ready batches of ``images`` (uint8, N x 28 x 28) and ``labels``, on their device; with a
    ``mix``, every training batch also holds its share of the mix's images."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        preprocess: Preprocess,
        batch_size: int,
        augment: Augment | dict | None = None,
        dist: DistInfo | None = None,
        mix: Mix | None = None,
    ):
        self.count = len(labels)  # the stream's own images; a mix's follow them in ``images``
        if mix is not None:
            images, labels = torch.cat([images, mix.images]), torch.cat([labels, mix.labels])
        self.images, self.labels, self.preprocess = images, labels, preprocess
        self.batch_size = batch_size
        self.augment = Augment.of(augment) if augments(augment) else None
        self.dist = dist or DistInfo()
        self.mix = mix

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def shard_size(self) -> int:
        """Images each rank trains on per epoch (the remainder of an uneven split is left out)."""
        return self.count // self.dist.world

    @property
    def steps(self) -> int:
        n, bs = self.shard_size, self.batch_size
        return n // bs + (1 if n % bs >= 2 else 0)  # a last batch of one would break BatchNorm

    @property
    def extra(self) -> int:
        """The mix's images in each batch, on top of ``batch_size`` own ones (0 without a mix)."""
        return 0 if self.mix is None else self.mix.extra(self.batch_size)

    @property
    def full_batch_size(self) -> int:
        return self.batch_size + self.extra

    @property
    def last_batch_size(self) -> int:
        own = min(self.batch_size, self.shard_size - (self.steps - 1) * self.batch_size)
        return own + (0 if self.mix is None else self.mix.extra(own))

    def epoch(self, generator: torch.Generator) -> EpochPlan:
        """This epoch's shuffled, sharded batches with their augmentation, drawn from ``generator``
        (the permutation first, then the matrices in the order the images are used, then the
        style parameters where the recipe asks for them)."""
        world, rank = self.dist.world, self.dist.rank
        order = torch.randperm(self.count, generator=generator)
        order = order[: self.shard_size * world][rank::world]
        used = min(self.steps * self.batch_size, self.shard_size)
        order = order[:used]
        theta = random_affine(used, self.augment, generator) if self.augment else None
        style = random_style(used, self.augment, generator) if styles(self.augment) else None
        if self.mix is not None:
            order, theta, style = self._mixed(order, theta, style, generator)
        return EpochPlan(
            order.to(self.device),
            None if theta is None else theta.to(self.device),
            self.full_batch_size,
            self.steps,
            None if style is None else style.to(self.device),
        )

    def _mixed(self, order, theta, style, generator: torch.Generator) -> tuple:
        """Each batch: its own images as unmixed (the same images, matrices and styles, drawn
        first), then the mix's (``extra``; in a smaller last batch, its share of it), drawn after
        them with their own matrices and styles."""
        steps, bs = self.steps, self.batch_size
        counts = [self.extra] * (steps - 1) + [self.last_batch_size - (len(order) - (steps - 1) * bs)]
        starts = [sum(counts[:k]) for k in range(steps + 1)]
        # Drawn for every rank, each taking its own slice: under torchrun the ranks train on
        # different extra images (one process draws exactly what it drew alone).
        world, rank, total = self.dist.world, self.dist.rank, starts[-1] * self.dist.world
        drawn = torch.randint(len(self.mix.labels), (total,), generator=generator)[rank::world] + self.count
        drawn_theta = random_affine(total, self.augment, generator)[rank::world] if self.augment else None
        drawn_style = (
            random_style(total, self.augment, generator)[rank::world] if styles(self.augment) else None
        )

        def interleave(own: torch.Tensor | None, more: torch.Tensor | None) -> torch.Tensor | None:
            if own is None:
                return None
            parts = []
            for step in range(steps):
                parts += [own[step * bs : (step + 1) * bs], more[starts[step] : starts[step + 1]]]
            return torch.cat(parts)

        return interleave(order, drawn), interleave(theta, drawn_theta), interleave(style, drawn_style)

    def example(self, size: int | None = None) -> Batch:
        """A batch of the first ``size`` images with identity matrices (warm-up and capture)."""
        size = self.full_batch_size if size is None else size
        index = torch.arange(size, device=self.device) % self.count
        theta = None if self.augment is None else self.preprocess.identity.expand(size, 2, 3).clone()
        style = torch.zeros(size, STYLE_WIDTH, device=self.device) if styles(self.augment) else None
        return Batch(index, theta, style)

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's input and the labels of ``batch``."""
        return self.preprocess(self.images[batch.index], batch.theta, batch.style), self.labels[batch.index]

    def in_order(
        self, count: int | None = None, batch_size: int | None = None, shard: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Unaugmented batches of the first ``count`` images in order (evaluation, precise BN);
        with ``shard`` each rank takes every world-th image."""
        n = self.count if count is None else min(count, self.count)
        step, first = (self.dist.world, self.dist.rank) if shard else (1, 0)
        index = torch.arange(first, n, step, device=self.device)
        size = batch_size or self.batch_size
        for start in range(0, len(index), size):
            yield self.inputs(Batch(index[start : start + size]))
