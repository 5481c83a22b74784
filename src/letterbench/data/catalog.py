"""The EMNIST catalogue: the official archive, its splits and their file names. Torch-free, so
that the command line's parser lists the splits without importing torch."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from letterbench.core.errors import DataError

ARCHIVE_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
ARCHIVE_SIZE = 561_753_746
ARCHIVE_SHA256 = "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"

_DIGITS = list(string.digits)
_UPPER = list(string.ascii_uppercase)
_MERGED_LOWER = list("abdefghnqrt")  # the 11 lowercase letters balanced/bymerge keep apart


@dataclass(frozen=True)
class SplitInfo:
    name: str
    train_count: int
    test_count: int
    class_names: tuple[str, ...]
    label_offset: int = 0  # Letters labels run 1..26 in the files
    # SHA-256 of the *decompressed* IDX member, where it is on record. Compression
    # settings differ between copies, the payload does not.
    official_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


SPLITS: dict[str, SplitInfo] = {
    "letters": SplitInfo(
        "letters",
        124_800,
        20_800,
        tuple(string.ascii_lowercase),
        label_offset=1,
        official_sha256={
            "train-labels": "e8e94c3f4353d5532fd9604b939cb4c76e7847945b9b0d9ff7884d881dead6bc",
            "test-labels": "22dbcde0a929a7f166bdac863b9195b2994d840a1e082f8f6daaeac5606376a6",
        },
    ),
    "balanced": SplitInfo("balanced", 112_800, 18_800, tuple(_DIGITS + _UPPER + _MERGED_LOWER)),
    "bymerge": SplitInfo("bymerge", 697_932, 116_323, tuple(_DIGITS + _UPPER + _MERGED_LOWER)),
    "byclass": SplitInfo("byclass", 697_932, 116_323, tuple(_DIGITS + _UPPER + list(string.ascii_lowercase))),
    "digits": SplitInfo("digits", 240_000, 40_000, tuple(_DIGITS)),
    "mnist": SplitInfo("mnist", 60_000, 10_000, tuple(_DIGITS)),
}

PARTS = ("train", "test")
KINDS = {"images": "images-idx3", "labels": "labels-idx1"}


def split_info(split: str) -> SplitInfo:
    try:
        return SPLITS[split]
    except KeyError:
        raise DataError(f"unknown EMNIST split {split!r}; choose one of: {', '.join(SPLITS)}") from None


def member_name(split: str, part: str, kind: str) -> str:
    """File name of one IDX member, as in the official archive (without the ``gzip/`` folder)."""
    return f"emnist-{split}-{part}-{KINDS[kind]}-ubyte.gz"
