"""Top-1 and top-3 accuracy of a study's models on letterbench's own real-world set.

    python bench/real_world.py --run STUDY_OR_RUN [--run ANOTHER ...] [--set bench/real-world --set ...]
        [--tta] [--json] [--device cpu]

The set (photographed-style single letters, built by ``make_real_world.py``) is prepared image by
image with ``letterbench.images.letters.prepare_file``, as ``letterbench predict`` does; every model of
the study predicts (a model's seeds averaged) and, with more than one model, the ensemble. An
image the preparation cannot read, or finds blank, counts as wrong. Per run: each model's top-1
and top-3 with 95% bootstrap intervals, top-1 by source (font, pen) and by case, its 8 most
frequent confusions, and the ensemble's (or only model's) top-1 by kind of scene. Given several
runs (e.g. trainings with and without an augmentation), the models of later runs are compared
with the same model of the first, image by image (difference, paired bootstrap interval, test).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from letterbench.apps.predict import ENSEMBLE, torch_predictor
from letterbench.core.runtime import Runtime
from letterbench.evaluation.stats import bootstrap_intervals, paired_difference
from letterbench.images.letters import prepare_file

REPO = Path(__file__).resolve().parents[1]
SCENE_KEYS = ("paper", "ruling", "ink", "light", "size", "stroke")


def _stroke(row: dict) -> str | None:
    """The pen's kind ("fine pen 0.031" -> "fine pen"), or the font's weight change."""
    what = row.get("font_or_pen") or ""
    if row.get("source") == "pen" and what:
        return what.rsplit(" ", 1)[0]
    if row.get("source") == "font":
        return "font bold" if "bold" in what else "font thinned" if "thinned" in what else "font"
    return None


def load_set(folder: Path) -> tuple[list[dict], str]:
    """The rows of ``labels.csv`` (file, label; case, source, scene where given) and the set's README."""
    labels = folder / "labels.csv"
    if not labels.exists():
        sys.exit(f"{labels} not found: build the set with bench/make_real_world.py (see its --help)")
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["label"] = row["label"].strip().lower()
        scene = row.get("scene") or ""
        row.update(dict(part.split("=", 1) for part in scene.split(";") if "=" in part))
        row["stroke"] = _stroke(row)
    readme = folder / "README.txt"
    return rows, readme.read_text() if readme.exists() else ""


def class_indices(rows: list[dict]) -> np.ndarray:
    """The rows' letters as class indices 0..25 (a..z)."""
    return np.asarray([ord(r["label"]) - ord("a") for r in rows])


def prepare(folder: Path, rows: list[dict]) -> tuple[np.ndarray, np.ndarray, Counter]:
    """The 28x28 inputs (N, 28, 28; zeros where preparation failed), which were prepared, and the errors."""
    images = np.zeros((len(rows), 28, 28), np.uint8)
    ok = np.zeros(len(rows), bool)
    errors: Counter = Counter()
    for i, row in enumerate(rows):
        prepared = prepare_file(folder / row["file"])
        if prepared.image is None:
            errors["blank" if prepared.blank else "unreadable"] += 1
            row["error"] = prepared.error
        else:
            images[i], ok[i] = prepared.image, True
    return images, ok, errors


def predict(
    path: str, images: np.ndarray, ok: np.ndarray, runtime: Runtime, tta: bool
) -> dict[str, np.ndarray]:
    """Per model (and the ensemble) probabilities (N, 26); a failed image's row ranks its true class last."""
    _, predictor = torch_predictor(path, None, True, runtime, tta)
    if predictor.class_names != [chr(ord("a") + i) for i in range(26)]:
        sys.exit(f"{path}: trained on {len(predictor.class_names)} classes, not EMNIST letters' a..z")
    probs = predictor.probabilities(images[ok])
    out = {}
    for model, p in probs.items():
        full = np.zeros((len(images), p.shape[1]), np.float64)
        full[ok] = p
        out[model] = full
    return out


def score(probs: np.ndarray, labels: np.ndarray, ok: np.ndarray, rows: list[dict]) -> dict:
    """Top-1, top-3 (unprepared images wrong), their intervals, splits and the commonest confusions."""
    failed = np.full(probs.shape, 1.0 / (probs.shape[1] - 1))
    failed[np.arange(len(labels)), labels] = 0.0
    probs = np.where(ok[:, None], probs, failed)
    ranked = np.argsort(-probs, axis=1, kind="stable")
    top1, top3 = ranked[:, 0] == labels, (ranked[:, :3] == labels[:, None]).any(1)
    intervals = bootstrap_intervals(probs, labels)
    splits = {}
    for key in ("source", "case", *SCENE_KEYS):
        values = sorted({r.get(key) for r in rows if r.get(key)})
        split = {v: np.asarray([r.get(key) == v for r in rows]) for v in values}
        splits[key] = {v: {"top1": float(top1[m].mean()), "images": int(m.sum())} for v, m in split.items()}
    wrong = Counter(
        f"{chr(97 + t)}->{chr(97 + p)}"
        for t, p, good in zip(labels, ranked[:, 0], ok, strict=True)
        if good and t != p
    )
    return {
        "top1": float(top1.mean()),
        "top3": float(top3.mean()),
        "top1_interval": intervals["accuracy"],
        "top3_interval": intervals["top3_accuracy"],
        "by": splits,
        "confusions": wrong.most_common(8),
        "correct": top1,
    }


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def print_run(name: str, scores: dict[str, dict], failed: int) -> None:
    print(f"\n== {name}")
    print(f"{'model':24} {'top-1':>7} {'95% interval':>15} {'top-3':>7} {'95% interval':>15} {'failed':>6}")
    for model, s in scores.items():
        i1, i3 = s["top1_interval"], s["top3_interval"]
        print(
            f"{model:24} {_pct(s['top1']):>7} {_pct(i1[0])}-{_pct(i1[1]).strip():>7} "
            f"{_pct(s['top3']):>7} {_pct(i3[0])}-{_pct(i3[1]).strip():>7} {failed:>6}"
        )
    splits = [(key, v) for key in ("source", "case") for v in next(iter(scores.values()))["by"][key]]
    print(f"\ntop-1 by source and case\n{'model':24} " + " ".join(f"{v:>7}" for _, v in splits))
    for model, s in scores.items():
        print(f"{model:24} " + " ".join(f"{_pct(s['by'][k][v]['top1']):>7}" for k, v in splits))
    print("\nmost frequent confusions (true->predicted: images)")
    for model, s in scores.items():
        print(f"{model:24} " + ", ".join(f"{pair} {n}" for pair, n in s["confusions"]))
    main_model = ENSEMBLE if ENSEMBLE in scores else next(iter(scores))
    print(f"\ntop-1 of {main_model} by scene")
    for key in SCENE_KEYS:
        by = scores[main_model]["by"][key]
        if by:
            print(
                f"  {key:7} "
                + ", ".join(f"{v} {_pct(b['top1']).strip()} ({b['images']})" for v, b in by.items())
            )


def compare(results: dict[str, dict[str, dict]]) -> list[dict]:
    """Each model of a later run against the same model of the first run, image by image."""
    (first, base), *others = results.items()
    out = []
    for name, scores in others:
        for model, s in scores.items():
            if model in base:
                diff = paired_difference(s["correct"], base[model]["correct"])
                out.append({"run": name, "against": first, "model": model, **diff})
    return out


def print_comparisons(comparisons: list[dict]) -> None:
    if not comparisons:
        return
    print("\ntop-1 difference against the first run (same images; paired bootstrap 95% interval)")
    for c in comparisons:
        lo, hi = c["interval"]
        print(
            f"  {c['model']:20} {c['run']} - {c['against']}: {100 * c['difference']:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}], {c['test']} p = {c['p']:.3g}"
        )


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
        help="a set's folder (repeat for several, each printed on its own; default bench/real-world)",
    )
    parser.add_argument(
        "--tta", action="store_true", help="average 5 views of each image (test-time augmentation)"
    )
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = parser.parse_args()

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    runtime = Runtime.create(args.device)
    names = [Path(r).name or r for r in args.run]
    names = names if len(set(names)) == len(names) else list(args.run)
    sets = [measure(folder, names, args.run, runtime, args.tta) for folder in args.set or [DEFAULT_SET]]
    if args.json:
        print(
            json.dumps({"command": command, "tta": args.tta, "sets": [s.pop("json") for s in sets]}, indent=2)
        )
        return
    print(command)
    print(f"test-time augmentation: {'on' if args.tta else 'off'}")
    for found in sets:
        print_set(found)


DEFAULT_SET = REPO / "bench" / "real-world"


def measure(folder: Path, names: list[str], paths: list[str], runtime: Runtime, tta: bool) -> dict:
    """Every run's models on one set: scores, comparisons, and what to print."""
    rows, readme = load_set(folder)
    images, ok, errors = prepare(folder, rows)
    labels = class_indices(rows)
    results = {
        name: {m: score(p, labels, ok, rows) for m, p in predict(path, images, ok, runtime, tta).items()}
        for name, path in zip(names, paths, strict=True)
    }
    comparisons = compare(results)
    plain = {
        "set": str(folder),
        "images": len(rows),
        "failed": dict(errors),
        "results": {
            n: {m: {k: v for k, v in s.items() if k != "correct"} for m, s in r.items()}
            for n, r in results.items()
        },
        "comparisons": [{k: v for k, v in c.items() if k != "correct"} for c in comparisons],
    }
    return {
        "folder": folder,
        "rows": rows,
        "readme": readme,
        "ok": ok,
        "errors": errors,
        "results": results,
        "comparisons": comparisons,
        "json": plain,
    }


def print_set(found: dict) -> None:
    rows, readme, ok = found["rows"], found["readme"], found["ok"]
    provenance = " ".join(readme.splitlines()[:2]).strip()
    print(f"\n##### set: {found['folder']}: {len(rows)} images; {provenance}")
    for line in readme.splitlines():
        if line.startswith("  source:") or line.startswith("  case:"):
            print(f"    {line.strip()}")
    print(
        f"prepared: {int(ok.sum())} of {len(rows)}; failed (counted wrong): {dict(found['errors']) or 'none'}"
    )
    for name, scores in found["results"].items():
        print_run(name, scores, int((~ok).sum()))
    print_comparisons(found["comparisons"])


if __name__ == "__main__":
    main()
