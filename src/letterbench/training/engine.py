"""The training engine: one loop for every model and recipe.

The whole dataset sits on the training device as uint8 and every batch comes from a
``BatchStream`` (``stream.py``): gathered by index, augmented, resized, channel-replicated and
normalised there in one batched operation. No Dataset, no DataLoader workers. On a GPU the step
(forward, backward, running sums) is a CUDA graph replayed per batch (``graphs.py``), nothing in an
epoch waits for the device (``bookkeeping.py``), and the optimiser update is one fused kernel.

The public, per-phase API (as torchvision's references have ``train_one_epoch`` / ``evaluate``):
``start_phase(i)``, ``train_epoch()``, ``evaluate(images, labels)``, ``recompute_bn_stats(n)``,
and ``fit()`` which runs every phase with its stopping rules. What the loop reports (console
lines, ``progress.json``, checkpoints, TensorBoard) is done by observers (``observers.py``).

Reproducibility: the seed fixes the validation split, the initial weights, and, through a
generator seeded per epoch, the shuffling and the augmentation of every epoch. Dropout draws from
the global RNG, whose state each checkpoint stores. Resuming from the checkpoint of epoch k
therefore repeats epochs k+1.. exactly as an uninterrupted run would.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from typing import Any

import torch
from torch import nn

from letterbench.core import timing
from letterbench.core.distributed import barrier
from letterbench.core.errors import TrainingError
from letterbench.core.runtime import Runtime
from letterbench.core.signals import sigterm_as_interrupt
from letterbench.images.transforms import Preprocess
from letterbench.models import LetterModel, set_trainable
from letterbench.models.base import check_trainable
from letterbench.recipes import Phase, Recipe
from letterbench.runs.records import EpochRecord
from letterbench.runs.rundir import RunDir
from letterbench.training.bookkeeping import EpochEnd, RunningSums, Snapshot, TrainData, TrainerState
from letterbench.training.observers import Observer, end_observers
from letterbench.training.optim import build_optimizer, build_scheduler
from letterbench.training.step import TrainStep
from letterbench.training.stream import BatchStream
from letterbench.training.validation import EpochStats, precise_bn, validate


class Trainer:
    """Trains one model through the phases of its recipe. ``run`` is where the checkpoints of the
    run live (read when resuming and when a phase starts from the previous phase's best weights);
    ``observers`` are told about every step of the loop (see ``observers.py``)."""

    def __init__(
        self,
        recipe: Recipe,
        model: LetterModel,
        data: TrainData,
        runtime: Runtime,
        run: RunDir,
        seed: int = 0,
        observers: list[Observer] | tuple[Observer, ...] = (),
        compile: bool = False,
        checkpoint_every: float = 0.0,
    ):
        self.recipe, self.data, self.rt, self.run = recipe, data, runtime, run
        # seconds between checkpoints (0: every epoch); a phase's last epoch is always checkpointed
        self.checkpoint_every, self.clock = checkpoint_every, time.monotonic
        self.checkpointed_at = self.clock()
        self.model = runtime.prepare_model(model)
        self.seed, self.compile = seed, compile
        self.stream = BatchStream(
            data.train_images,
            data.train_labels,
            Preprocess.on(runtime, self.model.spec),
            recipe.batch_size,
            recipe.augment,
            runtime.dist,
            data.mix(recipe.synthetic_share),
        )
        self.sums = RunningSums(runtime.device, asynchronous=runtime.asynchronous_sums)
        self.observers = list(observers)
        self.state = TrainerState()
        self._phase_best_weights: dict[str, torch.Tensor] | None = None  # this phase's best, on the CPU
        for phase in recipe.phases:  # last:N beyond the model's layers: refused before anything trains
            check_trainable(self.model, phase.trainable)
        # What each phase trains: a frozen base only makes sense when it holds pretrained features.
        self.phase_trainables = [
            p.trainable if self.model.pretrained != "none" else "all" for p in recipe.phases
        ]

    def _notify(self, hook: str, *args) -> None:
        for observer in self.observers:
            getattr(observer, hook)(self, *args)

    def substituted_phases(self) -> list[str]:
        return [
            p.name for p, t in zip(self.recipe.phases, self.phase_trainables, strict=True) if p.trainable != t
        ]

    # ------------------------------------------------------------ per phase

    def start_phase(self, index: int) -> None:
        """Set what trains in phase ``index``, build its optimiser and schedule, and on a GPU warm
        up (and capture) its step before any clock starts."""
        with timing.part("warm-up"):
            self._start_phase(index)

    def _start_phase(self, index: int) -> None:
        self.state.phase_index = index
        phase = self.recipe.phases[index]
        set_trainable(self.model, self.phase_trainables[index])
        params = [p for p in self.model.parameters() if p.requires_grad]
        net: nn.Module = self.model
        if self.rt.dist.enabled:
            # Re-wrapped per phase: DDP fixes the set of trained parameters when it is built.
            net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.rt.device.index] if self.rt.is_cuda else None
            )
        if self.compile:
            net = torch.compile(net)
        self.net = net
        self.optimizer = build_optimizer(phase, params, fused=self.rt.fused_optimizer)
        self.schedule = build_scheduler(phase, self.optimizer, self.steps_per_epoch())
        self.step = TrainStep(
            net,
            self.model,
            self.optimizer,
            self.schedule,
            self.stream,
            self.sums,
            self.rt,
            self.recipe.label_smoothing,
            capture=not self.compile,
        )

    @property
    def phase(self) -> Phase:
        return self.recipe.phases[self.state.phase_index]

    def steps_per_epoch(self) -> int:
        return self.stream.steps

    # ------------------------------------------------------------ loops

    def _epoch_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.state.global_epoch)

    def train_epoch(self, max_steps: int | None = None) -> tuple[EpochStats, float]:
        """One epoch of the current phase (its first ``max_steps`` batches, if given: benchmarks);
        returns its statistics and its training seconds."""
        self.net.train()
        plan = self.stream.epoch(self._epoch_generator())
        steps = len(plan) if max_steps is None else min(max_steps, len(plan))
        self.sums.zero()
        report_every = self.rt.progress_every
        self._notify("on_train_epoch_start", self.phase, steps)
        start = time.perf_counter()
        for step, batch in enumerate(itertools.islice(plan, steps), 1):
            self.step(batch)
            if step % report_every == 0:
                seen = self.sums.poll(step)
                if seen is not None:
                    self._check_finite(seen)
                    self._notify("on_train_steps", seen.step, seen.mean_loss)
        total = self.sums.totals(self.rt.dist, steps)  # the epoch's one wait for the device
        elapsed = time.perf_counter() - start
        self._check_finite(total)
        self._notify("on_train_steps", total.step, total.mean_loss)
        return EpochStats(total.mean_loss, total.correct / total.count, int(total.count)), elapsed

    def _check_finite(self, seen: Snapshot) -> None:
        if not math.isfinite(seen.loss_sum):
            raise TrainingError(
                f"training loss became non-finite ({seen.loss_sum}) in phase {self.phase.name!r}, "
                f"epoch {self.state.epoch_in_phase + 1}, by step {seen.step}; the last good checkpoint "
                f"({self.run.checkpoint('last')}) is kept. Resume it with a lower learning rate: "
                f"letterbench train --resume --out {self.run} --lr {self.phase.optimizer.lr / 10:g}"
            )

    def recompute_bn_stats(self, count: int) -> None:
        """Precise BN over the first ``count`` training images (``validation.precise_bn``)."""
        precise_bn(self.model, self.stream, self.rt, count)

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> EpochStats:
        """Mean cross-entropy and accuracy on ``images`` (``validation.validate``)."""
        stream = BatchStream(images, labels, self.stream.preprocess, batch_size, dist=self.rt.dist)
        return validate(self.model, stream, self.rt)

    # ------------------------------------------------------------ checkpoint contents

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly (``last``)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "trainer": dict(vars(self.state)),
            "rng": self.rt.rng_state(),
            "recipe": self.recipe.to_dict(),
            "seed": self.seed,
        }

    def weights_state(self) -> dict[str, Any]:
        """The weights alone, with where they come from (the best checkpoints)."""
        return {
            "model": self.model.state_dict(),
            "trainer": {"phase": self.phase.name, "global_epoch": self.state.global_epoch},
        }

    def resume(self, rebuild_schedule: bool = False) -> None:
        """Continue from the run's ``last`` checkpoint: weights, optimiser, schedule, RNG, history.
        With ``rebuild_schedule`` (the recipe's epochs or LR were changed on resume) the current
        phase goes on from its recipe LR over its remaining epochs instead (see ``_continue_schedule``)."""
        ckpt = self.run.load_weights_into(self.model, "last")
        self.state = TrainerState(**ckpt["trainer"])
        self.start_phase(self.state.phase_index)
        if ckpt.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        else:  # a finished run, continued with --epochs: its optimiser state was dropped at the end
            warnings.warn(
                "the optimiser's running state (momentum, Adam's moments) was dropped when this run "
                "finished (train and run keep it with --keep-optimizer-state): it starts afresh",
                stacklevel=2,
            )
        if rebuild_schedule:
            self._continue_schedule(ckpt["recipe"])
        else:
            self.schedule.load_state_dict(ckpt["scheduler"])
        self.rt.set_rng_state(ckpt["rng"])

    def _continue_schedule(self, trained: dict[str, Any]) -> None:
        """After ``--epochs`` / ``--lr`` on resume: the current phase restarts its schedule from the
        recipe's (new) LR, or the LR it had reached where only the epochs changed, over the steps it
        has left: a per-batch schedule (one-cycle, cosine) anneals along a cosine with no second
        warm-up; reduce-on-plateau starts afresh; constant stays constant."""
        s, phase = self.state, self.phase
        lrs = {round(float(g["lr"]), 12) for g in self.optimizer.param_groups}
        trained_lr = trained["phases"][s.phase_index]["optimizer"]["lr"]  # the recipe it trained with
        lr = phase.optimizer.lr if phase.optimizer.lr != trained_lr else max(lrs)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lr
        remaining = max(1, (phase.epochs - s.epoch_in_phase) * self.steps_per_epoch())
        if self.schedule.per_batch:
            self.schedule.main = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, remaining)
        self.schedule.warmup = None
        s.phase_done = s.epoch_in_phase >= phase.epochs
        s.bad_epochs = 0  # more epochs asked for: early stopping counts afresh

    # ------------------------------------------------------------ the run

    def fit(self, resume: bool = False, rebuild_schedule: bool = False) -> TrainerState:
        """Train every phase to its end or its early stop; Ctrl-C or SIGTERM ends it at the last
        finished epoch (status ``interrupted``), a non-finite loss or any other error with status
        ``failed``."""
        if resume:
            self.resume(rebuild_schedule)
        else:
            self.start_phase(0)
        self.rt.reset_peak_memory()
        self._notify("on_fit_start", resume)
        self._notify("on_phase_start", self.phase, resume)
        try:
            with sigterm_as_interrupt():
                while self.state.phase_index < len(self.recipe.phases):
                    if self.state.phase_done:
                        self._next_phase()
                    else:
                        self.run_epoch()
                self._notify("on_fit_end", "finished")  # its failure (the last write's) fails the run
        except KeyboardInterrupt:
            end_observers(self, "interrupted")
            raise
        except Exception:  # a non-finite loss, or any other error (an observer's, the device's)
            end_observers(self, "failed")
            raise
        return self.state

    def _next_phase(self) -> None:
        s = self.state
        s.phase_index += 1
        s.epoch_in_phase, s.phase_best, s.bad_epochs, s.phase_done = 0, math.inf, 0, False
        if s.phase_index < len(self.recipe.phases):
            # Continue from the best weights of the phase before, as a fine-tuning step should: kept
            # in memory since it was reached, or (after a resume) from its checkpoint.
            if self._phase_best_weights is not None:
                self.model.load_state_dict(self._phase_best_weights)
            else:
                self.run.load_weights_into(self.model, self.recipe.phases[s.phase_index - 1].name)
            self._phase_best_weights = None
            self.start_phase(s.phase_index)
            self._notify("on_phase_start", self.phase, False)

    def run_epoch(self) -> EpochRecord:
        """Train one epoch, validate, apply the schedule and stopping rules, tell the observers."""
        s, phase = self.state, self.phase
        with timing.part("training"), self.rt.measure_load() as load:
            train, train_time = self.train_epoch()
        with timing.part("precise BN"):
            self.recompute_bn_stats(self.recipe.precise_bn)
        with timing.part("validation"):
            val = self.evaluate(self.data.val_images, self.data.val_labels)
        lr = self.optimizer.param_groups[0]["lr"]
        self.schedule.after_epoch(val.loss)
        s.epoch_in_phase += 1
        s.global_epoch += 1
        s.phase_times[phase.name] = s.phase_times.get(phase.name, 0.0) + train_time
        s.peak_memory = self.rt.peak_memory(s.peak_memory)
        end = self._apply_stopping_rules(phase, val.loss)
        end.checkpoint = self._checkpoint_due()
        fields = dict(phase=phase.name, epoch=s.epoch_in_phase, global_epoch=s.global_epoch)
        fields |= dict(
            train_loss=train.loss, train_acc=train.accuracy, val_loss=val.loss, val_acc=val.accuracy
        )
        fields |= dict(lr=lr, images_per_s=train.count / train_time, train_time_s=train_time)
        fields |= dict(other_cpu_cores=load.other_cpu_cores, trainable=self.phase_trainables[s.phase_index])
        # built, not checked: a non-finite loss is the engine's to report (``_check_finite``)
        end.record = EpochRecord.model_construct(**fields, **({"early_stop": True} if end.early_stop else {}))
        s.history.append(end.record.to_json())
        if end.new_phase_best:
            self._phase_best_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        self._notify("on_epoch_end", end)
        barrier(self.rt.dist)  # other ranks read the phase's best weights when the next phase starts
        return end.record

    def _checkpoint_due(self) -> bool:
        """Whether this epoch is checkpointed: every epoch, or with ``checkpoint_every`` once that
        many seconds have passed since the last checkpoint, and always at a phase's end. An epoch
        not checkpointed is trained again after a kill, from the checkpoint before it, to the
        same weights (its random state and batches come from that checkpoint)."""
        now = self.clock()
        if self.state.phase_done or now - self.checkpointed_at >= self.checkpoint_every:
            self.checkpointed_at = now
            return True
        return False

    def _apply_stopping_rules(self, phase: Phase, val_loss: float) -> EpochEnd:
        s = self.state
        stopping = phase.early_stopping
        improved = val_loss < s.phase_best - (stopping.min_delta if stopping else 0.0)
        end = EpochEnd(new_phase_best=val_loss < s.phase_best, new_best=val_loss < s.best_val_loss)
        s.phase_best = min(s.phase_best, val_loss)
        s.best_val_loss = min(s.best_val_loss, val_loss)
        s.bad_epochs = 0 if improved else s.bad_epochs + 1
        end.early_stop = stopping is not None and s.bad_epochs >= stopping.patience
        s.phase_done = end.early_stop or s.epoch_in_phase >= phase.epochs
        return end
