"""Top-1 and top-3 accuracy of a study's models on letterbench's own real-world set, broken down.

    python bench/real_world.py --run STUDY_OR_RUN [--run ANOTHER ...] [--set bench/real-world --set ...]
        [--tta] [--json] [--device cpu]

The set (photographed-style single letters, built by ``bench/sets/make_real_world.py``; any folder
``--real-world`` reads) is read by the package (``evaluation.real_world.load_real_world``: each
image prepared as ``letterbench predict`` prepares it; one it cannot read counts as wrong); every
model of the study predicts (a model's seeds averaged) and, with more than one model, the
ensemble. Per run, from ``evaluation.real_world_breakdowns``: each model's top-1 and top-3 with
95% bootstrap intervals, top-1 by source (font, pen) and by case, its 8 most frequent confusions,
and the ensemble's (or only model's) top-1 by kind of scene. Given several runs (e.g. trainings
with and without an augmentation), the models of later runs are compared with the same model of
the first, image by image (difference, paired bootstrap interval, test).
"""

from __future__ import annotations

import argparse
import json
import shlex
import string
import sys
from pathlib import Path

import numpy as np
from common import REPO

from letterbench.apps.predict import ENSEMBLE, torch_predictor
from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.evaluation.real_world import RealWorldSet, load_real_world
from letterbench.evaluation.real_world_breakdowns import (
    SCENE_KEYS,
    RealWorldBreakdown,
    image_details,
    real_world_breakdown,
)
from letterbench.evaluation.stats import paired_difference

DEFAULT_SET = REPO / "bench" / "real-world"
Results = dict[str, dict[str, RealWorldBreakdown]]  # run -> model (or the ensemble) -> reading


def read_runs(found: RealWorldSet, runs: dict[str, str], runtime: Runtime, tta: bool) -> Results:
    """Every run's models (and ensemble) on one set; an unreadable image's row is left zero."""
    details, results = image_details(found), {}
    images = found.images.numpy()[found.readable]
    for name, path in runs.items():
        _, predictor = torch_predictor(Path(path), None, True, runtime, tta)
        if predictor.class_names != list(string.ascii_lowercase):
            sys.exit(f"{path}: trained on {len(predictor.class_names)} classes, not EMNIST letters' a..z")
        results[name] = {}
        for model, p in predictor.probabilities(images).items():
            full = np.zeros((len(found), p.shape[1]))
            full[found.readable] = p
            results[name][model] = real_world_breakdown(full, found, details)
    return results


def compare(results: Results) -> list[dict]:
    """Each model of a later run against the same model of the first run, image by image."""
    (first, base), *others = results.items()
    return [
        {
            "run": name,
            "against": first,
            "model": model,
            **paired_difference(r.scores.outcome, base[model].scores.outcome),
        }
        for name, readings in others
        for model, r in readings.items()
        if model in base
    ]


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def print_run(name: str, readings: dict[str, RealWorldBreakdown], failed: int) -> None:
    print(f"\n== {name}")
    print(f"{'model':24} {'top-1':>7} {'95% interval':>15} {'top-3':>7} {'95% interval':>15} {'failed':>6}")
    for model, r in readings.items():
        (lo1, hi1), (lo3, hi3) = r.scores.top1_interval, r.scores.top3_interval
        print(
            f"{model:24} {_pct(r.scores.top1):>7} {_pct(lo1)}-{_pct(hi1).strip():>7} "
            f"{_pct(r.scores.top3):>7} {_pct(lo3)}-{_pct(hi3).strip():>7} {failed:>6}"
        )
    first = next(iter(readings.values())).by
    splits = [(key, v) for key in ("source", "case") for v in first.get(key, {})]
    print(f"\ntop-1 by source and case\n{'model':24} " + " ".join(f"{v:>7}" for _, v in splits))
    for model, r in readings.items():
        print(f"{model:24} " + " ".join(f"{_pct(r.by[k][v].top1):>7}" for k, v in splits))
    print("\nmost frequent confusions (true->predicted: images)")
    for model, r in readings.items():
        print(f"{model:24} " + ", ".join(f"{pair} {n}" for pair, n in r.confusions))
    main_model = ENSEMBLE if ENSEMBLE in readings else next(iter(readings))
    print(f"\ntop-1 of {main_model} by scene")
    for key in SCENE_KEYS:
        by = readings[main_model].by.get(key, {})
        if by:
            print(
                f"  {key:7} " + ", ".join(f"{v} {_pct(s.top1).strip()} ({s.images})" for v, s in by.items())
            )


def print_set(found: RealWorldSet, results: Results, comparisons: list[dict]) -> None:
    readme = found.folder / "README.txt"
    lines = readme.read_text().splitlines() if readme.is_file() else []
    print(f"\n##### set: {found.folder}: {len(found)} images; {' '.join(lines[:2]).strip()}")
    for line in lines:
        if line.startswith(("  source:", "  case:")):
            print(f"    {line.strip()}")
    failed = int((~found.readable).sum())
    print(f"prepared: {len(found) - failed} of {len(found)}; failed (counted wrong): {failed or 'none'}")
    for name, readings in results.items():
        print_run(name, readings, failed)
    if comparisons:
        print("\ntop-1 difference against the first run (same images; paired bootstrap 95% interval)")
    for c in comparisons:
        lo, hi = c["interval"]
        print(
            f"  {c['model']:20} {c['run']} - {c['against']}: {100 * c['difference']:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}], {c['test']} p = {c['p']:.3g}"
        )


def as_json(found: RealWorldSet, results: Results, comparisons: list[dict]) -> dict:
    readings = {n: {m: r.record() for m, r in by_model.items()} for n, by_model in results.items()}
    failed = int((~found.readable).sum())
    return {
        "set": str(found.folder),
        "images": len(found),
        "failed": failed,
        "results": readings,
        "comparisons": comparisons,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run", action="append", required=True, help="a study or run directory (repeat to compare)"
    )
    parser.add_argument(
        "--set",
        type=Path,
        action="append",
        help="a set's folder (repeat for several; default bench/real-world)",
    )
    parser.add_argument(
        "--tta", action="store_true", help="average 5 views of each image (test-time augmentation)"
    )
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = parser.parse_args()
    runtime = Runtime.create(args.device)
    names = [Path(r).name or r for r in args.run]
    runs = dict(zip(names if len(set(names)) == len(names) else args.run, args.run, strict=True))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    sets = []
    for folder in args.set or [DEFAULT_SET]:
        try:
            found = load_real_world(folder)
        except LetterbenchError as exc:
            sys.exit(f"{exc} (build the project's set with bench/sets/make_real_world.py; see its --help)")
        results = read_runs(found, runs, runtime, args.tta)
        sets.append((found, results, compare(results)))
    if args.json:
        print(
            json.dumps({"command": command, "tta": args.tta, "sets": [as_json(*s) for s in sets]}, indent=2)
        )
        return
    print(command)
    print(f"test-time augmentation: {'on' if args.tta else 'off'}")
    for found_set in sets:
        print_set(*found_set)


if __name__ == "__main__":
    main()
