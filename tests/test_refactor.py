"""Refactors change no result: the same seed writes the files the code of 2026-12-03 wrote
(``tests/fixtures/main-run``, made by ``tests/fixtures/make_main_run.py`` before inference got its
own module), and a run folder that code wrote still loads, reports and predicts."""

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

FIXTURE = Path(__file__).parent / "fixtures" / "main-run"
sys.path.insert(0, str(FIXTURE.parent))
from make_main_run import tiny_data, train_and_evaluate  # noqa: E402

# what differs between two runs of the same command: when and where, and measured speeds and times
VOLATILE = re.compile(
    r"created|command|data_dir|^\.run\.dir$|time_budget|images_per_s|other_cpu_cores|train_time_s"
    r"|peak_memory|latency_ms|_load\b|phase_times_s"
)


def flat(value, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flat(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flat(v, f"{path}[{i}]")
    else:
        yield path, value


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


@pytest.fixture(scope="module")
def again(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("again")
    train_and_evaluate(tiny_data(tmp / "emnist"), tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("name", ["config.json", "progress.json", "metrics.json"])
def test_the_same_seed_writes_the_files_main_wrote(again, name):
    now = dict(flat(json.loads((again / name).read_text())))
    then = dict(flat(json.loads((FIXTURE / name).read_text())))
    kept = [k for k in then if not VOLATILE.search(k)]
    assert {k for k in now if not VOLATILE.search(k)} == set(kept)
    assert len(kept) > 0.5 * len(then)  # most of the file is compared
    differ = [k for k in kept if not same(now[k], then[k])]
    assert not differ, [(k, then[k], now[k]) for k in differ[:5]]


def test_the_same_seed_gives_the_same_weights_and_predictions(again):
    now = torch.load(again / "checkpoints" / "best.pt", weights_only=False)["model"]
    then = torch.load(FIXTURE / "checkpoints" / "best.pt", weights_only=False)["model"]
    assert now.keys() == then.keys()
    for key, tensor in then.items():
        assert torch.allclose(now[key].float(), tensor.float(), atol=1e-6), key
    with np.load(again / "predictions-train.npz") as a, np.load(FIXTURE / "predictions-train.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in b.files:
            assert (
                np.allclose(a[key], b[key], atol=1e-6)
                if a[key].dtype.kind == "f"
                else (a[key] == b[key]).all()
            )


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
