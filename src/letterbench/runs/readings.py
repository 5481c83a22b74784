"""What an evaluation saves per image in a run: each phase's test probabilities, and its readings
of a ``--real-world`` folder, as compressed arrays ``RunDir`` writes atomically and reads back with
one clear error naming a file that is missing or damaged."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_save


class RealWorldReading(NamedTuple):
    """A phase's reading of a ``--real-world`` folder: probabilities, labels, which images could
    be prepared, the folder, and the fingerprint of what it held (each empty where an older version
    did not record it)."""

    probs: np.ndarray
    labels: np.ndarray
    readable: np.ndarray
    folder: str
    fingerprint: str = ""


class SavedReadings:
    """``RunDir``'s per-image files (its ``predictions_file`` and ``real_world_file`` paths)."""

    path: Path

    def save_predictions(self, phase: str, probs: np.ndarray, labels: np.ndarray, class_names) -> Path:
        path = self.predictions_file(phase)
        atomic_save(
            path,
            lambda f: np.savez_compressed(
                f, probs=probs.astype(np.float32), labels=labels, class_names=np.array(class_names)
            ),
        )
        return path

    def save_real_world(
        self,
        phase: str,
        probs: np.ndarray,
        labels: np.ndarray,
        readable: np.ndarray,
        folder: str = "",
        fingerprint: str = "",
    ) -> Path:
        """A phase's probabilities on a ``--real-world`` folder's images (``readable``: prepared),
        with the folder and the fingerprint of what it held when read."""
        path = self.real_world_file(phase)
        arrays = dict(probs=probs.astype(np.float32), labels=labels, readable=readable)
        names = dict(folder=np.array(folder), fingerprint=np.array(fingerprint))
        atomic_save(path, lambda f: np.savez_compressed(f, **arrays, **names))
        return path

    def load_real_world(self, phase: str) -> RealWorldReading | None:
        """What ``save_real_world`` saved, or None where this phase was not read on such a folder."""
        path = self.real_world_file(phase)
        if not path.exists():
            return None
        advice = f"run `letterbench evaluate {self.path} --real-world DIR` again"
        keys = ("probs", "labels", "readable", "folder?", "fingerprint?")
        probs, labels, readable, folder, mark = self._read_npz(path, keys, "real-world readings", advice)
        why = _damage(probs, labels, readable)
        if why:
            raise LetterbenchError(f"{path}: damaged real-world readings ({why}); {advice}")
        said = ["" if value is None else str(value) for value in (folder, mark)]
        return RealWorldReading(probs, labels, readable, *said)

    def _read_npz(self, path: Path, keys: tuple[str, ...], what: str, advice: str) -> list:
        """The arrays ``keys`` of an npz file (a key ending in ``?`` may be absent: None), or one
        clear error naming the file."""
        try:
            with open(path, "rb") as handle, np.load(handle) as npz:
                return [
                    (npz[k[:-1]] if k[:-1] in npz.files else None) if k.endswith("?") else npz[k]
                    for k in keys
                ]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise LetterbenchError(f"{path}: {what} missing or unreadable ({exc}); {advice}") from None

    def load_predictions(self, phase: str) -> tuple[np.ndarray, np.ndarray]:
        advice = f"run `letterbench evaluate {self.path}` again"
        probs, labels = self._read_npz(
            self.predictions_file(phase), ("probs", "labels"), "predictions", advice
        )
        return probs, labels


def _damage(probs: np.ndarray, labels: np.ndarray, readable: np.ndarray) -> str | None:
    """What is wrong with a reading's arrays, or None: probabilities (images x 26) that are finite
    and in 0..1, one label (0..25) and one readable flag per image, at least one image."""
    if probs.ndim != 2 or probs.shape[1] != 26 or len(probs) == 0:
        return f"probabilities of shape {probs.shape}, not (images, 26)"
    if labels.shape != (len(probs),) or readable.shape != (len(probs),):
        return f"{len(probs)} images but labels {labels.shape} and readable {readable.shape}"
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        return "probabilities that are not numbers from 0 to 1"
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 25:
        return "labels outside the letters' classes 0..25"
    return None
