"""The data a command needs: found where it is looked for, else fetched from the official
archive, else one line saying how to provide it."""

from __future__ import annotations

from pathlib import Path

from letterbench.core.errors import DataError
from letterbench.data.emnist import ARCHIVE_URL, KINDS, PARTS, find_member, member_name, resolve_data_dir
from letterbench.data.fetch import fetch


def ensure_data(data_dir: Path | None, split: str = "letters") -> Path:
    """The data dir, fetching the archive if files are missing and the network allows."""
    root = resolve_data_dir(data_dir)
    names = [member_name(split, p, k) for p in PARTS for k in KINDS]
    if all(find_member(root, name) is not None for name in names):
        return root
    print(f"EMNIST {split} not found in {root}; downloading {ARCHIVE_URL}")
    try:
        fetch(root, split, ARCHIVE_URL)
    except DataError as exc:
        raise DataError(
            f"EMNIST {split} is not in {root} and could not be downloaded ({exc}). Download {ARCHIVE_URL} on a "
            "machine with internet and run `letterbench data import gzip.zip`, or pass --data-dir / set "
            "LETTERBENCH_DATA to a folder with the IDX files"
        ) from None
    return root
