"""Run and study directories: the one place that knows their layout.

A run directory (``letterbench train``, or ``runs/<model>`` of a study)::

    config.json        resolved recipe, seed, data provenance, model, device, versions
    progress.json      status (running / interrupted / finished) and per-epoch history
    checkpoints/       last.pt (every epoch), best.pt and best-<phase>.pt (by validation loss)
    metrics.json       test metrics and measured cost (``letterbench evaluate``)
    predictions-<phase>.npz   test probabilities and labels of each phase's best model
    curves.png confusion.png roc.png errors.png   plots of the evaluated run
    tensorboard/       TensorBoard event files, where asked for
    export/            model.onnx, model.torchscript.pt (``letterbench export``)

It holds ``.letterbench.lock`` while a process works in it (see ``fsutil.locked``). A study
directory (``letterbench run``) is ``studydir.StudyDir``'s. Every other module asks these classes
for paths and contents; none spells a file name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from letterbench.core.errors import LetterbenchError, TrainingError
from letterbench.core.fsutil import atomic_write_json, locked
from letterbench.recipes import RESERVED
from letterbench.runs.checkpoints import CheckpointFiles
from letterbench.runs.readings import SavedReadings
from letterbench.runs.records import METRICS_SCHEMA, RunConfig, RunMetrics, RunProgress, Stage, checked

PLOT_FILES = {"curves": "curves.png", "confusion": "confusion.png", "roc": "roc.png", "errors": "errors.png"}
LOCK_FILE = ".letterbench.lock"
# a temporary file of an atomic write (``fsutil``): ``.NAME.XXXXXXXX.tmp`` (mkstemp's eight
# characters) or ``.NAME.PID.link.tmp``, beside the file NAME it was to replace
OWN_TEMPORARY = re.compile(r"\.(?P<target>.+)\.(?:[a-z0-9_]{8}|\d+\.link)\.tmp")
OWN_RUN_FILE = re.compile(
    r"(config|progress|metrics)\.json|(predictions|real-world)-.+\.npz|"
    + "|".join(re.escape(name) for name in PLOT_FILES.values())
)
OWN_CHECKPOINT = re.compile(r"(last|best(-.+)?)\.pt")
EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}  # `letterbench export`


def run_slug(model: str) -> str:
    """A model name as a folder name (``timm:resnet10t`` -> ``timm-resnet10t``)."""
    return model.replace(":", "-").replace("/", "-")


def default_run_dir(name: str) -> RunDir:
    """Where `letterbench train` puts a run when no ``--out`` is given."""
    return RunDir(Path("runs") / run_slug(name))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path}: unreadable {what} ({exc}); the run directory is damaged") from None


@dataclass(frozen=True)
class RunDir(CheckpointFiles, SavedReadings):
    """One training run on disk."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------ paths

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def progress_file(self) -> Path:
        return self.path / "progress.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def export_dir(self) -> Path:
        return self.path / "export"

    def export_file(self, fmt: str) -> Path:
        """Where `letterbench export --format FMT` writes by default (``onnx`` or ``torchscript``)."""
        return self.export_dir / EXPORT_FILES[fmt]

    def checkpoint(self, which: str) -> Path:
        """``last``, ``best`` or a phase name (its best checkpoint). Recipes may not name a phase
        ``last`` or ``best`` (see ``RESERVED``), so the names never collide."""
        name = f"{which}.pt" if which in RESERVED else f"best-{which}.pt"
        return self.checkpoint_dir / name

    def predictions_file(self, phase: str) -> Path:
        return self.path / f"predictions-{phase}.npz"

    def real_world_file(self, phase: str) -> Path:
        return self.path / f"real-world-{phase}.npz"

    def has_real_world(self, folder: str | None = None, fingerprint: str | None = None) -> bool:
        """Whether the run read a ``--real-world`` folder (``folder``, where given, holding what
        ``fingerprint`` says, where given) in every phase it has a reading of."""
        if not self.is_run():
            return False
        phases = [p for p in self.phases() if self.real_world_file(p).is_file()]
        if not phases or folder is None:
            return bool(phases)
        readings = [self.load_real_world(p) for p in phases]
        return all(
            r is not None and r.folder == folder and fingerprint in (None, r.fingerprint) for r in readings
        )

    def plot_file(self, kind: str) -> Path:
        return self.path / PLOT_FILES[kind]

    def plots(self) -> dict[str, Path]:
        """The run's plots that exist, by kind."""
        return {kind: self.plot_file(kind) for kind in PLOT_FILES if self.plot_file(kind).is_file()}

    # ------------------------------------------------------------ state

    def is_run(self) -> bool:
        return self.config_file.is_file()

    def is_empty(self) -> bool:
        return not self.path.exists() or all(p.name == LOCK_FILE for p in self.path.iterdir())

    def lock(self, take: bool = True):
        """Exclusive use of this run directory for the block (see ``fsutil.locked``); ``take=False``
        (the other ranks of a torchrun job) is a no-op."""
        return locked(self.path, self.path / LOCK_FILE, "run directory", take)

    def status(self) -> str:
        """``finished``, ``running``, ``interrupted``, ``failed`` or ``not started``."""
        try:
            return json.loads(self.progress_file.read_text())["status"]
        except (OSError, ValueError, KeyError, TypeError):
            return "not started"

    def has_checkpoint(self, which: str) -> bool:
        return self.checkpoint(which).is_file()

    def is_own_temporary(self, path: Path) -> bool:
        """Whether ``path`` is what an atomic write of one of the run's own files, killed halfway,
        left behind (never a user's ``.notes.tmp`` or anything else ending in ``.tmp``)."""
        found = OWN_TEMPORARY.fullmatch(path.name)
        if found is None:
            return False
        own = OWN_CHECKPOINT if path.parent == self.checkpoint_dir else OWN_RUN_FILE
        return path.parent in (self.path, self.checkpoint_dir) and own.fullmatch(found["target"]) is not None

    def remove_temporaries(self) -> list[Path]:
        """Remove what an atomic write killed halfway left here (``.NAME.XXXXXXXX.tmp`` beside the
        run's own file NAME, in the run folder and its checkpoints); call it holding the lock."""
        found = [
            path
            for folder in (self.path, self.checkpoint_dir)
            if folder.is_dir()
            for path in folder.iterdir()
            if path.is_file() and not path.is_symlink() and self.is_own_temporary(path)
        ]
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def _written_by_us(self, path: Path) -> bool:
        """Whether a file in a run that never finished an epoch is one letterbench writes there."""
        if self.is_own_temporary(path):  # an interrupted atomic write
            return True
        if path.parent == self.path:
            return path in (self.config_file, self.progress_file)
        if path.parent == self.checkpoint_dir:  # best checkpoints written before an interrupted "last"
            return re.fullmatch(r"best(-.+)?\.pt", path.name) is not None
        return self.tensorboard_dir in path.parents and path.name.startswith("events.out.tfevents.")

    def foreign_files(self) -> list[str]:
        """Files in a run that never finished an epoch that letterbench does not write there."""
        if not self.path.is_dir() or self.has_checkpoint("last"):
            return []
        return sorted(str(p.relative_to(self.path)) for p in self._files() if not self._written_by_us(p))

    def _files(self) -> list[Path]:
        """Every file in the run directory but the lock of the process that holds it."""
        return [p for p in self.path.rglob("*") if not p.is_dir() and p != self.path / LOCK_FILE]

    def clear_unstarted(self) -> None:
        """Remove what letterbench wrote into a run that never finished an epoch (config and progress
        files, best checkpoints written before an interrupted ``last``, TensorBoard events, temporary
        files), so that it can start again. Anything else in the folder is the user's: then nothing
        is removed and the error says what is in the way."""
        if not self.path.exists():
            return
        if self.has_checkpoint("last"):
            raise TrainingError(f"{self.path} has a finished epoch; resume it instead of starting again")
        foreign = self.foreign_files()
        if foreign:
            raise TrainingError(
                f"{self.path} holds files letterbench did not write ({', '.join(foreign[:5])}); "
                "move them elsewhere or choose another output folder (nothing was deleted)"
            )
        for path in self._files():
            path.unlink()
        for folder in sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()

    # ------------------------------------------------------------ config, progress, metrics

    def read_config(self) -> RunConfig:
        if not self.config_file.is_file():
            raise TrainingError(f"{self.path}: not a letterbench run directory (no {self.config_file.name})")
        config = _read_json(self.config_file, "run configuration")
        fix = "restore config.json from a backup, or train again into another --out"
        return checked(self.config_file, config, RunConfig, fix)

    def write_config(self, config: RunConfig) -> None:
        atomic_write_json(self.config_file, config.to_json())

    def read_progress(self) -> RunProgress:
        progress = _read_json(self.progress_file, "progress file")
        return checked(self.progress_file, progress, RunProgress, "restore it from a backup, or train again")

    def write_progress(self, progress: RunProgress) -> None:
        atomic_write_json(self.progress_file, progress.to_json())

    def read_metrics(self) -> RunMetrics:
        if not self.metrics_file.is_file():
            raise LetterbenchError(
                f"{self.path} has no predictions (no {self.metrics_file.name}); "
                f"run `letterbench evaluate {self.path}` first"
            )
        try:
            metrics = json.loads(self.metrics_file.read_text())
        except (OSError, ValueError) as exc:
            raise LetterbenchError(
                f"{self.metrics_file}: unreadable ({exc}); run `letterbench evaluate {self.path}` again"
            ) from None
        fix = f"run `letterbench evaluate {self.path}` again"
        record = checked(self.metrics_file, metrics, RunMetrics, fix)
        trained = record.run.epochs_trained
        if trained is not None and trained != self.read_progress().last.global_epoch:
            raise LetterbenchError(
                f"{self.metrics_file} is older than the run's checkpoints (it trained further since); {fix}"
            )
        if record.schema_ != METRICS_SCHEMA:
            raise LetterbenchError(
                f"{self.metrics_file}: schema {record.schema_!r}, expected {METRICS_SCHEMA}; {fix}"
            )
        return record

    def is_complete(self, real_world: tuple[str, str] | None = None) -> bool:
        """Trained, evaluated (on the real-world folder ``real_world``, its name and fingerprint,
        too, where given: a folder whose images or labels changed is read again) and every plot
        drawn: nothing is left to do for it."""
        done = self.status() == "finished" and self.is_evaluated() and len(self.plots()) == len(PLOT_FILES)
        return done and (real_world is None or self.has_real_world(*real_world))

    def is_evaluated(self) -> bool:
        """Whether the run holds a metrics file of the schema this version writes, of its model
        as it is now."""
        try:
            self.read_metrics()
        except LetterbenchError:
            return False
        return True

    def final_stage(self) -> Stage | None:
        """The metrics of the run's final phase (the model predict, serve and export load), or None
        where the run was never evaluated or its files cannot say which that is."""
        try:
            final = self.phases(self.read_config())[-1]
            metrics = self.read_metrics()  # None below where it is stale: of another model
            return next(s for s in metrics.stages if s.phase == final)
        except (LetterbenchError, KeyError, TypeError, AttributeError, StopIteration):
            return None

    def write_metrics(self, metrics: RunMetrics | dict[str, Any]) -> None:
        atomic_write_json(
            self.metrics_file, metrics.to_json() if isinstance(metrics, RunMetrics) else metrics
        )

    def add_evaluation_time(self, spent: dict[str, float]) -> None:
        """Add seconds by part (the plots, drawn after the metrics were written) to the
        evaluation's time budget in the metrics file."""
        metrics = json.loads(self.metrics_file.read_text())
        budget = metrics.get("time_budget") or {}
        for name, seconds in spent.items():
            budget[name] = budget.get(name, 0.0) + seconds
        self.write_metrics({**metrics, "time_budget": budget})

    def require_finished(self) -> RunConfig:
        """The config of a run whose training has finished; a clear error otherwise."""
        config = self.read_config()
        status = self.status()
        if status != "finished":
            raise TrainingError(
                f"{self.path}: no finished model: training has not finished ({status}); "
                f"finish it with `letterbench train --resume --out {self.path}`"
            )
        return config

    # ------------------------------------------------------------ what the run trained

    def phases(self, config: RunConfig | None = None) -> list[str]:
        return (config or self.read_config()).recipe.phase_names

    # ------------------------------------------------------------ predictions

    def forget_real_world(self) -> None:
        """Remove the run's readings of a ``--real-world`` folder, one per phase of its recipe (the
        files it wrote, no others): an evaluation without one makes them stale, and a report must
        not show them. A user's ``real-world-old.npz`` or any other file is left alone."""
        for phase in self.phases():
            path = self.real_world_file(phase)
            if path.is_file() and not path.is_symlink():
                path.unlink()
