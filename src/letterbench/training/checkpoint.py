"""Checkpoints: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from letterbench.errors import TrainingError
from letterbench.fsutil import atomic_save

FORMAT = "letterbench-checkpoint-1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialise to memory first, then write temp file + fsync + rename: a crash leaves the old file."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_save(path, lambda handle: handle.write(buffer.getbuffer()))


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found; the run has no finished epoch to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainingError(
            f"{path}: checkpoint is corrupt or truncated ({type(exc).__name__}); "
            "delete it to restart the run, or restore it from a backup"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(
            f"{path}: not a letterbench checkpoint (format {state.get('format') if isinstance(state, dict) else '?'})"
        )
    return state
