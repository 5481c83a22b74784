"""The training step, and evaluation's forward pass, as CUDA graphs: captured once, replayed for
every full batch.

At the recipes' batch sizes a GPU spends most of a step waiting for the host to launch a few
hundred small kernels. A CUDA graph records the step's kernels once (gathering and augmenting the
batch, forward, loss, backward, the running loss and accuracy sums) and replays them with one
launch. The batch's indices, affine matrices and style parameters are copied into static buffers the graph reads,
from tensors already on the device, so a replay needs nothing from the host.

The optimiser step and the LR schedule stay outside the graph: schedules change Python numbers
every step (one-cycle's LR and momentum, reduce-on-plateau's LR) that a captured step would freeze,
and the fused optimiser step is a single kernel launch, so little is lost and the maths is exactly
that of an eager step. Gradients live in the graph's memory: each replay writes them afresh; an
eager step (the epoch's last, shorter batch) zeroes them in place and accumulates into them.

Warm-up and capture must not change the run: BatchNorm buffers and the CUDA RNG are restored
afterwards, so a run gives the same numbers with graphs on or off (up to cuDNN's own nondeterminism).

(The eval-mode forward pass of evaluation and prediction is graphed the same way, by
``letterbench.evaluation.inference``.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from letterbench.core.cuda_graphs import capture
from letterbench.core.runtime import Runtime
from letterbench.training.stream import Batch


@contextlib.contextmanager
def state_kept(model: nn.Module, runtime: Runtime) -> Iterator[None]:
    """Run warm-up steps without changing the run: the model's buffers (BatchNorm statistics and
    counters) and the RNG are put back as they were."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    rng = runtime.rng_state()
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        runtime.set_rng_state(rng)


def warm_up(
    step: Callable[[Batch], None], batches: list[Batch], model: nn.Module, optimizer, runtime: Runtime
) -> None:
    """Run ``step`` (forward and backward, no optimiser step) on each example batch, leaving the
    run as it was, so that cuDNN's algorithm search and the allocator's growth happen before the
    clock starts instead of in the first epoch."""
    with state_kept(model, runtime):
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            step(batch)
        optimizer.zero_grad(set_to_none=True)


class GraphedStep:
    """``step`` (forward, loss, backward and sums for one batch; no optimiser step) captured for
    batches the size of ``example``. Call it with a batch of that size to replay the graph."""

    def __init__(
        self, step: Callable[[Batch], None], example: Batch, model: nn.Module, optimizer, runtime: Runtime
    ):
        device = self.device = example.index.device
        self.runtime = runtime
        self.size = len(example)
        self.static = Batch(
            *(None if t is None else t.clone() for t in (example.index, example.theta, example.style))
        )
        with state_kept(model, runtime):  # the graph allocates the gradients it writes
            self.graph, _ = capture(
                lambda: step(self.static), device, before_each=lambda: optimizer.zero_grad(set_to_none=True)
            )

    def __call__(self, batch: Batch) -> None:
        with torch.cuda.device(self.device):
            self.static.index.copy_(batch.index, non_blocking=True)
            if self.static.theta is not None:
                self.static.theta.copy_(batch.theta, non_blocking=True)
            if self.static.style is not None:
                self.static.style.copy_(batch.style, non_blocking=True)
            self.graph.replay()
