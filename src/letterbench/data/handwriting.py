"""Real handwritten letters as pen trajectories (UNIPEN, CC BY 4.0; see ``unipen/PROVENANCE.md``).

Three of UNIPEN's 21 sites are held out whole (``HELD_OUT_SITES``: 134 writer names, 10.8% of the
letters): their letters are never drawn for training, so that a bench made of them
(``bench/sets/unipen_bench.py``) reads writers no model has seen. Whole sites, because at some
sites a writer's name is a file's name, and one person may stand under several.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from letterbench.core.errors import LetterbenchError


@dataclass(frozen=True)
class PenLetters:
    """Letters as strokes: letter ``i`` is class ``labels[i]`` (0..25), a capital where
    ``capital[i]``, written by ``writers[writer[i]]``; its strokes are ``strokes[i]..strokes[i+1]``
    of ``ends``, stroke ``j`` the points ``ends[j]..ends[j+1]`` (x, y; y down; longer side 1,000)."""

    labels: np.ndarray
    capital: np.ndarray
    writer: np.ndarray
    writers: np.ndarray
    strokes: np.ndarray
    ends: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def paths(self, i: int) -> list[np.ndarray]:
        """Letter ``i``'s strokes as float arrays of points."""
        return [
            self.points[self.ends[j] : self.ends[j + 1]].astype(np.float64)
            for j in range(self.strokes[i], self.strokes[i + 1])
        ]

    def held_out(self) -> np.ndarray:
        """Per letter, whether its writer is held out of training (``held_out_writer``)."""
        out = np.array([held_out_writer(str(w)) for w in self.writers])
        return out[self.writer]


# the sites with the most writer names for their letters: ced 43, imp 34, tos 57
HELD_OUT_SITES = ("ced", "imp", "tos")


def held_out_writer(name: str) -> bool:
    """Whether a writer (``site/name``) is held out of training: every writer of a held-out site."""
    return name.split("/")[0] in HELD_OUT_SITES


def data_file() -> Path:
    return Path(str(resources.files("letterbench.data") / "unipen" / "unipen-letters.npz"))


@cache
def pen_letters(path: Path | None = None) -> PenLetters:
    """The letters of ``path`` (default: the UNIPEN letters shipped with letterbench)."""
    path = path or data_file()
    try:
        with np.load(path) as f:
            return PenLetters(**{name: f[name] for name in PenLetters.__dataclass_fields__})
    except (OSError, KeyError, ValueError) as exc:
        raise LetterbenchError(
            f"{path}: the handwritten letters are missing or damaged ({exc}); reinstall letterbench"
        ) from None


def training_choice(letters: PenLetters, count: int, seed: int) -> np.ndarray:
    """``count`` letters for training, drawn from the writers not held out: sample ``k`` is class
    ``k % 26``, a capital when ``k // 26`` is even (as the synthetic letters), each drawn at random
    from that class and case with the seed's generator."""
    rng = np.random.default_rng([seed, 0x7E7])
    usable = ~letters.held_out()
    groups = {
        (c, cap): np.flatnonzero(usable & (letters.labels == c) & (letters.capital == cap))
        for c in range(26)
        for cap in (True, False)
    }
    chosen = np.empty(count, np.int64)
    for k in range(count):
        group = groups[(k % 26, (k // 26) % 2 == 0)]
        chosen[k] = group[rng.integers(len(group))]
    return chosen
