"""Nothing chosen reads the test set: the ensemble's models and the temperature are the same when
the test images and labels are replaced by others, while the test metrics follow them. (Checking
what is recorded is not enough: a choice made on the test set records the same kind of numbers.)"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.evaluation.ensemble import choose_ensemble
from letterbench.evaluation.evaluate import evaluate_run
from letterbench.runs.rundir import RunDir

CPU = Runtime(torch.device("cpu"))


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two tiny models trained on 8 images per class of 20: 12 per class held out from both."""
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("leak")
    data = write_emnist(root / "emnist", synthetic_letters(20, seed=1), synthetic_letters(6, seed=2))
    common = ["--quiet", "--data-dir", str(data), "--train-per-class", "8", "--set", "val_fraction=0.25"]
    for model, epochs in (("timm:resnet10t", "3"), ("timm:test_resnet", "2")):
        out = root / model.split(":")[1]
        assert main(["train", "--model", model, "--epochs", epochs, "--out", str(out), *common]) == 0
        assert main(["evaluate", str(out), "--no-plots"]) == 0
    return [RunDir(root / "resnet10t"), RunDir(root / "test_resnet")]


@pytest.fixture
def poisoned_test_set(monkeypatch):
    """Every run's data as loaded, but with other test images (the first ones upside down) and
    the test labels shifted by one class: whatever reads the test set sees other answers."""
    import letterbench.data.emnist as emnist

    load = emnist.load_emnist

    def poisoned(*args, **kwargs):
        data = load(*args, **kwargs)
        images = data.test_images.flip(1)
        labels = (data.test_labels + 1) % len(data.class_names)
        return dataclasses.replace(data, test_images=images, test_labels=labels)

    monkeypatch.setattr(emnist, "load_emnist", poisoned)  # what every run's data loading reads


def test_the_ensemble_is_chosen_without_the_test_set(two_models, request):
    honest = choose_ensemble(two_models, CPU)
    assert honest is not None and honest.images >= 10 * 26 and len(honest.candidates) == 3
    request.getfixturevalue("poisoned_test_set")
    again = choose_ensemble(two_models, CPU)
    assert again.to_dict() == honest.to_dict()  # the same images, scores and members


def test_the_temperature_is_fitted_without_the_test_set(two_models, request):
    run = two_models[0]
    honest = evaluate_run(run, CPU, measure_speed=False).metrics.stages[-1].to_json()
    request.getfixturevalue("poisoned_test_set")
    poisoned = evaluate_run(run, CPU, measure_speed=False).metrics.stages[-1].to_json()
    assert poisoned["metrics"]["accuracy"] != honest["metrics"]["accuracy"]  # the test set did change
    assert poisoned["calibration"]["temperature"] == honest["calibration"]["temperature"]
    assert poisoned["calibration"]["val_nll_after"] == honest["calibration"]["val_nll_after"]
