"""Seeds one after another against seeds together: the same study run twice, side by side.

`letterbench run --preset P --models M --seeds N` with `--seeds-together 1` (each seed after the
other) and with `--seeds-together N` (the model's seeds at once, each in a process of its own),
each in a child process timed from outside, on the same data; then each seed's test accuracy
both ways and how far its weights moved.

    python bench/seeds_together.py [--preset quick] [--models resnet18] [--seeds 2]
        [--data-dir ../shared/data/emnist]

On a CPU a seed trained together gets its share of the threads, so its sums are added in another
order than alone: its weights differ as a seed's do on another thread count. On a GPU it runs
the same kernels.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import add_data_dir, run_study

from letterbench.reporting.tables import format_table
from letterbench.runs.studydir import StudyDir


def seed_rows(alone: Path, together: Path) -> list[list[str]]:
    rows, record = [], StudyDir(alone).read()
    for model in record.models:
        for k in range(record.seeds):
            which = None if k == 0 else record.seed + k
            a, b = StudyDir(alone).run(model, which), StudyDir(together).run(model, which)
            wa, wb = a.load_checkpoint("best")["model"], b.load_checkpoint("best")["model"]
            floats = [key for key in wa if wa[key].is_floating_point()]
            moved = max((wa[key].double() - wb[key].double()).abs().max().item() for key in floats)
            accuracy = [r.final_stage().metrics.accuracy for r in (a, b)]
            rows.append([a.path.name, f"{accuracy[0]:.2%}", f"{accuracy[1]:.2%}", f"{moved:.2g}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick", help="the study's preset (default quick)")
    parser.add_argument("--models", default="resnet18", help="comma-separated (default resnet18)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per model (default 2)")
    add_data_dir(parser)
    args = parser.parse_args()
    asked = ["--models", args.models, "--seeds", str(args.seeds)]
    print(f"{torch.get_num_threads()} CPU threads; cuda: {torch.cuda.is_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        for mode, at_once in (("one after another", 1), ("together", args.seeds)):
            out = Path(tmp) / mode.replace(" ", "-")
            walls[mode], _ = run_study(
                args.preset, args.data_dir, out, [*asked, "--seeds-together", str(at_once)]
            )
            print(f"{mode}: {walls[mode]:.1f} s", flush=True)
        rows = seed_rows(Path(tmp) / "one-after-another", Path(tmp) / "together")
    print(format_table(["run", "test accuracy, after another", "together", "largest weight change"], rows))
    after, together = walls["one after another"], walls["together"]
    print(
        f"\nwall clock: one after another {after:.1f} s, together {together:.1f} s ({after / together:.2f}x)"
    )


if __name__ == "__main__":
    main()
