"""Optimisers and learning-rate schedules, built from a recipe phase."""

from __future__ import annotations

import torch
from torch import nn

from letterbench.training.recipes import Phase


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
        if total < 2:
            return None, False  # one step: nothing to schedule
        # Both halves of the cycle must span more than one step, or OneCycleLR divides by zero.
        warmup = min(max(float(cfg.get("warmup", 0.2)), 1.5 / total), 1 - 0.5 / total)
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total, pct_start=warmup
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
