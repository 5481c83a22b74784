"""The commands that take a trained model to its users: ``predict`` (a user's images), ``export``
(ONNX, TorchScript) and ``serve`` (a local draw-a-letter page). Thin: the work is in
``letterbench.apps``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from letterbench.cli.options import add_answer_options, add_data_dir, add_device, runtime


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

    from letterbench.apps import serve, server

    serve.require_web()
    sock = server.bind(args.host, args.port)  # before the models load: a taken port fails at once
    listening = server.listening(sock)
    if not server.is_loopback(sock.getsockname()[0]):
        print(
            f"letterbench: warning: listening on {listening}: the page is reachable from the network, "
            "by anyone who can reach that port of this machine, with no login",
            file=sys.stderr,
        )
    try:
        from letterbench.apps.predict import torch_predictor
        from letterbench.core.runtime import Runtime

        runs, predictor = torch_predictor(
            args.run,
            args.model,
            args.model is None,
            Runtime.create(args.device, precision=args.precision),
            args.tta,
            args.unsure_below,
        )
        limit = round(args.max_upload_mb * 2**20)
        # "local" by the address the socket is bound to, not by how --host was typed (LOCALHOST, 127.1)
        local = server.is_loopback(sock.getsockname()[0])
        app = serve.create_app(
            predictor, serve.page_title(args.run), limit, local=local, url=server.url(sock)
        )
        print(
            f"serving {', '.join(map(str, runs))} on {listening}: open {server.url(sock)} (Ctrl-C stops)",
            flush=True,
        )
        print(predictor.describe(), flush=True)
        if predictor.caveat:
            print(f"note: {predictor.caveat}", flush=True)
        server.run_server(app, sock=sock)
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
    add_device(serve, answers=True)
    serve.add_argument(
        "--max-upload-mb",
        type=_upload_mb,
        default=8.0,
        metavar="MB",
        help="largest upload (default 8, at most 1024)",
    )
    add_answer_options(serve)
    serve.set_defaults(func=cmd_serve)


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
    from letterbench.evaluation.thresholds import CASE_NOTE

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
            args.run, args.model, ensemble, runtime(args), args.tta, args.unsure_below
        )
    if not args.json:
        print(predictor.describe())
        if predictor.caveat:
            print(f"note: {predictor.caveat}")
        print(f"note: {CASE_NOTE}")
    records = predict_files(image_files(args.images), predictor)
    if args.show_input:
        save_inputs(records, args.show_input)
    for record in records:  # in the order given, each error where its file stands
        if "error" in record:
            sys.stdout.flush()
            print(f"{record['file']}: error: {record['error']}", file=sys.stderr, flush=True)
        elif not args.json:
            print(f"{record['file']}: {answer_line(record['answer'])}", flush=True)
    if args.json:
        print(json.dumps(records_json(records, predictor), indent=2))
    return 1 if any("error" in r for r in records) else 0


def image_files(paths: list[Path]) -> list[Path]:
    """The images to read: each file given, and the files of each folder given (sorted, hidden
    ones such as macOS's ``._`` files left out; a file that is no image is reported by name)."""
    from letterbench.core.errors import LetterbenchError

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if not p.name.startswith(".") and not p.is_dir())
            if not found:
                raise LetterbenchError(f"{path}: the folder holds no files; give images, or a folder of them")
            out += found
        else:
            out.append(path)
    return out


def build_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="classify images of single handwritten letters")
    predict.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="images of one letter each, or folders of them"
    )
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
    add_device(predict, answers=True)
    add_answer_options(predict)
    predict.set_defaults(func=cmd_predict)
