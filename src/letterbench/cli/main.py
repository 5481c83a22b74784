"""The `letterbench` command line. Each sub-command is a thin shell over one module."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from letterbench import __version__
from letterbench.cli.apps import add_answer_options, build_export, build_serve
from letterbench.cli.boundary import (
    Parser,
    install_warning_format,
    min2_int,
    nonneg_int,
    positive_float,
    positive_int,
    run_command,
)
from letterbench.cli.data import add_data_dir, build_data, build_models
from letterbench.core import timing
from letterbench.models import choices_text

# ---------------------------------------------------------------- train

KEEP_HELP = (
    "keep the optimiser's state (momentum, Adam's moments) in a finished run's last checkpoint; "
    "by default it is dropped then, halving the checkpoint (thirding it for Adam), and a later "
    "--resume --epochs starts the optimiser afresh"
)


def cmd_train(args: argparse.Namespace) -> int:
    from letterbench.runs.rundir import RunDir, default_run_dir
    from letterbench.training.recipes import resolve_recipe
    from letterbench.training.run import FIXED_ON_RESUME, ResumeChanges, TrainOptions, resume_options, train

    changes = ResumeChanges(args.epochs, args.lr)
    if args.resume:
        given = {name: getattr(args, name) for name in FIXED_ON_RESUME if getattr(args, name) is not None}
        changes = resume_options(args.out, given, changes)
        recipe = None
    else:
        recipe = resolve_recipe(
            args.model,
            args.recipe,
            overrides=args.set or [],
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            pretrained=args.pretrained,
            weights=args.weights,
            large_batch=args.large_batch,
        )
    run = RunDir(args.out) if args.out else default_run_dir(recipe.name)
    options = TrainOptions(
        args.data_dir,
        args.split or "letters",
        args.seed or 0,
        args.train_per_class,
        progress=not args.quiet,
        compile=args.compile,
        tensorboard=args.tensorboard,
        keep_optimizer=args.keep_optimizer_state,
    )
    runtime = _runtime(args, distributed=True)
    try:
        train(recipe, run, runtime, options, args.resume, changes)
    except KeyboardInterrupt:
        kept = run.has_checkpoint("last")
        print(
            f"letterbench: interrupted; {run} keeps its last finished epoch. Continue with: "
            f"letterbench train --resume --out {run}"
            if kept
            else "letterbench: interrupted before the first epoch ended; nothing was saved: run the same command again",
            file=sys.stderr,
        )
        return 130
    finally:
        runtime.close()
    if runtime.dist.is_main:
        print(f"finished: {run}")
    return 0


def _runtime(args: argparse.Namespace, distributed: bool = False):
    from letterbench.runs.runtime import Runtime

    return Runtime.create(
        args.device, distributed=distributed, cuda_graphs=not getattr(args, "no_cuda_graphs", False)
    )


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--no-cuda-graphs",
        action="store_true",
        help="on a GPU, run each training step eagerly instead of replaying it as a CUDA graph "
        "(same results, slower; graphs are off under torchrun and --compile anyway)",
    )


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any recipe value, e.g. --set phases.0.epochs=3 --set augment.flip=true",
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="epochs of every phase (on --resume: of the phases left)"
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate of the first phase, later phases keep their ratio "
        "(on --resume: of the current phase from now on)",
    )
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=min2_int, help="batch size (default: the recipe's)")
    batch.add_argument(
        "--large-batch",
        type=min2_int,
        metavar="N",
        help="large-batch mode for fast GPU runs: batch N with each phase's LR scaled from the "
        "recipe's batch (linear for SGD, square root for Adam) and a warm-up; recorded in the run",
    )
    parser.add_argument(
        "--pretrained",
        choices=["true", "false", "auto"],
        help="ImageNet weights: true (or fail), false, auto (fall back to random, recorded)",
    )
    parser.add_argument(
        "--weights", type=Path, help="initial weights from a local file (safetensors or state dict)"
    )
    _add_device_options(parser)
    parser.add_argument("--seed", type=nonneg_int, help="default 0")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log per-epoch scalars for TensorBoard into RUN/tensorboard/ "
        "(open with `tensorboard --logdir RUN`; needs letterbench[tensorboard])",
    )
    parser.add_argument("--keep-optimizer-state", action="store_true", help=KEEP_HELP)


def _build_train(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.catalog import SPLITS

    train = sub.add_parser("train", help="train one model with its recipe (resumable; works under torchrun)")
    train.add_argument("--model", help=choices_text())
    train.add_argument("--recipe", help="a recipe TOML file (see src/letterbench/recipes/)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    train.add_argument("--split", choices=list(SPLITS), help="default letters")
    train.add_argument(
        "--train-per-class", type=positive_int, help="train on a stratified subset of N images per class"
    )
    add_data_dir(train)
    _add_recipe_options(train)
    train.set_defaults(func=cmd_train)


# ---------------------------------------------------------------- evaluate, report


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
            run, _runtime(args), args.data_dir, test_per_class=args.test_per_class, real_world=real_world
        )
        if not args.no_plots:
            plot_timed(run, evaluation)
    print(run_summary(evaluation.metrics))
    print(f"wrote {run.metrics_file}, predictions" + ("" if args.no_plots else " and plots"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from letterbench.evaluation.ensemble import choose_ensemble_or_all
    from letterbench.reporting.report import build_report, check_report_inputs, report_page

    args.run_dirs = _study_runs(args.run_dirs)
    runs = check_report_inputs(args.run_dirs, args.out)  # before any model is loaded
    choice = choose_ensemble_or_all(runs, _runtime(args), args.data_dir)
    summary = build_report(args.run_dirs, args.out, choice)
    _print_outcome(summary, report_page(args.out))
    return 0


def _print_outcome(summary: dict, page: Path, study: Path | None = None) -> None:
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
        print(
            f"next: `letterbench serve --run {study}` reads the letters you draw or photograph in a browser"
        )


def _study_runs(paths: list[Path]) -> list[Path]:
    """The run directories to report: each given run, and every run of each given study."""
    from letterbench.runs.studydir import StudyDir

    found: list[Path] = []
    for path in paths:
        study = StudyDir(path)
        found += [run.path for run in study.runs()] if study.exists() else [path]
    return found


def _build_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="test-set metrics, predictions, cost and plots for a trained run"
    )
    evaluate.add_argument("run_dir", type=Path, help="a trained run directory")
    evaluate.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    evaluate.add_argument("--no-plots", action="store_true", help="write the metrics and predictions only")
    evaluate.add_argument(
        "--real-world",
        type=Path,
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
    report.add_argument("--device", default="auto", help="where the ensemble's models score held-out images")
    report.add_argument(
        "--data-dir",
        type=Path,
        help="the runs' training data, if it moved (default: the folder they recorded)",
    )
    report.set_defaults(func=cmd_report)


# ---------------------------------------------------------------- run, predict


def cmd_run(args: argparse.Namespace) -> int:
    from letterbench.reporting.report import report_page
    from letterbench.runs.studydir import StudyDir
    from letterbench.study.runner import run_study

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models is not None else None
    if models == []:
        from letterbench.core.errors import LetterbenchError

        raise LetterbenchError(f"--models {args.models!r} names no model; name one or more: {choices_text()}")
    try:
        summary = run_study(
            args.out,
            _runtime(args),
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
        )
    except KeyboardInterrupt:
        print(
            f"letterbench: interrupted; run the same command again to resume the study in {args.out}",
            file=sys.stderr,
        )
        return 130
    print()
    _print_outcome(summary, report_page(StudyDir(args.out).report_dir), args.out)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from letterbench.apps.predict import (
        Predictor,
        answer_line,
        predict_files,
        records_json,
        save_inputs,
        torch_predictor,
    )
    from letterbench.core.errors import LetterbenchError

    if (args.run is None) == (args.onnx is None):
        raise LetterbenchError(
            "predict needs one source of models: --run DIR (a run or study directory) or --onnx FILE"
        )
    if args.onnx is not None:
        from letterbench.apps.exported import onnx_scorer

        flags = {"--model": args.model, "--ensemble": args.ensemble, "--tta": args.tta}
        if any(flags.values()):
            used = ", ".join(f for f, on in flags.items() if on)
            raise LetterbenchError(f"{used}: only with --run; --onnx runs the one model in the file")
        predictor = Predictor([onnx_scorer(args.onnx, args.device)], unsure_below=args.unsure_below)
    else:
        ensemble = args.ensemble or args.model is None  # as serve: a study's ensemble unless --model
        _, predictor = torch_predictor(
            args.run, args.model, ensemble, _runtime(args), args.tta, args.unsure_below
        )
    if not args.json:
        print(predictor.describe())
        if predictor.caveat:
            print(f"note: {predictor.caveat}")
    records = predict_files(args.images, predictor)
    if args.show_input:
        save_inputs(records, args.show_input)
    for record in records:
        if "error" in record:
            print(f"{record['file']}: error: {record['error']}", file=sys.stderr)
        elif not args.json:
            print(f"{record['file']}: {answer_line(record['answer'])}")
    if args.json:
        print(json.dumps(records_json(records, predictor), indent=2))
    return 1 if any("error" in r for r in records) else 0


def _build_run(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.catalog import SPLITS
    from letterbench.study.presets import PRESETS, STUDY_MODELS

    run = sub.add_parser("run", help="the whole study: data, training, evaluation, report (resumable)")
    run.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="first (one small model that reads letters, about 3 min on a CPU), smoke (seconds; "
        "checks the tool, its models are untrained), quick (the study on a CPU, about 15 min), paper "
        "(full recipes; GPU), fast (paper at batch 1024, LR scaled; GPU). Default: paper with a GPU, "
        "else quick",
    )
    run.add_argument(
        "--models",
        help=f"comma-separated: {choices_text()} (default: the preset's; the study's "
        f"{','.join(STUDY_MODELS)} in all but first, which trains smallcnn)",
    )
    run.add_argument("--split", choices=list(SPLITS), default="letters", help="the EMNIST split to study")
    run.add_argument("--out", type=Path, default=Path("study"), help="study directory (default ./study)")
    _add_device_options(run)
    run.add_argument("--seed", type=nonneg_int, default=0, help="the first seed (default 0)")
    run.add_argument(
        "--seeds",
        type=positive_int,
        help="train each model N times, seeds --seed, --seed + 1, ...; the report shows mean ± sd over "
        "them (default: 1 for smoke and quick, 3 for paper and fast); a rerun with more adds seeds",
    )
    run.add_argument(
        "--real-world",
        type=Path,
        metavar="DIR",
        help="a folder of your own labelled letters (labels.csv with file,label columns, or one sub-folder "
        "per letter a..z) that every model also reads: top-1/top-3 rows in the report"
        " (default for the quick preset: bench/real-world, where it was built)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    run.add_argument(
        "--tensorboard", action="store_true", help="log each run for TensorBoard (runs/*/tensorboard/)"
    )
    run.add_argument("--keep-optimizer-state", action="store_true", help=KEEP_HELP)
    add_data_dir(run)
    run.set_defaults(func=cmd_run)

    predict = sub.add_parser("predict", help="classify images of single handwritten letters")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="images of one letter each")
    predict.add_argument("--run", type=Path, help="a run directory, or a study directory")
    predict.add_argument(
        "--onnx", type=Path, metavar="FILE", help="a model `letterbench export` wrote, instead of --run"
    )
    predict.add_argument("--model", help="which model of a study directory")
    predict.add_argument(
        "--ensemble",
        action="store_true",
        help="average the study's ensemble (its finished models; the default without --model)",
    )
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.add_argument("--show-input", type=Path, metavar="DIR", help="save the 28x28 image each model saw")
    predict.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    add_answer_options(predict)
    predict.set_defaults(func=cmd_predict)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="letterbench",
        description="Train, evaluate and compare CNNs on handwritten letters (EMNIST), with measured evidence.",
    )
    parser.add_argument("--version", action="version", version=f"letterbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    build_data(sub)
    build_models(sub)
    _build_train(sub)
    _build_evaluate(sub)
    _build_run(sub)
    build_export(sub)
    build_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_warning_format()
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # a bare `letterbench`: what it can do
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("letterbench: interrupted", file=sys.stderr)
        return 130
    with timing.budget():  # where the command's wall clock goes (recorded by train, evaluate, run)
        with timing.part("start-up and imports"):
            import torch  # noqa: F401  (what every command past its --help imports first)
        return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
