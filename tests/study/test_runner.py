"""Promises the guide makes that no other test held: the bug path's exit status and traceback, the
default preset and its printed reason, the paper preset's measured estimate, TensorBoard's purge on
resume, later phases' learning-rate ratio on `--resume --lr`, and the ensemble's tie rules."""

from __future__ import annotations

import json
import os
import types

import pytest
import torch
from helpers import letters_folder

from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.recipes import resolve_recipe
from letterbench.study.runner import choose_preset, estimate_minutes

CPU = Runtime(torch.device("cpu"))


def test_the_default_preset_follows_the_device_and_says_why():
    preset, why = choose_preset(None, CPU)
    assert preset.name == "quick" and why.startswith("preset quick: no GPU in use")
    # choosing reads the runtime's device and name only; no GPU is needed to see the choice
    gpu = types.SimpleNamespace(device=torch.device("cuda"), is_cuda=True, name="NVIDIA H200")
    preset, why = choose_preset(None, gpu)
    assert preset.name == "paper" and why == "preset paper: training on a GPU (NVIDIA H200)"
    assert choose_preset("smoke", gpu)[1] == "preset smoke (as asked)"


def test_the_paper_estimate_is_the_measured_rate_times_the_images_to_train(monkeypatch):
    """Epochs x training images (validation held out) / the engine's measured images per second."""
    import letterbench.training.throughput as throughput

    measured = []
    real = throughput.measure_train_throughput

    def measure(recipe, runtime, steps):
        rate = real(recipe, runtime, steps=steps)  # the real engine, timed for real
        measured.append(rate)
        return rate

    monkeypatch.setattr(throughput, "measure_train_throughput", measure)
    recipe = resolve_recipe("timm:test_resnet", epochs=3, overrides=["val_fraction=0.25"])
    minutes = estimate_minutes([recipe], 1000, CPU)
    (rate,) = measured
    assert rate > 0 and minutes == pytest.approx(3 * 1000 * 0.75 / rate / 60)


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda d: d / "missing", "no such folder"),
        (lambda d: (d / "x").mkdir() or d / "x", "no labels.csv and no images in letter folders"),
        (lambda d: (d / "ab").mkdir(parents=True) or d, "label 'ab' is not a letter"),
        (
            lambda d: ((d / "labels.csv").write_text("file,label\nnone.png,a\n"), d)[1],
            "line 2: no image 'none.png'",
        ),
        (
            lambda d: ((d / "labels.csv").write_text("name,letter\nx.png,a\n"), d)[1],
            "needs the columns file and label",
        ),
        (
            lambda d: ((d / "labels.csv").write_text("file,label\n../etc.png,a\n"), d)[1],
            "no image '../etc.png'",
        ),
        (  # an iPhone's photos only
            lambda d: ((d / "a").mkdir(), (d / "a" / "IMG_1.HEIC").write_bytes(b"x"), d)[2],
            "only files letterbench does not read: .heic; convert them to PNG or JPEG",
        ),
        (lambda d: (os.mkfifo(d / "labels.csv"), d)[1], "labels.csv: not a regular file"),
        (
            lambda d: ((d / "labels.csv").write_bytes(b"file,label\n" + b"x" * (11 * 2**20)), d)[1],
            "more than a labels file of letters holds",
        ),
    ],
)
def test_a_malformed_real_world_folder_is_refused_with_one_line_before_anything_trains(
    tmp_path, capsys, make, expect
):
    (tmp_path / "set").mkdir()
    folder = make(tmp_path / "set")
    out = tmp_path / "study"
    code = main(["run", "--preset", "smoke", "--real-world", str(folder), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("letterbench: error:") and expect in err[0]
    assert "sub-folder of images per letter" in err[0]  # says how to lay it out
    assert not out.exists()


def test_run_refuses_an_unknown_model_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["run", "--preset", "smoke", "--models", "resnet18,timm:nosuchnet", "--out", str(out)]) == 1
    assert "timm has no model 'nosuchnet'" in capsys.readouterr().err
    assert not out.exists()


def test_run_refuses_a_different_preset_on_the_same_out(real_data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"preset": "quick", "seed": 0}))
    assert main(["run", "--preset", "smoke", "--data-dir", str(real_data_dir), "--out", str(out)]) == 1
    assert "holds a study with preset quick" in capsys.readouterr().err


def test_run_without_data_and_network_says_how_to_provide_it(tmp_path, capsys, monkeypatch):
    import letterbench.data.ensure as ensure

    monkeypatch.setattr(ensure, "ARCHIVE_URL", "http://127.0.0.1:9/gzip.zip")  # nothing listens: offline
    monkeypatch.setattr("letterbench.data.fetch.time.sleep", lambda s: None)
    assert (
        main(
            ["run", "--preset", "smoke", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "could not be downloaded" in err and "letterbench data import" in err


def test_the_paper_preset_keeps_the_full_recipe_it_estimates():
    """The paper preset's estimate is of the recipe itself (the arithmetic is checked above, on a
    real measurement; comparing two timings of this machine would only measure its load)."""
    from letterbench.study.runner import PRESETS, study_recipe

    recipe = study_recipe("resnet18", PRESETS["paper"])
    assert recipe.phases[0].epochs == 12 and recipe.batch_size == 64


def test_real_world_letters_go_with_the_letters_split(tmp_path, capsys):
    folder = letters_folder(tmp_path / "mine", per_letter=1)
    out = tmp_path / "study"
    code = main(
        ["run", "--preset", "smoke", "--split", "digits", "--real-world", str(folder), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "goes with --split letters, not digits" in err[0]
    assert not out.exists()


def test_an_empty_real_world_path_is_refused_not_read_as_the_current_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:  # a usage error, as argparse ends one
        main(["run", "--preset", "smoke", "--real-world", "", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_status.value.code == 1 and len(err) == 1 and "--real-world: an empty path" in err[0]
    assert err[0].startswith("letterbench: error:")
    assert not (tmp_path / "s").exists()
