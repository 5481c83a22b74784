"""A bench of real handwriting no model trained on: the UNIPEN letters of the held-out writers
(``data/handwriting.py``: about a tenth of the writers, never drawn for training), drawn as a user
draws on the page (dark strokes of one width on white, 105x105, like the drawn-letters bench), one
sub-folder per letter, as ``--real-world`` reads it.

    python bench/sets/unipen_bench.py bench/real-world-unipen [--per-class 40]

Each letter class gets ``--per-class`` images, half capitals and half small letters where there are
enough, each from a different letter of the held-out writers, chosen and drawn with seed 0.
"""

from __future__ import annotations

import argparse
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from letterbench.data.handwriting import pen_letters

SIDE = 105


def drawn(paths: list[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """Strokes (longer side 1,000) drawn at 55..80% of a white square, 2..5 pixels wide."""
    scale = rng.uniform(0.55, 0.8) * SIDE / 1000
    every = np.concatenate(paths)
    offset = (SIDE - (every.max(0) - every.min(0)) * scale) / 2 - every.min(0) * scale
    img = Image.new("L", (SIDE, SIDE), 255)
    draw = ImageDraw.Draw(img)
    width = int(rng.integers(2, 6))
    for path in paths:
        points = [tuple(p) for p in path * scale + offset]
        if len(points) == 1:
            points = points * 2
        draw.line(points, fill=0, width=width, joint="curve")
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=40)
    args = parser.parse_args()
    letters = pen_letters()
    held = letters.held_out()
    rng = np.random.default_rng(0)
    for c, letter in enumerate(string.ascii_lowercase):
        folder = args.out / letter
        folder.mkdir(parents=True, exist_ok=True)
        chosen = []
        for capital, count in ((True, args.per_class // 2), (False, args.per_class - args.per_class // 2)):
            pool = np.flatnonzero(held & (letters.labels == c) & (letters.capital == capital))
            chosen += list(rng.choice(pool, size=min(count, len(pool)), replace=False))
        for i in chosen:
            case = "capital" if letters.capital[i] else "small"
            drawn(letters.paths(int(i)), rng).save(folder / f"{case}-{int(i)}.png")
    print(f"wrote {args.out}: {len(string.ascii_lowercase)} letters x {args.per_class}")


if __name__ == "__main__":
    main()
