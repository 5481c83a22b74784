"""One training step of a phase, as the engine runs it for every batch.

``forward_backward`` gathers and augments the batch (``BatchStream.inputs``), runs the forward
pass under the runtime's precision, the loss and the backward pass, and adds to the running sums;
``__call__`` then applies the optimiser update and the schedule. On a GPU the step is warmed up on
the epoch's batch shapes before any clock starts and, where the runtime allows (one GPU, no
``--compile``), its forward-backward is captured once as a CUDA graph and replayed for every full
batch (``graphs.py``); the epoch's shorter last batch runs eagerly, with the same maths.
"""

from __future__ import annotations

import warnings

import torch.nn.functional as F
from torch import nn

from letterbench.core.runtime import Runtime
from letterbench.training.bookkeeping import RunningSums
from letterbench.training.graphs import GraphedStep, warm_up
from letterbench.training.optim import Schedule
from letterbench.training.stream import Batch, BatchStream


class TrainStep:
    def __init__(
        self,
        net: nn.Module,
        model: nn.Module,
        optimizer,
        schedule: Schedule,
        stream: BatchStream,
        sums: RunningSums,
        runtime: Runtime,
        label_smoothing: float = 0.0,
        capture: bool = True,
    ):
        self.net, self.model, self.optimizer, self.schedule = net, model, optimizer, schedule
        self.stream, self.sums, self.rt, self.label_smoothing = stream, sums, runtime, label_smoothing
        self.graphed: GraphedStep | None = None
        if runtime.warms_up:
            self._prepare(capture and runtime.cuda_graphs)

    def _prepare(self, capture: bool) -> None:
        """Warm up on the epoch's batch shapes, then capture the graph; the run is left unchanged."""
        self.net.train()
        stream = self.stream
        sizes = sorted({stream.full_batch_size, stream.last_batch_size})
        examples = [stream.example(n) for n in sizes]
        warm_up(self.forward_backward, examples, self.model, self.optimizer, self.rt)
        if capture and stream.shard_size >= stream.batch_size:
            try:
                self.graphed = GraphedStep(
                    self.forward_backward, stream.example(), self.model, self.optimizer, self.rt
                )
            except RuntimeError as exc:  # an operation a graph cannot hold: train eagerly instead
                warnings.warn(
                    f"CUDA graph capture failed ({exc}); training this phase without graphs", stacklevel=2
                )
                self.optimizer.zero_grad(set_to_none=True)

    def forward_backward(self, batch: Batch) -> None:
        """Loss and gradients of one batch, added to the running sums; graph-safe."""
        x, y = self.stream.inputs(batch)
        with self.rt.autocast(cache=not self.rt.cuda_graphs):  # no cached casts across a capture
            logits = self.net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        loss.backward()
        self.sums.add(loss, logits, y)

    def __call__(self, batch: Batch) -> None:
        if self.graphed is not None and len(batch) == self.graphed.size:
            self.graphed(batch)
        else:  # gradients owned by a graph are zeroed in place, not dropped
            self.optimizer.zero_grad(set_to_none=self.graphed is None)
            self.forward_backward(batch)
        self.optimizer.step()
        self.schedule.after_batch()
