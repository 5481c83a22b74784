"""The report's ensemble column: the chosen models' calibrated test probabilities, averaged.

``letterbench.evaluation.ensemble`` chooses which models the ensemble averages (on held-out training images);
this scores that mean on the test images like a model, with a cost that counts every network.
"""

from __future__ import annotations

import numpy as np

from letterbench.core.errors import LetterbenchError
from letterbench.evaluation.evaluate import classification_metrics
from letterbench.evaluation.inference import mean_probabilities
from letterbench.evaluation.stats import bootstrap_intervals
from letterbench.reporting.columns import Column
from letterbench.reporting.seeds import mean_over_seeds
from letterbench.runs.records import EnsembleChoice


def ensemble_members(finals: list[Column], choice: EnsembleChoice | None) -> list[Column]:
    """The final columns the ensemble averages: the chosen models' (``ensemble``), else all."""
    if choice is None or not choice.images:
        return finals
    chosen = [c for c in finals if c.model in choice.members]
    return chosen or finals


def ensemble_column(
    finals: list[Column], class_names: list[str], choice: EnsembleChoice | None = None
) -> Column:
    """The mean of the ensemble's models' saved test probabilities, each seed's calibrated by its
    own temperature and each model's seeds averaged first (so that every model weighs the same):
    the answers predict and serve give, scored like a model; its cost counts every network it
    runs. Its models are ``choice``'s where one was made on held-out images, else all."""
    finals = ensemble_members(finals, choice)
    predictions = [mean_over_seeds(c.calibrated_predictions()) for c in finals]
    labels = predictions[0][1]
    if any(not np.array_equal(labels, other) for _, other in predictions[1:]):
        raise LetterbenchError(
            "the runs were evaluated on different test sets; evaluate them on the same data"
        )
    probs = mean_probabilities([p for p, _ in predictions])
    stage = {
        "label": "Ensemble",
        "phase": "ensemble",
        **classification_metrics(probs, labels, class_names),
        "intervals": bootstrap_intervals(probs, labels),
        "chosen": choice.to_dict() if choice is not None else None,
    }

    def total(key):
        values = [c.cost.get(key) for c in finals]
        return sum(v * len(c.runs()) for v, c in zip(values, finals, strict=True)) if all(values) else None

    inference = [
        c.cost.get("inference_images_per_s") / len(c.runs())
        for c in finals
        if c.cost.get("inference_images_per_s")
    ]
    inference = inference if len(inference) == len(finals) else [None]
    cost = {
        "parameters": total("parameters"),
        "flops_per_image": total("flops_per_image"),
        "train_time_s": total("train_time_s"),
        "inference_images_per_s": 1 / sum(1 / v for v in inference) if all(inference) else None,
        "latency_ms": total("latency_ms"),
        "inference_load": {"under_load": any(c.under_load("inference_load") for c in finals)},
    }
    right = probs.argmax(1) == labels
    return Column("Ensemble", None, stage, cost, members=[c.label for c in finals], outcome=right)
