"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from letterbench.cli.main import main
from letterbench.core.errors import LetterbenchError
from letterbench.recipes import builtin_recipes, describe_recipe, load_recipe, resolve_recipe, scale_batch
from letterbench.study.runner import PRESETS, study_recipe

REPO = Path(__file__).resolve().parents[2]


def test_one_recipe_resolver_for_every_kind_of_model(tmp_path):
    timm = resolve_recipe("timm:resnet10t")
    assert (timm.model, timm.name) == ("timm:resnet10t", "timm:resnet10t")
    assert timm.phases == load_recipe("resnet18").phases  # the registry's default recipe for timm models
    x = resolve_recipe("xception", total_epochs=5, lr=0.01, batch_size=16, overrides=["phases.1.epochs=7"])
    assert [p.epochs for p in x.phases] == [3, 7]  # shared out, then --set wins
    assert [p.optimizer.lr for p in x.phases] == pytest.approx([0.01, 0.001])  # ratio kept
    assert x.batch_size == 16
    custom = tmp_path / "mine.toml"
    custom.write_text(
        'name = "mine"\nmodel = "resnet18"\n[[phases]]\nname = "p"\nepochs = 2\n'
        'optimizer = { name = "adam", lr = 0.001 }\n'
    )
    mine = resolve_recipe("timm:resnet10t", str(custom))
    assert (mine.name, mine.model) == ("mine", "timm:resnet10t")
    with pytest.raises(LetterbenchError, match="say what to train"):
        resolve_recipe()


def test_the_guides_recipe_table_is_the_shipped_recipes():
    readme = (REPO / "docs" / "guide.md").read_text()
    rows = dict(
        re.findall(
            r"^\| `([\w-]+)` \| (.+) \|$", readme.split("| recipe | what it does |")[1].split("\n\n")[0], re.M
        )
    )
    assert set(rows) == set(builtin_recipes())
    for name, text in rows.items():
        assert text == describe_recipe(load_recipe(name)), (
            f"docs/guide.md's row for {name} differs from the recipe file"
        )


def test_phase_names_cannot_collide_with_run_checkpoints():
    for name in ("last", "best", "a/b"):
        with pytest.raises(LetterbenchError, match="phase name"):  # 'a/b' would be a folder
            resolve_recipe("resnet18", overrides=[f"phases.0.name={name}"])


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


@pytest.mark.parametrize(
    "encode, expect",
    [
        (lambda text: text.replace("ResNet", "R\xe9sNet").encode("latin-1"), "not UTF-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode(), None),  # a byte-order mark: read as UTF-8
    ],
)
def test_a_recipe_saved_in_another_encoding_gets_one_line(tmp_path, capsys, encode, expect):
    from importlib import resources

    text = "# ResNet\n" + resources.files("letterbench.recipes").joinpath("smallcnn.toml").read_text()
    (tmp_path / "mine.toml").write_bytes(encode(text))
    from letterbench.recipes import load_recipe

    if expect is None:
        assert load_recipe(str(tmp_path / "mine.toml")).model == "smallcnn"
        return
    code = main(["train", "--recipe", str(tmp_path / "mine.toml"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and expect in err[0] and "save it as UTF-8" in err[0]
