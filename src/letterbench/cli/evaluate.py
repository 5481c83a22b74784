"""`letterbench evaluate` (a run's test metrics, predictions, cost and plots) and `letterbench
report` (evaluated runs or a study compared), and what both print at the end."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from letterbench.cli.boundary import given_path, positive_int
from letterbench.cli.options import add_data_dir, add_device, runtime


def cmd_evaluate(args: argparse.Namespace) -> int:
    from letterbench.evaluation.evaluate import evaluate_run
    from letterbench.evaluation.real_world import load_real_world
    from letterbench.reporting.plots import plot_timed
    from letterbench.reporting.tables import run_summary
    from letterbench.runs.rundir import RunDir

    run = RunDir(args.run_dir)
    run.read_config()  # a clear error for a folder that is not a run, before anything is locked
    real_world = load_real_world(args.real_world) if args.real_world else None
    with run.lock():
        evaluation = evaluate_run(
            run, runtime(args), args.data_dir, test_per_class=args.test_per_class, real_world=real_world
        )
        if not args.no_plots:
            plot_timed(run, evaluation)
    print(run_summary(evaluation.metrics))
    for stage in evaluation.metrics.stages:
        if stage.real_world:
            print(real_world_line(stage.phase, stage.real_world))
    print(f"wrote {run.metrics_file}, predictions" + ("" if args.no_plots else " and plots"))
    return 0


def real_world_line(phase: str, reading: dict) -> str:
    """``real-world FOLDER (N images), phase P: top-1 91.2% [89.6, 92.7], top-3 ...``."""
    lo1, hi1 = reading["intervals"]["top1"]
    lo3, hi3 = reading["intervals"]["top3"]
    return (
        f"real-world {reading['folder']} ({reading['images']:,} images), phase {phase}: "
        f"top-1 {100 * reading['top1']:.1f}% [{100 * lo1:.1f}, {100 * hi1:.1f}], "
        f"top-3 {100 * reading['top3']:.1f}% [{100 * lo3:.1f}, {100 * hi3:.1f}]"
    )


def cmd_report(args: argparse.Namespace) -> int:
    if args.time:
        return print_time_budgets(args.run_dirs)
    from letterbench.evaluation.ensemble import choose_ensemble_or_all
    from letterbench.reporting.report import build_report, check_report_inputs, report_page

    args.run_dirs = _study_runs(args.run_dirs)
    runs = check_report_inputs(args.run_dirs, args.out)  # before any model is loaded
    choice = choose_ensemble_or_all(runs, runtime(args), args.data_dir)
    summary = build_report(args.run_dirs, args.out, choice)
    print_outcome(summary, report_page(args.out))
    return 0


def print_time_budgets(studies: list[Path]) -> int:
    """``report --time``: each study's time budget as a table (every study checked first)."""
    from letterbench.reporting.time_table import study_time_budget, time_budget_table

    budgets = [study_time_budget(path) for path in studies]
    for n, (path, budget) in enumerate(zip(studies, budgets, strict=True)):
        print(("\n" if n else "") + f"time budget of {path} (seconds)")
        print(time_budget_table(budget))
    return 0


def print_outcome(summary: dict, page: Path, study: Path | None = None) -> None:
    """The table, the recommendation (wrapped to 100 columns), the notes' count, the report, and
    where a useful study goes next: its page that reads the user's letters."""
    print(summary["table"])
    ranking = summary["ranking"]
    said = f"recommendation: {ranking['recommendation']}: {ranking['why']}"
    print("\n" + textwrap.fill(said, 100, subsequent_indent="  ", break_on_hyphens=False))
    if summary.get("warnings"):
        count = len(summary["warnings"])
        print(
            f"{count} note{'s' if count > 1 else ''} on reading these numbers (budgets, subsets, data): see the report"
        )
    print(f"report: {page.resolve()}")
    if study is not None and ranking["recommendation"] != "none":
        print(f"next: {serve_hint(study)} reads the letters you draw or photograph in a browser")


def serve_hint(study: Path) -> str:
    """The command that serves ``study`` where the user stands: ``make serve`` after ``make run``
    (the Makefile says so), else ``letterbench serve``, with the page's parts to install first
    where FastAPI is missing."""
    import importlib.util
    import os

    if os.environ.get("LETTERBENCH_VIA_MAKE"):
        return f"`make serve STUDY={study}`"
    if importlib.util.find_spec("fastapi") is None:
        return f"`pip install 'letterbench[serve]'`, then `letterbench serve --run {study}`"
    return f"`letterbench serve --run {study}`"


def _study_runs(paths: list[Path]) -> list[Path]:
    """The run directories to report: each given run, and every run of each given study."""
    from letterbench.runs.studydir import StudyDir

    found: list[Path] = []
    for path in paths:
        study = StudyDir(path)
        found += [run.path for run in study.runs()] if study.exists() else [path]
    return found


def build_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="test-set metrics, predictions, cost and plots for a trained run"
    )
    evaluate.add_argument("run_dir", type=Path, help="a trained run directory")
    add_device(evaluate)
    evaluate.add_argument("--no-plots", action="store_true", help="write the metrics and predictions only")
    evaluate.add_argument(
        "--real-world",
        type=given_path,
        metavar="DIR",
        help="a folder of your own labelled letters (labels.csv with file,label columns, or one sub-folder "
        "per letter a..z) that every model also reads: top-1/top-3 rows in the report",
    )
    evaluate.add_argument(
        "--test-per-class",
        type=positive_int,
        help="evaluate on a stratified test subset (said so in the report)",
    )
    add_data_dir(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    report = sub.add_parser(
        "report", help="compare evaluated runs: report.html, report.md, summary.json/.csv"
    )
    report.add_argument(
        "run_dirs",
        type=Path,
        nargs="+",
        help="evaluated run directories to compare, or a study (all its runs)",
    )
    report.add_argument(
        "--out", type=Path, default=Path("report"), help="the report's folder (default ./report)"
    )
    report.add_argument(
        "--time",
        action="store_true",
        help="print each study's time budget instead (where its wall clock went, part by part and run "
        "by run, as `letterbench run` recorded it); writes no report",
    )
    add_device(report)  # where the ensemble's models score held-out images
    add_data_dir(report, "the runs' training data, if it moved (default: the folder they recorded)")
    report.set_defaults(func=cmd_report)
