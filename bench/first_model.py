"""The first useful model: how long `letterbench run --preset first` takes on this machine, wall
clock from the command's start to its report, and what its model reads.

    python bench/first_model.py [--data-dir ../shared/data/emnist] [--out DIR]

It runs the real command in a child process (the same as `make run ARGS="--preset first"`), then
scores the run's own test predictions: on every test image it was given, and on the official
test images of classes a..l (test indices 0..9,599, all in the partial EMNIST copy, so the figure
is comparable between machines that hold the partial copy and the full one). The goal on a 2-core
CPU: at least 88% on the a..l slice within 3 minutes. Nothing here chooses a setting.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import add_data_dir, on_a_to_l, run_study

from letterbench.runs.studydir import StudyDir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_dir(parser)
    parser.add_argument("--out", type=Path, help="the study folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "first"
        wall, printed = run_study("first", args.data_dir, out)
        (run,) = StudyDir(out).runs()
        probs, labels = run.load_predictions("train")
        right = probs.argmax(1) == labels
        a_to_l = on_a_to_l(labels)
        said = [line for line in printed.splitlines() if line.startswith("recommendation:")]
        print(*said)
        print(f"wall clock            {wall:7.1f} s   (goal: at most 180 s on a 2-core CPU)")
        print(f"test accuracy         {100 * right.mean():7.2f} %   ({len(labels):,} test images)")
        print(
            f"a..l slice accuracy   {100 * right[a_to_l].mean():7.2f} %   "
            f"({int(a_to_l.sum()):,} images; goal: at least 88%)"
        )
        print(f"cpu threads           {os.cpu_count()}")


if __name__ == "__main__":
    main()
