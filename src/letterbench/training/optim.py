"""Optimisers and learning-rate schedules, built from a recipe phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from letterbench.recipes.schema import SGD, Phase


def build_optimizer(phase: Phase, params: list[nn.Parameter], fused: bool = False) -> torch.optim.Optimizer:
    """The phase's optimiser; ``fused`` (on CUDA) does the whole update in one kernel launch, the
    same maths as the default multi-tensor update."""
    opt = phase.optimizer  # its defaults are the recipe schema's
    extra = {"fused": True} if fused else {}
    if isinstance(opt, SGD):
        return torch.optim.SGD(
            params,
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
            **extra,
        )
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    return cls(params, lr=opt.lr, weight_decay=opt.weight_decay, **extra)


@dataclass
class Schedule:
    """The phase's LR schedule: ``main`` (None: constant), stepped every batch if ``per_batch`` else
    once per epoch on the validation loss, and a linear ``warmup`` over the first batches (for
    schedules without one of their own; the large-batch mode adds it), stepped every batch."""

    main: Any = None
    per_batch: bool = False
    warmup: torch.optim.lr_scheduler.LinearLR | None = None

    def after_batch(self) -> None:
        if self.per_batch:
            self.main.step()
        if self.warmup is not None and self.warmup.last_epoch < self.warmup.total_iters:
            self.warmup.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.main is not None and not self.per_batch:
            self.main.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return {
            "main": None if self.main is None else self.main.state_dict(),
            "warmup": None if self.warmup is None else self.warmup.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        if "main" not in state and "warmup" not in state:  # a checkpoint from before warm-ups
            state = {"main": state, "warmup": None}
        if self.main is not None and state["main"] is not None:
            self.main.load_state_dict(state["main"])
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])


def build_scheduler(phase: Phase, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Schedule:
    cfg = phase.schedule  # its defaults are the recipe schema's
    name = cfg.name
    total = phase.epochs * steps_per_epoch
    if name == "onecycle":
        if total < 2:
            return Schedule()  # one step: nothing to schedule
        # Both halves of the cycle must span more than one step, or OneCycleLR divides by zero.
        warmup = min(max(cfg.warmup, 1.5 / total), 1 - 0.5 / total)
        lr = optimizer.param_groups[0]["lr"]
        return Schedule(
            torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=warmup),
            per_batch=True,
        )
    if name == "cosine":
        warmup = max(1, int(cfg.warmup * total))
        return Schedule(
            torch.optim.lr_scheduler.SequentialLR(
                optimizer,
                [
                    torch.optim.lr_scheduler.LinearLR(optimizer, 1e-3, 1.0, warmup),
                    torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, total - warmup)),
                ],
                milestones=[warmup],
            ),
            per_batch=True,
        )
    main = None
    if name == "plateau":
        main = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            factor=cfg.factor,
            patience=cfg.patience,
            min_lr=cfg.min_lr,
            threshold=cfg.threshold,
        )
    steps = min(round(cfg.warmup_epochs * steps_per_epoch), total)
    # batch k of the warm-up (from 0) runs at (k + 1) / steps of the LR: the full LR from batch steps - 1
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0 / steps, 1.0, steps - 1) if steps > 1 else None
    return Schedule(main, False, warmup)
