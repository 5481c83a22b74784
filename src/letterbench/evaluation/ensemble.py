"""Which models a study's ensemble averages, chosen on training images no model trained on.

The mean of every model's probabilities is worse than the best model where one model is much
weaker than the others (the quick preset's Xception): it pulls the others' answers its way. So the
ensemble averages the subset of the models that is most accurate on images held out from every run:
the training images no run trained on or validated with (a study that trains on a subset of the
data leaves many), else the validation images every run held out (a study on all the data with
one validation split), else, for seeds that drew different splits (``paper`` with three seeds),
each seed's validation images scored by that seed's runs only. Each model's seeds are averaged
first (in that last case each image is scored by one seed's runs), its probabilities calibrated
by its own temperature; the score is the accuracy of the subset's mean (the report ranks by it; ties
go to the lower log-loss, then to fewer models), every subset tried up to ``EXHAUSTIVE`` models,
greedy forward selection beyond. A single model is a candidate too, so the chosen ensemble is
never less accurate than the best model on these images. Where too few images are held out, the
ensemble is the mean of all, and says why.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import torch

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import (
    log_loss,
    mean_probabilities,
    predict_probabilities,
    run_temperature,
)
from letterbench.runs.records import EnsembleChoice, RunConfig
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import run_data, trained_model

MIN_PER_CLASS = 10  # fewer held-out images than this per class: no choice, the mean of all
PER_CLASS = 100  # at most this many held-out images per class are scored (a seeded sample)
EXHAUSTIVE = 8  # up to this many models every subset is tried


def best_subset(probs: dict[str, np.ndarray], labels: np.ndarray) -> tuple[list[str], list[dict[str, Any]]]:
    """The subset of models whose mean probability is most accurate on ``labels`` (ties: the
    lower log-loss, then the fewer models), and every subset scored (all of them up to
    ``EXHAUSTIVE`` models, else a greedy forward path by accuracy)."""
    names = list(probs)

    def score(members: tuple[str, ...]) -> dict[str, Any]:
        mean = mean_probabilities([probs[m] for m in members])
        accuracy = float((mean.argmax(1) == labels).mean())
        return {"members": list(members), "nll": log_loss(mean, labels), "accuracy": accuracy}

    if len(names) <= EXHAUSTIVE:
        tried = [score(c) for k in range(1, len(names) + 1) for c in combinations(names, k)]
    else:
        tried, chosen, current = [], (), -1.0
        while len(chosen) < len(names):
            step = [score(tuple(n for n in names if n in chosen or n == m)) for m in names if m not in chosen]
            tried += step
            best = max(step, key=lambda s: (s["accuracy"], -s["nll"]))
            if best["accuracy"] <= current:
                break
            chosen, current = tuple(best["members"]), best["accuracy"]
    best = max(tried, key=lambda s: (s["accuracy"], -s["nll"], -len(s["members"])))
    return [n for n in names if n in best["members"]], tried


def held_out_images(data, configs: list[RunConfig]) -> tuple[torch.Tensor, str, torch.Tensor | None]:
    """Indices of training images no run trained on or validated with; else of the validation
    images every run held out; else, where each seed has one run of every model and the seeds
    drew different splits, of the validation images of each seed's runs, scored by that seed's
    runs only. Also what they are, and (for the last) the seed that scores each image."""
    n = len(data.train_labels)
    splits = [config.split(data) for config in configs]
    trained, validated, shared_val = _mask(n), _mask(n), ~_mask(n)
    for split in splits:
        trained[split.train] = True
        val = _mask(n, split.val)
        validated |= val
        shared_val &= val
    unused = (~trained & ~validated).nonzero().flatten()
    if len(unused) >= MIN_PER_CLASS * len(data.class_names):
        return unused, "training images no model trained on", None
    held = (shared_val & ~trained).nonzero().flatten()
    if len(held) >= MIN_PER_CLASS * len(data.class_names) or not _seed_sets(configs):
        return (
            held,
            "validation images no model trained on (each chose its best epoch and temperature on them)",
            None,
        )
    seed_of = torch.full((n,), -1, dtype=torch.long)
    for seed in dict.fromkeys(c.seed for c in configs):
        same = [split for split, c in zip(splits, configs, strict=True) if c.seed == seed]
        free = ~_mask(n)
        for split in same:
            free &= _mask(n, split.val)  # every run of this seed held it out for validation
        seed_of[free & (seed_of < 0)] = seed
    held = (seed_of >= 0).nonzero().flatten()
    what = "validation images of each seed's runs, scored by that seed's models (none trained on them)"
    return held, what, seed_of[held]


def _mask(n: int, indices: torch.Tensor | None = None) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    if indices is not None:
        mask[indices] = True
    return mask


def _seed_sets(configs: list[RunConfig]) -> bool:
    """Whether the runs are seed sets: every seed has runs of the same models."""
    keys = [c.key for c in configs]
    models = sorted(k.model for k in keys if k.seed == keys[0].seed)
    seeds = {k.seed for k in keys}
    return len(seeds) > 1 and all(sorted(k.model for k in keys if k.seed == seed) == models for seed in seeds)


def choose_ensemble(runs: list[RunDir], runtime: Runtime, data_dir=None) -> EnsembleChoice | None:
    """The ensemble of ``runs`` (several runs of a model are its seeds: averaged, or each scoring
    its own validation images, ``held_out_images``), chosen on as
    many held-out images per class as the runs were tested on (their test subset's per-class
    size, ``PER_CLASS`` for the whole test set; at least ``MIN_PER_CLASS``); None with fewer
    than two models."""
    configs = [run.read_config() for run in runs]
    models = list(dict.fromkeys(c.model.name for c in configs))
    if len(models) < 2:
        return None
    per_class = runs[0].read_metrics().run.data.test_per_class or PER_CLASS
    if len({repr(c.data.sha256) for c in configs}) > 1:
        return EnsembleChoice(members=models, images=0, held_out="the models were trained on different data")
    try:
        data = run_data(runs[0], data_dir, configs[0])
    except LetterbenchError as exc:
        return EnsembleChoice(
            members=models, images=0, held_out=f"the training data could not be read: {exc}"
        )
    held, what, seed_of = held_out_images(data, configs)
    if len(held) < MIN_PER_CLASS * len(data.class_names):
        return EnsembleChoice(
            models, 0, f"only {len(held)} training images were held out from the models that would score them"
        )
    most = max(per_class, MIN_PER_CLASS) * len(data.class_names)
    if len(held) > most:
        keep = torch.randperm(len(held), generator=torch.Generator().manual_seed(0))[:most]
        held, seed_of = held[keep], (seed_of[keep] if seed_of is not None else None)
    probs = _model_probabilities(runs, configs, data.train_images[held], seed_of, runtime)
    members, tried = best_subset(probs, data.train_labels[held].numpy())
    return EnsembleChoice(members=members, images=len(held), held_out=what, candidates=tried)


def _model_probabilities(runs, configs, images, seed_of, runtime: Runtime) -> dict[str, np.ndarray]:
    """Each model's calibrated probabilities on ``images``: the mean over its seeds, or, where
    ``seed_of`` names the seed that scores each image, that seed's run's."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run, config in zip(runs, configs, strict=True):
        mine = np.ones(len(images), bool) if seed_of is None else (seed_of == config.seed).numpy()
        if not mine.any():
            continue
        model, _ = trained_model(run)
        probs = predict_probabilities(model, images[torch.from_numpy(mine)], runtime, run_temperature(run))
        parts.setdefault(config.model.name, []).append((mine, probs))
    probs = {}
    for name, scored in parts.items():
        total = np.zeros((len(images), scored[0][1].shape[1]))
        count = np.zeros((len(images), 1))
        for mine, p in scored:
            total[mine] += p
            count[mine] += 1
        probs[name] = total / np.maximum(count, 1)
    return probs


def choose_ensemble_or_all(runs: list[RunDir], runtime: Runtime, data_dir=None) -> EnsembleChoice | None:
    """``choose_ensemble``, or the mean of all models with the reason where the choice cannot be
    made (a run's checkpoint or config unreadable, the data gone, the device out of memory);
    None with fewer than two models."""
    try:
        return choose_ensemble(runs, runtime, data_dir)
    except (LetterbenchError, KeyError, TypeError, torch.cuda.OutOfMemoryError) as exc:
        why = str(exc) if isinstance(exc, LetterbenchError) else f"{type(exc).__name__}: {exc}"
        return EnsembleChoice(members=[], images=0, held_out=f"no choice was made: {why}")
