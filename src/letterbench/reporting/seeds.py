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

import numpy as np

from letterbench.evaluation.inference import mean_probabilities
from letterbench.evaluation.stats import bootstrap_intervals
from letterbench.runs.records import RunInfo, Stage, StageMetrics


def _key(info: RunInfo) -> str:
    """Everything but the seed: the model, the recipe and the data (``RunKey`` without its seed)."""
    data = info.data
    used = [data.split, data.train_used, data.val_used, data.test_used]
    return json.dumps([info.label, info.recipe.to_dict(), used], sort_keys=True, default=str)


def seed_groups(results: list) -> list[list]:
    """The report's runs in order, with the runs that differ only in their seed together (a group
    of one where a run has no such sibling, or where two runs share a seed)."""
    groups: dict[str, list] = {}
    for r in results:
        groups.setdefault(_key(r.info), []).append(r)
    found = []
    for members in groups.values():
        seeds = [m.info.seed for m in members]
        found.extend([members] if len(set(seeds)) == len(seeds) else [[m] for m in members])
    return found


def seed_stage(stages: list[Stage], predictions: list[tuple[np.ndarray, np.ndarray]]) -> Stage:
    """One stage of a model trained with several seeds: the mean of each test figure over the
    seeds, its standard deviation (``seed_std``) and bootstrap intervals of the seed-averaged model."""
    metrics, spread = {}, {}
    for key, value in stages[0].metrics.to_json().items():
        values = [getattr(s.metrics, key, None) for s in stages]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            metrics[key], spread[key] = float(np.mean(values)), float(np.std(values, ddof=1))
        else:
            metrics[key] = value
    labels = predictions[0][1]
    intervals = bootstrap_intervals([p for p, _ in predictions], labels)
    changes = {"metrics": StageMetrics.model_validate(metrics, strict=False), "seed_std": spread}
    return stages[0].model_copy(update={**changes, "seeds": len(stages), "intervals": intervals})


def mean_over_seeds(predictions: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One model's probabilities averaged over its seeds (its labels are the same for every seed)."""
    return mean_probabilities([p for p, _ in predictions]), predictions[0][1]
