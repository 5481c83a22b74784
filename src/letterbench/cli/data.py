"""`letterbench data` and `letterbench models`: the command line's commands that train nothing
(``cli.py`` assembles every command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from letterbench.cli.boundary import min2_int
from letterbench.cli.options import add_data_dir
from letterbench.core.errors import LetterbenchError
from letterbench.models import choices_text

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


def build_data(sub: argparse._SubParsersAction) -> None:
    from letterbench.data.catalog import ARCHIVE_URL, SPLITS

    data = sub.add_parser("data", help="fetch, import and inspect EMNIST")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    fetch = data_sub.add_parser("fetch", help="download the official archive, verify it, extract a split")
    fetch.add_argument(
        "--split", choices=list(SPLITS), default="letters", help="the EMNIST split (default letters)"
    )
    fetch.add_argument("--url", default=ARCHIVE_URL, help=f"archive address (default {ARCHIVE_URL})")
    fetch.add_argument("--delete-archive", action="store_true", help="remove gzip.zip after extracting")
    add_data_dir(fetch)
    fetch.set_defaults(func=cmd_data_fetch)

    imp = data_sub.add_parser("import", help="import gzip.zip, a folder of IDX files, or one IDX file")
    imp.add_argument("path", type=Path, help="the downloaded gzip.zip, or a folder holding its IDX files")
    imp.add_argument("--split", choices=list(SPLITS), default="letters", help="split to extract from a zip")
    add_data_dir(imp)
    imp.set_defaults(func=cmd_data_import)

    info = data_sub.add_parser("info", help="counts, pixel statistics and official/partial status")
    info.add_argument(
        "--split", choices=list(SPLITS), default="letters", help="the EMNIST split (default letters)"
    )
    add_data_dir(info)
    info.set_defaults(func=cmd_data_info)


# ---------------------------------------------------------------- models


def cmd_models(args: argparse.Namespace) -> int:
    from letterbench.models import check_weights, create_model, model_names, read_weights_file
    from letterbench.reporting.tables import model_row, streamed_rows

    if args.weights is not None:
        if not args.name:
            raise LetterbenchError("--weights needs a model name: letterbench models NAME --weights PATH")
        model = create_model(args.name[0], num_classes=args.num_classes)
        fit = check_weights(model, read_weights_file(args.weights))
        print(f"{args.weights} for {model.name}: " + fit.summary())
        return 0 if fit.fits else 1
    from letterbench.models import get_model

    names = args.name or list(model_names())
    print(f"building {len(names)} model(s) to count their parameters and FLOPs, one line each:", flush=True)
    widths = [max(len(n) for n in [*names, "model"]), 9, 44, 11, 11, 11, 16, 11]
    for line in streamed_rows((model_row(n, args.num_classes) for n in names), widths):
        print(line, flush=True)
    print()
    for name in names:
        print(f"{name}: {get_model(name).summary}")
    print(
        '\nImageNet weights "not cached" are downloaded the first time a recipe asks for them (pretrained = true '
        "or auto) and kept in timm's cache (~/.cache/huggingface or ~/.cache/torch); to fetch them now, train that model for one epoch. "
        "Any of timm's models trains as --model timm:<name> (for example timm:resnet10t; timm.list_models() "
        "lists them); check a weights file of your own with `letterbench models NAME --weights FILE`."
    )
    return 0


def build_models(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "models", help="table of models: input, parameters, FLOPs, cached weights; or check a weights file"
    )
    models.add_argument("name", nargs="*", help=f"{choices_text()} (default: every registered model)")
    models.add_argument("--weights", type=Path, help="check that this weights file fits the model")
    models.add_argument(
        "--num-classes",
        type=min2_int,
        default=26,
        help="classes of the head whose size is counted (default 26)",
    )
    models.set_defaults(func=cmd_models)
