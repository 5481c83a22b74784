"""Where a study's wall clock goes: every second is charged to one part, the parts sum to the
command's wall clock, each run's files hold its own parts, and the report draws them."""

from __future__ import annotations

import json
import time

import pytest

from letterbench.cli.main import main
from letterbench.core import timing


def test_a_budget_charges_each_second_to_the_innermost_part_once():
    with timing.budget() as spent:
        time.sleep(0.05)  # other
        with timing.part("training"):
            time.sleep(0.1)
            with timing.part("validation"):
                time.sleep(0.05)
        with timing.scope("run-a"), timing.spent_inside() as inside, timing.part("testing"):
            time.sleep(0.05)
        record = spent.record()
    command, run = record["parts"]["command"], record["parts"]["run-a"]
    assert command["training"] == pytest.approx(0.1, abs=0.03)
    assert command["validation"] == pytest.approx(0.05, abs=0.03)
    assert run["testing"] == pytest.approx(0.05, abs=0.03) and inside["testing"] == pytest.approx(
        run["testing"]
    )
    total = sum(sum(parts.values()) for parts in record["parts"].values())
    assert total == pytest.approx(record["wall_s"], rel=1e-9)
    with timing.part("nothing open"):  # outside a budget: free, and recorded nowhere
        pass
    assert timing.current() is None


def test_a_studys_parts_sum_to_its_wall_clock_and_each_run_keeps_its_own(tiny_letters, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--preset", "smoke", "--models", "timm:test_resnet,timm:resnet10t", "--quiet"]
    start = time.perf_counter()
    assert main([*args, "--data-dir", str(tiny_letters), "--out", str(out)]) == 0
    wall = time.perf_counter() - start
    budget = json.loads((out / "study.json").read_text())["time_budget"]
    parts = budget["parts"]
    total = sum(sum(p.values()) for p in parts.values())
    assert total == pytest.approx(budget["wall_s"], rel=1e-6)
    assert budget["wall_s"] == pytest.approx(wall, rel=0.02)  # all but the summary's printing
    assert set(parts) == {"command", "timm-test_resnet", "timm-resnet10t"}
    assert {"start-up and imports", "data loading", "ensemble choice", "report"} <= set(parts["command"])
    for name in ("timm-test_resnet", "timm-resnet10t"):
        run = out / "runs" / name
        trained = json.loads((run / "progress.json").read_text())["time_budget"]
        evaluated = json.loads((run / "metrics.json").read_text())["time_budget"]
        assert {"training", "validation", "checkpoint writes", "data loading"} <= set(trained)
        assert {"testing", "calibration", "cost measurement", "plots"} <= set(evaluated)
        both = sum(trained.values()) + sum(evaluated.values())
        assert both == pytest.approx(sum(parts[name].values()), rel=0.02)
    assert (out / "report" / "img" / "time-budget.png").is_file()
    assert "Where the time went" in (out / "report" / "report.md").read_text()
