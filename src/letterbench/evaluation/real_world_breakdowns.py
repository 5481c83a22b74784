"""A real-world reading broken down: top-1 by what ``labels.csv`` says of each image (its source,
its case, the scene it was photographed in), and the commonest confusions.

A folder read by ``real_world.load_real_world`` may say more of each image than its label:
``labels.csv``'s other columns (``case``, ``source``, ``font_or_pen`` as ``make_real_world.py``
writes them), and a ``scene`` column of ``key=value`` parts joined by ``;`` (``paper=cream;
ink=blue;...``). ``image_details`` gathers them per image; ``real_world_breakdown`` scores one
model's probabilities (``real_world.real_world_scores``) and splits its top-1 by them. A folder
labelled by sub-folders says nothing more: its breakdowns are empty.
"""

from __future__ import annotations

import csv
import string
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from letterbench.evaluation.real_world import RealWorldScores, RealWorldSet, real_world_scores

SCENE_KEYS = ("paper", "ruling", "ink", "light", "size", "stroke")
BREAKDOWN_KEYS = ("source", "case", *SCENE_KEYS)  # what top-1 is split by, in this order
CONFUSIONS = 8  # the commonest confusions kept


class Share(NamedTuple):
    """Top-1 on the images of one value of a key (e.g. case = upper), and how many they are."""

    top1: float
    images: int


class RealWorldBreakdown(NamedTuple):
    """One model's reading of a folder: its scores, its top-1 by each key's values (only keys some
    image has), and its commonest confusions as ``("a->d", images)``, readable images only."""

    scores: RealWorldScores
    by: dict[str, dict[str, Share]]
    confusions: list[tuple[str, int]]

    def record(self) -> dict:
        """As JSON: the scores' record, the breakdowns and the confusions."""
        by = {key: {v: s._asdict() for v, s in values.items()} for key, values in self.by.items()}
        return {**self.scores.record(), "by": by, "confusions": [list(c) for c in self.confusions]}


def _stroke(details: dict[str, str]) -> str | None:
    """The pen's kind ("fine pen 0.031" -> "fine pen"), or the font's weight change."""
    what, source = details.get("font_or_pen") or "", details.get("source")
    if source == "pen" and what:
        return what.rsplit(" ", 1)[0]
    if source == "font":
        return "font bold" if "bold" in what else "font thinned" if "thinned" in what else "font"
    return None


def _details(header: list[str], row: list[str]) -> dict[str, str]:
    cells = {name: value.strip() for name, value in zip(header, row, strict=False)}
    scene = cells.get("scene", "")
    cells.update(part.split("=", 1) for part in scene.split(";") if "=" in part)
    stroke = _stroke(cells)
    return cells | ({"stroke": stroke} if stroke else {})


def image_details(found: RealWorldSet) -> list[dict[str, str]]:
    """Per image of ``found``, in its order: what ``labels.csv`` says of it besides its file and
    label (its other columns, the scene's parts, and the pen's kind or the font's weight as
    ``stroke``); empty for a folder labelled by sub-folders."""
    table = found.folder / "labels.csv"
    if not table.is_file():
        return [{} for _ in found.files]
    with table.open(newline="", encoding="utf-8-sig") as f:  # load_real_world has read it already
        header, *rows = list(csv.reader(f))
    header = [h.strip().lower() for h in header]
    by_file: dict[Path, dict[str, str]] = {}
    for row in rows:
        cells = dict(zip(header, row, strict=False))
        path = (found.folder / cells.get("file", "").strip()).resolve()
        by_file.setdefault(path, _details(header, row))
    return [
        {k: v for k, v in by_file.get(Path(p).resolve(), {}).items() if k not in ("file", "label")}
        for p in found.files
    ]


def top1_by(
    outcome: np.ndarray, details: list[dict[str, str]], keys: tuple[str, ...] = BREAKDOWN_KEYS
) -> dict[str, dict[str, Share]]:
    """Top-1 (the share of ``outcome``, right or wrong per image, that is right) on the images of
    each value of each key, the values sorted; a key no image has is left out."""
    by = {}
    for key in keys:
        values = sorted({d[key] for d in details if d.get(key)})
        masks = {v: np.array([d.get(key) == v for d in details]) for v in values}
        if masks:
            by[key] = {v: Share(float(outcome[m].mean()), int(m.sum())) for v, m in masks.items()}
    return by


def confusions(
    probs: np.ndarray, labels: np.ndarray, readable: np.ndarray, most: int = CONFUSIONS
) -> list[tuple[str, int]]:
    """The ``most`` commonest mistakes among the readable images, ``("true->read", images)``,
    commonest first (ties in the order first met); letters a..z for classes 0..25."""
    names = string.ascii_lowercase
    read = np.asarray(probs).argmax(1)
    wrong = Counter(
        f"{names[t]}->{names[r]}" for t, r, ok in zip(labels, read, readable, strict=True) if ok and t != r
    )
    return wrong.most_common(most)


def real_world_breakdown(
    probs: np.ndarray, found: RealWorldSet, details: list[dict[str, str]] | None = None
) -> RealWorldBreakdown:
    """One model's probabilities (N, 26; an unreadable image's row is ignored, the image counted
    wrong) on ``found``: scores, top-1 by source, case and scene, and the commonest confusions."""
    details = image_details(found) if details is None else details
    scores = real_world_scores(probs, found.labels, found.readable)
    return RealWorldBreakdown(
        scores, top1_by(scores.outcome, details), confusions(probs, found.labels, found.readable)
    )
