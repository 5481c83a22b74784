"""Images that hold no single letter, as users send them: a dot or a tap, a dash, a scribble, a
word of several letters, a digit, a symbol. letterbench's own set to choose and check the "not a
single letter" answer on (``images/shape.py``, ``bench/sets/nonletters.py``): drawn with a pen of a
random width on white, in the page's 280-pixel square or a 105-pixel one, or in handwriting fonts.

Seeded: image ``i`` of seed ``s`` is drawn from its own generator ``(s, i)``.
"""

from __future__ import annotations

import string

import numpy as np
from PIL import Image, ImageDraw

from letterbench.images.synthetic import font_paths, load_font

KINDS = ("dot", "dash", "scribble", "word", "digit", "symbol")
SYMBOLS = "#$%&@?!+=*/<>{}~^"
DIGITS = "0123456789"


def nonletter(
    kind: str, rng: np.random.Generator, digits: str = DIGITS, symbols: str = SYMBOLS
) -> Image.Image:
    """One image of ``kind`` (one of ``KINDS``), gray, dark ink on white; a digit or a symbol is
    one of ``digits`` or ``symbols``."""
    side = int(rng.choice([105, 280]))
    img = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(img)
    width = max(2, int(side * rng.uniform(0.015, 0.07)))
    c = side / 2
    if kind == "dot":
        r = width * rng.uniform(0.5, 1.2)
        x, y = rng.uniform(0.2, 0.8, 2) * side
        draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    elif kind == "dash":
        length, turn = side * rng.uniform(0.2, 0.7), np.radians(rng.uniform(-25, 25))
        dx, dy = np.cos(turn) * length / 2, np.sin(turn) * length / 2
        draw.line([(c - dx, c - dy), (c + dx, c + dy)], fill=0, width=width)
    elif kind == "scribble":  # back and forth across a patch, as a word crossed out or a tangle
        n = int(rng.integers(8, 24))
        half = side * rng.uniform(0.15, 0.4, 2)
        t = np.linspace(0, 1, n)
        if rng.random() < 0.5:  # zigzag
            xs = c + half[0] * np.where(np.arange(n) % 2 == 0, -1, 1) * rng.uniform(0.7, 1, n)
            ys = c - half[1] + 2 * half[1] * t + rng.normal(0, side * 0.02, n)
        else:  # loops
            turns = rng.uniform(0, 2 * np.pi) + t * n * 0.9
            xs = c + half[0] * np.cos(turns) * rng.uniform(0.6, 1, n) + (t - 0.5) * half[0]
            ys = c + half[1] * np.sin(turns) * rng.uniform(0.6, 1, n)
        draw.line(list(zip(xs, ys, strict=True)), fill=0, width=width, joint="curve")
    else:
        text = _text(kind, rng, digits, symbols)
        font = load_font(font_paths()[int(rng.integers(len(font_paths())))], int(side * 0.5))
        box = draw.textbbox((0, 0), text, font=font, anchor="lt")
        scale = min(side * 0.85 / max(box[2] - box[0], 1), side * 0.7 / max(box[3] - box[1], 1), 1.0)
        if scale < 1.0:
            font = load_font(
                font_paths()[int(rng.integers(len(font_paths())))], max(8, int(side * 0.5 * scale))
            )
        draw.text((c, c), text, font=font, fill=0, anchor="mm", stroke_width=int(rng.integers(0, 3)))
    return img


def _text(kind: str, rng: np.random.Generator, digits: str, symbols: str) -> str:
    if kind == "digit":
        return digits[int(rng.integers(len(digits)))]
    if kind == "symbol":
        return symbols[int(rng.integers(len(symbols)))]
    letters = string.ascii_lowercase if rng.random() < 0.7 else string.ascii_uppercase
    return "".join(rng.choice(list(letters), size=int(rng.integers(2, 7))))


def nonletters(
    count: int, seed: int, kinds: tuple[str, ...] = KINDS, digits: str = DIGITS, symbols: str = SYMBOLS
) -> list[tuple[str, Image.Image]]:
    """``count`` images, kind ``kinds[i % len(kinds)]`` for image ``i``."""
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        out.append((kind, nonletter(kind, np.random.default_rng([seed, i]), digits, symbols)))
    return out
