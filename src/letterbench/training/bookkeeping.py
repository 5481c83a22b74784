"""An epoch's running loss and accuracy, kept on the device without stalling it.

The sums (loss, correct, count) are added to on the device every step, inside a captured CUDA
graph too. Reading them would make the host wait for the GPU, so on a GPU ``poll()`` starts a
non-blocking copy into pinned memory and returns the copy it started last time, once that copy has
arrived: the progress bar and the non-finite-loss check see figures a few steps old, and the queue
never drains. On the CPU there is nothing to wait for and ``poll()`` reads the sums as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from letterbench.core.distributed import DistInfo, all_reduce_sum
from letterbench.core.errors import TrainingError
from letterbench.runs.records import EpochRecord
from letterbench.training.stream import Mix


@dataclass
class Snapshot:
    step: int  # steps done when the sums were read
    loss_sum: float
    correct: float
    count: float

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.count, 1.0)


class RunningSums:
    def __init__(self, device: torch.device, asynchronous: bool = False):
        self.device = device
        self.sums = torch.zeros(3, device=device, dtype=torch.float64)
        self.asynchronous = asynchronous  # ``Runtime.asynchronous_sums``
        self._pinned = torch.zeros(3, dtype=torch.float64, pin_memory=True) if self.asynchronous else None
        self._pending: tuple[int, torch.cuda.Event] | None = None

    def zero(self) -> None:
        self.sums.zero_()
        self._pending = None

    @torch.no_grad()
    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch (its mean loss, logits and labels); graph-safe, no host sync."""
        n = len(labels)
        self.sums[0] += loss.detach().double() * n
        self.sums[1] += (logits.argmax(1) == labels).sum()
        self.sums[2] += n

    def poll(self, step: int) -> Snapshot | None:
        """The newest sums the host can read without waiting (see the module's note)."""
        if not self.asynchronous:
            return Snapshot(step, *self.sums.tolist())
        ready = None
        if self._pending is not None:
            done_step, event = self._pending
            if not event.query():
                return None
            ready = Snapshot(done_step, *self._pinned.tolist())
        self._pinned.copy_(self.sums, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending = (step, event)
        return ready

    def totals(self, dist: DistInfo, step: int) -> Snapshot:
        """The epoch's sums over every rank (waits for the device: once per epoch)."""
        self._pending = None
        return Snapshot(step, *all_reduce_sum(self.sums.clone(), dist).tolist())


@dataclass
class EpochEnd:
    """What the observers hear after an epoch: its record (as progress.json's history keeps it),
    whether its weights are the phase's or the run's best so far, and whether early stopping ended
    the phase there."""

    new_phase_best: bool
    new_best: bool
    early_stop: bool = False
    record: EpochRecord | None = None
    checkpoint: bool = True  # written now (with its progress), or held until a later checkpoint


@dataclass
class TrainData:
    """Train and validation images (uint8, N x 28 x 28) and labels, on the training device."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    # letters from beyond EMNIST that the recipe's ``data.synthetic`` share of each batch is drawn from
    synthetic_images: torch.Tensor | None = None
    synthetic_labels: torch.Tensor | None = None

    def mix(self, share: float) -> Mix | None:
        """The extra letters as the stream mixes ``share`` of every batch from them (None: none)."""
        if not share:
            return None
        if self.synthetic_images is None:
            raise TrainingError("the recipe mixes in synthetic letters, but none were drawn for this run")
        return Mix(self.synthetic_images, self.synthetic_labels, share)


@dataclass
class TrainerState:
    phase_index: int = 0
    epoch_in_phase: int = 0  # epochs finished in the current phase
    global_epoch: int = 0  # epochs finished in the whole run
    phase_best: float = math.inf
    bad_epochs: int = 0
    phase_done: bool = False
    best_val_loss: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    phase_times: dict[str, float] = field(default_factory=dict)
    peak_memory: dict[str, Any] = field(default_factory=dict)  # {"bytes": int, "kind": str}
