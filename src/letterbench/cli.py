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


# ---------------------------------------------------------------- evaluate, report


def print_run_summary(result: dict) -> None:
    from letterbench.reporting.tables import format_table, human

    rows = []
    for stage in result["stages"]:
        m = stage["metrics"]
        rows.append(
            [
                stage["label"],
                f"{m['accuracy']:.2%}",
                f"{m['top3_accuracy']:.2%}",
                f"{m['f1_macro']:.2%}",
                f"{m['roc_auc_macro']:.4f}" if m["roc_auc_macro"] is not None else "n/a",
                f"{m['test_images']:,}",
            ]
        )
    print(format_table(["model", "accuracy", "top-3", "F1 macro", "AUC macro", "test images"], rows))
    cost = result["cost"]
    print(
        f"cost: {human(cost['parameters'])} parameters, {human(cost['flops_per_image'])}FLOPs/image, "
        f"training {cost['train_time_s']['total'] / 60:.1f} min, "
        + (
            f"inference {cost['inference_images_per_s']:,.0f} img/s, latency {cost['latency_ms']:.1f} ms"
            if "latency_ms" in cost
            else "speed not measured"
        )
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from letterbench.evaluation import evaluate_run

    result = evaluate_run(
        args.run_dir, args.data_dir, args.device, plots=not args.no_plots, test_per_class=args.test_per_class
    )
    print_run_summary(result)
    print(f"wrote {args.run_dir / 'metrics.json'}, predictions and plots")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from letterbench.reporting.report import build_report

    summary = build_report(args.run_dirs, args.out)
    print(summary["table"])
    print(f"\nrecommendation: {summary['ranking']['recommendation']}: {summary['ranking']['why']}")
    print(f"report: {(args.out / 'report.html').resolve()}")
    return 0


def _build_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="test-set metrics, predictions, cost and plots for a trained run"
    )
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--no-plots", action="store_true")
    evaluate.add_argument(
        "--test-per-class", type=int, help="evaluate on a stratified test subset (said so in the report)"
    )
    _add_data_dir(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    report = sub.add_parser(
        "report", help="compare evaluated runs: report.html, report.md, summary.json/.csv"
    )
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument("--out", type=Path, default=Path("report"))
    report.set_defaults(func=cmd_report)


# ---------------------------------------------------------------- run, predict


def cmd_run(args: argparse.Namespace) -> int:
    from letterbench.study import run_study

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    try:
        summary = run_study(
            args.out, args.preset, models, args.data_dir, args.device, args.seed, progress=not args.quiet
        )
    except KeyboardInterrupt:
        print(
            f"letterbench: interrupted; run the same command again to resume the study in {args.out}",
            file=sys.stderr,
        )
        return 130
    print()
    print(summary["table"])
    print(f"\nrecommendation: {summary['ranking']['recommendation']}: {summary['ranking']['why']}")
    for warning in summary["warnings"]:
        print(f"note: {warning}")
    print(f"report: {(args.out / 'report' / 'report.html').resolve()}")
    return 0


def _study_runs(run: Path) -> dict[str, Path]:
    """Finished runs by model name: a study directory's runs/*, or one run directory itself."""
    from letterbench.training.run import read_config

    if (run / "config.json").exists():
        return {read_config(run)["model"]["name"]: run}
    runs = {}
    for child in sorted((run / "runs").glob("*")) if (run / "runs").is_dir() else []:
        if (child / "config.json").exists():
            runs[read_config(child)["model"]["name"]] = child
    if not runs:
        raise LetterbenchError(
            f"{run}: neither a run directory nor a study directory with runs/; "
            "train one with `letterbench train` or `letterbench run`"
        )
    return runs


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from letterbench.evaluation import predict_probs
    from letterbench.fsutil import atomic_save
    from letterbench.predict import prepare_file, top_k
    from letterbench.training.distributed import choose_device
    from letterbench.training.run import load_trained_model

    runs = _study_runs(args.run)
    if args.ensemble:
        chosen = list(runs)
    elif args.model:
        if args.model not in runs:
            raise LetterbenchError(f"{args.run} has no run of {args.model}; it has {', '.join(runs)}")
        chosen = [args.model]
    elif len(runs) == 1:
        chosen = list(runs)
    else:
        raise LetterbenchError(
            f"{args.run} holds {', '.join(runs)}: choose one with --model NAME, or --ensemble"
        )
    loaded = [load_trained_model(runs[name]) for name in chosen]
    class_names = loaded[0][1]
    if any(names != class_names for _, names in loaded):
        raise LetterbenchError(
            "the chosen models were trained on different classes; they cannot be ensembled"
        )
    prepared = [prepare_file(Path(p)) for p in args.images]
    good = [p for p in prepared if p.image is not None]
    probs = None
    if good:
        batch = torch.from_numpy(np.stack([p.image for p in good]))
        device = choose_device(args.device)
        probs = torch.stack([predict_probs(model, batch, device) for model, _ in loaded]).mean(0)
    records, row = [], 0
    for item in prepared:
        if item.image is None:
            records.append({"file": str(item.path), "error": item.error})
            print(f"{item.path}: error: {item.error}", file=sys.stderr)
            continue
        top = top_k(probs[row], class_names)
        row += 1
        records.append({"file": str(item.path), "top3": [{"letter": c, "probability": p} for c, p in top]})
        if args.show_input:
            from PIL import Image

            target = args.show_input / f"{item.path.stem}.input.png"
            atomic_save(target, lambda f, img=item.image: Image.fromarray(img).save(f, format="PNG"))
        if not args.json:
            print(f"{item.path}: " + "  ".join(f"{c} {p:6.1%}" for c, p in top))
    if args.json:
        print(json.dumps({"models": chosen, "predictions": records}, indent=2))
    return 1 if any("error" in r for r in records) else 0


def _build_run(sub: argparse._SubParsersAction) -> None:
    from letterbench.study import PRESETS

    run = sub.add_parser("run", help="the whole study: data, training, evaluation, report (resumable)")
    run.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="smoke (seconds), quick (CPU, < 20 min), paper (full recipes; GPU). "
        "Default: paper with a GPU, else quick",
    )
    run.add_argument("--models", help="comma-separated (default resnet18,densenet121,xception)")
    run.add_argument("--out", type=Path, default=Path("study"), help="study directory (default ./study)")
    run.add_argument("--device", default="auto")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--quiet", action="store_true")
    _add_data_dir(run)
    run.set_defaults(func=cmd_run)

    predict = sub.add_parser("predict", help="classify images of single handwritten letters")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.add_argument("--run", type=Path, required=True, help="a run directory, or a study directory")
    predict.add_argument("--model", help="which model of a study directory")
    predict.add_argument("--ensemble", action="store_true", help="average every finished model of the study")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.add_argument("--show-input", type=Path, metavar="DIR", help="save the 28x28 image each model saw")
    predict.add_argument("--device", default="auto")
    predict.set_defaults(func=cmd_predict)


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
    _build_evaluate(sub)
    _build_run(sub)
    return parser


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
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
