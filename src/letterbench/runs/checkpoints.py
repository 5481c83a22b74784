"""A run's checkpoints, as ``RunDir`` writes and reads them: atomic writes, one file under several
names (hard links), the optimiser state dropped once a run has finished, and clear errors for a
checkpoint missing, damaged or of another model (for a best one, the command that trains it again)."""

from __future__ import annotations

import io
import shlex
from pathlib import Path
from typing import Any

import torch

from letterbench.core.errors import LetterbenchError, TrainingError
from letterbench.core.fsutil import atomic_link, atomic_save

CHECKPOINT_FORMAT = "letterbench-checkpoint-1"


class CheckpointFiles:
    """``RunDir``'s checkpoints (its ``checkpoint`` paths, ``has_checkpoint`` and ``read_config``)."""

    path: Path

    def save_checkpoint(self, which: str | list[str], state: dict[str, Any]) -> None:
        """Write the first checkpoint named (temp file + fsync + rename: a crash leaves the old
        file); the others name the same file (a hard link: ``best`` and the phase's best are one
        file on disk, not two copies)."""
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
        first, *others = [which] if isinstance(which, str) else which
        atomic_save(self.checkpoint(first), lambda handle: handle.write(buffer.getbuffer()))
        for name in others:
            atomic_link(self.checkpoint(first), self.checkpoint(name))

    def drop_optimizer_state(self) -> int:
        """Rewrite ``last`` without the optimiser's running state (momentum, Adam's moments: as
        large as the weights, twice for Adam) once the run has finished; the bytes saved."""
        path = self.checkpoint("last")
        state = self.load_checkpoint("last")
        if state.get("optimizer") is None:
            return 0
        before = path.stat().st_size
        self.save_checkpoint("last", {**state, "optimizer": None})
        return before - path.stat().st_size

    def _lost_best(self, which: str, problem: str) -> TrainingError:
        """A best checkpoint missing or damaged: no other file holds its epoch's weights, so the
        way back is a backup or training the run again, by the command that made it."""
        try:
            command = shlex.join(["letterbench", *(self.read_config().command or ["-"])[1:]])
        except (LetterbenchError, KeyError, TypeError, IndexError):
            command = "letterbench train ..."
        return TrainingError(
            f"{self.checkpoint(which)}: {problem}; it held the best epoch's weights, which no other file "
            f"holds: restore it from a backup, or train the model again into a new folder: `{command}` "
            "with another --out"
        )

    def load_checkpoint(self, which: str) -> dict[str, Any]:
        path = self.checkpoint(which)
        if not path.is_file():
            if which != "last" and self.has_checkpoint("last"):
                raise self._lost_best(which, "checkpoint not found")
            raise TrainingError(f"{path}: checkpoint not found; the run has no finished epoch to resume from")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            if which != "last":
                raise self._lost_best(
                    which, f"checkpoint is corrupt or truncated ({type(exc).__name__})"
                ) from None
            raise TrainingError(
                f"{path}: checkpoint is corrupt or truncated ({type(exc).__name__}); "
                "delete it to restart the run, or restore it from a backup"
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            found = state.get("format") if isinstance(state, dict) else "?"
            raise TrainingError(f"{path}: not a letterbench checkpoint (format {found})")
        return state

    def load_weights_into(self, model: torch.nn.Module, which: str) -> dict[str, Any]:
        """Load a checkpoint's weights into ``model``; a clear error if they belong to another model."""
        state = self.load_checkpoint(which)
        try:
            model.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as exc:
            raise TrainingError(
                f"{self.checkpoint(which)}: does not fit model {getattr(model, 'name', '?')}: "
                f"{str(exc).splitlines()[0][:200]}"
            ) from None
        return state
