"""`letterbench train`: one model with its recipe into a run folder (resumable; under torchrun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from letterbench.cli.boundary import min2_int, nonneg_float, nonneg_int, positive_float, positive_int
from letterbench.cli.options import add_data_dir, add_device, runtime
from letterbench.models import choices_text

KEEP_HELP = (
    "keep the optimiser's state (momentum, Adam's moments) in a finished run's last checkpoint; "
    "by default it is dropped then, halving the checkpoint (thirding it for Adam), and a later "
    "--resume --epochs starts the optimiser afresh"
)


def cmd_train(args: argparse.Namespace) -> int:
    from letterbench.runs.rundir import RunDir, default_run_dir
    from letterbench.training.resume import FIXED_ON_RESUME, ResumeChanges, resume_options
    from letterbench.training.run import train

    changes = ResumeChanges(args.epochs, args.lr)
    if args.resume:
        given = {name: getattr(args, name) for name in FIXED_ON_RESUME if getattr(args, name) is not None}
        changes = resume_options(args.out, given, changes)
        recipe = None
    else:
        recipe = _recipe(args)
    run = RunDir(args.out) if args.out else default_run_dir(recipe.name)
    rt = runtime(args, distributed=True)
    try:
        train(recipe, run, rt, _options(args), args.resume, changes)
    except KeyboardInterrupt:
        kept = run.has_checkpoint("last")
        print(
            f"letterbench: interrupted; {run} keeps its last finished epoch. Continue with: "
            f"letterbench train --resume --out {run}"
            if kept
            else "letterbench: interrupted before any epoch was saved: run the same command again",
            file=sys.stderr,
        )
        return 130
    finally:
        rt.close()
    if rt.dist.is_main:
        print(f"finished: {run}")
    return 0


def _recipe(args: argparse.Namespace):
    from letterbench.recipes import resolve_recipe

    return resolve_recipe(
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


def _options(args: argparse.Namespace):
    from letterbench.training.run import TrainOptions

    return TrainOptions(
        args.data_dir,
        args.split or "letters",
        args.seed or 0,
        args.train_per_class,
        progress=not args.quiet,
        compile=args.compile,
        tensorboard=args.tensorboard,
        keep_optimizer=args.keep_optimizer_state,
        checkpoint_every=args.checkpoint_every or 0.0,
    )


def add_checkpoint_every(parser: argparse.ArgumentParser, default: str = "after every epoch") -> None:
    parser.add_argument(
        "--checkpoint-every",
        type=nonneg_float,
        metavar="SECONDS",
        help=f"write the resumable checkpoint at most this often, and at each phase's end (default: "
        f"{default}); after a kill the epochs since the last one train again, to the same weights",
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
    add_device(parser, graphs=True)
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
    add_checkpoint_every(parser)


def build_train(sub: argparse._SubParsersAction) -> None:
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
