"""Several seeds of one model: one column of the comparison, scored by the mean over its seeds.

Runs of the same model with the same recipe on the same data that differ only in their seed (what
``letterbench run --seeds N`` trains) are grouped. The group's column shows the mean of each test
figure over the seeds with its standard deviation across them ("90.03% ± 0.41"), bootstrap
intervals of the seed-averaged figures (``stats.bootstrap_intervals`` on every seed's predictions),
and, for the paired tests, each image's share of seeds that get it right. What is not a single
number (per-class figures, the confusion matrix, the training curves) is the first seed's, and
each seed keeps its own section in the report.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from letterbench.evaluation.inference import mean_probabilities
from letterbench.evaluation.stats import bootstrap_intervals


def _key(info: dict[str, Any]) -> str:
    data = {k: info["data"].get(k) for k in ("split", "train_used", "val_used", "test_used")}
    return json.dumps([info["label"], info["recipe"], data], sort_keys=True, default=str)


def seed_groups(results: list) -> list[list]:
    """The report's runs in order, with the runs that differ only in their seed together (a group
    of one where a run has no such sibling, or where two runs share a seed)."""
    groups: dict[str, list] = {}
    for r in results:
        groups.setdefault(_key(r.info), []).append(r)
    found = []
    for members in groups.values():
        seeds = [m.info["seed"] for m in members]
        found.extend([members] if len(set(seeds)) == len(seeds) else [[m] for m in members])
    return found


def seed_stage(
    stages: list[dict[str, Any]], predictions: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """One stage of a model trained with several seeds: the mean of each test figure over the
    seeds, its standard deviation (``seed_std``) and bootstrap intervals of the seed-averaged model."""
    metrics, spread = {}, {}
    for key, value in stages[0]["metrics"].items():
        values = [s["metrics"].get(key) for s in stages]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            metrics[key], spread[key] = float(np.mean(values)), float(np.std(values, ddof=1))
        else:
            metrics[key] = value
    labels = predictions[0][1]
    return {
        **stages[0],
        "metrics": metrics,
        "seed_std": spread,
        "seeds": len(stages),
        "intervals": bootstrap_intervals([p for p, _ in predictions], labels),
    }


def mean_over_seeds(predictions: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One model's probabilities averaged over its seeds (its labels are the same for every seed)."""
    return mean_probabilities([p for p, _ in predictions]), predictions[0][1]
