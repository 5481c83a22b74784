"""One CUDA-graph capture, for the training step (``training.graphs``) and the eval-mode forward
pass (``evaluation.inference``): warmed up on a side stream, then recorded once, to be replayed
with one launch for every batch of the same size."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

WARMUP_STEPS = 3  # eager calls on a side stream before capture (cuDNN autotuning, allocator growth)

T = TypeVar("T")


def capture(
    work: Callable[[], T], device: torch.device, before_each: Callable[[], None] | None = None
) -> tuple[torch.cuda.CUDAGraph, T]:
    """``work`` captured as a CUDA graph on ``device``, and what the captured call returned (its
    tensors are the graph's output buffers, rewritten by every replay). ``work`` first runs
    ``WARMUP_STEPS`` times on a side stream; ``before_each`` runs before every call, the captured
    one included, outside the graph's kernels (a training step's ``zero_grad(set_to_none=True)``,
    so that the graph allocates the gradients it writes)."""
    prepare = before_each or (lambda: None)
    with torch.cuda.device(device):  # capture on the GPU the model is on (cuda:1 is not current)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                prepare()
                work()
        torch.cuda.current_stream(device).wait_stream(side)
        prepare()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = work()
    return graph, out
