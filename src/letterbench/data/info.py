"""`letterbench data info`: what a data dir holds, in numbers."""

from __future__ import annotations

import torch

from letterbench.data.emnist import EmnistData, verdict


def describe(data: EmnistData) -> str:
    info = data.info
    train = data.train_images.float()
    lines = [
        f"split {data.split}: {data.num_classes} classes, images {tuple(data.train_images.shape[1:])} uint8",
        f"  train images: {len(data.train_labels):>9,}  (official {info.train_count:,})",
        f"  test images:  {len(data.test_labels):>9,}  (official {info.test_count:,})",
        f"  train pixel mean {train.mean():.2f}, std {train.std():.2f} (0..255)",
        f"  status: {verdict(data)}",
        "  files:",
    ]
    for key, member in data.members.items():
        official = {"train": info.train_count, "test": info.test_count}.get(key.split("-")[0])
        state = {
            True: "official checksum",
            # a file with fewer images than the official one is a partial copy, not a damaged one
            False: "partial copy (fewer images than the official file)"
            if official is not None and member.count < official
            else "differs from the official file",
            None: "no official checksum on record",
        }
        lines.append(
            f"    {key:13s} {member.count:>9,}  sha256 {member.sha256[:16]}…  {state[member.official]}"
        )
        lines.append(f"                  {member.path}")
    train_counts = torch.bincount(data.train_labels, minlength=data.num_classes)
    test_counts = torch.bincount(data.test_labels, minlength=data.num_classes)
    lines.append("  per class:  class    train     test")
    for name, n_train, n_test in zip(
        data.class_names, train_counts.tolist(), test_counts.tolist(), strict=True
    ):
        lines.append(f"             {name:>5s} {n_train:>8,} {n_test:>8,}")
    return "\n".join(lines)
