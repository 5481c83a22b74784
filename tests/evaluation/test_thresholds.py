"""A model that is not yet useful says so: the report withholds its recommendation, and predict
names the measured test accuracy instead of blaming the letter."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from letterbench.cli.main import main


def test_an_untrained_model_is_called_not_yet_useful_by_report_and_predict(tiny_letters, tmp_path, capsys):
    run = tmp_path / "untrained"
    args = ["train", "--model", "timm:resnet10t", "--epochs", "1", "--out", str(run), "--quiet"]
    args += ["--data-dir", str(tiny_letters), "--train-per-class", "8", "--set", "val_fraction=0.25"]
    assert main([*args, "--set", "phases.0.optimizer.lr=1e-9"]) == 0  # the weights stay as drawn
    assert main(["evaluate", str(run), "--no-plots", "--data-dir", str(tiny_letters)]) == 0
    accuracy = json.loads((run / "metrics.json").read_text())["stages"][0]["metrics"]["accuracy"]
    assert accuracy < 0.2
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "recommendation: none: these models are not yet useful" in printed
    page = (tmp_path / "report" / "report.md").read_text()
    assert "Not yet useful:" in page and "Recommendation:" not in page
    letter = np.full((112, 112), 255, np.uint8)
    letter[20:92, 50:62] = 0
    Image.fromarray(letter).save(tmp_path / "l.png")
    assert main(["predict", str(tmp_path / "l.png"), "--run", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(
        "note: these models are not yet useful, so their answers are guesses: timm:resnet10t is"
    )
    assert f"{100 * accuracy:.1f}% of 156 test letters right" in lines[1]
    assert main(["predict", str(tmp_path / "l.png"), "--run", str(run), "--json"]) == 0
    assert "not yet useful" in json.loads(capsys.readouterr().out)["not_useful"]
