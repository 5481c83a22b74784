"""The `letterbench` command line: the parser, assembled from one module per command group, and
``main``. Each command is a thin shell over the layers below (``cli.boundary`` turns what goes
wrong into one line)."""

from __future__ import annotations

import argparse
import sys

from letterbench import __version__
from letterbench.cli.apps import build_export, build_predict, build_serve
from letterbench.cli.boundary import Parser, install_warning_format, run_command
from letterbench.cli.data import build_data, build_models
from letterbench.cli.evaluate import build_evaluate
from letterbench.cli.study import build_run
from letterbench.cli.train import build_train
from letterbench.core import timing


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="letterbench",
        description="Train, evaluate and compare CNNs on handwritten letters (EMNIST), with measured evidence.",
        epilog="start here: `letterbench run --preset first --out first` trains a first model in a few "
        "minutes; then `letterbench serve --run first` reads the letters you draw.",
    )
    parser.add_argument("--version", action="version", version=f"letterbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    build_data(sub)
    build_models(sub)
    build_train(sub)
    build_evaluate(sub)
    build_run(sub)
    build_predict(sub)
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
