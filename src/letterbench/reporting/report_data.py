"""What a report says, as data: the runs read back, a column per phase of each model (its seeds
together), the ensemble's column, the rows of figures with their ★, the ranking, the pros and
cons, the notes and the paired comparisons. ``page`` turns it into sections; ``report`` writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from letterbench.core.errors import LetterbenchError
from letterbench.reporting.columns import Column, ColumnCost, RunResult
from letterbench.reporting.comparisons import Comparison, attach_outcomes, paired_comparisons
from letterbench.reporting.ensemble_column import ensemble_column
from letterbench.reporting.notes import report_notes
from letterbench.reporting.pros_cons import pros_cons
from letterbench.reporting.ranking import Ranking, ranking
from letterbench.reporting.real_world import attach_real_world
from letterbench.reporting.rows import ROWS, best_columns
from letterbench.reporting.seeds import seed_groups, seed_stage
from letterbench.runs.records import EnsembleChoice
from letterbench.runs.rundir import RunDir


@dataclass
class ReportRow:
    """One row of the comparison: a figure of every column, its text, and the columns with a ★."""

    key: str
    label: str
    higher_is_better: bool
    values: list[float | None]
    text: list[str]
    best: set[int]
    intervals: list[list[float] | None]
    seed_std: list[float | None]

    def summary(self) -> dict[str, Any]:
        """As summary.json holds it."""
        fields = {k: getattr(self, k) for k in ("key", "label", "higher_is_better", "values", "intervals")}
        return {**fields, "seed_std": self.seed_std, "best": sorted(self.best)}


@dataclass
class ReportData:
    results: list[RunResult]
    columns: list[Column]  # every phase of every run, then the ensemble
    finals: list[Column]  # the last phase of each run: the models that are ranked
    ensemble: Column | None
    ranking: Ranking
    pros_cons: dict[str, dict[str, list[str]]]
    warnings: list[str]
    comparisons: list[Comparison]

    def rows(self) -> list[ReportRow]:
        return [
            ReportRow(
                row.key,
                row.label_for(self.columns),
                row.higher,
                [row.value(c) for c in self.columns],
                [row.text(c) for c in self.columns],
                best_columns(row, self.columns),
                [row.bounds(c) for c in self.columns],
                [(c.stage.seed_std or {}).get(row.key) for c in self.columns],
            )
            for row in ROWS
            if not row.key.startswith("real_world") or any(row.value(c) is not None for c in self.columns)
        ]


# ---------------------------------------------------------------- reading


def load_results(run_dirs: list[Path]) -> list[RunResult]:
    if not run_dirs:
        raise LetterbenchError("name at least one evaluated run directory")
    runs = [RunDir(d) for d in run_dirs]
    resolved = [run.path.resolve() for run in runs]
    twice = next((run for run, r in zip(runs, resolved, strict=True) if resolved.count(r) > 1), None)
    if twice is not None:
        raise LetterbenchError(f"{twice} is named twice; name each run directory once")
    results = [RunResult(run, run.read_metrics(), "") for run in runs]
    class_names = results[0].metrics.class_names
    for r in results[1:]:
        if r.metrics.class_names != class_names:
            raise LetterbenchError(
                f"{r.run} has classes {''.join(r.metrics.class_names)}, {results[0].run} has "
                f"{''.join(class_names)}; only runs on the same split can be compared"
            )
    for group in seed_groups(results):  # several seeds of a model: named by their seed
        for r in group:
            r.name = r.info.key._replace(seeded=len(group) > 1).label
    names = [r.name for r in results]
    for r in results:  # two runs of one model otherwise: tell them apart by their folders
        r.name = r.name if names.count(r.name) == 1 else f"{r.name} ({r.run.path})"
    return results


def _columns(results: list[RunResult]) -> list[Column]:
    """A column per phase of each model: of its run, or of its seeds' runs together (``seeds.py``)."""
    columns = []
    groups = seed_groups(results)
    names = [g[0].name if len(g) == 1 else g[0].info.label for g in groups]
    for group, name in zip(groups, names, strict=True):
        r, n = group[0], len(group)
        if names.count(name) > 1:  # two seed groups of one model (other recipes or data): their folders
            name = f"{name} ({r.run.path}, {n} seeds)"
        elapsed = np.zeros(n)
        stages = r.metrics.stages
        for i, stage in enumerate(stages):
            elapsed += [m.metrics.cost.train_time_s.get(stage.phase, 0.0) for m in group]
            label = name if i == 0 else f"{name} {stage.phase}"
            stage_cost = ColumnCost.of_stage(r.metrics.cost, stage.phase, float(elapsed.mean()))
            column = Column(
                label, r.run, stage, stage_cost, is_final=i == len(stages) - 1, model=r.info.model
            )
            column.seed_runs = [m.run for m in group[1:]]
            if n > 1:
                column.stage = seed_stage([m.metrics.stages[i] for m in group], column.predictions())
            columns.append(column)
    return columns


def report_data(results: list[RunResult], choice: EnsembleChoice | None = None) -> ReportData:
    columns = _columns(results)
    finals = [c for c in columns if c.is_final]
    class_names = results[0].metrics.class_names
    ensemble = ensemble_column(finals, class_names, choice) if len(finals) > 1 else None
    all_columns = columns + ([ensemble] if ensemble else [])
    attach_outcomes(all_columns)  # reads every run's saved test predictions
    apart = attach_real_world(columns, ensemble, finals)  # and their readings of a --real-world folder
    return ReportData(
        results=results,
        columns=all_columns,
        finals=finals,
        ensemble=ensemble,
        ranking=ranking(finals, ensemble),
        pros_cons=pros_cons(finals),
        warnings=report_notes(results, columns) + apart,
        comparisons=paired_comparisons(finals, ensemble),
    )


def time_budgets(results: list[RunResult]) -> dict[str, dict[str, float]]:
    """Each model's wall clock by part, over its seeds: its training (progress file) and its
    evaluation and plots (metrics file); models whose runs recorded none are left out."""
    bars: dict[str, dict[str, float]] = {}
    for r in results:
        try:
            trained = r.run.read_progress().time_budget or {}
        except LetterbenchError:
            trained = {}
        spent = [trained, r.metrics.time_budget or {}]
        if not any(spent):
            continue
        bar = bars.setdefault(r.info.label, {})
        for part in spent:
            for name, seconds in part.items():
                bar[name] = bar.get(name, 0.0) + seconds
    return bars
