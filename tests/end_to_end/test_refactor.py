"""Refactors change no result: the same seed writes the files the code of 2026-12-03 wrote
(``tests/fixtures/main-run``, made by ``tests/fixtures/make_main_run.py`` before inference got its
own module), and a run folder that code wrote still loads, reports and predicts.

The checked-in run was made on an Intel Xeon; another CPU adds float sums in another order, so the
golden comparison is exact for what no CPU changes (keys, names, shapes, the recipe, the split, the
data's hashes, the labels, every string and count) and within a measured tolerance for the numbers.
Measured on 2026-12-06 between the Intel Xeon (AMX) that made it and an AMD EPYC: training and
validation losses within a relative 5e-5, the NLL after calibration and the loss gaps within 3e-4,
the fitted temperature within 2e-3 (the fit amplifies the losses' rounding), accuracies and other
per-image rates within one image (0.0043 of 234), weights within 0.0052 (a BN running variance),
probabilities within 5.3e-5. The tolerances below are about ten times those. What must hold exactly,
the same code and seed on the same machine giving the same files, is checked by training twice here."""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from letterbench.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "main-run"
sys.path.insert(0, str(FIXTURE.parent))
from make_main_run import tiny_data, train_and_evaluate  # noqa: E402

# what differs between two runs of the same command: when and where, and measured speeds and times
VOLATILE = re.compile(
    r"created|command|data_dir|^\.run\.dir$|time_budget|images_per_s|other_cpu_cores|train_time_s"
    r"|peak_memory|latency_ms|_load\b|phase_times_s"
)
# what names the machine rather than the result: the kernel's build string, the CPU's thread count
MACHINE = re.compile(r"versions\.platform$|device\.name$")
# numbers that vary continuously with the float sums (the rest are rates over images)
CONTINUOUS = re.compile(r"loss|nll|temperature|\blr\b|\.lr$")
FITTED = re.compile(r"temperature")  # fitted to the losses by an optimiser: their rounding, amplified


def flat(value, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flat(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flat(v, f"{path}[{i}]")
    else:
        yield path, value


def close(key: str, a, b) -> bool:
    """Equal, or for floats within the tolerance measured across CPUs (the module's docstring)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if FITTED.search(key):
            return math.isclose(a, b, rel_tol=2e-2)
        if CONTINUOUS.search(key):
            return math.isclose(a, b, rel_tol=3e-3, abs_tol=1e-3)
        return abs(a - b) <= 0.05  # a rate over images: about ten images of 234, or five of 104
    return a == b


def exact(key: str, a, b) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b))


@pytest.fixture(scope="module")
def again(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("again")
    train_and_evaluate(tiny_data(tmp / "emnist"), tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def twice(tmp_path_factory) -> Path:
    """The same command again, on this machine, in another folder."""
    tmp = tmp_path_factory.mktemp("twice")
    train_and_evaluate(tiny_data(tmp / "emnist"), tmp / "run")
    return tmp / "run"


def differences(now: Path, then: Path, name: str, equal) -> list:
    a = dict(flat(json.loads((now / name).read_text())))
    b = dict(flat(json.loads((then / name).read_text())))
    kept = [k for k in b if not VOLATILE.search(k)]
    assert {k for k in a if not VOLATILE.search(k)} == set(kept)  # the same keys, exactly
    assert len(kept) > 0.5 * len(b)  # most of the file is compared
    return [(k, b[k], a[k]) for k in kept if not (MACHINE.search(k) or equal(k, a[k], b[k]))]


@pytest.mark.parametrize("name", ["config.json", "progress.json", "metrics.json"])
def test_the_same_seed_writes_the_files_main_wrote(again, name):
    differ = differences(again, FIXTURE, name, close)
    assert not differ, differ[:5]


@pytest.mark.parametrize("name", ["config.json", "progress.json", "metrics.json"])
def test_the_same_command_on_the_same_machine_writes_the_same_files_exactly(again, twice, name):
    differ = differences(again, twice, name, exact)
    assert not differ, differ[:5]
    assert json.loads((again / name).read_text()).keys() == json.loads((twice / name).read_text()).keys()


def weights_and_predictions(run: Path):
    weights = torch.load(run / "checkpoints" / "best.pt", weights_only=False)["model"]
    with np.load(run / "predictions-train.npz") as f:
        return weights, {k: f[k] for k in f.files}


def test_the_same_seed_gives_the_same_weights_and_predictions(again, twice):
    (now, now_pred), (then, then_pred) = weights_and_predictions(again), weights_and_predictions(FIXTURE)
    assert now.keys() == then.keys()
    for key, tensor in then.items():
        assert now[key].shape == tensor.shape and now[key].dtype == tensor.dtype, key
        assert torch.allclose(now[key].float(), tensor.float(), atol=0.05), key  # across CPUs
    assert sorted(now_pred) == sorted(then_pred)
    for key, value in then_pred.items():
        if value.dtype.kind == "f":
            assert np.allclose(now_pred[key], value, atol=5e-4), key
        else:
            assert (now_pred[key] == value).all(), key  # labels and class names
    # and on this machine, bit for bit
    again_weights, again_pred = weights_and_predictions(twice)
    for key, tensor in now.items():
        assert torch.equal(tensor, again_weights[key]), key
    for key, value in now_pred.items():
        assert np.array_equal(value, again_pred[key]), key


def test_a_run_folder_written_by_main_still_loads(tmp_path, capsys):
    run = tmp_path / "old run"
    shutil.copytree(FIXTURE, run)
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert "Small CNN" in (tmp_path / "report" / "report.md").read_text()
    img = np.full((64, 64), 255, np.uint8)
    img[10:54, 28:36] = 0
    Image.fromarray(img).save(tmp_path / "l.png")
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--json", str(tmp_path / "l.png")]) == 0
    answer = json.loads(capsys.readouterr().out)
    recorded = json.loads((FIXTURE / "metrics.json").read_text())["stages"][-1]["calibration"]["temperature"]
    assert answer["temperatures"]["smallcnn"] == pytest.approx(recorded)
    assert sum(t["probability"] for t in answer["predictions"][0]["top3"]) <= 1 + 1e-6
    # and it evaluates again on the data it was trained on, to the figures it holds
    assert main(["evaluate", str(run), "--data-dir", str(tiny_data(tmp_path / "emnist")), "--no-plots"]) == 0
    accuracy = json.loads((run / "metrics.json").read_text())["stages"][-1]["metrics"]["accuracy"]
    assert accuracy == json.loads((FIXTURE / "metrics.json").read_text())["stages"][-1]["metrics"]["accuracy"]
