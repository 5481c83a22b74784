"""The comparison's units: a ``RunResult`` is one evaluated run as the report reads it, and a
``Column`` one phase of a run (with its other seeds), or the ensemble; every part of the report
reads the models through them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from letterbench.evaluation.inference import recalibrated, run_temperature
from letterbench.evaluation.stats import not_useful, paired_test
from letterbench.runs.records import Cost, RunInfo, RunMetrics, Stage, StageMetrics
from letterbench.runs.rundir import RunDir


@dataclass
class ColumnCost:
    """A column's cost as the report shows it: the run's ``Cost`` with this phase's cumulative
    training time and trained parameters (for the ensemble, its models' together). Speeds carry
    the quartiles of their samples (``*_spread``) and the load they were measured under."""

    parameters: float | None = None
    trainable: float | None = None
    flops_per_image: float | None = None
    train_time_s: float | None = None
    train_images_per_s: float | None = None
    train_images_per_s_spread: list[float] | None = None
    inference_images_per_s: float | None = None
    inference_images_per_s_spread: list[float] | None = None
    latency_ms: float | None = None
    latency_ms_spread: list[float] | None = None
    peak_memory_bytes: float | None = None
    inference_batch: int | None = None
    train_load: dict[str, Any] | None = None
    inference_load: dict[str, Any] | None = None

    @classmethod
    def of_stage(cls, cost: Cost, phase: str, train_time_s: float) -> ColumnCost:
        fields = {name: getattr(cost, name, None) for name in cls.__dataclass_fields__}
        trainable = (cost.trainable_parameters or {}).get(phase)
        return cls(**{**fields, "train_time_s": train_time_s, "trainable": trainable})

    def spread(self, key: str) -> list[float] | None:
        """The quartiles of the samples behind the speed figure ``key``, where recorded."""
        return getattr(self, f"{key}_spread", None)

    def under_load(self, which: str) -> bool:
        """Whether a speed figure (``train_load`` or ``inference_load``) was measured under load."""
        return bool((getattr(self, which) or {}).get("under_load"))


@dataclass
class Column:
    """One column of the comparison: a phase of a run, or the ensemble."""

    label: str
    run: RunDir | None
    stage: Stage
    cost: ColumnCost
    is_final: bool = True
    members: list[str] = field(default_factory=list)
    outcome: np.ndarray | None = None  # per test image: right or wrong (the share of seeds right)
    seed_runs: list[RunDir] = field(default_factory=list)  # more seeds of this model and recipe
    model: str = ""  # the registered model's name (the ensemble's choice names models)
    # per image of a --real-world folder: read right or wrong (``reporting/real_world.py``)
    real_world_outcome: np.ndarray | None = None
    real_world_probs: np.ndarray | None = None

    def runs(self) -> list[RunDir]:
        return ([self.run] if self.run is not None else []) + self.seed_runs

    def predictions(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The saved test probabilities and labels of this stage, one pair per seed."""
        return [run.load_predictions(self.stage.phase) for run in self.runs()]

    def calibrated_predictions(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``predictions``, each seed's divided by its own temperature: what predict and serve
        average (``inference.recalibrated``)."""
        return [
            (recalibrated(probs, run_temperature(run)), labels)
            for run, (probs, labels) in zip(self.runs(), self.predictions(), strict=True)
        ]

    def test_against(self, other: Column, real_world: bool = False) -> dict[str, Any] | None:
        """The paired test of this column against ``other`` on the same test images (or the same
        images of a --real-world folder) (``stats.paired_test``); None where either has no
        per-image outcomes or they were scored on different images."""
        mine, theirs = (
            (self.real_world_outcome, other.real_world_outcome)
            if real_world
            else (self.outcome, other.outcome)
        )
        if mine is None or theirs is None or len(mine) != len(theirs):
            return None
        return paired_test(mine, theirs)

    def p_against(self, other: Column, real_world: bool = False) -> float | None:
        test = self.test_against(other, real_world)
        return None if test is None else test["p"]

    @property
    def m(self) -> StageMetrics:
        return self.stage.metrics

    @property
    def accuracy(self) -> float:
        return self.m.accuracy

    @property
    def gap(self) -> float | None:
        return self.stage.gap

    def under_load(self, which: str) -> bool:
        """Whether a speed figure (``train_load`` or ``inference_load``) was measured under load."""
        return self.cost.under_load(which)

    @property
    def not_useful(self) -> str | None:
        """Why this column's model is not yet useful by its test accuracy (``stats.not_useful``:
        at chance, or below the usefulness floor), or None where it is useful."""
        classes = len(self.stage.per_class or {}) or None
        return not_useful(self.accuracy, self.m.test_images, classes)


@dataclass
class RunResult:
    run: RunDir
    metrics: RunMetrics
    name: str  # unique among the report's runs: labels and plot files use it

    @property
    def info(self) -> RunInfo:
        return self.metrics.run
