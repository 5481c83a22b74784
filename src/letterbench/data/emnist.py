"""EMNIST splits: where the files are, how to load them, and whether they are the official ones.

Loading returns whole splits as in-memory tensors (the full Letters set is about
114 MB as uint8), upright, with labels starting at 0, so that training can put
the whole set on its device and augment there.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from letterbench.core.errors import DataError
from letterbench.data.catalog import (  # noqa: F401  (the catalog's names, read from here too)
    ARCHIVE_SHA256,
    ARCHIVE_SIZE,
    ARCHIVE_URL,
    KINDS,
    PARTS,
    SPLITS,
    SplitInfo,
    member_name,
    split_info,
)
from letterbench.data.idx import IMAGES_MAGIC, LABELS_MAGIC, decompress, parse_idx


def mapping_name(split: str) -> str:
    return f"emnist-{split}-mapping.txt"


def default_data_dir() -> Path:
    return Path(os.environ.get("LETTERBENCH_DATA") or Path.home() / ".cache" / "letterbench").expanduser()


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``--data-dir``, else ``$LETTERBENCH_DATA``, else ``~/.cache/letterbench``."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def find_member(data_dir: Path, name: str) -> Path | None:
    """The file for ``name`` directly in ``data_dir`` or under ``gzip/``, compressed or not."""
    for folder in (data_dir, data_dir / "gzip"):
        for candidate in (folder / name, folder / name.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
    return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class MemberInfo:
    path: Path
    count: int
    sha256: str  # of the decompressed payload
    official: bool | None  # None: no official checksum on record


@dataclass
class EmnistData:
    """One EMNIST split in memory: uint8 (N, 28, 28) upright images, int64 labels 0..C-1."""

    split: str
    class_names: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    members: dict[str, MemberInfo]

    @property
    def info(self) -> SplitInfo:
        return SPLITS[self.split]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_partial(self) -> bool:
        return len(self.train_labels) < self.info.train_count or len(self.test_labels) < self.info.test_count

    @property
    def checksums(self) -> dict[str, str]:
        return {key: member.sha256 for key, member in self.members.items()}

    def provenance(self) -> dict:
        """What a run records about its data: counts, checksums and the official/partial verdict."""
        return {
            "split": self.split,
            "train_images": len(self.train_labels),
            "test_images": len(self.test_labels),
            "official_train_images": self.info.train_count,
            "official_test_images": self.info.test_count,
            "partial": self.is_partial,
            "verdict": verdict(self),
            "sha256": self.checksums,
        }


def _read_member(data_dir: Path, split: str, part: str, kind: str) -> tuple[np.ndarray, MemberInfo]:
    name = member_name(split, part, kind)
    path = find_member(data_dir, name)
    if path is None:
        raise DataError(
            f"{name} not found in {data_dir} (nor under {data_dir / 'gzip'}); "
            f"run `letterbench data fetch --split {split}` or `letterbench data import PATH`, "
            "or point --data-dir / LETTERBENCH_DATA at a folder that holds it"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    payload = decompress(raw, str(path))
    array = parse_idx(payload, str(path))
    digest = sha256_bytes(payload)
    expected_magic = IMAGES_MAGIC if kind == "images" else LABELS_MAGIC
    if (array.ndim == 3) != (expected_magic == IMAGES_MAGIC):
        raise DataError(f"{path}: holds {'images' if array.ndim == 3 else 'labels'}, expected {kind}")
    if kind == "images" and array.shape[1:] != (28, 28):
        raise DataError(f"{path}: images are {array.shape[1]}x{array.shape[2]}, EMNIST images are 28x28")
    official_hash = SPLITS[split].official_sha256.get(f"{part}-{kind}")
    official = None if official_hash is None else digest == official_hash
    return array, MemberInfo(path, int(array.shape[0]), digest, official)


def _read_mapping(data_dir: Path, info: SplitInfo) -> list[str]:
    path = find_member(data_dir, mapping_name(info.name))
    if path is None:
        return list(info.class_names)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: not an EMNIST mapping file ({exc}); delete it to use built-in names"
        ) from None
    return parse_mapping(text, info, str(path))


def parse_mapping(text: str, info: SplitInfo, where: str) -> list[str]:
    """Class names from an EMNIST mapping file: one ``label code [code]`` row per class, in label
    order (Letters rows are "label upper lower"; a class is named by its last, lowercase, form)."""
    names: list[str] = []
    try:
        for row, line in enumerate(text.split("\n")):
            if line.strip():
                fields = [int(f) for f in line.split()]
                if len(fields) < 2 or fields[0] != len(names) + info.label_offset:
                    raise ValueError(f"row {row + 1} is {line.strip()!r}")
                names.append(chr(fields[-1]))
    except (ValueError, OverflowError) as exc:
        raise DataError(
            f"{where}: not an EMNIST mapping file ({exc}); delete it to use built-in names"
        ) from None
    if len(names) != info.num_classes:
        raise DataError(f"{where}: lists {len(names)} classes, split {info.name} has {info.num_classes}")
    if len(set(names)) != len(names) or not all(n.isprintable() and not n.isspace() for n in names):
        raise DataError(
            f"{where}: class names must be distinct printable characters, got {''.join(names)!r}; "
            "delete it to use built-in names"
        )
    return names


def load_emnist(data_dir: str | os.PathLike | None = None, split: str = "letters") -> EmnistData:
    """Load a whole split, checking every file, with images upright and labels from 0."""
    info = split_info(split)
    root = resolve_data_dir(data_dir)
    if root.exists() and not root.is_dir():
        raise DataError(
            f"data directory {root} is a file, not a folder; pass the folder that holds the IDX files"
        )
    if not root.is_dir():
        raise DataError(
            f"data directory {root} does not exist; run `letterbench data fetch` or pass --data-dir"
        )
    arrays: dict[str, np.ndarray] = {}
    members: dict[str, MemberInfo] = {}
    for part in PARTS:
        for kind in KINDS:
            arrays[f"{part}-{kind}"], members[f"{part}-{kind}"] = _read_member(root, split, part, kind)
    tensors = {}
    for part in PARTS:
        images, labels = arrays[f"{part}-images"], arrays[f"{part}-labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{members[f'{part}-images'].path} holds {len(images):,} images but "
                f"{members[f'{part}-labels'].path} holds {len(labels):,} labels; the pair does not belong together"
            )
        labels = labels.astype(np.int64) - info.label_offset
        if len(labels) and (labels.min() < 0 or labels.max() >= info.num_classes):
            lo, hi = labels.min() + info.label_offset, labels.max() + info.label_offset
            raise DataError(
                f"{members[f'{part}-labels'].path}: labels run {lo}..{hi}, split {split} expects "
                f"{info.label_offset}..{info.num_classes - 1 + info.label_offset}; is this the right split?"
            )
        # EMNIST stores each image transposed (column-major); swap the axes to make it upright.
        tensors[f"{part}_images"] = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 2, 1)))
        tensors[f"{part}_labels"] = torch.from_numpy(labels)
    return EmnistData(split, _read_mapping(root, info), members=members, **tensors)


def verdict(data: EmnistData) -> str:
    """One plain sentence: official, partial, or unofficial, and why."""
    info = data.info
    mismatched = [key for key, m in data.members.items() if m.official is False]
    if data.is_partial:
        missing_train = info.train_count - len(data.train_labels)
        missing_test = info.test_count - len(data.test_labels)
        return (
            f"PARTIAL copy: {len(data.train_labels):,} of {info.train_count:,} train images "
            f"({missing_train:,} missing), {len(data.test_labels):,} of {info.test_count:,} test images "
            f"({missing_test:,} missing); accuracy on it is not comparable with full-test-set results"
        )
    if mismatched:
        return (
            f"UNOFFICIAL copy: official counts, but {', '.join(mismatched)} differ from the official release"
        )
    verified = [key for key, m in data.members.items() if m.official]
    unknown = [key for key, m in data.members.items() if m.official is None]
    if unknown:
        return (
            f"complete: official counts; checksums verified for {', '.join(verified) or 'no member'}, "
            f"none on record for {', '.join(unknown)}"
        )
    return "official: every member matches the official checksum"


def stratified_split(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, stratified train/validation indices into ``labels``."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    indices = np.arange(len(labels))
    try:
        train_idx, val_idx = train_test_split(
            indices, test_size=val_fraction, stratify=labels.numpy(), random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"cannot make a stratified validation split of {len(labels)} images ({exc}); "
            "train on more images per class or raise the validation fraction (--set val_fraction=0.3)"
        ) from None
    return torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))


def stratified_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Up to ``per_class`` indices of each class, chosen with a seeded generator, in ascending order."""
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in labels.unique():
        idx = (labels == cls).nonzero().flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    return torch.cat(chosen).sort().values
