"""The data layer: strict IDX parsing, orientation, splits, import, and download over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from letterbench.core.errors import DataError
from letterbench.data.idx import encode_idx, parse_idx, read_idx

# An "F": not symmetric under any flip or transpose, so it proves the orientation fix.
GLYPH_F = np.zeros((28, 28), np.uint8)
GLYPH_F[4:24, 8:11] = 255  # the stem, on the left
GLYPH_F[4:7, 8:20] = 255  # top arm
GLYPH_F[12:15, 8:17] = 255  # middle arm


def test_idx_round_trip_exact(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([1, 2, 3, 26, 5], np.uint8)
    (tmp_path / "i.gz").write_bytes(encode_idx(images))
    (tmp_path / "l").write_bytes(encode_idx(labels, compress=False))
    np.testing.assert_array_equal(read_idx(tmp_path / "i.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "l"), labels)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-100], "truncated"),
        (lambda b: b + b"\0" * 10, "longer than its header"),
        (lambda b: b"\x00\x00\x08\x02" + b[4:], "magic number"),
        (lambda b: b[:6], "header cut short"),
        (lambda b: b"<!DOCTYPE html><html>moved</html>", "HTML page"),
    ],
)
def test_bad_idx_gives_one_clear_error(mutate, message):
    raw = encode_idx(np.zeros((3, 28, 28), np.uint8), compress=False)
    with pytest.raises(DataError, match=message) as info:
        parse_idx(mutate(raw), "some-file")
    assert "some-file" in str(info.value)


def test_truncated_gzip_is_reported_with_file_name(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(encode_idx(np.zeros((30, 28, 28), np.uint8))[:-20])
    with pytest.raises(DataError, match=r"x\.gz: the gzip stream is truncated or corrupt"):
        read_idx(path)


# ---------------------------------------------------------------- archive, import
