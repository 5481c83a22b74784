"""Build letterbench's own real-world evaluation set: photographed-style single letters, labelled.

    python bench/sets/make_real_world.py --fonts /tmp/fonts [--out bench/real-world] [--seed 0] [--per-letter 48]

Two sources, half each: (a) letters typed in handwriting fonts, (b) letters drawn along pen paths
(``pen_letters.py``: a hand-written stroke table, jittered per sample, pens from fine to marker).
Every letter, upper and lower case in equal numbers, is then 'photographed' (``photo_scene.py``):
paper colour and texture, ruled or squared paper, ink colour, pencil grain, off-centre placement
at sizes from small to filling the frame, rotation, perspective, uneven light and shadow, white
balance, blur, noise, low resolution, JPEG at quality 30..95 or PNG. Seeded: the same fonts, seed
and options give the same files, byte for byte. Writes ``<out>/<source>-<letter>-<case>-NN.jpg|png``,
``labels.csv`` (file, label, case, source, font_or_pen, scene) and ``README.txt`` (provenance).
Evaluate with ``python bench/real_world.py --run STUDY``.

Getting the fonts (not committed; any folder of .woff/.ttf/.otf works, searched recursively; a
font is used only if it draws all 52 letters). Google's handwriting fonts from npm, and four
Debian font packages (Debian 12 "bookworm" versions) unpacked without installing them:

    mkdir -p /tmp/fonts && for f in caveat indie-flower patrick-hand shadows-into-light kalam gochi-hand \\
      reenie-beanie homemade-apple nanum-pen-script architects-daughter rock-salt covered-by-your-grace \\
      just-another-hand la-belle-aurore nothing-you-could-do cedarville-cursive dancing-script satisfy \\
      handlee coming-soon; do echo "@fontsource/$f@5.3.0"; done \\
      | xargs npm install --prefix /tmp/fonts --no-audit --no-fund
    mkdir -p /tmp/fonts/deb && cd /tmp/fonts/deb && \\
      apt-get download fonts-dkg-handwriting fonts-humor-sans fonts-comic-neue fonts-breip && \\
      for f in *.deb; do dpkg-deb -x "$f" /tmp/fonts/deb/x; done
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import string
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
from pen_letters import PX_PER_UNIT, pen_letter
from photo_scene import photograph
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parents[2]
FONT_SUFFIXES = (".woff", ".ttf", ".otf")
FONT_PX = 160  # the font's size when drawing a letter's mask
FONTSOURCE = re.compile(r"(?P<family>.+?)-latin-(?P<weight>\d+)-(?P<style>normal|italic)$")
FONTSOURCE_ANY = re.compile(r"-\d+-(normal|italic)$")
CASES = ("upper", "lower")
COLUMNS = ["file", "label", "case", "source", "font_or_pen", "scene"]


@cache
def load_font(path: Path, size: int = FONT_PX) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _draws_every_letter(path: Path) -> bytes | None:
    """The font's drawing of all 52 letters (to tell duplicates apart), or None where it cannot
    be read or lacks a letter (draws nothing, or the same as for a code point no font has)."""
    try:
        font = load_font(path, 32)
        missing = bytes(font.getmask("\u0378"))
        drawn = [bytes(font.getmask(ch)) for ch in string.ascii_letters]
    except OSError:
        return None
    if any(not any(d) or d == missing for d in drawn):
        return None
    return b"".join(drawn)


def find_fonts(folder: Path) -> dict[str, list[Path]]:
    """Usable fonts under ``folder`` by family: fontsource's ``NAME-latin-WEIGHT-STYLE.woff`` by
    NAME (its weights are variants), any other file by its folder's name; exact duplicates once."""
    families: dict[str, list[Path]] = {}
    seen: set[bytes] = set()
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES):
        if FONTSOURCE_ANY.search(path.stem) and not FONTSOURCE.match(path.stem):
            continue  # another subset of a fontsource font (latin-ext, cyrillic, korean ...)
        drawing = _draws_every_letter(path)
        if drawing is None or drawing in seen:
            continue
        seen.add(drawing)
        match = FONTSOURCE.match(path.stem)
        families.setdefault(match["family"] if match else path.parent.name, []).append(path)
    return families


def font_letter(path: Path, ch: str, rng: np.random.Generator) -> tuple[np.ndarray, float, float, str]:
    """``ch`` in the font, made bolder or thinner, slanted and squeezed at random: the mask (float 0..1),
    the baseline's row in it, a capital's height in its pixels and a description."""
    font = load_font(path)
    bold = int(rng.choice([0, 0, 0, 0, 1, 2, 4]))
    canvas = Image.new("L", (FONT_PX * 4, FONT_PX * 3), 0)
    ImageDraw.Draw(canvas).text(
        (FONT_PX, 2 * FONT_PX), ch, font=font, fill=255, anchor="ls", stroke_width=bold, stroke_fill=255
    )
    note = f" bold+{bold}" if bold else ""
    if not bold and rng.random() < 0.2:
        canvas, note = canvas.filter(ImageFilter.MinFilter(3)), " thinned"
    mask = np.asarray(canvas, dtype=np.float32) / 255
    slant, squeeze = float(rng.normal(0.03, 0.1)), float(rng.uniform(0.8, 1.2))
    mask = _slant(mask, 2 * FONT_PX, slant, squeeze)
    rows, cols = np.nonzero(mask > 0.02)
    top, left = max(0, rows.min() - 4), max(0, cols.min() - 4)
    mask = mask[top : rows.max() + 5, left : cols.max() + 5]
    cap = -font.getbbox("H", anchor="ls")[1]
    return mask, float(2 * FONT_PX - top), float(cap), f"{path.stem}{note}"


def _slant(mask: np.ndarray, baseline: float, slant: float, squeeze: float) -> np.ndarray:
    """Shear about the baseline (``slant`` > 0 leans right) and scale the width by ``squeeze``."""
    h, w = mask.shape
    pad = int(abs(slant) * h) + 2
    data = (1 / squeeze, slant / squeeze, (-pad - slant * baseline) / squeeze, 0, 1, 0)
    img = Image.fromarray(mask).transform(
        (int(w * squeeze) + 2 * pad, h), Image.Transform.AFFINE, data, Image.Resampling.BICUBIC
    )
    return np.asarray(img).clip(0, 1)


def _describe(desc: dict) -> str:
    return ";".join(f"{k}={v}" for k, v in desc.items())


def build(out: Path, families: dict[str, list[Path]], seed: int, per_letter: int, letters: str) -> list[dict]:
    """Write the images and return the rows of labels.csv."""
    sources = ["font", "pen"] if families else ["pen"]
    each = per_letter // (len(CASES) * len(sources))
    names = sorted(families)
    rows = []
    for li, letter in enumerate(letters):
        index = string.ascii_lowercase.index(letter)
        for ci, case in enumerate(CASES):
            ch = letter.upper() if case == "upper" else letter
            for source in sources:
                for k in range(each):
                    rng = np.random.default_rng([seed, index, ci, ["font", "pen"].index(source), k])
                    if source == "font":
                        family = names[(li * 7 + ci * each + k) % len(names)]
                        path = families[family][int(rng.integers(len(families[family])))]
                        mask, baseline, unit, what = font_letter(path, ch, rng)
                    else:
                        mask, baseline, what = pen_letter(ch, k, rng)
                        unit = PX_PER_UNIT
                    data, ext, scene = photograph(mask, baseline, unit, rng)
                    name = f"{source}-{letter}-{case}-{k:02d}.{ext}"
                    (out / name).write_bytes(data)
                    row = {"file": name, "label": letter, "case": case, "source": source}
                    rows.append(row | {"font_or_pen": what, "scene": _describe(scene)})
    return rows


README_HEAD = "letterbench's own real-world evaluation set (synthetic photographs of single letters)."
BUILT_NAME = re.compile(r"(font|pen)-[a-z]-(upper|lower)-\d{2}\.(png|jpg)")


def _clear(out: Path) -> None:
    """Remove an earlier build: only the files of this builder's own names that its labels.csv
    lists, when its README says this script built it; refuse a folder of anything else."""
    labels, readme = out / "labels.csv", out / "README.txt"
    ours = labels.is_file() and readme.is_file() and readme.read_text().startswith(README_HEAD)
    if ours:
        with labels.open(newline="") as f:
            names = [row.get("file", "") for row in csv.DictReader(f)]
        for name in names:
            if BUILT_NAME.fullmatch(name):
                (out / name).unlink(missing_ok=True)
        labels.unlink()
        readme.unlink()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} holds files this script did not build; give an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)


def _provenance(rows: list[dict], families: dict[str, list[Path]], argv: list[str], seconds: float) -> str:
    def counts(key: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(Counter(key_of(r, key) for r in rows).items()))

    def key_of(row: dict, key: str) -> str:
        if key in row:
            return row[key]
        scene = dict(part.split("=", 1) for part in row["scene"].split(";"))
        return scene.get(key, "?").split(" ")[0] if key == "format" else scene.get(key, "?")

    lines = [
        README_HEAD,
        f"Built by: python bench/sets/make_real_world.py {' '.join(argv)}  ({seconds:.0f} s)",
        "Deterministic: the same fonts, seed and options give the same files. Labels are EMNIST",
        "letters' classes a..z, case merged; 'case' says which case was drawn.",
        f"Images: {len(rows)}",
    ]
    for key in ("source", "case", "paper", "ink", "ruling", "light", "size", "format"):
        lines.append(f"  {key}: {counts(key)}")
    lines.append("Fonts (family: files, sha256 prefix); licences: the fonts' own (Google Fonts: OFL/Apache):")
    for family, paths in sorted(families.items()):
        files = ", ".join(f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()[:12]}" for p in paths)
        lines.append(f"  {family}: {files}")
    lines.append(
        "Pen letters: bench/sets/pen_letters.py (stroke table, jitter, pens); scenes: bench/sets/photo_scene.py."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fonts", type=Path, help="folder of handwriting fonts (see above)")
    parser.add_argument("--pen-only", action="store_true", help="no fonts: every image drawn along pen paths")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "real-world")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-letter", type=int, default=48, help="images per letter, a multiple of 4 (default 48)"
    )
    parser.add_argument(
        "--letters", default=string.ascii_lowercase, help="a subset of a..z (quick looks, tests)"
    )
    args = parser.parse_args()
    if args.per_letter < 4 or args.per_letter % 4 or not set(args.letters) <= set(string.ascii_lowercase):
        parser.error("--per-letter must be a positive multiple of 4 and --letters a subset of a..z")
    families: dict[str, list[Path]] = {}
    if not args.pen_only:
        if args.fonts is None or not args.fonts.is_dir():
            parser.error("give --fonts DIR (how to get them: see --help) or --pen-only")
        families = find_fonts(args.fonts)
        if not families:
            sys.exit(f"no usable font under {args.fonts} (.woff/.ttf/.otf drawing all of a..z and A..Z)")
    start = time.perf_counter()
    _clear(args.out)
    rows = build(args.out, families, args.seed, args.per_letter, args.letters)
    with (args.out / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    seconds = time.perf_counter() - start
    (args.out / "README.txt").write_text(_provenance(rows, families, sys.argv[1:], seconds))
    print(f"{len(rows)} images, {len(families)} font families, in {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
