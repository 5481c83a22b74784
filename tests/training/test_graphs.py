"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import torch
from helpers import letters

from letterbench.core.runtime import Runtime
from letterbench.models import create_model
from letterbench.recipes import resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.graphs import warm_up

CPU = Runtime(torch.device("cpu"))


def test_warm_up_leaves_weights_statistics_and_random_state_as_they_were(tiny_letters):
    images, labels = letters(96)
    recipe = resolve_recipe("resnet18", overrides=["batch_size=32", "dropout=0.5"])
    model = create_model("resnet18", 26, dropout=0.5)
    trainer = Trainer(
        recipe, model, TrainData(images, labels, images[:8], labels[:8]), CPU, RunDir(tiny_letters / "r")
    )
    trainer.start_phase(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    warm_up(
        trainer.step.forward_backward,
        [trainer.stream.example(), trainer.stream.example(5)],
        model,
        trainer.optimizer,
        CPU,
    )
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics and counters too
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())
