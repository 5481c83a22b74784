"""Study directories (``letterbench run``): the one place that knows their layout::

    study.json         preset, seeds, split, models and data folder of the study
    ensemble.json      the models the ensemble averages, chosen on held-out training images
    runs/<model>/      a run directory per model (``rundir.RunDir``); further seeds runs/<model>-seed<S>
    report/            the comparison (``letterbench report``)

It holds ``.letterbench.lock`` while a process works in it. ``find_runs`` turns a run or a
study directory into its runs by model name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_write_json, locked
from letterbench.runs.records import EnsembleChoice, RunKey, StudyFile, checked
from letterbench.runs.rundir import LOCK_FILE, RunDir, run_slug

__all__ = ["RunKey", "StudyDir", "find_runs"]


@dataclass(frozen=True)
class StudyDir:
    """A study: ``study.json``, one run directory per model under ``runs/``, and ``report/``."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    @property
    def study_file(self) -> Path:
        return self.path / "study.json"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    def run(self, model: str, seed: int | None = None) -> RunDir:
        """The run of ``model``; with ``seed``, of a further seed of it (``runs/<model>-seed<S>``)."""
        return RunDir(self.runs_dir / (run_slug(model) + ("" if seed is None else f"-seed{seed}")))

    @property
    def ensemble_file(self) -> Path:
        return self.path / "ensemble.json"

    def read_ensemble(self, models: list[str] | None = None) -> EnsembleChoice | None:
        """The recorded ensemble choice (of some of ``models``, where given), or None where there is
        none, or it is damaged."""
        try:
            record = json.loads(self.ensemble_file.read_text())
        except (OSError, ValueError):
            return None
        return EnsembleChoice.from_dict(record, models)

    def write_ensemble(self, choice: EnsembleChoice) -> None:
        atomic_write_json(self.ensemble_file, choice.to_dict())

    def exists(self) -> bool:
        return self.study_file.is_file()

    def read(self) -> StudyFile:
        try:
            study = json.loads(self.study_file.read_text())
        except (OSError, ValueError) as exc:
            raise LetterbenchError(
                f"{self.study_file}: unreadable study file ({exc}); pass another --out"
            ) from None
        if not isinstance(study, dict):
            raise LetterbenchError(f"{self.study_file}: not a letterbench study file; pass another --out")
        return checked(self.study_file, study, StudyFile, "pass another --out")

    def foreign_files(self) -> list[str]:
        """What is in the folder although it is not a study (empty when it is one, or is empty)."""
        if self.exists() or not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK_FILE)

    def write(self, study: StudyFile) -> None:
        atomic_write_json(self.study_file, study.to_json())

    def lock(self):
        """Exclusive use of this study directory for the block (see ``fsutil.locked``)."""
        return locked(self.path, self.path / LOCK_FILE, "study directory")

    def runs(self) -> list[RunDir]:
        """The study's run directories: those its ``study.json`` names (its models, each with its
        seeds; a rerun with fewer seeds or models leaves the others out), in name order; every
        run under ``runs/`` where the file does not say."""
        if not self.runs_dir.is_dir():
            return []
        found = [RunDir(p) for p in sorted(self.runs_dir.iterdir()) if RunDir(p).is_run()]
        try:
            study = self.read() if self.exists() else StudyFile()
        except LetterbenchError:
            return found
        if not study.models:
            return found
        seeds = range(study.seeds)
        planned = {self.run(m, None if k == 0 else study.seed + k).path for m in study.models for k in seeds}
        return [run for run in found if run.path in planned]


def find_runs(path: str | os.PathLike) -> dict[RunKey, RunDir]:
    """Runs by ``RunKey``: ``path`` itself if it is a run directory, else a study's runs (a
    model's further seeds named with their seed)."""
    single = RunDir(path)
    runs = [single] if single.is_run() else StudyDir(path).runs()
    if not runs:
        raise LetterbenchError(
            f"{path}: neither a run directory nor a study directory with runs/; "
            "train one with `letterbench train` or `letterbench run`"
        )
    found: dict[RunKey, RunDir] = {}
    for run in runs:  # a study's further seeds of a model: "resnet18 (seed 1)"
        key = run.read_config().key
        found[key._replace(seeded=any(k.model == key.model for k in found))] = run
    return found
