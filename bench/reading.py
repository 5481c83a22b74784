"""How well trained runs read real letters, and how often they say "not a single letter".

    python bench/reading.py --run RUN_OR_STUDY [--run ...] --set DIR [--set ...] [--nonletters DIR]
        [--below 0.3,0.4]

Each ``--set`` is a folder of letters as ``--real-world`` reads it (``labels.csv``, or one
sub-folder per letter); ``--nonletters`` a folder of images that hold no single letter
(``bench/sets/nonletters.py``). Every image goes through ``letterbench predict``'s own path
(``apps.predict.predict_files``: the preparation, the shape check, a study's ensemble or a model's
seeds averaged). Per run and set: top-1 and top-3 with 95% bootstrap intervals (an unreadable
image counts wrong), the share answered "not a single letter", and the share that would be at
each ``--below`` limit of the calibrated top-1 probability; the EMNIST a..l test slice from the
run's own test predictions.
"""

from __future__ import annotations

import argparse
import string
from pathlib import Path

import numpy as np
from common import on_a_to_l

from letterbench.apps.predict import predict_files, torch_predictor
from letterbench.core.runtime import Runtime
from letterbench.evaluation.real_world import IMAGE_SUFFIXES, labelled_images, outcome_interval
from letterbench.runs.studydir import find_runs


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def percentile_interval(outcome: np.ndarray) -> str:
    lo, hi = outcome_interval(outcome)
    return f"[{_pct(lo)}, {_pct(hi)}]"


def emnist_slice(run: Path) -> str:
    """Top-1 on the test images of classes a..l, from the run's own test predictions."""
    out = []
    for key, rd in find_runs(run).items():
        with np.load(rd.predictions_file(rd.phases()[-1])) as f:
            probs, labels = f["probs"], f["labels"]
        keep = on_a_to_l(labels)
        right = float((probs[keep].argmax(1) == labels[keep]).mean())
        out.append(f"{key} {_pct(right)} of {keep.sum():,}")
    return "; ".join(out)


def files_of(folder: Path) -> list[Path]:
    """Every image below ``folder`` (the non-letters: their folders name kinds, not letters)."""
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def read(folder: Path, predictor, below: list[float], letters: bool) -> str:
    labelled = labelled_images(folder) if letters else [(p, -1) for p in files_of(folder)]
    files = [p for p, _ in labelled]
    records = predict_files(files, predictor)
    answers = [r.get("answer") for r in records]
    said = np.array([a is None or a.not_a_letter is not None for a in answers])
    top1 = np.array([a.top3[0][1] if a else 0.0 for a in answers])
    limits = "  ".join(f"<{t:g}: {_pct(float((top1 < t).mean()))}" for t in below)
    line = f"  {str(folder)[-38:]:38s} {len(files):5d}  not a letter {_pct(said.mean())}  ({limits})"
    if not letters:
        return line
    labels = [label for _, label in labelled]
    right1 = np.array(
        [
            a is not None and a.top3[0][0] == string.ascii_lowercase[y]
            for a, y in zip(answers, labels, strict=True)
        ]
    )
    right3 = np.array(
        [
            a is not None and string.ascii_lowercase[y] in [c for c, _ in a.top3]
            for a, y in zip(answers, labels, strict=True)
        ]
    )
    return (
        f"  {str(folder)[-38:]:38s} {len(files):5d}  top-1 {_pct(right1.mean())} {percentile_interval(right1)}"
        f"  top-3 {_pct(right3.mean())} {percentile_interval(right3)}\n" + line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, type=Path)
    parser.add_argument("--set", action="append", default=[], type=Path)
    parser.add_argument("--nonletters", type=Path)
    parser.add_argument("--below", default="", help="limits of the top-1 probability to report, e.g. 0.3,0.4")
    args = parser.parse_args()
    below = [float(x) for x in args.below.split(",") if x]
    runtime = Runtime.create("cpu")
    for run in args.run:
        _, predictor = torch_predictor(run, None, True, runtime)
        print(f"{run}  (EMNIST a..l slice: {emnist_slice(run)})")
        for folder in args.set:
            print(read(folder, predictor, below, letters=True))
        if args.nonletters:
            print(read(args.nonletters, predictor, below, letters=False))


if __name__ == "__main__":
    main()
