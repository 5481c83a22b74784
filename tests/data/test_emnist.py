"""The data layer: strict IDX parsing, orientation, splits, import, and download over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic_letters, write_emnist

from letterbench.cli.main import main
from letterbench.core.errors import DataError
from letterbench.data.emnist import load_emnist, member_name
from letterbench.data.idx import encode_idx, read_idx

# An "F": not symmetric under any flip or transpose, so it proves the orientation fix.
GLYPH_F = np.zeros((28, 28), np.uint8)
GLYPH_F[4:24, 8:11] = 255  # the stem, on the left
GLYPH_F[4:7, 8:20] = 255  # top arm
GLYPH_F[12:15, 8:17] = 255  # middle arm


def test_images_come_out_upright_and_labels_from_zero(tmp_path):
    images = np.stack([GLYPH_F, GLYPH_F])
    labels = np.array([0, 25], np.uint8)
    write_emnist(tmp_path, (images, labels), (images[:1], labels[:1]))
    data = load_emnist(tmp_path, "letters")
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    np.testing.assert_array_equal(data.train_images[0].numpy(), GLYPH_F)
    assert data.train_labels.tolist() == [0, 25]
    assert data.class_names[0] == "a" and data.class_names[25] == "z"
    # what is on disk is the transpose, as in the official files
    raw = read_idx(tmp_path / member_name("letters", "train", "images"))
    np.testing.assert_array_equal(raw[0], GLYPH_F.T)


def test_files_under_gzip_folder_and_other_splits_load(tmp_path):
    imgs, labels = synthetic_letters(2, num_classes=10)
    write_emnist(tmp_path / "gzip", (imgs, labels), (imgs, labels), split="digits", label_offset=0)
    data = load_emnist(tmp_path, "digits")
    assert data.num_classes == 10 and len(data.train_labels) == 20
    assert data.class_names == list("0123456789")
    assert data.is_partial


def test_mismatched_pair_and_out_of_range_labels(tmp_path):
    imgs, labels = synthetic_letters(2)
    write_emnist(tmp_path, (imgs, labels[:-1]), (imgs, labels))
    with pytest.raises(DataError, match="does not belong together"):
        load_emnist(tmp_path)
    write_emnist(tmp_path, (imgs, labels), (imgs, labels), label_offset=0)  # labels 0..25: not Letters
    with pytest.raises(DataError, match="is this the right split"):
        load_emnist(tmp_path)


def test_missing_files_say_how_to_get_them(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "letterbench data fetch" in err


# ---------------------------------------------------------------- real partial data


def test_real_partial_data_loads_upright(real_data_dir):
    data = load_emnist(real_data_dir, "letters")
    assert len(data.train_labels) == 8_879 and len(data.test_labels) == 10_479
    assert data.train_labels.min() == 0 and data.train_labels.max() == 25
    assert data.is_partial
    # The mean "l" is a tall stroke: its ink spreads further vertically than horizontally.
    mean_l = data.train_images[data.train_labels == data.class_names.index("l")].float().mean(0)
    rows, cols = mean_l.sum(1), mean_l.sum(0)

    def spread(profile):
        idx = torch.arange(28, dtype=torch.float32)
        centre = (profile * idx).sum() / profile.sum()
        return ((profile * (idx - centre) ** 2).sum() / profile.sum()).sqrt()

    assert spread(rows) > 1.5 * spread(cols)


def test_official_label_checksums_are_recognised(real_data_dir, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    for part in ("train", "test"):
        official = real_data_dir / "official-labels" / member_name("letters", part, "labels")
        n = len(read_idx(official))
        (folder / official.name).write_bytes(official.read_bytes())
        (folder / member_name("letters", part, "images")).write_bytes(
            encode_idx(np.zeros((n, 28, 28), np.uint8))
        )
    data = load_emnist(folder)
    assert not data.is_partial
    assert data.members["train-labels"].official and data.members["test-labels"].official
    assert data.members["train-images"].official is None


# ---------------------------------------------------------------- archive, import


def test_a_home_relative_data_folder_is_expanded_from_the_variable_too(tmp_path, monkeypatch):
    from letterbench.data.emnist import resolve_data_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LETTERBENCH_DATA", "~/lb")
    assert resolve_data_dir(None) == tmp_path / "lb"
    assert resolve_data_dir("~/other") == tmp_path / "other"
