"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import AUGMENT, stream

from letterbench.cli.main import main
from letterbench.core.distributed import DistInfo
from letterbench.images.transforms import random_affine
from letterbench.recipes import describe_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir


@pytest.mark.parametrize("n, batch", [(100, 32), (97, 32), (65, 32), (64, 32)])
@pytest.mark.parametrize("augment", [AUGMENT, {}])
def test_an_epoch_draws_the_batches_a_per_step_loader_would(n, batch, augment):
    """The epoch's permutation, then each batch's matrices in order, as the per-step loop before the
    stream drew them: the stream changes when things are drawn, not what a seed gives."""
    s = stream(n, batch, augment)
    plan = s.epoch(torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    order = torch.randperm(n, generator=gen)
    steps = n // batch + (1 if n % batch >= 2 else 0)  # a last batch of one is left out
    assert len(plan) == s.steps == steps
    got = list(plan)
    for step, b in enumerate(got):
        index = order[step * batch : (step + 1) * batch]
        assert torch.equal(b.index, index)
        if augment:
            assert torch.equal(b.theta, random_affine(len(index), augment, gen))
        else:
            assert b.theta is None
    assert sum(len(b) for b in got) == (n if n % batch != 1 else n - 1)


def test_ranks_take_disjoint_shards_of_the_same_permutation():
    plans = [
        stream(101, 16, dist=DistInfo(rank, 2, rank)).epoch(torch.Generator().manual_seed(3))
        for rank in (0, 1)
    ]
    orders = [p.order for p in plans]
    assert len(orders[0]) == len(orders[1]) == 50
    assert not set(orders[0].tolist()) & set(orders[1].tolist())
    whole = torch.randperm(101, generator=torch.Generator().manual_seed(3))[:100]
    assert torch.equal(torch.stack(orders, 1).flatten(), whole)


def test_inputs_are_the_preprocessed_images_of_the_batch():
    s = stream(40, 16, size=64)
    batch = next(iter(s.epoch(torch.Generator().manual_seed(0))))
    x, y = s.inputs(batch)
    assert x.shape == (16, 3, 64, 64) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, s.preprocess(s.images[batch.index], batch.theta))
    assert torch.equal(y, s.labels[batch.index])
    # unaugmented batches in order: evaluation and precise BN read the first images, resized alike
    xs = [x for x, _ in s.in_order(count=20, batch_size=8)]
    assert [len(x) for x in xs] == [8, 8, 4]
    assert torch.equal(torch.cat(xs), s.preprocess(s.images[:20]))


def test_a_recipe_trains_with_style_augmentations(tiny_letters, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "timm:resnet10t", "--epochs", "1", "--quiet", "--data-dir", str(tiny_letters)]
    sets = ["augment.thickness=1", "augment.blur=0.5", "augment.contrast=0.3", "augment.elastic=0.04"]
    assert main([*args, "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    recipe = json.loads(RunDir(out).config_file.read_text())["recipe"]
    assert recipe["augment"]["thickness"] == 1 and recipe["augment"]["elastic"] == 0.04
    assert "stroke ±1 px" in describe_recipe(resolve_recipe("resnet18", overrides=sets))
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "augment.thickness=5"]) != 0
    assert "augment.thickness" in capsys.readouterr().err
