"""EMNIST on disk and in memory: IDX parsing, download/import, loading and splitting."""

from letterbench.data.emnist import (
    SPLITS,
    EmnistData,
    load_emnist,
    resolve_data_dir,
    stratified_split,
    stratified_subset,
    verdict,
)

__all__ = [
    "SPLITS",
    "EmnistData",
    "load_emnist",
    "resolve_data_dir",
    "stratified_split",
    "stratified_subset",
    "verdict",
]
