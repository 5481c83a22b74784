"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import json

import pytest

from letterbench.core.errors import LetterbenchError
from letterbench.runs.studydir import StudyDir


def test_run_and_study_directories(tmp_path):
    study = StudyDir(tmp_path / "s")
    run = study.run("timm:resnet10t")
    assert run.path == tmp_path / "s" / "runs" / "timm-resnet10t" and run.status() == "not started"
    run.path.mkdir(parents=True)
    (run.path / "thesis.txt").write_text("mine")
    with pytest.raises(LetterbenchError, match="did not write.*thesis.txt"):
        run.clear_unstarted()
    assert (run.path / "thesis.txt").read_text() == "mine"
    (run.path / "thesis.txt").unlink()
    # What an epoch interrupted while writing its checkpoints leaves: all letterbench's, all removed.
    run.config_file.write_text(json.dumps({"recipe": {}}))  # a config cut short
    run.save_checkpoint("train", {"model": {}})
    run.save_checkpoint("best", {"model": {}})
    (run.checkpoint_dir / ".last.pt.abc1_x9z.tmp").write_bytes(b"half")
    (run.path / ".progress.json.x7k2m0qp.tmp").write_text("{")
    run.clear_unstarted()
    assert not run.path.exists() or not any(run.path.iterdir())
    with pytest.raises(LetterbenchError, match="neither a run directory nor a study"):
        from letterbench.runs.studydir import find_runs

        find_runs(tmp_path / "s")
