"""A model that is not yet useful says so: the report withholds its recommendation, and predict
names the measured test accuracy instead of blaming the letter."""

from __future__ import annotations

import json

from letterbench.cli.main import main


def test_the_first_preset_trains_the_small_cnn_alone_and_says_how_to_serve_it(tiny_letters, tmp_path, capsys):
    """`run --preset first`: one small model on all the training images, a recommendation that
    names it as the only model (no paired test to speak of), and the next step: serve it."""
    out = tmp_path / "first"
    args = ["run", "--preset", "first", "--data-dir", str(tiny_letters), "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert json.loads((out / "study.json").read_text())["models"] == ["smallcnn"]
    config = json.loads((out / "runs" / "smallcnn" / "config.json").read_text())
    assert config["recipe"]["name"] == "smallcnn" and config["data"]["train_per_class"] == 360
    assert config["data"]["train_used"] + config["data"]["val_used"] == 26 * 20  # all of these 20 per letter
    assert "Small CNN" in printed and "the only model here:" in printed
    assert "per-image predictions" not in printed
    assert f"next: `letterbench serve --run {out}` reads the letters" in printed
