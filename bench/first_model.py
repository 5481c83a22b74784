"""The first useful model: how long `letterbench run --preset first` takes on this machine, wall
clock from the command's start to its report, and what its model reads.

    python bench/first_model.py [--data-dir ../shared/data/emnist] [--out DIR] [--stand-in 124800]

With ``--stand-in N`` it times the preset on a stand-in of the official training set's size: a
copy of the data folder whose training images are the copy's, repeated to N (124,800 is the
official count), so that the time of the work the official copy gives is measured where only the
partial copy is at hand (its accuracy is the partial copy's, not the official one's).

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

import numpy as np
from common import add_data_dir, on_a_to_l, run_study

from letterbench.data.emnist import find_member, member_name
from letterbench.data.idx import encode_idx, read_idx
from letterbench.runs.studydir import StudyDir


def stand_in(data_dir: Path, count: int, folder: Path) -> Path:
    """``data_dir``'s letters with the training images (and labels) repeated to ``count``."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        for kind in ("images", "labels"):
            name = member_name("letters", part, kind)
            array = read_idx(find_member(data_dir, name))
            if part == "train":
                array = np.resize(array, (count, *array.shape[1:]))  # repeated, in order
            (folder / name).write_bytes(encode_idx(array))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_dir(parser)
    parser.add_argument("--out", type=Path, help="the study folder (default: a temporary one)")
    parser.add_argument(
        "--stand-in", type=int, metavar="N", help="time it on N training images (124800: official)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "first"
        data = stand_in(args.data_dir, args.stand_in, Path(tmp) / "data") if args.stand_in else args.data_dir
        wall, printed = run_study("first", data, out)
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
        if args.stand_in:
            print(f"training images       {args.stand_in:,} (a stand-in: the copy's images repeated)")


if __name__ == "__main__":
    main()
