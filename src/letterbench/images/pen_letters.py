"""Real handwritten letters (``data/handwriting.py``) drawn as EMNIST draws its letters: 28x28,
ink bright on black, the letter's own box centred in a 2-pixel border.

Each trajectory is drawn afresh for every sample: slanted, turned and squeezed a little, with a pen
whose width is drawn from EMNIST's range (2.2 to 4.4 pixels of the 24-pixel letter) and whose
pressure varies along the stroke (``synthetic.draw_stroke``), then framed (``synthetic.cut_frame``).
The same seed and index give the same image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from letterbench.data.handwriting import PenLetters
from letterbench.images.synthetic import WORK, cut_frame, draw_stroke

PEN = (0.085, 0.18)  # pen widths in units of the letter's longer side, drawn log-uniformly


def pen_letter_images(letters: PenLetters, chosen: np.ndarray, seed: int) -> np.ndarray:
    """The letters ``chosen`` (indices into ``letters``) as uint8 N x 28 x 28, sample ``k`` drawn
    from its own generator ``(seed, k)``."""
    out = np.zeros((len(chosen), 28, 28), np.uint8)
    for k, i in enumerate(chosen):
        out[k] = draw_pen_letter(letters.paths(int(i)), np.random.default_rng([seed, 0x9E7, k]))
    return out


def draw_pen_letter(paths: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One letter's strokes (points, y down, longer side 1,000) as uint8 28x28."""
    turn = np.deg2rad(rng.normal(0, 4))
    shape = np.array([[rng.uniform(0.85, 1.15), rng.normal(0, 0.12)], [0.0, 1.0]])  # squeeze, slant
    rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    moved = [(p / 1000.0) @ (rotate @ shape).T for p in paths]
    every = np.concatenate(moved)
    lo, hi = every.min(0), every.max(0)
    side = max(float((hi - lo).max()), 1e-3)
    width = float(np.exp(rng.uniform(*np.log(PEN)))) * side
    origin = lo - side * 0.5 - width
    size = np.ceil((hi - lo + side + 2 * width) * WORK).astype(int) + 1
    img = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(img)
    for path in moved:
        draw_stroke(draw, (path - origin) * WORK, width * WORK, rng)
    pad = 0.5 * width
    x0, y0 = (lo - pad - origin) * WORK
    x1, y1 = (hi + pad - origin) * WORK
    return cut_frame(np.asarray(img, np.float32) / 255.0, (y0, y1, x0, x1))
