"""Letters drawn along pen paths, for the real-world bench set (``make_real_world.py``).

Every letter, upper and lower case, is drawn from the stroke table ``letterbench.images.strokes``
(the same skeletons the synthetic training letters grow from; this bench draws only the plain
table, never the joined-writing forms, and its own pens and jitter).

Per sample the control points are jittered (a shared point moves with all strokes through it),
each stroke shifted a little, the whole letter slanted, squeezed and bent by a smooth warp, and
drawn with a pen from a fine pen to a marker whose width varies along the stroke, anti-aliased
(supersampled three times).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from letterbench.images.strokes import BASELINE, STROKES, Jitter, flatten, warp

PX_PER_UNIT = 160  # the mask's resolution: pixels per unit of the box (a capital's height)
SUPERSAMPLE = 3

# Pens: (name, width range in units of the box, share). Widths are drawn log-uniformly.
PENS = [("fine pen", 0.022, 0.04, 0.25), ("ballpoint", 0.04, 0.065, 0.3), ("felt tip", 0.065, 0.1, 0.25)]
PENS += [("marker", 0.1, 0.16, 0.2)]


def pen_letter(letter: str, variant: int, rng: np.random.Generator) -> tuple[np.ndarray, float, str]:
    """One sample of ``letter`` (upper or lower case) drawn with a random pen: the ink mask (float32
    0..1, cropped to the ink with a margin), the baseline's row in it, and the pen's name."""
    strokes = STROKES[letter][variant % len(STROKES[letter])]
    jitter = Jitter(rng, sigma=rng.uniform(0.01, 0.035))
    shape = {
        "width": rng.uniform(0.75, 1.25),
        "height": rng.uniform(0.9, 1.1),
        "slant": rng.normal(0.08, 0.12),
        "bend": [(rng.uniform(2, 6), rng.uniform(0, 6.3), rng.uniform(0, 0.025)) for _ in range(2)],
    }
    paths = []
    for stroke in strokes:
        points = flatten(stroke, jitter) + rng.normal(0, 0.012, 2)  # each stroke a little off
        paths.append(warp(points, rng, shape))
    names, lows, highs, shares = zip(*PENS, strict=True)
    k = int(rng.choice(len(PENS), p=np.asarray(shares) / sum(shares)))
    width = float(np.exp(rng.uniform(np.log(lows[k]), np.log(highs[k]))))
    mask, baseline = _render(paths, width, rng)
    return mask, baseline, f"{names[k]} {width:.3f}"


def _render(paths: list[np.ndarray], width: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Stamp the paths with a round pen whose width varies smoothly along each stroke."""
    scale = PX_PER_UNIT * SUPERSAMPLE
    every = np.concatenate(paths)
    margin = width + 0.05
    lo = every.min(0) - margin
    size = np.ceil((every.max(0) + margin - lo) * scale).astype(int)
    img = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(img)
    taper = rng.random() < 0.3  # brush-like: thinner at the ends
    for path in paths:
        px = (path - lo) * scale
        t = np.linspace(0, 1, len(px))
        wobble = 1 + rng.uniform(0, 0.3) * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6.3))
        if taper:
            wobble *= 0.55 + 0.45 * np.sin(np.pi * np.clip(t * 1.1 - 0.05, 0, 1)) ** 0.5
        radii = np.maximum(0.5 * width * scale * wobble, 1.0)
        for (x0, y0), (x1, y1), r in zip(px[:-1], px[1:], radii[1:], strict=True):
            draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, int(round(2 * r))))
        for (x, y), r in zip(px, radii, strict=True):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    small = img.resize(
        (max(1, img.width // SUPERSAMPLE), max(1, img.height // SUPERSAMPLE)), Image.Resampling.BOX
    )
    baseline = (BASELINE - lo[1]) * PX_PER_UNIT
    return np.asarray(small, dtype=np.float32) / 255.0, float(baseline)
