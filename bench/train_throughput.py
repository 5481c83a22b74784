"""Training and inference throughput of letterbench's engine against a reference loop written
the usual way (a torchvision-style Dataset with per-sample transforms and a DataLoader), for the
same model, batch size, input size, augmentation and optimiser, side by side in one run.

    python bench/train_throughput.py [--models resnet18,densenet121,xception] [--batches 6] [--device auto]

Prints images/s for both and their ratio (engine / reference). Goals: >= 1.0x on CPU, >= 3x on a GPU.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from letterbench.evaluation import predict_probs
from letterbench.models import create_model, model_names
from letterbench.reporting.tables import format_table
from letterbench.runtime import Runtime
from letterbench.training.recipes import resolve_recipe
from letterbench.training.throughput import measure_train_throughput


class LetterDataset(Dataset):
    """The usual way: one sample at a time, PIL-free tensor transforms per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i].unsqueeze(0)), self.labels[i]


def reference_transforms(spec, augment: dict | None):
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if augment:
        steps.append(
            v2.RandomAffine(
                degrees=augment["rotate"],
                scale=(1 - augment["zoom"], 1 + augment["zoom"]),
                translate=(augment["shift"], augment["shift"]),
            )
        )
    steps.append(v2.Resize((spec.size, spec.size), antialias=True))
    if spec.channels == 3:
        steps.append(v2.Lambda(lambda x: x.expand(3, -1, -1)))
    steps.append(v2.Normalize(spec.mean, spec.std))
    return v2.Compose(steps)


def reference_train(model, images, labels, recipe, device, batches: int) -> float:
    loader = DataLoader(
        LetterDataset(images, labels, reference_transforms(model.spec, recipe.augment)),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=min(4, os.cpu_count() or 1),
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=False,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    count, start = 0, None
    for step, (x, y) in enumerate(loader):
        if step == 1:  # the first batch pays for worker start-up: not counted
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start, count = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count += len(y)
        if step == batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


@torch.no_grad()
def reference_infer(model, images, labels, device, batch: int = 256) -> float:
    loader = DataLoader(
        LetterDataset(images, labels, reference_transforms(model.spec, None)),
        batch_size=batch,
        num_workers=min(4, os.cpu_count() or 1),
        pin_memory=device.type == "cuda",
    )
    model.eval()
    count, start = 0, None
    for step, (x, _) in enumerate(loader):
        if step == 1:
            start, count = time.perf_counter(), 0
        model(x.to(device, non_blocking=True))
        count += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def engine_infer(model, images, runtime) -> float:
    predict_probs(model, images[:256], runtime, batch_size=256)
    runtime.synchronize()
    start = time.perf_counter()
    predict_probs(model, images, runtime, batch_size=256)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--batches", type=int, default=6, help="timed training batches per loop")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    runtime = Runtime.create(args.device)
    device = runtime.device
    rows = []
    for name in args.models.split(","):
        # Same optimiser (SGD, constant LR) and augmentation for the engine and the reference.
        recipe = resolve_recipe(
            name,
            overrides=[
                "augment.shift=0.08",
                "phases.0.schedule.name=constant",
                'phases.0.optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9}',
            ],
        )
        n = recipe.batch_size * (args.batches + 2)
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
        labels = torch.randint(0, 26, (n,))
        torch.manual_seed(0)
        ref_model = create_model(name).to(device)  # a fresh model per loop: nothing leaks between them
        ref_train = reference_train(ref_model, images, labels, recipe, device, args.batches)
        ours_train = measure_train_throughput(recipe, runtime, args.batches, images, labels)
        infer_images = images.repeat(max(1, 2048 // n + 1), 1, 1)[:2048] if device.type == "cuda" else images
        ref_infer = reference_infer(
            create_model(name).to(device),
            infer_images,
            labels.repeat(len(infer_images) // n + 1)[: len(infer_images)],
            device,
        )
        ours_infer = engine_infer(create_model(name), infer_images, runtime)
        rows.append(
            [
                name,
                f"{ref_train:,.0f}",
                f"{ours_train:,.0f}",
                f"{ours_train / ref_train:.2f}x",
                f"{ref_infer:,.0f}",
                f"{ours_infer:,.0f}",
                f"{ours_infer / ref_infer:.2f}x",
            ]
        )
        print(
            f"{name}: train {ours_train:,.0f} vs {ref_train:,.0f} img/s, inference {ours_infer:,.0f} vs "
            f"{ref_infer:,.0f} img/s",
            flush=True,
        )
    print(
        f"\ndevice: {runtime.name}; batch = each recipe's; reference = Dataset + DataLoader "
        f"({min(4, os.cpu_count() or 1)} workers)"
    )
    print(
        format_table(
            [
                "model",
                "ref train img/s",
                "engine train img/s",
                "ratio",
                "ref infer img/s",
                "engine infer img/s",
                "ratio",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
