"""Batched preprocessing on the training device: augment, resize, channel-replicate, normalise.

One ``affine_grid`` + ``grid_sample`` does augmentation (rotation, zoom, shift, flip) and the
resize to the model's input size at once, for a whole batch, on whatever device holds it.
Evaluation goes through the same sampling with the identity transform, so train-time and
test-time resizing are the same operation.

``Preprocess`` holds what every batch needs (mean, std, the identity transform) on the device,
made once: nothing in its ``__call__`` copies from the host, so it can run inside a captured
CUDA graph (``training/graphs.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from letterbench.models import InputSpec

AFFINE_KEYS = ("rotate", "zoom", "shift", "flip")


def augments(augment: dict | None) -> bool:
    """Whether ``augment`` asks for any geometric change at all."""
    return bool(augment) and any(float(augment.get(k, 0) or 0) for k in AFFINE_KEYS)


def random_affine(
    n: int, augment: dict, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``n`` random 2x3 affine matrices (output -> input coordinates), drawn on the CPU so a seed
    gives the same augmentation on any device. Drawing ``a + b`` matrices at once gives the same
    matrices as drawing ``a`` then ``b`` (the generator is read in order)."""
    u = torch.rand(n, 5, generator=generator) * 2 - 1  # uniform in [-1, 1)
    angle = u[:, 0] * math.radians(float(augment.get("rotate", 0.0)))
    scale = 1 + u[:, 1] * float(augment.get("zoom", 0.0))
    shift = u[:, 2:4] * 2 * float(augment.get("shift", 0.0))  # grid coordinates span 2
    flip = torch.where(u[:, 4] < 0, -1.0, 1.0) if augment.get("flip") else torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    return theta.to(device)


class Preprocess:
    """uint8 (B, 28, 28) on ``device`` -> float (B, C, S, S) normalised as ``spec`` says, warped by
    per-image affine matrices ``theta`` (B, 2, 3) where given.

    Channels-last by default: convolutions run faster in that layout on CPUs (oneDNN) and on
    GPUs (tensor cores), and every model here is converted to it (``Runtime.prepare_model``).
    """

    def __init__(self, spec: InputSpec, device: torch.device | str, channels_last: bool = True):
        self.size, self.channels, self.channels_last = spec.size, spec.channels, channels_last
        self.mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
        self.identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device)

    def __call__(self, images: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        x = images.unsqueeze(1).float().div_(255.0)
        n, size = x.shape[0], self.size
        if theta is not None or x.shape[-1] != size:
            if theta is None:
                theta = self.identity.expand(n, 2, 3)
            # Zero padding: EMNIST's background is 0, so shifted-in borders are background too.
            x = F.grid_sample(
                x, F.affine_grid(theta, [n, 1, size, size], align_corners=False), align_corners=False
            )
        if self.channels > 1:
            x = x.expand(-1, self.channels, -1, -1)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def prepare_batch(
    images: torch.Tensor,
    spec: InputSpec,
    augment: dict | None = None,
    generator: torch.Generator | None = None,
    channels_last: bool = True,
) -> torch.Tensor:
    """One batch through ``Preprocess``, augmented with matrices drawn from ``generator`` if
    ``augment`` asks for it (for single batches; loops use ``training.stream.BatchStream``)."""
    theta = random_affine(len(images), augment, generator, images.device) if augments(augment) else None
    return Preprocess(spec, images.device, channels_last)(images, theta)
