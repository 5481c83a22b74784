"""The commands that take a trained model to its users: ``export`` (ONNX, TorchScript) and
``serve`` (a local draw-a-letter page). Thin: the work is in ``letterbench.apps.export`` and
``letterbench.apps.serve``."""

from __future__ import annotations

import argparse
from pathlib import Path

from letterbench.cli.data import add_data_dir


def cmd_export(args: argparse.Namespace) -> int:
    from letterbench.apps.export import export_run, export_target

    run = export_target(args.run, args.model)
    result = export_run(run, args.out or run.export_file(args.format), args.format, args.data_dir)
    print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB)")
    print(f"max |p_{result.format} - p_torch| = {result.max_diff:.1e} on {result.images} test images")
    return 0


def build_export(sub: argparse._SubParsersAction) -> None:
    """The ``export`` subcommand: a trained run as one ONNX or TorchScript file."""
    export = sub.add_parser(
        "export",
        help="a trained run as one ONNX or TorchScript file that takes the 28x28 uint8 letter and gives "
        "logits, with class names, temperature and input contract inside; checked against PyTorch",
    )
    export.add_argument("--run", type=Path, required=True, help="a run directory, or a study directory")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="default onnx")
    export.add_argument(
        "--out", type=Path, help="the file to write (default RUN/export/model.onnx or model.torchscript.pt)"
    )
    export.add_argument("--model", help="which model of a study directory")
    add_data_dir(export)  # the run's test images, for the check against PyTorch
    export.set_defaults(func=cmd_export)


def cmd_serve(args: argparse.Namespace) -> int:
    import sys

    from letterbench.apps import serve

    serve.require_web()
    sock = serve.bind(args.host, args.port)  # before the models load: a taken port fails at once
    listening = serve.listening(sock)
    if not serve.is_loopback(sock.getsockname()[0]):
        print(
            f"letterbench: warning: listening on {listening}: the page is reachable from the network, "
            "by anyone who can reach that port of this machine, with no login",
            file=sys.stderr,
        )
    try:
        from letterbench.apps.predict import torch_predictor
        from letterbench.runs.runtime import Runtime

        runs, predictor = torch_predictor(
            args.run, args.model, args.model is None, Runtime.create(args.device), args.tta, args.unsure_below
        )
        limit = round(args.max_upload_mb * 2**20)
        app = serve.create_app(
            predictor, serve.page_title(predictor), limit, local=serve.is_loopback(args.host)
        )
        print(
            f"serving {', '.join(map(str, runs))} on {listening}: open {serve.url(sock)} (Ctrl-C stops)",
            flush=True,
        )
        print(predictor.describe(), flush=True)
        if predictor.caveat:
            print(f"note: {predictor.caveat}", flush=True)
        serve.run_server(app, sock=sock)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        pass
    finally:
        sock.close()
    print("stopped", flush=True)
    return 0


def _upload_mb(text: str) -> float:
    from letterbench.cli.boundary import positive_float

    value = positive_float(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"expected at most 1024 MB, got {text!r}")
    return value


def _port(text: str) -> int:
    from letterbench.cli.boundary import nonneg_int

    value = nonneg_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def build_serve(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` subcommand: a local page to draw or photograph a letter and see the answers."""

    serve = sub.add_parser(
        "serve",
        help="a local web page: draw a letter (mouse, finger, pen) or upload a photo, and see each "
        "model's top 3 and the ensemble's (needs letterbench[serve])",
    )
    serve.add_argument("--run", type=Path, required=True, help="a run directory, or a study directory")
    which = serve.add_mutually_exclusive_group()
    which.add_argument("--model", help="serve only this model of a study directory")
    which.add_argument(
        "--ensemble", action="store_true", help="every finished model of the study, averaged (the default)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="default 127.0.0.1 (this machine only); 0.0.0.0 makes the page reachable from the network",
    )
    serve.add_argument("--port", type=_port, default=8000, help="default 8000; 0 picks a free one")
    serve.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, ...")
    serve.add_argument(
        "--max-upload-mb",
        type=_upload_mb,
        default=8.0,
        metavar="MB",
        help="largest upload (default 8, at most 1024)",
    )
    add_answer_options(serve)
    serve.set_defaults(func=cmd_serve)


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
