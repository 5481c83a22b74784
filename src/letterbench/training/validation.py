"""What the trainer measures between epochs: precise BatchNorm statistics, and the loss and
accuracy on the validation images (the same under DDP as in one process)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from letterbench.core.distributed import all_reduce_sum
from letterbench.core.runtime import Runtime
from letterbench.training.stream import BatchStream


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    count: int


@torch.no_grad()
def precise_bn(model: nn.Module, stream: BatchStream, runtime: Runtime, count: int) -> None:
    """Replace the running statistics of the trained BatchNorm layers by exact averages over the
    first ``count`` training images, computed with the weights as they are now ("precise BN").

    The usual running averages lag behind weights that still move fast (a network trained from
    scratch for few epochs): evaluation then normalises with stale statistics and can collapse to
    one class while the training accuracy climbs. Only the base runs (no dropout, no RNG draw), on
    unaugmented images, so the result is deterministic.
    """
    layers = [
        m
        for m in model.base.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(p.requires_grad for p in m.parameters())
    ]
    if count <= 0 or not layers:
        return
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for x, _ in stream.in_order(count):
        with runtime.inference_autocast():
            model.base(x)
    for m, momentum in zip(layers, momenta, strict=True):
        m.momentum = momentum


@torch.no_grad()
def validate(model: nn.Module, stream: BatchStream, runtime: Runtime) -> EpochStats:
    """Mean cross-entropy and accuracy over ``stream``'s images in order; under DDP each rank
    takes every world-th image and the sums are reduced, so the result equals a single process's
    on the same weights."""
    model.eval()
    sums = torch.zeros(3, device=runtime.device, dtype=torch.float64)
    for x, y in stream.in_order(shard=True):
        with runtime.inference_autocast():
            logits = model(x).float()
        sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
        sums[1] += (logits.argmax(1) == y).sum()
        sums[2] += len(y)
    loss_sum, correct, count = all_reduce_sum(sums, runtime.dist).tolist()
    return EpochStats(loss_sum / max(count, 1), correct / max(count, 1), int(count))
