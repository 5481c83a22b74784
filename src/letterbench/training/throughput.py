"""Measured training throughput of the engine itself, for time estimates and benchmarks.

It builds a ``Trainer`` on random images and times ``train_epoch()``, the same public method a run
uses, so the figure is the engine's, not a look-alike loop's.
"""

from __future__ import annotations

import tempfile

import torch

from letterbench.core.runtime import Runtime
from letterbench.models import create_model
from letterbench.recipes import Recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import TrainData, Trainer


def engine_trainer(
    recipe: Recipe, runtime: Runtime, images: torch.Tensor, labels: torch.Tensor, run: RunDir
) -> Trainer:
    """A trainer of ``recipe`` on the given images (no validation to speak of), phase 0 started."""
    model = create_model(recipe.model, 26, dropout=recipe.dropout)
    dev = runtime.device
    data = TrainData(images.to(dev), labels.to(dev), images[:64].to(dev), labels[:64].to(dev))
    trainer = Trainer(recipe, model, data, runtime, run)
    trainer.start_phase(0)
    return trainer


def measure_train_throughput(
    recipe: Recipe,
    runtime: Runtime,
    steps: int = 3,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> float:
    """Images per second of the engine's training epochs (augmentation, forward, backward, optimiser
    step and schedule, as the recipe says) on ``steps`` batches of the given uint8 28x28 images
    (random ones by default): one epoch warms up, the next one is timed."""
    n = recipe.batch_size * steps
    if images is None:
        images = torch.randint(
            0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        labels = torch.arange(n) % 26
    with tempfile.TemporaryDirectory() as tmp:
        trainer = engine_trainer(recipe, runtime, images[:n], labels[:n], RunDir(tmp))
        trainer.train_epoch()  # warm-up (and kernel selection or compilation on a GPU)
        stats, seconds = trainer.train_epoch()
    return stats.count / seconds
