"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import pytest
import torch
from helpers import AUGMENT, stream

from letterbench.images.transforms import STYLE_WIDTH, Preprocess, random_affine, random_style
from letterbench.models import create_model

# ---------------------------------------------------------------- style augmentations

STYLE = {**AUGMENT, "thickness": 1.5, "blur": 0.5, "contrast": 0.5, "elastic": 0.05}


def _stroke_image() -> torch.Tensor:
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 5:23, 12:15] = 255  # a vertical bar, 3 px wide
    img[0, 5:8, 8:20] = 255
    return img


def test_style_parameters_change_the_strokes_as_named():
    pre = Preprocess(create_model("resnet18").spec, "cpu", channels_last=False)
    img = _stroke_image()

    def ink(**values) -> torch.Tensor:
        style = torch.zeros(1, STYLE_WIDTH)
        for column, key in enumerate(("thickness", "blur", "gamma")):
            style[0, column] = values.get(key, 0.0)
        if "elastic" in values:
            style[0, 3:] = (
                torch.randn(STYLE_WIDTH - 3, generator=torch.Generator().manual_seed(0)) * values["elastic"]
            )
        return pre(img, None, style) * pre.std + pre.mean  # back to 0..1

    plain = pre(img) * pre.std + pre.mean
    assert torch.allclose(ink(), plain, atol=1e-5)  # zeros change nothing
    faint = (img.float() * 0.8).to(torch.uint8)  # a peak of 204, not 255
    assert torch.allclose(pre(faint, None, torch.zeros(1, STYLE_WIDTH)), pre(faint), atol=1e-5)
    assert ink(thickness=1.0).sum() > 1.5 * plain.sum()  # one step of dilation: 3 px -> 5 px
    assert ink(thickness=-1.0).sum() < 0.5 * plain.sum()
    assert plain.sum() < ink(thickness=0.5).sum() < ink(thickness=1.0).sum() < ink(thickness=2.0).sum()
    blurred = ink(blur=1.0)
    assert blurred.max() == pytest.approx(1.0) and (blurred > 0.05).sum() > (plain > 0.05).sum()
    assert ink(gamma=0.5).sum() < blurred.sum() and torch.allclose(ink(gamma=0.5).amax(), plain.amax())
    warped = ink(elastic=0.08)
    assert (warped - plain).abs().max() > 0.5 and abs(warped.sum() / plain.sum() - 1) < 0.2


def test_style_is_drawn_after_the_matrices_and_only_where_asked():
    s = stream(70, 32, STYLE)
    plan = s.epoch(torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    torch.randperm(70, generator=gen)
    theta = random_affine(70, STYLE, gen)
    style = random_style(70, STYLE, gen)
    assert torch.equal(plan.theta, theta) and torch.equal(plan.style, style)
    assert style[:, 0].abs().max() <= 1.5 and 0 <= style[:, 1].min() and style[:, 1].max() <= 0.5
    assert stream(70, 32).epoch(torch.Generator().manual_seed(5)).style is None
    batch = next(iter(plan))
    x, _ = s.inputs(batch)
    assert not torch.equal(x, s.preprocess(s.images[batch.index], batch.theta))
    assert s.example().style.abs().sum() == 0  # warm-up and capture batches are neutral


def test_shear_slants_upright_strokes_and_leaves_other_recipes_draws_alone():
    """A vertical bar comes out leaning, each way, by no more than the recipe's shear; a recipe
    without shear draws the matrices it drew before shear existed (same seed, same run)."""
    bar = torch.zeros(1, 28, 28, dtype=torch.uint8)
    bar[0, 4:24, 13:15] = 255
    theta = random_affine(64, {"shear": 0.4}, torch.Generator().manual_seed(1))
    out = Preprocess(create_model("resnet18").spec, "cpu", channels_last=False)(bar.expand(64, 28, 28), theta)
    ink = out[:, 0] - out[:, 0].amin()
    cols = torch.arange(28.0)

    def centre(rows: slice) -> torch.Tensor:
        part = ink[:, rows].sum(1)
        return (part * cols).sum(1) / part.sum(1)

    lean = (centre(slice(18, 24)) - centre(slice(4, 10))) / 14  # columns per row, bottom minus top
    assert lean.max() > 0.2 and lean.min() < -0.2 and lean.abs().max() <= 0.4 + 0.05
    upright = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08, "flip": True}
    for shear, width in ((0.0, 5), (0.3, 6)):
        u = torch.rand(8, width, generator=torch.Generator().manual_seed(2)) * 2 - 1
        angle, scale = u[:, 0] * torch.pi / 18, 1 + u[:, 1] * 0.1
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        turn = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
        flip = torch.where(u[:, 4] < 0, -1.0, 1.0)
        lean = u[:, 5] * shear if shear else torch.zeros(8)
        # rotation and zoom after the flip and the slant (output -> input coordinates)
        slant = torch.stack(
            [torch.stack([flip, lean], 1), torch.stack([torch.zeros(8), torch.ones(8)], 1)], 1
        )
        got = random_affine(8, {**upright, "shear": shear}, torch.Generator().manual_seed(2))
        assert torch.allclose(got[:, :, :2], turn @ slant, atol=1e-6)
        assert torch.allclose(got[:, :, 2], u[:, 2:4] * 0.16)
