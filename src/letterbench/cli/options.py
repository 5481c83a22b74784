"""The options several commands share, each declared once here: ``--device`` (with one help
text), ``--no-cuda-graphs``, ``--data-dir``, the answer options of ``predict`` and ``serve``, and
the runtime a command builds from them."""

from __future__ import annotations

import argparse
from pathlib import Path

DEVICE_HELP = "auto (cuda, mps, cpu), cpu, cuda, cuda:1, ..."


def add_device(parser: argparse.ArgumentParser, graphs: bool = False, answers: bool = False) -> None:
    """``--device``; with ``graphs`` (the commands that train), ``--no-cuda-graphs`` too; with
    ``answers`` (predict, serve) full precision by default: a picture at a time costs little, and
    predict, its ONNX export and the page then give one number per picture."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--precision",
        choices=("auto", "float32"),
        default="float32" if answers else None,
        help="float32 (the default here): full precision, so that predict, predict --onnx and the page "
        "give the same probabilities; auto: bf16 where the device computes it (faster for many images)"
        if answers
        else "auto: bf16 on a GPU; on a CPU with native bf16 (AMX, AVX512-BF16) training stays float32 "
        "and validation, testing and predictions run in bf16, about 2.5x faster; float32: full "
        "precision throughout (default: $LETTERBENCH_PRECISION, else auto)",
    )
    if graphs:
        parser.add_argument(
            "--no-cuda-graphs",
            action="store_true",
            help="on a GPU, run each training step eagerly instead of replaying it as a CUDA graph "
            "(same results, slower; graphs are off under torchrun and --compile anyway)",
        )


def add_data_dir(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=help
        or "folder with the EMNIST IDX files (default: $LETTERBENCH_DATA, else ~/.cache/letterbench)",
    )


def runtime(args: argparse.Namespace, distributed: bool = False):
    """The command's runtime from its ``--device`` (and ``--no-cuda-graphs``, where it has one)."""
    from letterbench.core.runtime import Runtime

    graphs = not getattr(args, "no_cuda_graphs", False)
    return Runtime.create(args.device, distributed=distributed, cuda_graphs=graphs, precision=args.precision)


def add_answer_options(parser: argparse.ArgumentParser) -> None:
    """``--tta`` and ``--unsure-below``, as ``predict`` and ``serve`` take them."""
    from letterbench.cli.boundary import probability
    from letterbench.evaluation.thresholds import UNSURE_BELOW

    parser.add_argument(
        "--tta", action="store_true", help="average 5 views of each image (test-time augmentation; 5x slower)"
    )
    parser.add_argument(
        "--unsure-below",
        type=probability,
        default=UNSURE_BELOW,
        metavar="P",
        help=f"mark answers whose calibrated probability is below P as unsure (default {UNSURE_BELOW})",
    )
