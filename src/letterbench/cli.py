"""The `letterbench` command line. Each sub-command is a thin shell over one module."""

from __future__ import annotations

import argparse
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
