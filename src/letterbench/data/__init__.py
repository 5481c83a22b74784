"""EMNIST on disk and in memory: IDX parsing, download/import, loading and splitting.

The catalogue of splits (``catalog.py``) is torch-free; the loaders below are imported on first use.
"""

from importlib import import_module

from letterbench.data.catalog import SPLITS

_LAZY = ("EmnistData", "load_emnist", "resolve_data_dir", "stratified_split", "stratified_subset", "verdict")


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module("letterbench.data.emnist"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPLITS", *_LAZY]
