"""A folder of a user's own labelled letters, read by every model of a study: how well the models
read real letters, beside how well they read EMNIST's test set.

The folder holds images (PNG, JPEG ... one letter each, photographed, scanned or drawn) labelled
either way:

- ``labels.csv`` with the columns ``file`` (a path inside the folder) and ``label`` (a..z or A..Z,
  case merged; more columns are ignored), as ``bench/sets/make_real_world.py`` writes its set; or
- one sub-folder per letter, named ``a`` .. ``z`` (or ``A`` .. ``Z``), holding that letter's images.

Every image is prepared as ``letterbench predict`` prepares a user's image
(``images.letters.prepare_file``); one it cannot read, or finds blank, counts as read wrong.
"""

from __future__ import annotations

import csv
import hashlib
import os
import string
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from letterbench.core.errors import LetterbenchError
from letterbench.core.progress import in_steps
from letterbench.evaluation.inference import mean_probabilities
from letterbench.evaluation.stats import LEVEL, RESAMPLES, SEED, percentile_interval
from letterbench.images.letters import prepare_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FIX = "give a folder with labels.csv (file,label) or one sub-folder of images per letter a..z"


@dataclass
class RealWorldSet:
    """The prepared images (uint8 N x 28 x 28; an unreadable one is blank and counted wrong), their
    classes (0..25), which of them could be prepared, and their files."""

    folder: Path
    images: torch.Tensor
    labels: np.ndarray
    readable: np.ndarray
    files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def fingerprint(self) -> str:
        """What the folder held when read (taken once, at its first use, right after the reading):
        its resolved path, each image's name, size and time of change, and the labels. A study reads a folder again when it changes, and readings of two
        folders that share a name are not taken for one."""
        digest = hashlib.sha256(str(self.folder.resolve()).encode())
        for path in self.files:
            stat = path.stat() if path.exists() else None
            where = os.path.relpath(path, self.folder.resolve() if path.is_absolute() else self.folder)
            digest.update(f"\n{where}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}".encode())
        digest.update(np.asarray(self.labels, np.int64).tobytes())
        return digest.hexdigest()[:16]


def _listed_image(folder: Path, name: str, where: str) -> Path:
    """The image a line of labels.csv names: a file inside ``folder``. A name that leads outside it
    (``../x.png``, or a link to a file elsewhere) is refused as such, not as a missing image."""
    path = (folder / name).resolve()
    if name and path.is_file() and folder.resolve() not in path.parents:
        how = "is a link to a file" if (folder / name).is_symlink() else "names a file"
        raise LetterbenchError(
            f"{where}: {name!r} {how} outside {folder}; labels.csv reads only images inside its folder: "
            "copy the image itself into the folder"
        )
    if not name or not path.is_file():
        raise LetterbenchError(f"{where}: no image {name!r} in {folder}; {FIX}")
    return path


def _label(value: str, where: str) -> int:
    letter = value.strip().lower()
    if len(letter) != 1 or letter not in string.ascii_lowercase:
        raise LetterbenchError(f"{where}: label {value!r} is not a letter a..z; {FIX}")
    return string.ascii_lowercase.index(letter)


LABELS_MAX_BYTES = 10 * 1024 * 1024  # a labels.csv of a few hundred thousand rows


def _from_csv(folder: Path) -> list[tuple[Path, int]]:
    table = folder / "labels.csv"
    if not table.is_file():  # a pipe would block for ever, a device never end
        raise LetterbenchError(f"{table}: not a regular file (a pipe, a device or a folder); {FIX}")
    if table.stat().st_size > LABELS_MAX_BYTES:
        raise LetterbenchError(
            f"{table}: {table.stat().st_size:,} bytes, more than a labels file of letters holds "
            f"({LABELS_MAX_BYTES // 2**20} MB at most); {FIX}"
        )
    try:
        with table.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM is no column name
            lines = list(csv.reader(f))
    except UnicodeDecodeError:
        raise LetterbenchError(f"{table}: not UTF-8 text; save it as UTF-8 (CSV UTF-8); {FIX}") from None
    except (OSError, csv.Error) as exc:
        raise LetterbenchError(f"{table}: unreadable ({exc}); {FIX}") from None
    file_col, label_col = _columns(table, lines[0] if lines else [])
    if len(lines) < 2:
        raise LetterbenchError(f"{table}: no rows under its header; {FIX}")
    items: list[tuple[Path, int]] = []
    seen: dict[Path, tuple[int, int]] = {}  # a file's first line and label
    for number, row in enumerate(lines[1:], 2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line, as spreadsheets leave at the end
        name = row[file_col].strip() if file_col < len(row) else ""
        path = _listed_image(folder, name, f"{table}, line {number}")
        label = _label(row[label_col] if label_col < len(row) else "", f"{table}, line {number}")
        if path in seen:
            first, before = seen[path]
            if before != label:
                raise LetterbenchError(
                    f"{table}, lines {first} and {number}: {name!r} is labelled both "
                    f"{string.ascii_lowercase[before]} and {string.ascii_lowercase[label]}; keep one line per image"
                )
            warnings.warn(
                f"{table}, line {number} repeats line {first}; {name!r} is counted once", stacklevel=3
            )
            continue
        seen[path] = (number, label)
        items.append((path, label))
    return items


def _columns(table: Path, header: list[str]) -> tuple[int, int]:
    """The positions of the columns ``file`` and ``label`` (any case, spaces around), or one line
    naming what the header holds instead."""
    names = [h.strip().lower() for h in header]
    found = ", ".join(repr(h) for h in header) or "none"
    for column in ("file", "label"):
        if names.count(column) > 1:
            raise LetterbenchError(
                f"{table}: the column {column!r} appears {names.count(column)} times; keep one; {FIX}"
            )
    if "file" in names and "label" in names:
        return names.index("file"), names.index("label")
    if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
        raise LetterbenchError(
            f"{table}: its header {header[0]!r} is not separated by commas; separate the columns with commas; {FIX}"
        )
    raise LetterbenchError(f"{table}: needs the columns file and label; found {found}; {FIX}")


def _from_folders(folder: Path) -> list[tuple[Path, int]]:
    items, skipped = [], []
    # hidden folders and an archiver's own (``__MACOSX``, ``.DS_Store``'s kin) are not letters; nor
    # are hidden files (macOS's ``._a.png`` beside each photo copied to another disk)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        label = _label(sub.name, str(sub))
        files = [p for p in sorted(sub.iterdir()) if not p.name.startswith(".") and not p.is_dir()]
        items += [(p, label) for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    formats = ", ".join(sorted({p.suffix.lower() or "no suffix" for p in skipped}))
    if not items:
        unread = (
            f" (only files letterbench does not read: {formats}; convert them to PNG or JPEG)"
            if skipped
            else ""
        )
        raise LetterbenchError(f"{folder}: no labels.csv and no images in letter folders{unread}; {FIX}")
    if skipped:
        warnings.warn(
            f"{folder}: skipped {len(skipped)} files in formats letterbench does not read ({formats}); "
            "convert them to PNG or JPEG to include them",
            stacklevel=2,
        )
    return items


def labelled_images(folder: str | Path) -> list[tuple[Path, int]]:
    """The folder's images with their classes (0..25), by ``labels.csv`` or by letter folders;
    one ``LetterbenchError`` line for a folder that is missing or labelled wrongly."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LetterbenchError(f"--real-world {folder}: no such folder; {FIX}")
    return _from_csv(folder) if (folder / "labels.csv").exists() else _from_folders(folder)


def load_real_world(folder: str | Path) -> RealWorldSet:
    """The folder's images, prepared, with their labels (``labelled_images``)."""
    folder = Path(folder).expanduser()
    items = labelled_images(folder)
    images = np.zeros((len(items), 28, 28), np.uint8)
    readable = np.zeros(len(items), bool)
    what = f"preparing the {len(items):,} images of {folder}"
    for k, prepared in enumerate(in_steps(items, lambda item: prepare_file(item[0]), what, probe=10)):
        if prepared.image is not None:
            images[k], readable[k] = prepared.image, True
    if not readable.any():
        raise LetterbenchError(f"{folder}: none of its {len(items)} images holds a readable letter; {FIX}")
    if not readable.all():
        unread = [items[k][0].name for k in np.flatnonzero(~readable)]
        warnings.warn(
            f"{folder}: {len(unread)} of {len(items)} images hold no readable letter "
            f"({', '.join(unread[:5])}{', ...' if len(unread) > 5 else ''}); they count as wrong",
            stacklevel=2,
        )
    labels = np.array([label for _, label in items], np.int64)
    return RealWorldSet(folder, torch.from_numpy(images), labels, readable, [path for path, _ in items])


class RealWorldScores(NamedTuple):
    """A reading of a --real-world folder: top-1 and top-3 accuracy with their 95% bootstrap
    intervals over the images, and the per-image top-1 outcome (for paired tests)."""

    images: int
    top1: float
    top3: float
    top1_interval: list[float]
    top3_interval: list[float]
    outcome: np.ndarray

    def record(self) -> dict[str, Any]:
        """As metrics.json keeps it: the figures and their intervals (not the per-image outcome)."""
        intervals = {"top1": self.top1_interval, "top3": self.top3_interval}
        return {"images": self.images, "top1": self.top1, "top3": self.top3, "intervals": intervals}


def real_world_scores(
    probs: np.ndarray | list[np.ndarray], labels: np.ndarray, readable: np.ndarray | None = None
) -> RealWorldScores:
    """The scores of the probabilities (of several seeds': their mean), an image that could not be
    prepared counted wrong."""
    mean = mean_probabilities(probs if isinstance(probs, list) else [probs])
    ok = np.ones(len(labels), bool) if readable is None else readable
    right = (mean.argmax(1) == labels) & ok
    right3 = (np.argsort(-mean, axis=1)[:, :3] == labels[:, None]).any(1) & ok
    top1, top3 = outcome_interval(right), outcome_interval(right3)
    return RealWorldScores(len(labels), float(right.mean()), float(right3.mean()), top1, top3, right)


def outcome_interval(outcome: np.ndarray) -> list[float]:
    """The 95% bootstrap interval of the share of ``outcome`` (per image, right or wrong) that is
    right, resampled with the project's seed."""
    index = np.random.default_rng(SEED).integers(len(outcome), size=(RESAMPLES, len(outcome)))
    return percentile_interval(outcome[index].mean(1), LEVEL)
