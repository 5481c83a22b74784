"""The report's real-world rows compare only readings of the same folder, as it held the same
images: a run that read another folder is left out of them, with a note that names it."""

from __future__ import annotations

import json

import pytest
from helpers import letters_folder

from letterbench.cli.main import main


@pytest.mark.slow  # trains three small models
def test_readings_of_different_folders_are_not_compared_in_one_row(tiny_letters, tmp_path):
    train = ["train", "--epochs", "1", "--train-per-class", "8", "--quiet", "--batch-size", "32"]
    train += ["--set", "val_fraction=0.25", "--data-dir", str(tiny_letters)]
    small, large = letters_folder(tmp_path / "small", 1), letters_folder(tmp_path / "large", 2)
    models = {"a": "timm:test_resnet", "b": "smallcnn", "c": "timm:resnet10t"}
    for name, folder in (("a", small), ("b", small), ("c", large)):
        assert main([*train, "--model", models[name], "--out", str(tmp_path / name)]) == 0
        assert main(["evaluate", str(tmp_path / name), "--no-plots", "--real-world", str(folder)]) == 0
    runs = [str(tmp_path / name) for name in "abc"]
    assert main(["report", *runs, "--out", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    row = next(r for r in summary["rows"] if r["key"] == "real_world_top1")
    known = [v for v in row["values"] if v is not None]
    assert len(known) >= 2 and None in row["values"]  # a and b compared; c (52 images) left out
    note = next(w for w in summary["warnings"] if w.startswith("Real-world rows:"))
    assert f"read {small} (26 images)" in note and "left out" in note
