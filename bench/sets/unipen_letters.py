"""Build ``src/letterbench/data/unipen/unipen-letters.npz``: the isolated letters of UNIPEN
train_r01_v07 (categories 1b, capitals, and 1c, small letters; 89,429 letters by about 300 writers
at 21 sites), as compact pen trajectories.

    python bench/sets/unipen_letters.py unipen_letters.jsonl.gz

The input is the JSON-lines file ``unipen_extract.py`` (beside this script) writes from a bare git
copy of github.com/GreenCappuccino/train_r01_v07 (CC BY 4.0, from the Zenodo release
doi:10.5281/zenodo.1195803). Each letter is stored with y pointing down, its x and y scaled to the
same physical unit (the sites' tablets have different points per inch in x and y), shifted to start
at 0 and scaled so that its longer side is 1,000, and thinned to points at least 10 apart. A letter
listed more than once (1,912 copies, in several files at one site) is kept once.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import string
from pathlib import Path

import numpy as np

STEP = 10.0  # of 1,000: a fifth of a pixel of the 24-pixel letter EMNIST frames
OUT = Path(__file__).resolve().parents[2] / "src" / "letterbench" / "data" / "unipen" / "unipen-letters.npz"


def _ratio(record: dict) -> float:
    try:
        return float(record["x_ppi"]) / float(record["y_ppi"])
    except (TypeError, ValueError, ZeroDivisionError):
        return 1.0


def _strokes(record: dict) -> list[np.ndarray] | None:
    """The letter's strokes as (n, 2) points, y down, x and y in one unit, the longer side 1,000."""
    strokes = [np.asarray(s, np.float64).reshape(-1, 2) for s in record["strokes"] if len(s) >= 2]
    if not strokes:
        return None
    every = np.concatenate(strokes)
    lo, hi = every.min(0), every.max(0)
    ratio = _ratio(record)
    side = max(hi[0] - lo[0], (hi[1] - lo[1]) * ratio)
    if side <= 0:
        return None
    out = []
    for s in strokes:
        x = (s[:, 0] - lo[0]) / side * 1000
        y = (hi[1] - s[:, 1]) * ratio / side * 1000  # UNIPEN's y points up
        out.append(_thinned(np.round(np.stack([x, y], 1)).astype(np.int16)))
    return out


def _thinned(points: np.ndarray, step: float = STEP) -> np.ndarray:
    """The points at least ``step`` apart along the stroke (and its last point): tablets sample
    far more densely than a 28x28 letter can show."""
    kept, last = [0], points[0].astype(np.float64)
    for i in range(1, len(points)):
        if np.hypot(*(points[i] - last)) >= step:
            kept.append(i)
            last = points[i].astype(np.float64)
    if kept[-1] != len(points) - 1:
        kept.append(len(points) - 1)
    return points[kept]


def _records(source: Path) -> list[tuple[dict, list[np.ndarray]]]:
    """The letters with their strokes, each content once: UNIPEN lists some letters in several
    files (under several writer names, at one site); a content found with two labels is dropped."""
    found: dict[bytes, tuple[dict, list[np.ndarray]]] = {}
    labels: dict[bytes, set[str]] = {}
    with gzip.open(source, "rt") as f:
        for line in f:
            record = json.loads(line)
            label = record["label"]
            if len(label) != 1 or label.lower() not in string.ascii_lowercase:
                continue
            strokes = _strokes(record)
            if strokes is None:
                continue
            key = hashlib.sha256(b"|".join(s.tobytes() for s in strokes)).digest()
            labels.setdefault(key, set()).add(label.lower())
            found.setdefault(key, (record, strokes))
    return [value for key, value in found.items() if len(labels[key]) == 1]


def build(source: Path, out: Path) -> dict[str, int]:
    labels, capital, writer, checked, ends, points = [], [], [], [], [0], []
    writers: dict[str, int] = {}
    stroke_count = [0]
    for record, strokes in _records(source):
        label = record["label"]
        labels.append(string.ascii_lowercase.index(label.lower()))
        capital.append(label.isupper())
        writer.append(writers.setdefault(record["writer"], len(writers)))
        checked.append(record["quality"] == "OK")
        for s in strokes:
            points.append(s)
            ends.append(ends[-1] + len(s))
        stroke_count.append(stroke_count[-1] + len(strokes))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        labels=np.asarray(labels, np.uint8),
        capital=np.asarray(capital, bool),
        writer=np.asarray(writer, np.int32),
        writers=np.asarray(list(writers)),
        checked=np.asarray(checked, bool),
        strokes=np.asarray(stroke_count, np.int64),  # letter i's strokes: strokes[i]..strokes[i+1]
        ends=np.asarray(ends, np.int64),  # stroke j's points: ends[j]..ends[j+1]
        points=np.concatenate(points),
    )
    return {"letters": len(labels), "writers": len(writers), "points": int(ends[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="unipen_letters.jsonl.gz (from unipen_extract.py)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default: {OUT})")
    args = parser.parse_args()
    print(build(args.source, args.out), "->", args.out)


if __name__ == "__main__":
    main()
