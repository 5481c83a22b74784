"""The report's real-world rows: each model's (and the ensemble's) top-1 and top-3 on the
``--real-world`` folder its runs read when evaluated, with intervals, and per image for the paired
test behind the row's ★ (McNemar's exact test against the best, as for test accuracy)."""

from __future__ import annotations

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


def attach_real_world(columns: list[Column], ensemble: Column | None, finals: list[Column]) -> None:
    """Fill the real-world figures of every column whose runs (every seed) read the same folder;
    the ensemble's from its models' mean probabilities, where each of them has them."""
    read = {}
    for column in columns:
        loaded = [run.load_real_world(column.stage.phase) for run in column.runs()]
        if not loaded or any(x is None for x in loaded):
            continue
        labels, readable, folder = loaded[0].labels, loaded[0].readable, loaded[0].folder
        if any(x.folder != folder or not np.array_equal(x.labels, labels) for x in loaded[1:]):
            continue  # seeds read different folders: no figure rather than a wrong one
        _record(column, [x.probs for x in loaded], labels, readable)
        read[column.label] = (labels, readable, folder)
    if ensemble is None:
        return
    members = [c for c in finals if c.label in ensemble.members]
    if members and all(c.real_world_probs is not None for c in members):
        labels, readable, folder = read[members[0].label]
        if all(read[c.label][2] == folder and np.array_equal(read[c.label][0], labels) for c in members):
            _record(ensemble, [mean_probabilities([c.real_world_probs for c in members])], labels, readable)
