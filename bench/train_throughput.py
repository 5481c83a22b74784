"""Training and inference throughput of letterbench's engine against a reference loop written
the usual way (a torchvision-style Dataset with per-sample transforms and a DataLoader), for the
same model, batch size, input size, augmentation and optimiser, side by side in one run.

    python bench/train_throughput.py [--models resnet18,densenet121,xception] [--batches 6] [--device auto]

Prints images/s for both and their ratio (engine / reference). Goals: >= 1.0x on CPU, >= 3x on a GPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from letterbench.evaluation import predict_probs
from letterbench.models import create_model
from letterbench.reporting.tables import format_table
from letterbench.training.distributed import choose_device
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.recipes import apply_overrides, load_recipe
from letterbench.training.run import device_name


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


def engine_train(model, images, labels, recipe, device, batches: int) -> float:
    n = recipe.batch_size * (batches + 1)
    data = TrainData(
        images[:n].to(device), labels[:n].to(device), images[:64].to(device), labels[:64].to(device)
    )
    recipe = apply_overrides(recipe, ["phases.0.schedule.name=constant", "phases.0.optimizer.name=sgd"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, model, data, Path(tmp), seed=0, device=device, progress=False)
        trainer._start_phase(0)
        trainer.train_epoch(recipe.phases[0])  # warm-up (and compilation of kernels on a GPU)
        stats, seconds = trainer.train_epoch(recipe.phases[0])
    return stats.count / seconds


def engine_infer(model, images, device) -> float:
    images = images.to(device)
    predict_probs(model, images[:256], device, batch_size=256)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    predict_probs(model, images, device, batch_size=256)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="resnet18,densenet121,xception")
    parser.add_argument("--batches", type=int, default=6, help="timed training batches per loop")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = choose_device(args.device)
    torch.manual_seed(0)
    rows = []
    for name in args.models.split(","):
        recipe = (
            load_recipe(name) if name in ("resnet18", "densenet121", "xception") else load_recipe("resnet18")
        )
        recipe = apply_overrides(recipe, [f"model={name}", "augment.shift=0.08"])
        n = recipe.batch_size * (args.batches + 2)
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
        labels = torch.randint(0, 26, (n,))
        torch.manual_seed(0)
        model = create_model(name).to(device)
        ref_train = reference_train(model, images, labels, recipe, device, args.batches)
        ours_train = engine_train(model, images, labels, recipe, device, args.batches)
        infer_images = images.repeat(max(1, 2048 // n + 1), 1, 1)[:2048] if device.type == "cuda" else images
        ref_infer = reference_infer(
            model, infer_images, labels.repeat(len(infer_images) // n + 1)[: len(infer_images)], device
        )
        ours_infer = engine_infer(model, infer_images, device)
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
        f"\ndevice: {device_name(device)}; batch = each recipe's; reference = Dataset + DataLoader "
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
