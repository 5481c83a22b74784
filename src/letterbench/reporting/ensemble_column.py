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
from letterbench.reporting.columns import Column, ColumnCost
from letterbench.reporting.seeds import mean_over_seeds
from letterbench.runs.records import EnsembleChoice, Stage


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
    runs. Its models are ``choice``'s where one was made on held-out images, else all; where the
    choice is one model, the column is named as that model (``ensemble_label``), not "Ensemble"."""
    finals = ensemble_members(finals, choice)
    label = ensemble_label([c.label for c in finals])
    predictions = [mean_over_seeds(c.calibrated_predictions()) for c in finals]
    labels = predictions[0][1]
    if any(not np.array_equal(labels, other) for _, other in predictions[1:]):
        raise LetterbenchError(
            "the runs were evaluated on different test sets; evaluate them on the same data"
        )
    probs = mean_probabilities([p for p, _ in predictions])
    stage = Stage.model_validate(
        {
            "label": label,
            "phase": "ensemble",
            **classification_metrics(probs, labels, class_names),
            "intervals": bootstrap_intervals(probs, labels),
            "chosen": choice.to_dict() if choice is not None else None,
        },
        strict=False,
    )
    right = probs.argmax(1) == labels
    return Column(label, None, stage, _cost(finals), members=[c.label for c in finals], outcome=right)


def ensemble_label(members: list[str]) -> str:
    """The ensemble's column label: "Ensemble" for a mean of several models; for the study's choice
    of one model, that model ("Xception fine-tune (chosen)"): a mean of one is no ensemble."""
    return "Ensemble" if len(members) > 1 else f"{members[0]} (chosen)"


def _cost(finals: list[Column]) -> ColumnCost:
    """What the ensemble costs: every network it runs (each model's seeds too), one after another."""

    def total(values: list[float | None]) -> float | None:
        if not all(values):
            return None
        return sum(v * len(c.runs()) for v, c in zip(values, finals, strict=True))

    inference = [
        c.cost.inference_images_per_s / len(c.runs()) for c in finals if c.cost.inference_images_per_s
    ]
    return ColumnCost(
        parameters=total([c.cost.parameters for c in finals]),
        flops_per_image=total([c.cost.flops_per_image for c in finals]),
        train_time_s=total([c.cost.train_time_s for c in finals]),
        inference_images_per_s=1 / sum(1 / v for v in inference) if len(inference) == len(finals) else None,
        latency_ms=total([c.cost.latency_ms for c in finals]),
        inference_load={"under_load": any(c.under_load("inference_load") for c in finals)},
    )
