"""The training engine: one loop for every model and recipe.

The whole dataset sits on the training device as uint8; each batch is gathered by
index, then augmented, resized, channel-replicated and normalised there in one batched
operation (``letterbench.transforms``). No Dataset, no DataLoader workers.

Reproducibility: the seed fixes the validation split, the initial weights, and, through
a generator seeded per epoch, the shuffling and the augmentation of every epoch. Dropout
draws from the global RNG, whose state each checkpoint stores. Resuming from the
checkpoint of epoch k therefore repeats epochs k+1.. exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from letterbench.errors import TrainingError
from letterbench.fsutil import atomic_write_json
from letterbench.models import LetterModel, set_trainable
from letterbench.training.checkpoint import load_checkpoint, save_checkpoint
from letterbench.training.distributed import DistInfo, all_reduce_sum, barrier
from letterbench.training.recipes import Phase, Recipe
from letterbench.transforms import prepare_batch, to_channels_last


@dataclass
class TrainData:
    """Train and validation images (uint8, N x 28 x 28) and labels, on the training device."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    count: int


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


def build_optimizer(phase: Phase, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    cfg = dict(phase.optimizer)
    name, lr, wd = cfg.pop("name"), float(cfg.pop("lr")), float(cfg.pop("weight_decay", 0.0))
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=float(cfg.get("momentum", 0.9)),
            nesterov=bool(cfg.get("nesterov", False)),
            weight_decay=wd,
        )
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=wd)


def build_scheduler(phase: Phase, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """(scheduler or None, True if it steps every batch rather than once per epoch on val loss)."""
    cfg = phase.schedule
    name = cfg["name"]
    total = phase.epochs * steps_per_epoch
    if name == "onecycle":
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total, pct_start=float(cfg.get("warmup", 0.2))
        ), True
    if name == "cosine":
        warmup = max(1, int(float(cfg.get("warmup", 0.05)) * total))
        return torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, 1e-3, 1.0, warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, total - warmup)),
            ],
            milestones=[warmup],
        ), True
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            factor=float(cfg.get("factor", 0.5)),
            patience=int(cfg.get("patience", 2)),
            min_lr=float(cfg.get("min_lr", 0.0)),
            threshold=float(cfg.get("threshold", 1e-4)),
        ), False
    return None, False


class Trainer:
    """Trains one model through the phases of its recipe, checkpointing after every epoch.

    ``on_epoch_end(trainer)``, if given, is called after each epoch's checkpoint is written
    (for notebooks and callers that watch or steer a run).
    """

    def __init__(
        self,
        recipe: Recipe,
        model: LetterModel,
        data: TrainData,
        run_dir: Path,
        seed: int,
        device: torch.device,
        dist: DistInfo = DistInfo(),
        progress: bool = True,
        compile: bool = False,
        on_epoch_end=None,
    ):
        self.recipe, self.model, self.data, self.run_dir = recipe, model.to(device), data, run_dir
        self.seed, self.device, self.dist = seed, device, dist
        self.progress = progress and dist.is_main
        self.compile = compile
        self.cuda = device.type == "cuda"
        self.on_epoch_end = on_epoch_end
        to_channels_last(self.model)
        self.state = TrainerState()
        self.ckpt_dir = run_dir / "checkpoints"
        self._phase_trainables = self._effective_trainables()

    # ------------------------------------------------------------ set-up per phase

    def _effective_trainables(self) -> list[str]:
        """What each phase trains. A frozen base only makes sense when it holds pretrained features."""
        return [p.trainable if self.model.pretrained != "none" else "all" for p in self.recipe.phases]

    def substituted_phases(self) -> list[str]:
        return [
            p.name
            for p, t in zip(self.recipe.phases, self._phase_trainables, strict=True)
            if p.trainable != t
        ]

    def _start_phase(self, index: int) -> None:
        phase = self.recipe.phases[index]
        set_trainable(self.model, self._phase_trainables[index])
        params = [p for p in self.model.parameters() if p.requires_grad]
        net: nn.Module = self.model
        if self.dist.enabled:
            # Re-wrapped per phase: DDP fixes the set of trained parameters when it is built.
            net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.cuda else None
            )
        if self.compile:
            net = torch.compile(net)
        self.net = net
        self.optimizer = build_optimizer(phase, params)
        self.scheduler, self.step_per_batch = build_scheduler(phase, self.optimizer, self._steps_per_epoch())

    def _shard_size(self) -> int:
        return len(self.data.train_labels) // self.dist.world

    def _steps_per_epoch(self) -> int:
        n, bs = self._shard_size(), self.recipe.batch_size
        return n // bs + (1 if n % bs >= 2 else 0)  # a last batch of one would break BatchNorm

    # ------------------------------------------------------------ loops

    def _epoch_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.state.global_epoch)

    def train_epoch(self, phase: Phase) -> tuple[EpochStats, float]:
        self.net.train()
        gen = self._epoch_generator()
        n_all = len(self.data.train_labels)
        order = torch.randperm(n_all, generator=gen)
        order = order[: self._shard_size() * self.dist.world][self.dist.rank :: self.dist.world]
        bs = self.recipe.batch_size
        sums = torch.zeros(3, device=self.device, dtype=torch.float64)  # loss sum, correct, count
        steps = self._steps_per_epoch()
        check_every = 1 if not self.cuda else 25
        bar = tqdm(
            total=steps,
            disable=not self.progress,
            leave=False,
            unit="batch",
            desc=f"{phase.name} {self.state.epoch_in_phase + 1}/{phase.epochs}",
        )
        start = time.perf_counter()
        for step in range(steps):
            idx = order[step * bs : (step + 1) * bs].to(self.device)
            x = prepare_batch(self.data.train_images[idx], self.model.spec, self.recipe.augment, gen)
            y = self.data.train_labels[idx]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                logits = self.net(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.step_per_batch:
                self.scheduler.step()
            with torch.no_grad():
                sums += torch.stack(
                    [
                        loss.detach().double() * len(y),
                        (logits.argmax(1) == y).sum().double(),
                        torch.tensor(len(y), device=self.device, dtype=torch.float64),
                    ]
                )
            if (step + 1) % check_every == 0 or step == steps - 1:
                if not math.isfinite(sums[0].item()):
                    raise TrainingError(
                        f"training loss became non-finite ({sums[0].item()}) in phase {phase.name!r}, "
                        f"epoch {self.state.epoch_in_phase + 1}, step {step + 1}; the last good checkpoint "
                        f"({self.ckpt_dir / 'last.pt'}) is kept. Lower the learning rate "
                        "(--set phases.N.optimizer.lr=...) and resume or restart"
                    )
                if self.progress:
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}")
        if self.cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        bar.close()
        sums = all_reduce_sum(sums, self.dist)
        loss_sum, correct, count = sums.tolist()
        return EpochStats(loss_sum / count, correct / count, int(count)), elapsed

    @torch.no_grad()
    def recompute_bn_stats(self, count: int) -> None:
        """Replace the running statistics of the trained BatchNorm layers by exact averages over the
        first ``count`` training images, computed with the weights as they are now ("precise BN").

        The usual running averages lag behind weights that still move fast (a network trained from
        scratch for few epochs): evaluation then normalises with stale statistics and can collapse to
        one class while the training accuracy climbs. Only the base runs (no dropout, no RNG draw), on
        unaugmented images, so the result is deterministic.
        """
        layers = [
            m
            for m in self.model.base.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(p.requires_grad for p in m.parameters())
        ]
        if count <= 0 or not layers:
            return
        momenta = [m.momentum for m in layers]
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.model.train()
        images = self.data.train_images[:count]
        for start in range(0, len(images), self.recipe.batch_size):
            x = prepare_batch(images[start : start + self.recipe.batch_size], self.model.spec)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                self.model.base(x)
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> EpochStats:
        """Mean cross-entropy and accuracy; under DDP each rank takes every world-th image and the
        sums are reduced, so the result equals a single process's on the same weights."""
        self.model.eval()
        idx = torch.arange(self.dist.rank, len(labels), self.dist.world, device=labels.device)
        sums = torch.zeros(3, device=self.device, dtype=torch.float64)
        for start in range(0, len(idx), batch_size):
            batch = idx[start : start + batch_size]
            x = prepare_batch(images[batch], self.model.spec)
            y = labels[batch]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                logits = self.model(x).float()
            sums += torch.stack(
                [
                    F.cross_entropy(logits, y, reduction="sum").double(),
                    (logits.argmax(1) == y).sum().double(),
                    torch.tensor(len(y), device=self.device, dtype=torch.float64),
                ]
            )
        loss_sum, correct, count = all_reduce_sum(sums, self.dist).tolist()
        return EpochStats(loss_sum / max(count, 1), correct / max(count, 1), int(count))

    # ------------------------------------------------------------ checkpoints

    def _rng_state(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if self.cuda:
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _save(self, name: str) -> None:
        if not self.dist.is_main:
            return
        s = self.state
        save_checkpoint(
            self.ckpt_dir / name,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "trainer": {k: v for k, v in vars(s).items()},
                "rng": self._rng_state(),
                "recipe": self.recipe.to_dict(),
                "seed": self.seed,
            },
        )

    def _save_weights(self, name: str) -> None:
        if self.dist.is_main:
            save_checkpoint(
                self.ckpt_dir / name,
                {
                    "model": self.model.state_dict(),
                    "trainer": {
                        "phase": self.recipe.phases[self.state.phase_index].name,
                        "global_epoch": self.state.global_epoch,
                    },
                },
            )

    def resume(self) -> None:
        ckpt = load_checkpoint(self.ckpt_dir / "last.pt")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise TrainingError(
                f"{self.ckpt_dir / 'last.pt'}: does not fit model {self.model.name}: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        trainer = dict(ckpt["trainer"])
        self.state = TrainerState(**trainer)
        self._start_phase(self.state.phase_index)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.cuda and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], self.device)

    # ------------------------------------------------------------ the run

    def _write_progress(self, status: str) -> None:
        if self.dist.is_main:
            s = self.state
            atomic_write_json(
                self.run_dir / "progress.json",
                {
                    "status": status,
                    "phase": self.recipe.phases[min(s.phase_index, len(self.recipe.phases) - 1)].name,
                    "epochs_done": s.global_epoch,
                    "best_val_loss": s.best_val_loss,
                    "phase_times_s": s.phase_times,
                    "peak_memory": s.peak_memory,
                    "history": s.history,
                },
            )

    def fit(self, resume: bool = False) -> TrainerState:
        if resume:
            self.resume()
        else:
            self._start_phase(0)
        phases = self.recipe.phases
        # `kill` (SIGTERM) ends a run the way Ctrl-C does: cleanly, at the last checkpoint.
        previous = _install_sigterm_handler()
        try:
            while self.state.phase_index < len(phases):
                if self.state.phase_done:
                    self._next_phase()
                    continue
                self._run_epoch(phases[self.state.phase_index])
            self._write_progress("finished")
        except KeyboardInterrupt:
            self._write_progress("interrupted")
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.state

    def _next_phase(self) -> None:
        s = self.state
        s.phase_index += 1
        s.epoch_in_phase, s.phase_best, s.bad_epochs, s.phase_done = 0, math.inf, 0, False
        if s.phase_index < len(self.recipe.phases):
            # Continue from the best weights of the phase before, as a fine-tuning step should.
            prev = self.recipe.phases[s.phase_index - 1].name
            best = load_checkpoint(self.ckpt_dir / f"best-{prev}.pt")
            self.model.load_state_dict(best["model"])
            self._start_phase(s.phase_index)
            self._save("last.pt")

    def _run_epoch(self, phase: Phase) -> None:
        s = self.state
        train, train_time = self.train_epoch(phase)
        self.recompute_bn_stats(self.recipe.precise_bn)
        val = self.evaluate(self.data.val_images, self.data.val_labels)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None and not self.step_per_batch:
            self.scheduler.step(val.loss)
        s.epoch_in_phase += 1
        s.global_epoch += 1
        s.phase_times[phase.name] = s.phase_times.get(phase.name, 0.0) + train_time
        s.peak_memory = peak_memory(self.device, s.peak_memory)
        s.history.append(
            {
                "phase": phase.name,
                "epoch": s.epoch_in_phase,
                "global_epoch": s.global_epoch,
                "train_loss": train.loss,
                "train_acc": train.accuracy,
                "val_loss": val.loss,
                "val_acc": val.accuracy,
                "lr": lr,
                "images_per_s": train.count / train_time,
                "train_time_s": train_time,
                "trainable": self._phase_trainables[s.phase_index],
            }
        )
        improved = val.loss < s.phase_best - float((phase.early_stopping or {}).get("min_delta", 0.0))
        if val.loss < s.phase_best:
            s.phase_best = val.loss
            self._save_weights(f"best-{phase.name}.pt")
        s.bad_epochs = 0 if improved else s.bad_epochs + 1
        if val.loss < s.best_val_loss:
            s.best_val_loss = val.loss
            self._save_weights("best.pt")
        stop_early = phase.early_stopping is not None and s.bad_epochs >= int(
            phase.early_stopping.get("patience", 3)
        )
        if stop_early:
            s.history[-1]["early_stop"] = True
        s.phase_done = stop_early or s.epoch_in_phase >= phase.epochs
        self._save("last.pt")
        self._write_progress("running")
        barrier(self.dist)  # other ranks read best-<phase>.pt when the next phase starts
        if self.progress:
            tqdm.write(
                f"{phase.name} epoch {s.epoch_in_phase}/{phase.epochs}: train loss {train.loss:.4f} "
                f"acc {train.accuracy:.4f} | val loss {val.loss:.4f} acc {val.accuracy:.4f} | lr {lr:.2e} | "
                f"{train.count / train_time:.0f} img/s, {train_time:.1f} s"
                + (" | early stop" if stop_early else "")
            )
        if self.on_epoch_end is not None:
            self.on_epoch_end(self)


def peak_memory(device: torch.device, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Peak memory so far: CUDA's peak allocated bytes on a GPU, else this process's peak RSS."""
    if device.type == "cuda":
        now = {"bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda peak allocated"}
    else:
        import resource

        now = {
            "bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "kind": "process peak RSS",
        }
    if previous and previous.get("kind") == now["kind"]:
        now["bytes"] = max(now["bytes"], int(previous["bytes"]))
    return now


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _install_sigterm_handler():
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None
