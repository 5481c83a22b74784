"""Build a held-out font set: letters in handwriting fonts that neither the training letters
(``letterbench/images/fonts``) nor the real-world bench set (``make_real_world.py``) use, drawn
plainly: dark ink on white paper, a little rotation and size change, no photographed scene. It
measures how a model reads handwriting forms it never saw, apart from the camera; nothing is ever
tuned on it.

    python bench/sets/make_font_set.py --fonts /tmp/heldfonts [--out bench/font-set] [--seed 0] [--per-letter 2]

The fonts are Debian's packages, unpacked without installing them (licences: OFL, GPL with the font
exception; see each package's copyright file):

    mkdir -p /tmp/heldfonts && cd /tmp/heldfonts && \\
      apt-get download fonts-bwht fonts-femkeklaver fonts-rufscript fonts-sjfonts fonts-klee && \\
      for f in *.deb; do dpkg-deb -x "$f" x; done

Writes ``<out>/<font>-<letter>-<case>-NN.png``, ``labels.csv`` (file, label, case, source,
font_or_pen) and ``README.txt``; read it with ``python bench/real_world.py --set <out> --run RUN``.
"""

from __future__ import annotations

import argparse
import csv
import string
import sys
from pathlib import Path

import numpy as np
from make_real_world import find_fonts
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]
SIDE = 128


def letter_image(path: Path, ch: str, rng: np.random.Generator) -> Image.Image:
    size = int(rng.integers(56, 84))
    font = ImageFont.truetype(str(path), size)
    img = Image.new("L", (SIDE * 2, SIDE * 2), 255)
    ink = int(rng.integers(0, 60))
    ImageDraw.Draw(img).text((SIDE, SIDE), ch, font=font, fill=ink, anchor="mm")
    img = img.rotate(float(rng.normal(0, 4)), resample=Image.Resampling.BICUBIC, fillcolor=255)
    left, top = SIDE // 2, SIDE // 2
    return img.crop((left, top, left + SIDE, top + SIDE))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fonts", type=Path, required=True, help="folder of the held-out fonts (see above)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "font-set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-letter", type=int, default=2, help="images per letter, case and font")
    args = parser.parse_args()
    fonts = {path.stem: path for paths in find_fonts(args.fonts).values() for path in paths}
    if not fonts:
        sys.exit(f"no usable font under {args.fonts}")
    if args.out.exists() and any(
        p.name not in ("labels.csv", "README.txt") and p.suffix != ".png" for p in args.out.iterdir()
    ):
        sys.exit(f"{args.out} holds files this script did not write; give an empty or new --out")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for fi, (family, path) in enumerate(sorted(fonts.items())):
        for li, letter in enumerate(string.ascii_lowercase):
            for ci, case in enumerate(("upper", "lower")):
                ch = letter.upper() if case == "upper" else letter
                for k in range(args.per_letter):
                    rng = np.random.default_rng([args.seed, fi, li, ci, k])
                    name = f"{family}-{letter}-{case}-{k:02d}.png"
                    letter_image(path, ch, rng).save(args.out / name)
                    rows.append(
                        {"file": name, "label": letter, "case": case, "source": "font", "font_or_pen": family}
                    )
    with (args.out / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "label", "case", "source", "font_or_pen"])
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "README.txt").write_text(
        "letterbench's held-out font set: handwriting fonts no training letter and no bench set uses.\n"
        f"Built by: python bench/sets/make_font_set.py {' '.join(sys.argv[1:])}\n"
        f"Images: {len(rows)}; fonts: {', '.join(sorted(fonts))}\n"
    )
    print(f"{len(rows)} images, {len(fonts)} fonts, in {args.out}")


if __name__ == "__main__":
    main()
