"""bench/sets/make_real_world.py: the same seed gives the same files, and labels.csv names every file."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sets" / "make_real_world.py"


def _build(out: Path, seed: int) -> dict[str, bytes]:
    args = ["--pen-only", "--letters", "qz", "--per-letter", "4", "--seed", str(seed), "--out", str(out)]
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, capture_output=True)
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name != "README.txt"}


def test_the_real_world_set_is_deterministic_and_labelled(tmp_path):
    first, again = _build(tmp_path / "a", 0), _build(tmp_path / "b", 0)
    assert first == again
    with (tmp_path / "a" / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["file"] for r in rows} == set(first) - {"labels.csv"}
    assert {(r["label"], r["case"]) for r in rows} == {(c, case) for c in "qz" for case in ("upper", "lower")}
    assert all(r["file"].startswith(f"pen-{r['label']}-{r['case']}-") for r in rows)
