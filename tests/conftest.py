"""Shared fixtures: the real partial EMNIST copy, and small EMNIST-format data sets written on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from letterbench.cli.main import main
from letterbench.data.emnist import member_name
from letterbench.data.idx import encode_idx

REPO = Path(__file__).resolve().parents[1]
# The suite computes in float32 on every machine (and so do the commands it starts), so that its
# exact comparisons hold whether or not this CPU has native bf16; tests/test_precision.py runs the
# bf16 passes on purpose.
os.environ.setdefault("LETTERBENCH_PRECISION", "float32")
REAL_DATA = Path(os.environ.get("LETTERBENCH_TEST_DATA", REPO.parent / "shared" / "data" / "emnist"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not (REAL_DATA / member_name("letters", "train", "images")).exists():
        if os.environ.get("CI"):  # in CI a missing data folder is a broken set-up, not a reason to skip
            pytest.fail(
                f"real EMNIST data not found at {REAL_DATA} in CI (.ci/run sets LETTERBENCH_TEST_DATA)"
            )
        pytest.skip(f"real EMNIST data not found at {REAL_DATA} (set LETTERBENCH_TEST_DATA)")
    return REAL_DATA


def synthetic_letters(
    n_per_class: int, num_classes: int = 26, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Upright 28x28 images a small CNN can tell apart: class k is a bright bar whose
    position and angle depend on k, plus noise. Returned upright; labels 0-based."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32) - 13.5
    images, labels = [], []
    for k in range(num_classes):
        angle = np.pi * (k % 13) / 13
        offset = -5.0 if k < 13 else 5.0
        dist = np.abs(np.cos(angle) * xx + np.sin(angle) * yy - offset)
        base = np.clip(255 * (1.5 - dist) / 1.5, 0, 255)
        for _ in range(n_per_class):
            img = base + rng.normal(0, 20, base.shape)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.uint8)


def write_emnist(
    folder: Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    split: str = "letters",
    label_offset: int = 1,
) -> Path:
    """Write upright images and 0-based labels as an EMNIST split: transposed, labels shifted."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, (images, labels) in (("train", train), ("test", test)):
        (folder / member_name(split, part, "images")).write_bytes(encode_idx(images.transpose(0, 2, 1)))
        (folder / member_name(split, part, "labels")).write_bytes(encode_idx(labels + label_offset))
    return folder


@pytest.fixture
def tiny_letters(tmp_path: Path) -> Path:
    """A learnable 26-class Letters-format data dir: 20 train and 6 test images per class."""
    return write_emnist(tmp_path / "emnist", synthetic_letters(20, seed=1), synthetic_letters(6, seed=2))


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory):
    """Two tiny trained and evaluated runs: a one-phase ResNet-10 and a two-phase Xception."""
    root = tmp_path_factory.mktemp("eval")
    data = write_emnist(root / "emnist", synthetic_letters(8, seed=1), synthetic_letters(3, seed=2))
    common = ["--quiet", "--data-dir", str(data), "--train-per-class", "8", "--set", "val_fraction=0.25"]
    assert (
        main(["train", "--model", "timm:resnet10t", "--epochs", "3", "--out", str(root / "r10"), *common])
        == 0
    )
    assert (
        main(
            [
                "train",
                "--model",
                "xception",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--pretrained",
                "false",
                "--out",
                str(root / "xc"),
                *common,
            ]
        )
        == 0
    )
    for run in ("r10", "xc"):
        assert main(["evaluate", str(root / run)]) == 0
    return root
