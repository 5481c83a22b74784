"""`letterbench run`: the whole study, resumable (data, training, evaluation, the report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from letterbench.cli.boundary import given_path, nonneg_int, positive_int
from letterbench.cli.evaluate import print_outcome
from letterbench.cli.options import add_data_dir, add_device, runtime
from letterbench.cli.train import KEEP_HELP, add_checkpoint_every
from letterbench.models import choices_text


def cmd_run(args: argparse.Namespace) -> int:
    from letterbench.reporting.report import report_page
    from letterbench.runs.studydir import StudyDir
    from letterbench.study.runner import StudyOptions, run_study

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models is not None else None
    if models == []:
        from letterbench.core.errors import LetterbenchError

        raise LetterbenchError(f"--models {args.models!r} names no model; name one or more: {choices_text()}")
    try:
        options = StudyOptions(
            args.preset,
            models,
            args.data_dir,
            args.seed,
            args.split,
            progress=not args.quiet,
            tensorboard=args.tensorboard,
            seeds=args.seeds,
            real_world=args.real_world,
            keep_optimizer=args.keep_optimizer_state,
            checkpoint_every=args.checkpoint_every,
            seeds_together=args.seeds_together,
        )
        summary = run_study(args.out, runtime(args), options)
    except KeyboardInterrupt:
        print(
            f"letterbench: interrupted; run the same command again to resume the study in {args.out}",
            file=sys.stderr,
        )
        return 130
    print()
    print_outcome(summary, report_page(StudyDir(args.out).report_dir), args.out)
    return 0


def build_run(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.catalog import SPLITS
    from letterbench.study.presets import PRESETS, STUDY_MODELS

    run = sub.add_parser("run", help="the whole study: data, training, evaluation, report (resumable)")
    run.add_argument(
        "--preset",
        choices=list(PRESETS),
        help=f"first (one small model that reads letters: {PRESETS['first'].takes} on a 2-core CPU), smoke "
        f"({PRESETS['smoke'].takes}; checks the tool, its models are untrained), quick (the study on a CPU: "
        f"{PRESETS['quick'].takes}), paper (full recipes; {PRESETS['paper'].takes}), fast (paper at batch "
        f"1024, LR scaled; {PRESETS['fast'].takes}). Default: paper with a GPU, else quick",
    )
    run.add_argument(
        "--models",
        help=f"comma-separated: {choices_text()} (default: the preset's; the study's "
        f"{','.join(STUDY_MODELS)} in all but first, which trains smallcnn)",
    )
    run.add_argument("--split", choices=list(SPLITS), default="letters", help="the EMNIST split to study")
    run.add_argument("--out", type=Path, default=Path("study"), help="study directory (default ./study)")
    add_device(run, graphs=True)
    run.add_argument("--seed", type=nonneg_int, default=0, help="the first seed (default 0)")
    run.add_argument(
        "--seeds",
        type=positive_int,
        help="train each model N times, seeds --seed, --seed + 1, ...; the report shows mean ± sd over "
        "them (default: 1 for smoke and quick, 3 for paper and fast); a rerun with more adds seeds",
    )
    run.add_argument(
        "--seeds-together",
        type=positive_int,
        metavar="K",
        help="train up to K of a model's seeds at once, each in a process of its own with its own run "
        "folder (default: all of them on a GPU, one at a time on a CPU)",
    )
    run.add_argument(
        "--real-world",
        type=given_path,
        metavar="DIR",
        help="a folder of your own labelled letters (labels.csv with file,label columns, or one sub-folder "
        "per letter a..z) that every model also reads: top-1/top-3 rows in the report",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    run.add_argument(
        "--tensorboard", action="store_true", help="log each run for TensorBoard (runs/*/tensorboard/)"
    )
    run.add_argument("--keep-optimizer-state", action="store_true", help=KEEP_HELP)
    add_checkpoint_every(run, "every 30 s for paper and fast, after every epoch for the others")
    add_data_dir(run)
    run.set_defaults(func=cmd_run)
