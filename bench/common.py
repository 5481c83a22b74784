"""What several scripts in ``bench/`` share, written once: where the EMNIST data is, a study run
in a child process and timed from outside, and the EMNIST test slice of classes a..l.

A script in ``bench/`` imports it as ``common`` (Python puts a script's own folder first on
``sys.path``). The data-set builders in ``bench/sets/`` need none of it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "emnist"  # a partial copy kept beside the checkout
A_TO_L = 12  # the slice's classes: a..l
SLICE_END = 9600  # official test indices 0..9,599: the 800 test images of each of a..l


def default_data_dir() -> Path:
    """``$LETTERBENCH_DATA``, else the shared copy beside the checkout (``../shared/data/emnist``)."""
    return Path(os.environ.get("LETTERBENCH_DATA") or SHARED_DATA)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, by default ``default_data_dir()``."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="the EMNIST folder (default: $LETTERBENCH_DATA, else ../shared/data/emnist beside the checkout)",
    )


def run_study(preset: str, data_dir: Path, out: Path, more: list[str] = ()) -> tuple[float, str]:
    """`letterbench run --preset PRESET` in a child process on this checkout's code: its wall
    clock timed from outside, and what it printed; exits with its error where it fails."""
    command = [sys.executable, "-m", "letterbench", "run", "--preset", preset, "--quiet"]
    command += ["--data-dir", str(data_dir), "--out", str(out), *more]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"letterbench run failed ({done.returncode}):\n{done.stderr}")
    return wall, done.stdout


def a_to_l_slice(
    data_dir: Path, images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official test images of classes a..l (test indices 0..9,599; all in the partial copy, so
    a figure on them compares between a partial copy and the full one), from the data folder's
    test ``images`` and ``labels`` in its own order."""
    listed = data_dir / "emnist-letters-test-indices.txt"
    if not listed.is_file():
        sys.exit(f"{listed} not found: the a..l slice needs the copy's official test indices")
    rows = torch.from_numpy(np.flatnonzero(np.loadtxt(listed, dtype=np.int64) < SLICE_END))
    if len(rows) != SLICE_END:
        sys.exit(f"{data_dir} holds {len(rows):,} of the official test indices below {SLICE_END:,}, not all")
    return images[rows], labels[rows]


def on_a_to_l(labels: np.ndarray) -> np.ndarray:
    """Which of a run's test predictions are of classes a..l (its labels 0..25): the a..l slice
    where the run was tested on every test image of the copy."""
    return np.asarray(labels) < A_TO_L
