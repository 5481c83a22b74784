"""Recipe variants side by side, several seeds each: the way to choose a recipe setting on
validation data (and on our real-world set) with the seed-to-seed noise in view.

    python bench/recipe_sweep.py --variant base= --variant lr0.1=phases.0.optimizer.lr=0.1 \
        [--variant NAME=KEY=VALUE[,KEY=VALUE...]] [--model resnet18] [--train-per-class 300]
        [--epochs 8] [--seeds 0,1,2] [--data-dir ../shared/data/emnist] [--set bench/real-world]
        [--prepared FILE.npz] [--device auto]

Every variant and seed is a real ``letterbench train`` (``training.run.train``) with the recipe's
``--set`` overrides, as ``letterbench train --model M --train-per-class N --epochs E --seed S --set
KEY=VALUE`` would run it. A seed draws the training subset, the validation split and the
initialisation, so seeds differ in data too. Each trained model is scored on its validation split
(what chooses), the EMNIST test images of the data folder, and our real-world set prepared as
``letterbench predict`` prepares it (``--prepared`` caches that preparation: it takes about 80 ms an
image; the cache is redone when the set or the preparation's code changes). Printed: a line per run
as it ends, then per variant the mean and standard deviation over the seeds, each variant's mean
paired difference from the first variant (same seeds) and in how many seeds it was better.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, add_data_dir

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.data.splits import make_split
from letterbench.evaluation.inference import predict_logits
from letterbench.evaluation.real_world import labelled_images, load_real_world
from letterbench.recipes import resolve_recipe
from letterbench.reporting.tables import format_table
from letterbench.runs.rundir import RunDir
from letterbench.runs.trained import trained_model
from letterbench.training.run import TrainOptions, train

METRICS = ("val", "test", "rw_top1", "rw_top3")


def parse_variants(texts: list[str]) -> dict[str, list[str]]:
    """NAME=KEY=VALUE[,KEY=VALUE...] each; a name given again adds its settings to the variant's
    (a value with a comma in it followed by KEY= needs a --variant of its own)."""
    variants: dict[str, list[str]] = {}
    for text in texts:
        name, _, sets = text.partition("=")
        if not name:
            sys.exit(
                f"--variant {text!r}: give NAME=KEY=VALUE[,KEY=VALUE...] (NAME= for the recipe as it is)"
            )
        variants.setdefault(name, []).extend(s for s in re.split(r",(?=[A-Za-z_][\w.]*=)", sets) if s)
    return variants


def preparation_key(folder: Path) -> str:
    """What the prepared images depend on: the set's images and labels, and the preparation's code."""
    digest = hashlib.sha256()
    for path, label in labelled_images(folder):
        digest.update(f"{path.resolve().relative_to(folder.resolve())}={label};".encode())
    import letterbench.images.letters as letters
    import letterbench.images.lighting as lighting
    import letterbench.images.shape as shape

    for module in (letters, lighting, shape):  # wherever the package is installed from
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def real_world_set(folder: Path, cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prepared images, which were prepared, labels 0..25), from ``cache`` where it holds them
    for this set and this preparation."""
    try:
        key = preparation_key(folder)
        if cache is not None and cache.exists():
            saved = np.load(cache)
            if str(saved["key"]) == key:
                return saved["images"], saved["ok"], saved["labels"]
        found = load_real_world(folder)
    except LetterbenchError as exc:
        sys.exit(f"{exc} (build the project's set with bench/sets/make_real_world.py; see its --help)")
    images, ok, labels = found.images.numpy(), found.readable, found.labels
    if cache is not None:
        np.savez_compressed(cache, images=images, ok=ok, labels=labels, key=key)
    return images, ok, labels


def topk(logits: torch.Tensor, labels: np.ndarray, k: int, ok: np.ndarray | None = None) -> float:
    ranked = logits.topk(k, dim=1).indices.numpy()
    hit = (ranked == labels[:, None]).any(1)
    return float((hit & ok).mean() if ok is not None else hit.mean())


def one_run(name, overrides, seed, args, runtime, data, real_world, folder: Path) -> dict:
    recipe = resolve_recipe(args.model, epochs=args.epochs, overrides=overrides)
    options = TrainOptions(args.data_dir, seed=seed, train_per_class=args.train_per_class, progress=False)
    start = time.perf_counter()
    run = train(recipe, RunDir(folder / f"{name}-seed{seed}"), runtime, options)
    seconds = time.perf_counter() - start
    model, _ = trained_model(run)
    shutil.rmtree(run.path)  # the sweep's own temporary run: only its scores are kept
    split = make_split(data, recipe.val_fraction, seed, args.train_per_class)

    def logits(images) -> torch.Tensor:
        return predict_logits(model, torch.as_tensor(images), runtime).float().cpu()

    images, ok, labels = real_world
    rw = logits(images)
    return {
        "val": topk(logits(data.train_images[split.val]), data.train_labels[split.val].numpy(), 1),
        "test": topk(logits(data.test_images), data.test_labels.numpy(), 1),
        "rw_top1": topk(rw, labels, 1, ok),
        "rw_top3": topk(rw, labels, 3, ok),
        "seconds": seconds,
    }


def summary(results: dict[str, dict[int, dict]]) -> list[list]:
    first = next(iter(results.values()))
    rows = []
    for name, by_seed in results.items():
        row = [name, len(by_seed)]
        for metric in METRICS:
            values = [100 * r[metric] for r in by_seed.values()]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            diffs = [100 * (r[metric] - first[s][metric]) for s, r in by_seed.items() if s in first]
            better = sum(d > 0 for d in diffs)
            paired = f"{statistics.mean(diffs):+.2f}, {better} of {len(diffs)} better"
            row.append(f"{statistics.mean(values):.2f} ± {sd:.2f} ({paired})")
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE[,KEY=VALUE...]")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2")
    add_data_dir(parser)
    parser.add_argument("--set", type=Path, default=REPO / "bench" / "real-world", dest="set_dir")
    parser.add_argument("--prepared", type=Path, help="cache of the set's prepared images (.npz)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    variants = parse_variants(args.variant)
    seeds = [int(s) for s in args.seeds.split(",")]
    runtime = Runtime.create(args.device)
    data = load_emnist(args.data_dir)
    real_world = real_world_set(args.set_dir, args.prepared)
    results: dict[str, dict[int, dict]] = {name: {} for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:  # seed-major: a cut-short sweep still compares every variant
            for name, overrides in variants.items():
                r = one_run(name, overrides, seed, args, runtime, data, real_world, Path(tmp))
                results[name][seed] = r
                print(
                    f"{name} seed {seed}: val {r['val']:.2%} test {r['test']:.2%} real-world "
                    f"{r['rw_top1']:.2%} / {r['rw_top3']:.2%} ({r['seconds']:.1f} s)",
                    flush=True,
                )
    print(
        f"\n{args.model}, {args.train_per_class} images per class, {args.epochs} epochs, seeds {args.seeds}; "
        f"device {runtime.name}; torch {torch.__version__}; EMNIST test: {len(data.test_labels)} images of "
        f"{args.data_dir}; real-world: {len(real_world[2])} images. Mean ± sd over seeds (mean paired "
        f"difference from {next(iter(variants))}, seeds better than it), %"
    )
    for name, overrides in variants.items():
        print(f"  {name}: {' '.join('--set ' + o for o in overrides) or 'the recipe as it is'}")
    print(
        format_table(
            ["variant", "seeds", "validation", "EMNIST test", "real-world top-1", "top-3"], summary(results)
        )
    )


if __name__ == "__main__":
    main()
