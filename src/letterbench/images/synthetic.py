"""Synthetic handwritten letters for training: EMNIST's 28x28 look, every class in both cases.

EMNIST holds the letters of one population of writers, scanned the same way; a model trained on it
alone reads letters written that way. These letters widen what it sees, drawn from three sources:

- **pen paths** (``strokes.py``): a letter's skeleton with its control points jittered, slanted,
  squeezed and bent, drawn with a pen whose width and pressure vary along the stroke;
- **joined writing** (small letters): the cursive forms of ``CURSIVE`` (loops, descender loops),
  and entry and exit strokes, the joins to the letters before and after;
- **handwriting fonts** vendored in ``fonts/`` (OFL / Apache; none of them is used by the bench set),
  thickened or thinned.

A share of the letters is **cut from a word**: a neighbouring letter, drawn the same way, stands
beside it on the same baseline, and the part of it that falls in the frame enters at the left or
right edge. The letter is framed as EMNIST frames its letters (``letters.frame``): its own ink's box,
centred in a square that keeps the aspect ratio, blurred, 24 pixels inside a 2-pixel border.

Seeded: sample ``i`` of seed ``s`` is drawn from its own generator ``(s, i)``, so the same seed gives
the same images in any order and any number at a time.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from letterbench.images.letters import frame
from letterbench.images.strokes import BASELINE, CURSIVE, STROKES, Jitter, flatten, warp

WORK = 64  # pixels per unit of the box (a capital's height) when drawing
PEN = (0.07, 0.14)  # pen widths in units of the box, drawn log-uniformly (EMNIST's stroke widths)
X_HEIGHT = 0.42


@dataclass(frozen=True)
class Shares:
    """How the letters are drawn: the share of font letters, of joined forms among small pen
    letters, and of letters cut from a word."""

    font: float = 0.3
    cursive: float = 0.5
    neighbour: float = 0.35


@cache
def font_paths() -> tuple[Path, ...]:
    folder = resources.files("letterbench.images") / "fonts"
    return tuple(sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".woff")))


@cache
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def synthetic_letters(
    count: int, seed: int, shares: Shares = Shares(), first: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` letters (uint8, N x 28 x 28, ink bright on black, upright like EMNIST once loaded)
    and their classes (int64 0..25). Sample ``first + k`` is class ``(first + k) % 26``, a capital
    when ``(first + k) // 26`` is even."""
    images = np.zeros((count, 28, 28), np.uint8)
    labels = np.zeros(count, np.int64)
    for k in range(count):
        i = first + k
        letter = string.ascii_lowercase[i % 26]
        ch = letter.upper() if (i // 26) % 2 == 0 else letter
        images[k] = draw_letter(ch, np.random.default_rng([seed, i]), shares)
        labels[k] = i % 26
    return images, labels


def draw_letter(ch: str, rng: np.random.Generator, shares: Shares = Shares()) -> np.ndarray:
    """One sample of ``ch`` (a..z or A..Z) as uint8 28x28."""
    use_font = rng.random() < shares.font and bool(font_paths())
    cursive = ch.islower() and rng.random() < shares.cursive
    neighbour = rng.random() < shares.neighbour
    other = rng.choice(list(string.ascii_lowercase if ch.islower() else string.ascii_uppercase))
    if use_font:
        canvas, box = _font_canvas(ch, other if neighbour else None, rng)
    else:
        canvas, box = _pen_canvas(ch, other if neighbour else None, cursive, rng)
    return cut_frame(canvas, box)


def _pen_paths(ch: str, cursive: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """The letter's strokes as point lists in units of the box, jittered and warped."""
    table = CURSIVE.get(ch, STROKES[ch]) if cursive and rng.random() < 0.7 else STROKES[ch]
    strokes = list(table[int(rng.integers(len(table)))])
    jitter = Jitter(rng, sigma=rng.uniform(0.01, 0.04))
    paths = [flatten(s, jitter) + rng.normal(0, 0.012, 2) for s in strokes]
    if cursive:
        paths = _joined(paths, rng)
    shape = {
        "width": rng.uniform(0.75, 1.25),
        "height": rng.uniform(0.9, 1.1),
        "slant": rng.normal(0.1, 0.15),
        "bend": [(rng.uniform(2, 6), rng.uniform(0, 6.3), rng.uniform(0, 0.03)) for _ in range(2)],
    }
    return [warp(p, rng, shape) for p in paths]


def _joined(paths: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Entry and exit strokes of joined writing: from the baseline up into the letter's first
    point, and from its last point out to the right towards the next letter."""
    t = np.linspace(0, 1, 12)[:, None]

    def curve(a: np.ndarray, c: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t**2 * b

    start, end = paths[0][0], paths[-1][-1]
    if rng.random() < 0.7:
        a = np.array([start[0] - rng.uniform(0.2, 0.4), BASELINE + rng.uniform(-0.05, 0.02)])
        c = np.array([start[0] - rng.uniform(0.0, 0.15), BASELINE - rng.uniform(0.0, 0.1)])
        paths[0] = np.concatenate([curve(a, c, start), paths[0]])
    if rng.random() < 0.8:
        b = np.array([end[0] + rng.uniform(0.2, 0.4), rng.uniform(X_HEIGHT + 0.1, BASELINE - 0.1)])
        c = np.array([end[0] + rng.uniform(0.05, 0.15), BASELINE + rng.uniform(-0.05, 0.03)])
        paths[-1] = np.concatenate([paths[-1], curve(end, c, b)])
    return paths


def _pen_canvas(
    ch: str, other: str | None, cursive: bool, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The letter (and its neighbour) drawn with one pen: the canvas and the letter's own box
    (top, bottom, left, right) in its pixels."""
    width = float(np.exp(rng.uniform(*np.log(PEN))))
    paths = _pen_paths(ch, cursive, rng)
    own = np.concatenate(paths)
    box = np.array([*own.min(0), *own.max(0)])  # x0, y0, x1, y1 in units
    if other is not None:
        more = _pen_paths(other, cursive, rng)
        every = np.concatenate(more)
        gap = rng.uniform(-0.05, 0.2)
        if rng.random() < 0.5:  # the next letter, at the right
            shift = box[2] + gap - every[:, 0].min()
        else:
            shift = box[0] - gap - every[:, 0].max()
        paths = paths + [p + np.array([shift, 0.0]) for p in more]
    lo = box[:2] - 0.5 * (box[3] - box[1] + box[2] - box[0]) - width
    hi = box[2:] + 0.5 * (box[3] - box[1] + box[2] - box[0]) + width
    size = np.ceil((hi - lo) * WORK).astype(int) + 1
    img = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(img)
    for path in paths:
        draw_stroke(draw, (path - lo) * WORK, width * WORK, rng)
    pad = 0.5 * width
    x0, y0 = (box[:2] - pad - lo) * WORK
    x1, y1 = (box[2:] + pad - lo) * WORK
    return np.asarray(img, np.float32) / 255.0, (y0, y1, x0, x1)


def draw_stroke(draw: ImageDraw.ImageDraw, px: np.ndarray, width: float, rng: np.random.Generator) -> None:
    """A path drawn in short pieces whose width follows the pen's pressure, with round joins."""
    keep = np.concatenate([[True], np.linalg.norm(np.diff(px, axis=0), axis=1).cumsum() % 2.0 < 1.0])
    px = px[keep] if keep.sum() >= 2 else px
    t = np.linspace(0, 1, len(px))
    pressure = 1 + rng.uniform(0, 0.35) * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6.3))
    if rng.random() < 0.3:  # lighter at the ends, as a pen set down and lifted
        pressure *= 0.6 + 0.4 * np.sin(np.pi * np.clip(t * 1.1 - 0.05, 0, 1)) ** 0.5
    for k in range(0, len(px) - 1, 4):
        piece = px[k : k + 5]
        w = max(1.0, width * float(pressure[k]))
        draw.line([tuple(p) for p in piece], fill=255, width=int(round(w)), joint="curve")
        r = w / 2
        x, y = piece[-1]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    x, y = px[0]
    r = max(1.0, width * float(pressure[0])) / 2
    draw.ellipse([x - r, y - r, x + r, y + r], fill=255)


def _font_canvas(
    ch: str, other: str | None, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The letter (and its neighbour) in a handwriting font, made bolder or thinner."""
    path = font_paths()[int(rng.integers(len(font_paths())))]
    font = load_font(path, WORK)
    bold = int(rng.choice([0, 0, 1, 1, 2, 3]))
    side = 4 * WORK
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    origin = (1.5 * WORK, 2.2 * WORK)
    draw.text(origin, ch, font=font, fill=255, anchor="ls", stroke_width=bold, stroke_fill=255)
    mask = np.asarray(img, np.float32) / 255.0
    rows, cols = np.nonzero(mask > 0.25)
    box = (float(rows.min()), float(rows.max() + 1), float(cols.min()), float(cols.max() + 1))
    if other is not None:
        gap = rng.uniform(-0.05, 0.15) * WORK
        if rng.random() < 0.5:
            x = box[3] + gap - font.getbbox(other, anchor="ls")[0]  # the next letter, at the right
        else:
            x = box[2] - gap - font.getbbox(other, anchor="ls")[2]
        draw.text((x, origin[1]), other, font=font, fill=255, anchor="ls", stroke_width=bold, stroke_fill=255)
        mask = np.asarray(img, np.float32) / 255.0
    return mask, box


def cut_frame(canvas: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """EMNIST's frame around the letter's own box: whatever else lies in the frame (a neighbour's
    stroke) stays, at the edges. Drawn crisper than NIST's scans, the canvas is blurred a little
    more than EMNIST's own blur, and the box grows by that blur, as a box found on a blurred scan."""
    top, bottom, left, right = (float(v) for v in box)
    blur = max(bottom - top, right - left) / 22.0
    top, bottom, left, right = top - blur, bottom + blur, left - blur, right + blur
    side = max(bottom - top, right - left)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    full = side * 28 / 24
    img = Image.fromarray((np.clip(canvas, 0, 1) * 255).astype(np.uint8))
    crop = img.crop(
        (
            int(round(cx - full / 2)),
            int(round(cy - full / 2)),
            int(round(cx + full / 2)),
            int(round(cy + full / 2)),
        )
    )
    crop = crop.filter(ImageFilter.GaussianBlur(radius=blur))
    return frame(np.asarray(crop, np.float32) / 255.0, bordered=True)
