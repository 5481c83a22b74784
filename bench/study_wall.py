"""A study's wall clock, part by part: `letterbench run --preset P` in a child process, timed from
outside, and the time budget it recorded (study.json): for each run and for the study's own work,
the seconds of training, validation, checkpoint writes, testing, calibration, cost measurement,
plots, the ensemble choice, the report, start-up and imports.

    python bench/study_wall.py [--preset quick] [--data-dir ../shared/data/emnist] [--out DIR]
        [--study DIR]   # only print the table of a study run before

The non-training share is 1 - training / wall clock, the wall clock measured outside the process
(so Python's own start and exit count as not training too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from letterbench.reporting.tables import format_table
from letterbench.runs.studydir import StudyDir

REPO = Path(__file__).resolve().parents[1]


def run_study(preset: str, data_dir: Path, out: Path, more: list[str] = ()) -> tuple[float, str]:
    """`letterbench run --preset PRESET` in a child process on this checkout's code: its wall
    clock timed from outside, and what it printed; exits with its error where it fails."""
    command = [sys.executable, "-m", "letterbench", "run", "--preset", preset, "--quiet"]
    command += ["--data-dir", str(data_dir), "--out", str(out), *more]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"letterbench run failed ({done.returncode}):\n{done.stderr}")
    return wall, done.stdout


def table(budget: dict, outside: float | None) -> str:
    parts = budget["parts"]
    scopes = list(parts)
    names = sorted(
        {p for s in parts.values() for p in s}, key=lambda p: -sum(s.get(p, 0) for s in parts.values())
    )
    wall = outside or budget["wall_s"]
    rows = []
    for name in names:
        seconds = [parts[s].get(name, 0.0) for s in scopes]
        rows.append(
            [name, *[f"{x:.1f}" for x in seconds], f"{sum(seconds):.1f}", f"{sum(seconds) / wall:.1%}"]
        )
    totals = [sum(parts[s].values()) for s in scopes]
    rows.append(
        ["all parts", *[f"{x:.1f}" for x in totals], f"{sum(totals):.1f}", f"{sum(totals) / wall:.1%}"]
    )
    training = sum(s.get("training", 0.0) for s in parts.values())
    lines = format_table(["part", *scopes, "total s", "share"], rows)
    said = f"\nwall clock {wall:.1f} s" + (" (outside the process)" if outside else "")
    if any("seeds together" in part for scope in parts.values() for part in scope):
        # the seeds' own parts are in their runs' files, and they overlap in time
        return (
            lines
            + said
            + "; seeds trained together: no training share (--args '--seeds-together 1' gives one)"
        )
    said += f"; training {training:.1f} s; not training {1 - training / wall:.1%}"
    return lines + said


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "emnist")
    parser.add_argument("--out", type=Path, help="the study folder (default: a temporary one)")
    parser.add_argument("--study", type=Path, help="print the table of this finished study instead")
    parser.add_argument("--args", default="", help="more options for letterbench run, as one string")
    args = parser.parse_args()
    if args.study:
        print(table(StudyDir(args.study).read().time_budget, None))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "study"
        outside, _ = run_study(args.preset, args.data_dir, out, args.args.split())
        print(f"letterbench run --preset {args.preset} {args.args}".strip())
        print(table(StudyDir(out).read().time_budget, outside))


if __name__ == "__main__":
    main()
