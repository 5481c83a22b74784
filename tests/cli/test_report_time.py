"""`letterbench report --time STUDY`: the study's time budget as a table (``reporting.time_table``),
read from what `letterbench run` recorded; a folder that is no finished study gets one error line."""

from __future__ import annotations

import json

import pytest

from letterbench.cli.main import main
from letterbench.reporting.time_table import time_budget_table
from letterbench.runs.records.study import StudyFile
from letterbench.runs.studydir import StudyDir


def _rows(table: str) -> dict[str, list[str]]:
    """The table's rows by part: its cells after the part's name."""
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.strip() or line.startswith("wall clock"):
            continue
        name, *cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows[name] = cells
    return rows


@pytest.mark.slow  # runs a smoke study
def test_report_time_prints_the_budget_a_study_recorded(tiny_letters, tmp_path, capsys):
    study = tmp_path / "study"
    run = ["run", "--preset", "smoke", "--models", "smallcnn", "--quiet", "--data-dir", str(tiny_letters)]
    assert main([*run, "--out", str(study)]) == 0
    capsys.readouterr()
    report = tmp_path / "report"
    assert main(["report", "--time", str(study), "--out", str(report)]) == 0
    out = capsys.readouterr().out
    budget = StudyDir(study).read().time_budget
    assert out.startswith(f"time budget of {study} (seconds)\n")
    header = out.splitlines()[1].split()
    assert (
        header
        == ["part", *budget["parts"], "total", "s", "share"]
        == ["part", "command", "smallcnn", "total", "s", "share"]
    )
    for part in ("training", "testing", "report", "start-up and imports"):
        assert part in out
    assert _rows(out)["all parts"][-1] == "100.0%"
    training = sum(scope.get("training", 0.0) for scope in budget["parts"].values())
    assert f"wall clock {budget['wall_s']:.1f} s; training {training:.1f} s; not training" in out
    assert not report.exists()  # a view: no report written, no model loaded


def test_the_table_orders_the_parts_and_takes_a_wall_clock_from_outside():
    parts = {"command": {"report": 0.5, "other": 1.5}, "r18": {"training": 6.0, "testing": 2.0}}
    table = time_budget_table({"wall_s": 10.0, "parts": parts})
    assert table.splitlines()[0].split() == ["part", "command", "r18", "total", "s", "share"]
    rows = _rows(table)
    assert list(rows) == ["training", "testing", "other", "report", "all parts"]  # largest first
    assert rows["training"] == ["0.0", "6.0", "6.0", "60.0%"]
    assert rows["all parts"] == ["2.0", "8.0", "10.0", "100.0%"]
    assert table.endswith("wall clock 10.0 s; training 6.0 s; not training 40.0%")
    outside = time_budget_table({"wall_s": 10.0, "parts": parts}, outside=12.0)
    assert _rows(outside)["training"][-1] == "50.0%"
    assert outside.endswith("wall clock 12.0 s (outside the process); training 6.0 s; not training 50.0%")
    together = {"wall_s": 4.0, "parts": {"command": {"seeds together": 3.0, "other": 1.0}}}
    assert "seeds trained together: no training share" in time_budget_table(together)


def _write_study(folder, budget) -> None:
    recorded = {} if budget is None else {"time_budget": budget}  # None: a study not finished
    StudyDir(folder).write(StudyFile(preset="smoke", models=["smallcnn"], **recorded))


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: None, "no such folder; --time shows a study's time budget"),
        (lambda p: (p / "runs" / "smallcnn").mkdir(parents=True), "not a study (no study.json)"),
        (lambda p: _write_study(p, None), "the study has no time budget yet"),
        (
            lambda p: _write_study(p, {"wall_s": 0.0, "parts": {}}),
            "run the same `letterbench run` command again",
        ),
        (lambda p: (p.mkdir(), (p / "study.json").write_text("{")), "unreadable study file"),
    ],
)
def test_report_time_on_what_is_no_finished_study_says_so_in_one_line(tmp_path, capsys, make, expect):
    folder = tmp_path / "study"
    make(folder)
    target = folder / "runs" / "smallcnn" if (folder / "runs").exists() else folder
    assert main(["report", "--time", str(target)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"letterbench: error: --time {target}") and expect in err[0], (
        err
    )
    assert "give the folder its --out named" in err[0] or "run the same" in err[0]
    assert captured.out == ""


def test_every_study_is_checked_before_any_table_is_printed(tmp_path, capsys):
    good = tmp_path / "good"
    _write_study(good, {"wall_s": 2.0, "parts": {"command": {"other": 2.0}}})
    assert main(["report", "--time", str(good), str(good)]) == 0
    out = capsys.readouterr().out
    assert out.count("time budget of") == 2 and "\n\ntime budget of" in out
    assert main(["report", "--time", str(good), str(tmp_path / "missing")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "missing: no such folder" in captured.err
    assert json.loads((good / "study.json").read_text())["time_budget"]["wall_s"] == 2.0  # untouched
