"""Time to accuracy on real data: how many seconds of training each model needs before it first
reaches a target accuracy on the official test images of classes a..l (test indices 0..9,599, all
in the partial EMNIST copy), with the study's recipe and in the large-batch mode, side by side.

    python bench/time_to_accuracy.py [--models resnet18,densenet121] [--targets 0.905,0.91]
        [--large-batch 1024] [--data-dir ../shared/data/emnist] [--device auto] [--lr LR]

Each run is a real ``letterbench train`` (``training.run.train``) into a temporary folder; after
every epoch an observer measures the accuracy on the a..l test slice and stops the run once the
target is reached. Training seconds are the engine's own per-epoch training time (validation,
checkpoints and this measurement excluded); wall seconds include everything. The test slice only
measures: nothing here chooses a setting from it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import a_to_l_slice, add_data_dir

from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.recipes import resolve_recipe
from letterbench.reporting.tables import format_table
from letterbench.runs.rundir import RunDir
from letterbench.training.observers import Observer
from letterbench.training.run import TrainOptions, train


class Reached(Exception):
    """Raised by the observer to end a run at its target."""


class TestSliceObserver(Observer):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, target: float):
        self.images, self.labels, self.target = images, labels, target
        self.train_seconds, self.curve = 0.0, []

    def on_epoch_end(self, trainer, record):
        self.train_seconds += record["train_time_s"]
        accuracy = trainer.evaluate(self.images, self.labels).accuracy
        self.curve.append((record["global_epoch"], self.train_seconds, accuracy))
        if accuracy >= self.target:
            raise Reached


def time_to(model: str, target: float, large_batch: int | None, args, runtime: Runtime, slice_) -> list:
    recipe = resolve_recipe(model, large_batch=large_batch, lr=args.lr)
    images, labels = (t.to(runtime.device) for t in slice_)
    observer = TestSliceObserver(images, labels, target)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        options = TrainOptions(args.data_dir, progress=False, observers=(observer,))
        try:
            train(recipe, RunDir(Path(tmp) / "run"), runtime, options)
            reached = False
        except Reached:
            reached = True
    wall = time.perf_counter() - start
    epoch, seconds, accuracy = observer.curve[-1]
    best = max(a for _, _, a in observer.curve)
    lr = recipe.phases[0].optimizer.lr
    mode = f"batch {recipe.batch_size}, LR {lr:g}" + (" (large-batch mode)" if large_batch else " (recipe)")
    outcome = f"{seconds:.1f} s" if reached else f"not reached (best {best:.2%})"
    return [model, mode, f"{target:.1%}", outcome, epoch, f"{accuracy:.2%}", f"{wall:.1f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="resnet18,densenet121")
    parser.add_argument("--targets", default="0.905,0.91", help="one per model")
    parser.add_argument("--large-batch", type=int, default=1024)
    add_data_dir(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--lr", type=float, help="every model's recipe peak LR (before the large-batch scaling)"
    )
    args = parser.parse_args()
    runtime = Runtime.create(args.device)
    data = load_emnist(args.data_dir)
    slice_ = a_to_l_slice(args.data_dir, data.test_images, data.test_labels)
    table = []
    for model, target in zip(
        args.models.split(","), [float(t) for t in args.targets.split(",")], strict=True
    ):
        for large_batch in (None, args.large_batch):
            table.append(time_to(model, target, large_batch, args, runtime, slice_))
            print(" | ".join(str(c) for c in table[-1]), flush=True)
    print(
        f"\ndevice: {runtime.name}; torch {torch.__version__}; real partial EMNIST Letters, test slice a..l"
    )
    header = ["model", "mode", "target", "training time to target", "epochs", "accuracy then", "wall"]
    print(format_table(header, table))


if __name__ == "__main__":
    main()
