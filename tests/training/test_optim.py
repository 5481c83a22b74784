"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import pytest
import torch

from letterbench.recipes import resolve_recipe
from letterbench.training.optim import build_scheduler


def test_a_warm_up_ramps_the_lr_over_its_epochs_then_the_plateau_rule_takes_over():
    recipe = resolve_recipe("densenet121", epochs=3, overrides=["phases.0.schedule.warmup_epochs=1"])
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1e-3)
    schedule = build_scheduler(recipe.phases[0], optimizer, steps_per_epoch=4)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.after_batch()
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    saved = schedule.state_dict()
    for _ in range(4):  # the plateau rule, once its patience (2) runs out
        schedule.after_epoch(1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    again = build_scheduler(recipe.phases[0], torch.optim.Adam([param], lr=1e-3), 4)
    again.load_state_dict(saved)
    assert again.warmup.last_epoch == 3  # done: it steps no further
