"""A study's time budget as a terminal table (``letterbench report --time``): where its wall clock
went, part by part (training, validation, testing, the report ...; ``core.timing``), for each run
and for the study's own work, with each part's total and share of the wall clock.

The budget is the one ``letterbench run`` records in the study's file when it finishes; the parts
sum to the wall clock the command measured itself. A caller that timed the command from outside
(``bench/study_wall.py``: Python's own start and exit included) passes that wall clock instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from letterbench.core.errors import LetterbenchError
from letterbench.reporting.tables import format_table
from letterbench.runs.studydir import StudyDir

FIX = "--time shows a study's time budget, which `letterbench run` records: give the folder its --out named"
TOGETHER = "seeds together"  # the part a study charges while a model's seeds train at once


def study_time_budget(path: str | Path) -> dict[str, Any]:
    """The time budget ``letterbench run`` recorded for the study at ``path``; one
    ``LetterbenchError`` line where ``path`` is no study or the study has not finished."""
    study = StudyDir(path)
    if not study.exists():
        what = "no such folder" if not Path(path).exists() else f"not a study (no {study.study_file.name})"
        raise LetterbenchError(f"--time {path}: {what}; {FIX}")
    try:
        budget = study.read().time_budget
    except LetterbenchError as exc:  # its own fix speaks of `letterbench run --out`
        raise LetterbenchError(f"--time {str(exc).split(';')[0]}; {FIX}") from None
    if not budget or not isinstance(budget.get("parts"), dict) or not budget.get("wall_s"):
        raise LetterbenchError(
            f"--time {path}: the study has no time budget yet (`letterbench run` records it when the "
            "study finishes); run the same `letterbench run` command again to finish it"
        )
    return budget


def _row(name: str, seconds: list[float], wall: float) -> list[str]:
    return [name, *[f"{x:.1f}" for x in seconds], f"{sum(seconds):.1f}", f"{sum(seconds) / wall:.1%}"]


def time_budget_table(budget: dict[str, Any], outside: float | None = None) -> str:
    """The table: a row per part (largest first) and one for all parts, a column per scope (each
    run, then ``command``: the study's own work) with the total and the share of the wall clock;
    under it the wall clock (``outside``, where the command was timed from outside) and the share
    of it not spent training."""
    parts: dict[str, dict[str, float]] = budget["parts"]
    scopes = list(parts)
    names = sorted(
        {p for scope in parts.values() for p in scope},
        key=lambda p: -sum(scope.get(p, 0.0) for scope in parts.values()),
    )
    wall = outside or budget["wall_s"]
    rows = [_row(name, [parts[s].get(name, 0.0) for s in scopes], wall) for name in names]
    rows.append(_row("all parts", [sum(parts[s].values()) for s in scopes], wall))
    table = format_table(["part", *scopes, "total s", "share"], rows)
    said = f"\nwall clock {wall:.1f} s" + (" (outside the process)" if outside else "")
    if any(TOGETHER in part for scope in parts.values() for part in scope):
        # the seeds' own parts are in their runs' files, and they overlap in time
        return f"{table}{said}; seeds trained together: no training share (`--seeds-together 1` gives one)"
    training = sum(scope.get("training", 0.0) for scope in parts.values())
    return f"{table}{said}; training {training:.1f} s; not training {1 - training / wall:.1%}"
