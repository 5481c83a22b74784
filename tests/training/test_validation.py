"""The training engine: learning, resume after a kill, stopping rules, phases, DDP, clear failures."""

from __future__ import annotations

import torch
from helpers import tiny_train_data

from letterbench.core.runtime import Runtime
from letterbench.models import create_model
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import Trainer

CPU = Runtime(torch.device("cpu"))


def test_precise_bn_replaces_running_stats_by_exact_averages(tiny_letters, tmp_path):
    data = tiny_train_data(tiny_letters, per_class=8)
    recipe = resolve_recipe("timm:resnet10t", overrides=["batch_size=52", "precise_bn=104"])
    model = create_model("timm:resnet10t")
    trainer = Trainer(recipe, model, data, CPU, RunDir(tmp_path))
    trainer.start_phase(0)
    trainer.train_epoch()
    bn = (
        model.base.bn1
        if hasattr(model.base, "bn1")
        else next(m for m in model.base.modules() if isinstance(m, torch.nn.BatchNorm2d))
    )
    seen = []
    hook = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    trainer.recompute_bn_stats(104)
    hook.remove()
    inputs = torch.cat(seen)  # two batches of 52: the cumulative average is the plain mean
    assert len(seen) == 2
    assert torch.allclose(bn.running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1  # restored
