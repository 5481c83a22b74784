"""Observers of the training loop: everything the loop reports goes through a few named hooks.

The trainer calls, in order: ``on_fit_start``, then per phase ``on_phase_start``, per epoch
``on_train_epoch_start``, ``on_train_steps`` (now and then, with the running loss), and
``on_epoch_end`` (with the epoch's record), and finally ``on_fit_end`` with the run's status.
Checkpoints, the progress file, the console lines and TensorBoard are observers; a caller adds
its own by subclassing ``Observer`` (only the hooks it needs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from tqdm import tqdm

from letterbench.core import timing
from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import BackgroundWriter
from letterbench.core.progress import duration
from letterbench.runs.records import RunProgress
from letterbench.runs.rundir import RunDir

if TYPE_CHECKING:
    from letterbench.recipes import Phase, Recipe
    from letterbench.training.bookkeeping import EpochEnd


class Trainer(Protocol):
    """What an observer reads of the trainer it watches (``engine.Trainer`` is the one)."""

    recipe: Recipe
    state: Any  # engine.TrainerState
    observers: list[Observer]

    def checkpoint_state(self) -> dict[str, Any]: ...

    def weights_state(self) -> dict[str, Any]: ...


class Observer:
    """Base class: every hook does nothing."""

    def on_fit_start(self, trainer: Trainer, resumed: bool) -> None: ...

    def on_phase_start(self, trainer: Trainer, phase: Phase, resumed: bool) -> None: ...

    def on_train_epoch_start(self, trainer: Trainer, phase: Phase, steps: int) -> None: ...

    def on_train_steps(self, trainer: Trainer, done: int, mean_loss: float) -> None: ...

    def on_epoch_end(self, trainer: Trainer, end: EpochEnd) -> None: ...

    def on_fit_end(self, trainer: Trainer, status: str) -> None: ...


def cpu_copy(obj: Any) -> Any:
    """``obj`` with every tensor copied to the CPU: a snapshot training can no longer change."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(cpu_copy(v) for v in obj)
    return obj


class CheckpointObserver(Observer):
    """``last`` after every checkpointed epoch (every epoch, or by time: ``Trainer.checkpoint_every``)
    and at a phase change; ``best`` and the phase's best on a new lowest validation loss, written
    with the checkpoint that follows it (a best reached in between is held in memory until then).
    Everything needed to continue the run exactly is in ``last``.

    The state is snapshotted to the CPU at once and written by a ``BackgroundWriter`` while the next
    epoch trains (shared with the progress file, so ``progress.json`` never counts an epoch whose
    checkpoint is not on disk); the weights of a new best are serialised once for both files."""

    def __init__(self, run: RunDir, writer: BackgroundWriter | None = None, keep_optimizer: bool = False):
        self.run, self.writer, self.owns_writer = run, writer or BackgroundWriter(), writer is None
        self.keep_optimizer = keep_optimizer  # else a finished run's ``last`` drops the optimiser state
        self.epochs_seen = 0
        self.held: dict[str, dict[str, Any]] = {}  # best weights reached since the last checkpoint
        self.saved_epoch: int | None = None  # the run's epoch the last checkpoint written here holds

    def _save(self, which: list[str], snapshot: dict[str, Any]) -> None:
        self.writer.submit(lambda: self.run.save_checkpoint(which, snapshot))

    def on_phase_start(self, trainer, phase, resumed):
        self.writer.flush()  # the phase before is on disk before the next one starts
        if self.saved_epoch is None:  # the epoch on disk as the run starts here (0, or the resumed one)
            self.saved_epoch = trainer.state.global_epoch
        if not resumed and trainer.state.phase_index > 0:
            self._save(["last"], cpu_copy(trainer.checkpoint_state()))

    def on_epoch_end(self, trainer, end):
        best = [name for name, new in ((end.record.phase, end.new_phase_best), ("best", end.new_best)) if new]
        if not end.checkpoint:
            if best:  # held on the CPU until the next checkpoint writes it
                weights = cpu_copy(trainer.weights_state())
                self.held.update(dict.fromkeys(best, weights))
            return
        last = cpu_copy(trainer.checkpoint_state())  # the weights are copied once, for every file
        s = trainer.state
        self.epochs_seen += 1
        if s.phase_done and s.phase_index == len(trainer.recipe.phases) - 1 and not self.keep_optimizer:
            last["optimizer"] = None  # the run's last epoch: what later commands need, no more
        for name in [n for n in self.held if n not in best]:
            self._save([name], self.held[name])
        self.held = {}
        if best:
            self._save(best, {**trainer.weights_state(), "model": last["model"]})
        self._save(["last"], last)
        self.saved_epoch = s.global_epoch

    def on_fit_end(self, trainer, status):
        lost = trainer.state.global_epoch - (self.saved_epoch or 0)
        if status == "interrupted" and lost > 0:
            since = (
                f"since epoch {self.saved_epoch}'s checkpoint"
                if self.saved_epoch
                else "before the first checkpoint"
            )
            print(
                f"letterbench: warning: {lost} finished epoch{'s' * (lost != 1)} {since} "
                f"{'were' if lost != 1 else 'was'} not saved (a checkpoint every {trainer.checkpoint_every:g} s); "
                "resuming trains them again",
                file=sys.stderr,
            )
        if status == "finished" and not self.keep_optimizer and not self.epochs_seen:
            # finished without an epoch here (resumed after its last one): drop it from the file
            self.writer.submit(self.run.drop_optimizer_state)
        if self.owns_writer:  # a shared writer is flushed by the progress file, written last
            self.writer.flush()


def end_observers(trainer: Trainer, status: str) -> None:
    """Every observer's ``on_fit_end`` after Ctrl-C or an error, so that queued writes end before
    the run lets go of its folder. An observer failing here is reported, not raised: the error
    that ended the run is the one its user sees (a second Ctrl-C is raised once all are told)."""
    interrupt = None
    for observer in trainer.observers:
        try:
            observer.on_fit_end(trainer, status)
        except KeyboardInterrupt as exc:
            interrupt = interrupt or exc
        except Exception as exc:
            name = type(observer).__name__
            print(f"letterbench: warning: {name} could not record the {status} run: {exc}", file=sys.stderr)
    if interrupt is not None:
        raise interrupt


class ProgressObserver(Observer):
    """``progress.json``: status, phase, epochs done, time per phase, peak memory, history. A run
    ended by an error or Ctrl-C keeps the count last written, whose checkpoint is on disk."""

    def __init__(self, run: RunDir, writer: BackgroundWriter | None = None):
        self.run, self.writer = run, writer or BackgroundWriter()
        self.counted: RunProgress | None = None  # what progress.json says
        self.spent_before: dict[str, float] = {}  # the run's time budget from commands before this one

    def _progress(self, trainer: Trainer, status: str) -> RunProgress:
        s = trainer.state
        phases = trainer.recipe.phases
        return RunProgress.built(
            [dict(r) for r in s.history],
            time_budget=timing.merged(self.spent_before, timing.spent_here()),
            status=status,
            phase=phases[min(s.phase_index, len(phases) - 1)].name,
            epochs_done=s.global_epoch,
            best_val_loss=s.best_val_loss,
            phase_times_s=dict(s.phase_times),
            peak_memory=dict(s.peak_memory),
        )

    def _submit(self, progress: RunProgress) -> None:
        def write() -> None:  # behind the checkpoint it counts; skipped if that failed
            self.run.write_progress(progress)
            self.counted = progress

        self.writer.submit(write)

    def on_fit_start(self, trainer, resumed):
        if resumed:
            self.spent_before = self.run.read_progress().time_budget or {}
        self.counted = self._progress(trainer, "running")  # the epochs done when this process began

    def on_epoch_end(self, trainer, end):
        if end.checkpoint:  # progress.json counts only epochs whose checkpoint is written
            self._submit(self._progress(trainer, "running"))

    def on_fit_end(self, trainer, status):
        if status == "finished" or self.counted is None:
            self.writer.flush()  # the last checkpoint on disk, its wait in the time budget
            self._submit(self._progress(trainer, status))
            self.writer.flush()
            return
        try:
            self.writer.flush()
        finally:  # the count last written, whose checkpoint is on disk
            self.run.write_progress(self.counted.with_status(status))


def time_left(epochs: int, seconds_each: float) -> str:
    """The time a run has left at the speed its first epoch measured (validation and checkpoint
    included; early stopping may end it sooner)."""
    total = duration(epochs * seconds_each)
    return f"{epochs} more epoch{'s' * (epochs != 1)} at about {seconds_each:.0f} s each: about {total} left"


class ConsoleObserver(Observer):
    """A progress bar per epoch and one line per finished epoch."""

    def __init__(self):
        self.bar: tqdm | None = None
        self.started: float | None = None  # when this process's first epoch started
        self.told = False  # the time left was said (once, after this process's first epoch)

    def on_train_epoch_start(self, trainer, phase, steps):
        self.started = self.started or time.monotonic()
        self.bar = tqdm(
            total=steps,
            leave=False,
            unit="batch",
            disable=not sys.stderr.isatty(),  # a log file gets the per-epoch lines, not a bar's redraws
            desc=f"{phase.name} {trainer.state.epoch_in_phase + 1}/{phase.epochs}",
        )

    def on_train_steps(self, trainer, done, mean_loss):
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(loss=f"{mean_loss:.4f}")

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, trainer, end):
        self._close()
        epochs = trainer.recipe.phases[trainer.state.phase_index].epochs
        r = end.record
        tqdm.write(
            f"{r.phase} epoch {r.epoch}/{epochs}: train loss {r.train_loss:.4f} "
            f"acc {r.train_acc:.4f} | val loss {r.val_loss:.4f} acc {r.val_acc:.4f} | "
            f"lr {r.lr:.2e} | {r.images_per_s:.0f} img/s, {r.train_time_s:.1f} s"
            + (" | early stop" if end.early_stop else "")
        )
        if not self.told and self.started is not None:
            self.told = True
            left = trainer.recipe.epochs - r.global_epoch
            if left > 0 and not end.early_stop:
                tqdm.write(time_left(left, time.monotonic() - self.started))

    def on_fit_end(self, trainer, status):
        self._close()


class TensorBoardObserver(Observer):
    """TensorBoard scalars per epoch: loss and accuracy (train, validation), learning rate and
    images/s. Each phase is a TensorBoard run of its own (``<log_dir>/<phase>``) on the run's
    global epoch axis, so a fine-tuning phase continues where the first phase ended. Open with
    ``tensorboard --logdir <log_dir>`` (or a study's ``runs/`` folder, for every model)."""

    SCALARS = {
        "loss/train": "train_loss",
        "loss/validation": "val_loss",
        "accuracy/train": "train_acc",
        "accuracy/validation": "val_acc",
        "learning_rate": "lr",
        "images_per_s": "images_per_s",
    }

    def __init__(self, log_dir: Path):
        self.SummaryWriter = summary_writer_class()
        self.log_dir = Path(log_dir)
        self.writers: dict[str, Any] = {}

    def _writer(self, phase: str, record_epoch: int):
        if phase not in self.writers:
            # On resume, drop events of epochs after the checkpoint: they are trained again.
            self.writers[phase] = self.SummaryWriter(str(self.log_dir / phase), purge_step=record_epoch)
        return self.writers[phase]

    def on_epoch_end(self, trainer, end):
        record = end.record
        writer = self._writer(record.phase, record.global_epoch)
        for tag, key in self.SCALARS.items():
            writer.add_scalar(tag, getattr(record, key), record.global_epoch)
        writer.flush()

    def on_fit_end(self, trainer, status):
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def summary_writer_class():
    """TensorBoard's writer, or a clear error where the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise LetterbenchError(
            "TensorBoard logging needs the tensorboard package: pip install 'letterbench[tensorboard]'"
        ) from None
    return SummaryWriter


def standard_observers(
    run: RunDir, console: bool = True, tensorboard: bool = False, keep_optimizer: bool = False
) -> list[Observer]:
    """What `letterbench train` attaches on the main process: checkpoints, progress file,
    console lines, and TensorBoard if asked."""
    writer = BackgroundWriter()  # one queue: a checkpoint is on disk before the progress that counts it
    checkpoints = CheckpointObserver(run, writer, keep_optimizer)
    observers: list[Observer] = [checkpoints, ProgressObserver(run, writer)]
    if console:
        observers.append(ConsoleObserver())
    if tensorboard:
        observers.append(TensorBoardObserver(run.tensorboard_dir))
    return observers
