"""Batched preprocessing on the training device: augment, resize, channel-replicate, normalise.

One ``affine_grid`` + ``grid_sample`` does augmentation (rotation, zoom, shift, flip, shear) and the
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

from letterbench.core.runtime import Runtime
from letterbench.images.augment import Augment
from letterbench.models import InputSpec

ELASTIC_GRID = 4
STYLE_WIDTH = 3 + 2 * ELASTIC_GRID**2


def augments(augment: Augment | dict | None) -> bool:
    """Whether ``augment`` asks for any change at all."""
    return augment is not None and Augment.of(augment).changes


def styles(augment: Augment | dict | None) -> bool:
    """Whether ``augment`` asks for a change of the strokes' look (``augment.STYLE_KEYS``)."""
    return augment is not None and Augment.of(augment).restyles


def random_style(n: int, augment: Augment | dict, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` rows of style parameters (n, STYLE_WIDTH), drawn on the CPU like ``random_affine``:
    thickness in pixels, blur share, log gamma, then the elastic displacements. Zeros change nothing."""
    aug = Augment.of(augment)
    u = torch.rand(n, 3, generator=generator)
    thickness = (u[:, 0] * 2 - 1) * aug.thickness
    blur = u[:, 1] * aug.blur
    log_gamma = (u[:, 2] * 2 - 1) * math.log1p(aug.contrast)
    elastic = torch.randn(n, 2 * ELASTIC_GRID**2, generator=generator) * aug.elastic
    return torch.cat([torch.stack([thickness, blur, log_gamma], 1), elastic], 1)


def random_affine(
    n: int, augment: Augment | dict, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``n`` random 2x3 affine matrices (output -> input coordinates), drawn on the CPU so a seed
    gives the same augmentation on any device. Drawing ``a + b`` matrices at once gives the same
    matrices as drawing ``a`` then ``b`` (the generator is read in order)."""
    aug = Augment.of(augment)
    shear = aug.shear
    # a sixth column only where shear is asked for: recipes without it draw what they always drew
    u = torch.rand(n, 6 if shear else 5, generator=generator) * 2 - 1  # uniform in [-1, 1)
    angle = u[:, 0] * math.radians(aug.rotate)
    scale = 1 + u[:, 1] * aug.zoom
    shift = u[:, 2:4] * 2 * aug.shift  # grid coordinates span 2
    flip = torch.where(u[:, 4] < 0, -1.0, 1.0) if aug.flip else torch.ones(n)
    slant = u[:, 5] * shear if shear else torch.zeros(n)  # x_in += slant * y: letters lean
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, cos * slant - sin, shift[:, 0]], 1),
            torch.stack([sin * flip, sin * slant + cos, shift[:, 1]], 1),
        ],
        1,
    )
    return theta.to(device)


def test_time_views() -> torch.Tensor:
    """The fixed views test-time augmentation averages (V, 2, 3): the image itself, turned
    6 degrees either way, and zoomed 8% in and out (within every recipe's training augmentation)."""
    views = [(0.0, 1.0), (-6.0, 1.0), (6.0, 1.0), (0.0, 0.92), (0.0, 1.08)]
    rows = []
    for degrees, scale in views:
        a = math.radians(degrees)
        cos, sin = math.cos(a) / scale, math.sin(a) / scale
        rows.append([[cos, -sin, 0.0], [sin, cos, 0.0]])
    return torch.tensor(rows)


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
        g = torch.exp(-(torch.arange(-2.0, 3.0, device=device) ** 2) / 2)
        self.gauss = (g[:, None] * g[None, :] / g.sum() ** 2).view(1, 1, 5, 5)

    @classmethod
    def on(cls, runtime: Runtime, spec: InputSpec) -> Preprocess:
        """uint8 batches on ``runtime``'s device -> ``spec``'s input, in its memory format."""
        return cls(spec, runtime.device, runtime.channels_last)

    def __call__(
        self, images: torch.Tensor, theta: torch.Tensor | None = None, style: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = images.unsqueeze(1).float().div_(255.0)
        n, size = x.shape[0], self.size
        if style is not None:
            x = self.restyle(x, style)
        if theta is not None or style is not None or x.shape[-1] != size:
            if theta is None:
                theta = self.identity.expand(n, 2, 3)
            grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
            if style is not None:
                grid = grid + self.displacement(style[:, 3:], size)
            # Zero padding: EMNIST's background is 0, so shifted-in borders are background too.
            x = F.grid_sample(x, grid, align_corners=False)
        if self.channels > 1:
            x = x.expand(-1, self.channels, -1, -1)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def restyle(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Thicker or thinner strokes (up to 2 steps of 3x3 dilation or erosion, blended for
        fractions), a partial blur and a gamma, per image; the ink rescaled to its own peak again."""
        peak = x.amax(dim=(1, 2, 3), keepdim=True)
        t = style[:, 0].view(-1, 1, 1, 1)
        grow = t.clamp(min=0)
        shrink = (-t).clamp(min=0)
        d1 = F.max_pool2d(x, 3, 1, 1)
        e1 = -F.max_pool2d(-x, 3, 1, 1)
        d2, e2 = F.max_pool2d(d1, 3, 1, 1), -F.max_pool2d(-e1, 3, 1, 1)
        x = (
            x
            + grow.clamp(max=1) * (d1 - x)
            + (grow - 1).clamp(0, 1) * (d2 - d1)
            + shrink.clamp(max=1) * (e1 - x)
            + (shrink - 1).clamp(0, 1) * (e2 - e1)
        )
        x = x + style[:, 1].view(-1, 1, 1, 1) * (F.conv2d(x, self.gauss, padding=2) - x)
        x = x.clamp(0, 1).pow(torch.exp(style[:, 2]).view(-1, 1, 1, 1))
        return x * (peak / x.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3))

    @staticmethod
    def displacement(coarse: torch.Tensor, size: int) -> torch.Tensor:
        """Smooth displacements (n, size, size, 2) in grid units from ``ELASTIC_GRID``-square control points."""
        field = coarse.view(-1, 2, ELASTIC_GRID, ELASTIC_GRID)
        field = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=True)
        return field.permute(0, 2, 3, 1)
