"""Real-data check: `letterbench train --model resnet18` with its default recipe on the partial
EMNIST copy, then accuracy on the official test images of classes a..l (test indices 0..9,599,
all present in the partial copy).

    python bench/real_subset.py [--data-dir ../shared/data/emnist] [--out runs/real-subset] [--epochs N]

Prints the accuracy, the epochs trained and the wall-clock minutes. Goal: >= 90% within 12 epochs.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from common import REPO, a_to_l_slice, add_data_dir

from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import predict_probabilities
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir, default_run_dir
from letterbench.runs.trained import run_data, untrained_model
from letterbench.training.run import TrainOptions, train


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_dir(parser)
    parser.add_argument("--out", type=Path, default=REPO / default_run_dir("real-subset").path)
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    args = parser.parse_args()

    recipe = resolve_recipe("resnet18", epochs=args.epochs, overrides=args.set)
    run = RunDir(args.out)
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    runtime = Runtime.create("auto")
    start = time.perf_counter()
    train(recipe, run, runtime, TrainOptions(args.data_dir), resume=run.has_checkpoint("last"))
    minutes = (time.perf_counter() - start) / 60

    data = run_data(run, args.data_dir)
    images, labels = a_to_l_slice(args.data_dir, data.test_images, data.test_labels)
    model = untrained_model(run)
    run.load_weights_into(model, "best")
    probs = torch.from_numpy(predict_probabilities(model, images, runtime))
    accuracy = (probs.argmax(1) == labels).float().mean().item()
    history = run.read_progress().to_json()["history"]
    train_minutes = sum(h["train_time_s"] for h in history) / 60
    print(
        f"resnet18 default recipe: test accuracy on classes a..l (official test indices 0..9599): "
        f"{accuracy:.2%}; {len(history)} epochs, {train_minutes:.1f} min training, "
        f"{minutes:.1f} min this invocation; {torch.get_num_threads()} CPU threads"
    )


if __name__ == "__main__":
    main()
