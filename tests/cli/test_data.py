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
