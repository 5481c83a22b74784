"""Models: shapes, parameter counts, safe weight loading, freezing, the `models` command."""

from __future__ import annotations

import torch

from letterbench.cli.main import main
from letterbench.models import (
    create_model,
)


def test_models_command_table_and_weights_check(tmp_path, capsys):
    assert main(["models", "resnet18", "timm:resnet10t"]) == 0
    out = capsys.readouterr().out
    assert "11,181,018" in out and "1x28x28" in out and "timm:resnet10t" in out and "FLOPs" in out
    lines = out.splitlines()  # said before the slow part, then a row per model as it is measured
    assert lines[0].startswith("building 2 model(s)") and lines[2].startswith("resnet18 ")
    assert "are downloaded the first time a recipe asks for them" in out and "--model timm:<name>" in out
    torch.save(create_model("resnet18").state_dict(), tmp_path / "r.pth")
    assert main(["models", "resnet18", "--weights", str(tmp_path / "r.pth")]) == 0
    assert "fits" in capsys.readouterr().out
    assert main(["models", "xception", "--weights", str(tmp_path / "r.pth")]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_models_prints_each_row_before_it_measures_the_next_model(monkeypatch, capsys):
    """`models` streams: each model's row is on screen before the next model is built (building
    and counting every model takes seconds, tens under load)."""
    from letterbench.reporting import tables

    measure = tables.model_row
    printed_before = {}

    def watched(name, num_classes):  # the real measurement, noting what was printed before it
        printed_before[name] = capsys.readouterr().out
        return measure(name, num_classes)

    monkeypatch.setattr(tables, "model_row", watched)
    assert main(["models", "smallcnn", "resnet18", "timm:resnet10t"]) == 0
    rows = {n: [line.split()[0] for line in out.splitlines() if line] for n, out in printed_before.items()}
    assert printed_before["smallcnn"].startswith("building 3 model(s)")
    assert rows == {
        "smallcnn": ["building", "model"],
        "resnet18": ["smallcnn"],
        "timm:resnet10t": ["resnet18"],
    }, rows
