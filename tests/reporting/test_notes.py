"""The report's caveats (``reporting/notes.py``): a test set spread unevenly over the classes is
said where the reader meets the figures it makes unreliable."""

from __future__ import annotations

import numpy as np
import pytest

from letterbench.cli.main import main
from letterbench.reporting.report import build_report


@pytest.fixture(scope="module")
def uneven_run(tmp_path_factory):
    """timm's tiny test ResNet trained for one epoch (seconds) and evaluated on a test set as
    unevenly spread as the partial EMNIST copy's: 12 images for each of a..m, 1 for each of n..z."""
    from conftest import synthetic_letters, write_emnist

    root = tmp_path_factory.mktemp("uneven")
    images, labels = synthetic_letters(12, seed=2)
    keep = (labels < 13) | (np.arange(len(labels)) % 12 == 0)
    data = write_emnist(root / "emnist", synthetic_letters(4, seed=1), (images[keep], labels[keep]))
    train = ["train", "--model", "timm:test_resnet", "--pretrained", "false", "--epochs", "1", "--quiet"]
    args = ["--data-dir", str(data), "--set", "val_fraction=0.25", "--out", str(root / "run")]
    assert main([*train, *args]) == 0
    assert main(["evaluate", str(root / "run"), "--no-plots"]) == 0
    return root / "run"


@pytest.mark.slow  # trains a model on an uneven set
def test_a_test_set_spread_unevenly_is_said_with_the_figures_it_makes_unreliable(uneven_run, tmp_path):
    out = tmp_path / "report"
    summary = build_report([uneven_run], out)
    [note] = [w for w in summary["warnings"] if "spread unevenly" in w]
    assert note.startswith(
        "The test images are spread unevenly over the classes: 12 for each of a..m, 1 for each of n..z."
    )
    assert "Macro precision, recall, F1 and ROC AUC weigh every class the same, so n..z" in note
    assert "fewer than a tenth of the largest class's 12 images" in note
    assert "read accuracy and weighted F1 instead" in note
    assert note.endswith("The per-class figures of n..z rest on 1 test image each.")
    # in the report's caveat box, with the other caveats
    md = (out / "report.md").read_text()
    box = md.split("**Read these numbers with care:**")[1].split("\n\n")[0]
    assert "The test images are spread unevenly over the classes: 12 for each of a..m" in box


def test_a_test_set_spread_evenly_gets_no_such_caveat(two_runs, tmp_path):
    summary = build_report([two_runs / "r10", two_runs / "xc"], tmp_path / "report")  # 3 of each class
    assert summary["warnings"] and not any("unevenly" in w for w in summary["warnings"])


def test_runs_tested_on_different_spreads_are_each_named():
    """Two runs' test sets told apart: each uneven one has its own note, named by its run."""
    from letterbench.reporting.notes import _uneven_warning

    counts = dict(zip("abcdefghij", [800] * 6 + [438, 36, 1, 2], strict=True))
    note = _uneven_warning(counts, " of ResNet-18")
    assert note.startswith(
        "The test images are spread unevenly over the classes of ResNet-18: "
        "800 for each of a..f, 438 for g, 36 for h, 1 to 2 for each of i, j."
    )
    assert "so h..j (fewer than a tenth" in note and note.endswith("rest on 1 to 36 test images each.")
    assert _uneven_warning(dict(zip("abc", [80, 9, 8], strict=True)), "") is None  # a tenth of 80 is 8
