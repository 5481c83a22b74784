"""The report's real-world rows: each model's (and the ensemble's) top-1 and top-3 on the
``--real-world`` folder its runs read when evaluated, with intervals, and per image for the paired
test behind the row's ★ (McNemar's exact test against the best, as for test accuracy)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from letterbench.evaluation.inference import mean_probabilities, recalibrated, run_temperature
from letterbench.evaluation.real_world import real_world_scores
from letterbench.reporting.columns import Column


def _record(column: Column, probs: list[np.ndarray], labels: np.ndarray, readable: np.ndarray) -> None:
    scores = real_world_scores(probs, labels, readable)
    intervals = {
        **(column.stage.intervals or {}),
        "real_world_top1": scores.top1_interval,
        "real_world_top3": scores.top3_interval,
    }
    column.stage = column.stage.model_copy(
        update={
            "real_world_top1": scores.top1,
            "real_world_top3": scores.top3,
            "real_world_images": scores.images,
            "intervals": intervals,
        }
    )
    column.real_world_outcome = scores.outcome
    # what the ensemble averages: each seed's calibrated probabilities, as predict and serve do
    # (the ensemble's own are calibrated already: it has no runs)
    runs = column.runs()
    calibrated = (
        [recalibrated(p, run_temperature(r)) for p, r in zip(probs, runs, strict=True)] if runs else probs
    )
    column.real_world_probs = mean_probabilities(calibrated)


def _reading_key(loaded: list) -> tuple[str, str, bytes] | None:
    """What every seed of a column read (the folder, its fingerprint and the labels), or None where
    its seeds read different folders (or the same folder holding other images)."""
    keys = {(x.folder, x.fingerprint, x.labels.tobytes()) for x in loaded}
    return keys.pop() if len(keys) == 1 else None


def attach_real_world(columns: list[Column], ensemble: Column | None, finals: list[Column]) -> list[str]:
    """Fill the real-world figures of the columns that read one folder, as it held the same images
    (the reading most of them share): a row compares only readings of the same images. The
    ensemble's come from its models' mean probabilities, where each of them has them. Returns a
    note naming the columns left out, that read another folder."""
    readings = {}
    for column in columns:
        loaded = [run.load_real_world(column.stage.phase) for run in column.runs()]
        if loaded and all(x is not None for x in loaded) and (key := _reading_key(loaded)):
            readings[column.label] = (column, loaded, key)
    if not readings:
        return []
    shared = Counter(key for _, _, key in readings.values()).most_common(1)[0][0]
    first = None  # a reading of the shared folder: its labels and which images were read
    for column, loaded, key in readings.values():
        if key == shared:
            first = loaded[0]
            _record(column, [x.probs for x in loaded], first.labels, first.readable)
    read = {label for label, (_, _, key) in readings.items() if key == shared}
    _attach_ensemble(ensemble, finals, read, first)
    apart = [label for label in readings if label not in read]
    if not apart:
        return []
    return [
        f"Real-world rows: the models that read {first.folder} ({len(first.labels):,} images); "
        f"{', '.join(apart)} read another folder, or this one when it held other images, and are left out "
        "of them: evaluate every run on the same folder (`letterbench evaluate RUN --real-world DIR`) to "
        "compare them."
    ]


def _attach_ensemble(ensemble: Column | None, finals: list[Column], read: set[str], reading) -> None:
    """The ensemble's real-world figures: its members' mean probabilities, where each read the
    folder the rows compare (``reading``: one of its readings)."""
    if ensemble is None:
        return
    members = [c for c in finals if c.label in ensemble.members]
    if members and all(c.label in read and c.real_world_probs is not None for c in members):
        probs = [mean_probabilities([c.real_world_probs for c in members])]
        _record(ensemble, probs, reading.labels, reading.readable)
