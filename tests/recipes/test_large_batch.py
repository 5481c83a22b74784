"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import json

import pytest

from letterbench.cli.main import main
from letterbench.recipes import describe_recipe, resolve_recipe, scale_batch
from letterbench.study.runner import PRESETS, study_recipe

RESNET18_LR = resolve_recipe("resnet18").phases[0].optimizer.lr


def test_the_large_batch_mode_scales_each_optimisers_lr_by_its_rule_and_warms_up():
    sgd = resolve_recipe("resnet18", large_batch=1024)  # SGD, one-cycle (which warms up already)
    assert sgd.batch_size == 1024 and sgd.batch_scaling.base_batch_size == 64
    assert sgd.phases[0].optimizer.lr == pytest.approx(RESNET18_LR * 16)
    assert sgd.phases[0].schedule == resolve_recipe("resnet18").phases[0].schedule
    adam = resolve_recipe("xception", large_batch=512)  # Adam, reduce-on-plateau, two phases
    assert [p.optimizer.lr for p in adam.phases] == pytest.approx([2e-3, 2e-4])  # x sqrt(512 / 128)
    assert all(p.schedule.warmup_epochs == 1.0 for p in adam.phases)
    assert "large-batch mode: the recipe's batch 128 scaled up, LR x2 (square root rule)" in describe_recipe(
        adam
    )
    back = scale_batch(adam, 128)  # scaling is from the recipe's own batch, never compounded
    assert [p.optimizer.lr for p in back.phases] == pytest.approx([1e-3, 1e-4])
    fast = study_recipe("densenet121", PRESETS["fast"])
    assert fast.batch_size == 1024 and fast.batch_scaling.base_batch_size == 128


def test_train_records_the_large_batch_mode_and_refuses_it_with_a_batch_size(tiny_letters, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "resnet18", "--data-dir", tiny_letters, "--train-per-class", "8"]
    args += ["--epochs", "1", "--set", "val_fraction=0.25"]
    assert main([*map(str, args), "--out", str(out), "--quiet", "--large-batch", "16"]) == 0
    recipe = json.loads((out / "config.json").read_text())["recipe"]
    assert recipe["batch_size"] == 16 and recipe["batch_scaling"] == {"base_batch_size": 64}
    assert recipe["phases"][0]["optimizer"]["lr"] == pytest.approx(RESNET18_LR / 4)
    with pytest.raises(SystemExit) as refused:  # an argparse usage error: one line, exit 1
        main([*map(str, args), "--out", str(tmp_path / "b"), "--large-batch", "16", "--batch-size", "8"])
    assert refused.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("letterbench: error:") and "--large-batch" in err[0]
    assert not (tmp_path / "b").exists()
