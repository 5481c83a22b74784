"""Measured training throughput of the engine's own code path, for estimates and benchmarks."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from letterbench.models import create_model
from letterbench.training.distributed import choose_device
from letterbench.transforms import prepare_batch, to_channels_last

AUGMENT = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08}


def measure_train_throughput(
    model_name: str, batch_size: int = 128, device: str = "auto", steps: int = 5, warmup: int = 1
) -> float:
    """Images per second of full training steps (augment + forward + backward + SGD step) on random data."""
    dev = choose_device(device)
    cuda = dev.type == "cuda"
    model = create_model(model_name).to(dev).train()
    to_channels_last(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randint(0, 256, (batch_size, 28, 28), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 26, (batch_size,), device=dev)
    gen = torch.Generator().manual_seed(0)
    for step in range(warmup + steps):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
        x = prepare_batch(images, model.spec, AUGMENT, gen)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize(dev)
    return steps * batch_size / (time.perf_counter() - start)
