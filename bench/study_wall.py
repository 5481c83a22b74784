"""A study's wall clock, part by part: `letterbench run --preset P` in a child process, timed from
outside, and the time budget it recorded: for each run and for the study's own work, the seconds
of training, validation, checkpoint writes, testing, calibration, cost measurement, plots, the
ensemble choice, the report, start-up and imports.

    python bench/study_wall.py [--preset quick] [--data-dir ../shared/data/emnist] [--out DIR]
        [--args "MORE OPTIONS FOR letterbench run"]

The table is the package's (``letterbench report --time STUDY`` prints it for a study run before),
with the wall clock measured outside the process: the non-training share is 1 - training / that
wall clock, so Python's own start and exit count as not training too.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import add_data_dir, run_study

from letterbench.reporting.time_table import study_time_budget, time_budget_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick", help="the study's preset (default quick)")
    add_data_dir(parser)
    parser.add_argument("--out", type=Path, help="the study folder (default: a temporary one)")
    parser.add_argument("--args", default="", help="more options for letterbench run, as one string")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "study"
        outside, _ = run_study(args.preset, args.data_dir, out, args.args.split())
        print(f"letterbench run --preset {args.preset} {args.args}".strip())
        print(time_budget_table(study_time_budget(out), outside))


if __name__ == "__main__":
    main()
