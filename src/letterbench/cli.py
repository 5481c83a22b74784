"""The `letterbench` command line. Each sub-command is a thin shell over one module."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from letterbench import __version__
from letterbench.errors import LetterbenchError


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the EMNIST IDX files (default: $LETTERBENCH_DATA, else ~/.cache/letterbench)",
    )


# ---------------------------------------------------------------- data


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from letterbench.data.emnist import resolve_data_dir
    from letterbench.data.fetch import fetch

    data_dir = resolve_data_dir(args.data_dir)
    written = fetch(data_dir, args.split, args.url, keep_archive=not args.delete_archive)
    print(f"extracted {len(written)} files of split {args.split} into {data_dir}")
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from letterbench.data.emnist import resolve_data_dir
    from letterbench.data.fetch import import_path

    data_dir = resolve_data_dir(args.data_dir)
    written = import_path(args.path, data_dir, args.split)
    for path in written:
        print(f"imported {path}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from letterbench.data.emnist import load_emnist
    from letterbench.data.info import describe

    print(describe(load_emnist(args.data_dir, args.split)))
    return 0


def _build_data(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.emnist import ARCHIVE_URL, SPLITS

    data = sub.add_parser("data", help="fetch, import and inspect EMNIST")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    fetch = data_sub.add_parser("fetch", help="download the official archive, verify it, extract a split")
    fetch.add_argument("--split", choices=list(SPLITS), default="letters")
    fetch.add_argument("--url", default=ARCHIVE_URL, help=f"archive address (default {ARCHIVE_URL})")
    fetch.add_argument("--delete-archive", action="store_true", help="remove gzip.zip after extracting")
    _add_data_dir(fetch)
    fetch.set_defaults(func=cmd_data_fetch)

    imp = data_sub.add_parser("import", help="import gzip.zip, a folder of IDX files, or one IDX file")
    imp.add_argument("path", type=Path)
    imp.add_argument("--split", choices=list(SPLITS), default="letters", help="split to extract from a zip")
    _add_data_dir(imp)
    imp.set_defaults(func=cmd_data_import)

    info = data_sub.add_parser("info", help="counts, pixel statistics and official/partial status")
    info.add_argument("--split", choices=list(SPLITS), default="letters")
    _add_data_dir(info)
    info.set_defaults(func=cmd_data_info)


# ---------------------------------------------------------------- models


def cmd_models(args: argparse.Namespace) -> int:
    from letterbench.models import MODEL_NAMES, check_weights, create_model, read_weights_file
    from letterbench.reporting.tables import models_table

    if args.weights is not None:
        if not args.name:
            raise LetterbenchError("--weights needs a model name: letterbench models NAME --weights PATH")
        model = create_model(args.name[0], num_classes=args.num_classes)
        fit = check_weights(model, read_weights_file(args.weights))
        print(f"{args.weights} for {model.name}: " + fit.summary())
        return 0 if fit.fits else 1
    print(models_table(args.name or list(MODEL_NAMES), num_classes=args.num_classes))
    return 0


def _build_models(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "models", help="table of models: input, parameters, FLOPs, cached weights; or check a weights file"
    )
    models.add_argument(
        "name", nargs="*", help="resnet18, densenet121, xception or timm:<name> (default: the three)"
    )
    models.add_argument("--weights", type=Path, help="check that this weights file fits the model")
    models.add_argument("--num-classes", type=int, default=26)
    models.set_defaults(func=cmd_models)


# ---------------------------------------------------------------- train


def resolve_recipe(args: argparse.Namespace):
    """The recipe a command line asks for: --recipe FILE or the model's built-in one, then overrides."""
    from letterbench.training.recipes import BUILTIN, apply_overrides, load_recipe

    if args.recipe:
        recipe = load_recipe(args.recipe)
    elif args.model in BUILTIN:
        recipe = load_recipe(args.model)
    elif args.model and args.model.startswith("timm:"):
        recipe = apply_overrides(load_recipe("resnet18"), [f"model={args.model}", f"name={args.model}"])
    else:
        raise LetterbenchError(
            "say what to train: --model resnet18|densenet121|xception|timm:<name>, or --recipe FILE"
        )
    overrides = list(args.set or [])
    if args.model and args.recipe:
        overrides.append(f"model={args.model}")
    for i in range(len(recipe.phases)):
        if args.epochs is not None:
            overrides.append(f"phases.{i}.epochs={args.epochs}")
        if args.lr is not None:
            scale = recipe.phases[i].optimizer["lr"] / recipe.phases[0].optimizer["lr"]
            overrides.append(f"phases.{i}.optimizer.lr={args.lr * scale}")
    if args.batch_size is not None:
        overrides.append(f"batch_size={args.batch_size}")
    if args.pretrained is not None:
        overrides.append(f"pretrained={args.pretrained}")
    if args.weights is not None:
        overrides.append(f"weights={json.dumps(str(args.weights))}")
    return apply_overrides(recipe, overrides) if overrides else recipe


def cmd_train(args: argparse.Namespace) -> int:
    from letterbench.training.run import train

    if args.resume:
        if args.out is None:
            raise LetterbenchError("--resume needs the run directory: letterbench train --resume --out DIR")
        recipe = None
    else:
        recipe = resolve_recipe(args)
    out = args.out or Path("runs") / recipe.name.replace(":", "-")
    try:
        train(
            recipe,
            out,
            args.data_dir,
            args.split,
            args.seed,
            args.device,
            args.resume,
            args.train_per_class,
            progress=not args.quiet,
            compile=args.compile,
        )
    except KeyboardInterrupt:
        print(
            f"letterbench: interrupted; {out} keeps its last finished epoch. "
            f"Continue with: letterbench train --resume --out {out}",
            file=sys.stderr,
        )
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"finished: {out}")
    return 0


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any recipe value, e.g. --set phases.0.epochs=3 --set augment.flip=true",
    )
    parser.add_argument("--epochs", type=int, help="epochs of every phase")
    parser.add_argument(
        "--lr", type=float, help="learning rate of the first phase (later phases keep their ratio)"
    )
    parser.add_argument("--batch-size", type=int)
    parser.add_argument(
        "--pretrained",
        choices=["true", "false", "auto"],
        help="ImageNet weights: true (or fail), false, auto (fall back to random, recorded)",
    )
    parser.add_argument(
        "--weights", type=Path, help="initial weights from a local file (safetensors or state dict)"
    )
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def _build_train(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.emnist import SPLITS

    train = sub.add_parser("train", help="train one model with its recipe (resumable; works under torchrun)")
    train.add_argument("--model", help="resnet18, densenet121, xception or timm:<name>")
    train.add_argument("--recipe", help="a recipe TOML file (see src/letterbench/recipes/)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    train.add_argument("--split", choices=list(SPLITS), default="letters")
    train.add_argument(
        "--train-per-class", type=int, help="train on a stratified subset of N images per class"
    )
    _add_data_dir(train)
    _add_recipe_options(train)
    train.set_defaults(func=cmd_train)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letterbench",
        description="Train, evaluate and compare CNNs on handwritten letters (EMNIST), with measured evidence.",
    )
    parser.add_argument("--version", action="version", version=f"letterbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _build_data(sub)
    _build_models(sub)
    _build_train(sub)
    for builder in _EXTRA_BUILDERS:
        builder(sub)
    return parser


_EXTRA_BUILDERS: list = []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LetterbenchError as exc:
        print(f"letterbench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("letterbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
