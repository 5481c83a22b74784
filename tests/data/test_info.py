"""The data layer: strict IDX parsing, orientation, splits, import, and download over real HTTP."""

from __future__ import annotations

import numpy as np

from letterbench.cli.main import main

# An "F": not symmetric under any flip or transpose, so it proves the orientation fix.
GLYPH_F = np.zeros((28, 28), np.uint8)
GLYPH_F[4:24, 8:11] = 255  # the stem, on the left
GLYPH_F[4:7, 8:20] = 255  # top arm
GLYPH_F[12:15, 8:17] = 255  # middle arm


def test_data_info_on_real_data(real_data_dir, capsys):
    assert main(["data", "info", "--data-dir", str(real_data_dir)]) == 0
    out = capsys.readouterr().out
    assert "8,879" in out and "10,479" in out and "PARTIAL" in out
    assert "115,921 missing" in out


# ---------------------------------------------------------------- archive, import
