"""Training throughput of letterbench's engine against two references, side by side in one run,
like with like: the same model (a fresh instance per loop), batch, input size, precision (bf16
autocast on CUDA, float32 on a CPU), memory format (channels-last), optimiser (the recipe's, at a
constant LR), loss (with the recipe's label smoothing), augmentation and interpolation (bilinear).

- engine: ``Trainer.train_epoch``, the method a run uses (the batch stream, CUDA graphs on a GPU);
- loader: a DataLoader loop written the usual way: a Dataset with per-sample ``transforms.v2``,
  worker processes, pinned memory, AMP and channels-last;
- ceiling: the eager loop on one batch already on the device, no augmentation and no data
  movement: what the model's forward, backward and optimiser step cost without CUDA graphs.

    python bench/train_throughput.py [--models resnet18,densenet121,xception] [--batches recipe,1024]
        [--max-steps N] [--repeats 3] [--workers 8] [--device auto] [--no-cuda-graphs] [--inference]

Every loop warms up for one untimed window (20 steps on a GPU, 3 on a CPU), then times
``--repeats`` windows, each begun and ended by a device synchronisation: 20 steps on a CPU; on a
GPU as many steps as make about 0.75 s at the warm-up's rate (at least 20, at most --max-steps).
It prints the median img/s with the range of the repeats, and the ratios engine/loader and
engine/ceiling. Goals (issue 11): on a GPU, ResNet-18 at batch 64 at
least 25,000 img/s; at batch 1024 at least 0.8x the ceiling and 4x the loader; on the CPU at least
1.0x the loader. ``--inference`` adds predict_probabilities against a DataLoader inference loop (``--batches none``: only that).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision.transforms import InterpolationMode, v2

from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import predict_probabilities
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model, model_names
from letterbench.recipes import resolve_recipe
from letterbench.reporting.tables import format_table
from letterbench.runs.rundir import RunDir
from letterbench.training.optim import build_optimizer
from letterbench.training.throughput import engine_trainer

MIN_STEPS = 20  # per timed window
WINDOW_S = 0.75  # on a GPU, each timed window runs about this long
WARMUP_STEPS_CPU = 3


class LetterDataset(Dataset):
    """The usual way: one sample at a time, tensor transforms per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i].unsqueeze(0)), self.labels[i]


def reference_transforms(spec, augment: dict | None):
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if augment:
        slant = math.degrees(math.atan(augment.get("shear", 0.0)))
        steps.append(
            v2.RandomAffine(
                degrees=augment.get("rotate", 0.0),
                scale=(1 - augment.get("zoom", 0.0), 1 + augment.get("zoom", 0.0)),
                translate=(augment.get("shift", 0.0), augment.get("shift", 0.0)),
                shear=(-slant, slant, 0.0, 0.0) if slant else None,  # x only, as the engine's
                interpolation=InterpolationMode.BILINEAR,
            )
        )
    steps.append(v2.Resize((spec.size, spec.size), interpolation=InterpolationMode.BILINEAR, antialias=False))
    if spec.channels == 3:
        steps.append(v2.Lambda(lambda x: x.expand(3, -1, -1)))
    steps.append(v2.Normalize(spec.mean, spec.std))
    return v2.Compose(steps)


def fresh_model(recipe, runtime: Runtime):
    torch.manual_seed(0)
    return runtime.prepare_model(create_model(recipe.model, 26, dropout=recipe.dropout)).train()


def window_steps(rate: float, batch: int, gpu: bool, most: int) -> int:
    """Steps of a timed window: at least 20, and on a GPU enough for about ``WINDOW_S`` seconds at
    the rate the warm-up window showed (a short window on a fast loop is mostly noise)."""
    return max(MIN_STEPS, min(most, math.ceil(rate * WINDOW_S / batch))) if gpu else MIN_STEPS


def timed_windows(step, runtime: Runtime, batch: int, repeats: int, most: int) -> list[float]:
    """img/s of each of ``repeats`` windows of ``step`` calls, after one untimed warm-up window."""

    def window(steps: int) -> float:
        runtime.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runtime.synchronize()
        return steps * batch / (time.perf_counter() - start)

    gpu = runtime.device.type == "cuda"
    steps = window_steps(window(MIN_STEPS if gpu else WARMUP_STEPS_CPU), batch, gpu, most)
    return [window(steps) for _ in range(repeats)]


def training_step(model, recipe, runtime: Runtime):
    optimizer = build_optimizer(recipe.phases[0], list(model.parameters()), fused=runtime.fused_optimizer)

    def step(x, y):
        with runtime.autocast():
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def loader_loop(recipe, runtime: Runtime, images, labels, repeats, most, workers) -> list[float]:
    model = fresh_model(recipe, runtime)
    device, cuda, bs = runtime.device, runtime.device.type == "cuda", recipe.batch_size
    dataset = LetterDataset(images, labels, reference_transforms(model.spec, recipe.augment.model_dump()))
    sampler = RandomSampler(dataset, replacement=True, num_samples=bs * (MIN_STEPS + repeats * most + 2))
    loader = iter(
        DataLoader(
            dataset,
            batch_size=bs,
            sampler=sampler,
            num_workers=workers,
            pin_memory=cuda,
            drop_last=True,
            persistent_workers=workers > 0,
        )
    )
    step = training_step(model, recipe, runtime)
    memory = torch.channels_last if runtime.channels_last else torch.contiguous_format

    def one():
        x, y = next(loader)
        step(
            x.to(device, non_blocking=True).contiguous(memory_format=memory), y.to(device, non_blocking=True)
        )

    return timed_windows(one, runtime, bs, repeats, most)


def ceiling_loop(recipe, runtime: Runtime, images, labels, repeats, most) -> list[float]:
    model = fresh_model(recipe, runtime)
    x = Preprocess.on(runtime, model.spec)(images[: recipe.batch_size].to(runtime.device))
    y = labels[: recipe.batch_size].to(runtime.device)
    step = training_step(model, recipe, runtime)
    return timed_windows(lambda: step(x, y), runtime, recipe.batch_size, repeats, most)


def engine_loop(recipe, runtime: Runtime, images, labels, repeats, most) -> list[float]:
    """The engine's own ``train_epoch`` (its first N batches), timed from outside like the others:
    drawing the epoch's permutation and augmentation is inside the window."""
    torch.manual_seed(0)
    gpu = runtime.device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        trainer = engine_trainer(recipe, runtime, images, labels, RunDir(tmp))

        def window(steps: int) -> float:
            runtime.synchronize()
            start = time.perf_counter()
            stats, _ = trainer.train_epoch(max_steps=steps)  # ends waiting for the device
            return stats.count / (time.perf_counter() - start)

        steps = window_steps(window(MIN_STEPS if gpu else WARMUP_STEPS_CPU), recipe.batch_size, gpu, most)
        return [window(steps) for _ in range(repeats)]


def inference_rates(recipe, runtime: Runtime, images, labels, repeats, workers) -> tuple[list, list]:
    """predict_probabilities against a DataLoader inference loop, whole passes over ``images`` per window."""
    model = fresh_model(recipe, runtime).eval()
    batch, count = 256, len(images)
    loader = DataLoader(
        LetterDataset(images, labels, reference_transforms(model.spec, None)),
        batch_size=batch,
        num_workers=workers,
        pin_memory=runtime.device.type == "cuda",
        persistent_workers=workers > 0,
    )

    @torch.no_grad()
    def reference_pass():
        for x, _ in loader:
            with runtime.autocast():
                torch.softmax(model(x.to(runtime.device, non_blocking=True)).float(), 1).cpu()

    def passes(one_pass) -> list[float]:
        one_pass()  # warm-up
        times = []
        for _ in range(repeats):
            runtime.synchronize()
            start = time.perf_counter()
            one_pass()
            runtime.synchronize()
            times.append(count / (time.perf_counter() - start))
        return times

    return passes(lambda: predict_probabilities(model, images, runtime, batch_size=batch)), passes(
        reference_pass
    )


def rate(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.0f} ({min(samples):,.0f}-{max(samples):,.0f})"


def training_row(name: str, batch: str, runtime: Runtime, args) -> list:
    """One model at one batch size: the three loops on the same images, img/s and ratios."""
    overrides = ["phases.0.schedule.name=constant"] + ([] if batch == "recipe" else [f"batch_size={batch}"])
    recipe = resolve_recipe(name, overrides=overrides)
    bs, gpu = recipe.batch_size, runtime.device.type == "cuda"
    most = args.max_steps or (500 if bs <= 256 else 200) if gpu else MIN_STEPS
    n = bs * most  # every image the engine's longest window can use
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 26, (n,), generator=gen)
    per = {
        "engine": engine_loop(recipe, runtime, images, labels, args.repeats, most),
        "loader": loader_loop(recipe, runtime, images, labels, args.repeats, most, args.workers),
        "ceiling": ceiling_loop(recipe, runtime, images, labels, args.repeats, most),
    }
    med = {loop: statistics.median(v) for loop, v in per.items()}
    return [
        f"{name} @{create_model(name).spec.size}",
        bs,
        rate(per["engine"]),
        rate(per["loader"]),
        rate(per["ceiling"]),
        f"{med['engine'] / med['loader']:.2f}x",
        f"{med['engine'] / med['ceiling']:.2f}x",
    ]


def inference_row(name: str, runtime: Runtime, args) -> list:
    n = 4096 if runtime.device.type == "cuda" else 512
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    engine, loader = inference_rates(
        resolve_recipe(name), runtime, images, torch.zeros(n, dtype=torch.long), args.repeats, args.workers
    )
    return [name, rate(engine), rate(loader), f"{statistics.median(engine) / statistics.median(loader):.2f}x"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument(
        "--batches",
        help="comma-separated: recipe and/or sizes (default recipe; on a GPU recipe,1024); none: no training rows",
    )
    parser.add_argument(
        "--max-steps", type=int, help="longest timed window on a GPU (default 500 steps, 200 above batch 256)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-cuda-graphs", action="store_true")
    parser.add_argument("--inference", action="store_true")
    args = parser.parse_args()
    runtime = Runtime.create(args.device, cuda_graphs=not args.no_cuda_graphs)
    batches = (args.batches or ("recipe,1024" if runtime.device.type == "cuda" else "recipe")).split(",")
    batches = [b for b in batches if b != "none"]
    if not batches and not args.inference:
        parser.error("--batches none measures nothing without --inference")
    rows, infer_rows = [], []
    for name in args.models.split(","):
        for batch in batches:
            rows.append(training_row(name, batch, runtime, args))
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
        if args.inference:
            infer_rows.append(inference_row(name, runtime, args))
    print(
        f"\ndevice: {runtime.name}; torch {torch.__version__}; {runtime.describe()['precision']}, channels-last; "
        f"CUDA graphs {'on' if runtime.cuda_graphs else 'off'}; loader: {args.workers} workers; img/s as "
        f"median (range) of {args.repeats} timed windows after an untimed one"
    )
    header = ["model", "batch", "engine img/s", "loader img/s", "ceiling img/s", "engine/loader"]
    if rows:
        print(format_table(header + ["engine/ceiling"], rows))
    if infer_rows:
        print("\ninference, batch 256: predict_probabilities against a DataLoader loop")
        print(format_table(["model", "engine img/s", "loader img/s", "ratio"], infer_rows))


if __name__ == "__main__":
    main()
