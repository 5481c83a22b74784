"""Mutation testing of the guarantees letterbench promises: put one small, realistic bug into a copy
of the code, run the tests that defend that guarantee, and see whether they fail (the bug is
"caught"). A guarantee whose bug survives has no test that defends it.

    python tests/tools/mutants.py [--only NAME ...] [--list]

Each mutant is applied to a fresh copy of ``src/`` in a temporary folder that the tests import
(``PYTHONPATH``; their child processes inherit it), so the working tree is never changed. Prints
one row per mutant and the score, caught / tried. CI does not run it (about 10 minutes here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    name: str
    guarantee: str
    file: str  # under src/letterbench/
    old: str  # the exact text replaced (must occur once)
    new: str
    tests: tuple[str, ...]  # pytest arguments: the tests that defend the guarantee


MUTANTS = [
    Mutant(
        "ensemble-on-test-set",
        "the ensemble is chosen on images no model trained on, never on the test set",
        "evaluation/ensemble.py",
        "probs = _model_probabilities(runs, configs, data.train_images[held], seed_of, runtime)\n"
        "    members, tried = best_subset(probs, data.train_labels[held].numpy())",
        "probs = _model_probabilities(runs, configs, data.test_images[: len(held)], seed_of, runtime)\n"
        "    members, tried = best_subset(probs, data.test_labels[: len(held)].numpy())",
        ("tests/promises/test_leakage.py",),
    ),
    Mutant(
        "temperature-on-test-set",
        "the temperature is fitted on the validation split, never on the test set",
        "evaluation/evaluate.py",
        "record = calibrate(\n"
        "        predict_logits(model, data.train_images[val], runtime).numpy(), data.train_labels[val].numpy()\n"
        "    )",
        "record = calibrate(test_logits, labels)",
        ("tests/promises/test_leakage.py",),
    ),
    Mutant(
        "always-best",
        "the best checkpoints (overall and per phase) are written only when validation improves",
        "training/observers.py",
        'best = [name for name, new in ((end.record.phase, end.new_phase_best), ("best", end.new_best)) if new]',
        'best = [name for name, new in ((end.record.phase, end.new_phase_best), ("best", end.new_best))]',
        ("tests/training/test_engine.py", "-k", "best_checkpoints"),
    ),
    Mutant(
        "evaluate-without-lock",
        "evaluate holds its run folder's lock",
        "cli/evaluate.py",
        "    with run.lock():\n        evaluation = evaluate_run(",
        "    with run.lock(take=False):\n        evaluation = evaluate_run(",
        ("tests/promises/test_reliability.py", "-k", "evaluate_takes"),
    ),
    Mutant(
        "export-checked-against-itself",
        "the export parity check compares against the PyTorch model",
        "apps/export.py",
        "    reference = predict_probabilities(model, torch.from_numpy(images), full, scorer.temperature)\n",
        "    reference = scorer.probabilities(images)\n",
        ("tests/apps/test_export.py", "-k", "differs"),
    ),
    Mutant(
        "second-error-line",
        "a bad input prints exactly one line on stderr",
        "cli/boundary.py",
        "    print(f\"letterbench: error: {' '.join(message.splitlines())}\", file=sys.stderr)\n",
        "    print(f\"letterbench: error: {' '.join(message.splitlines())}\", file=sys.stderr)\n"
        '    print("see above", file=sys.stderr)\n',
        ("tests/promises/test_bad_inputs.py",),
    ),
    Mutant(
        "unmixed-batches-changed",
        "a recipe without synthetic letters draws the batches it drew before",
        "training/stream.py",
        "        order = torch.randperm(self.count, generator=generator)\n",
        "        torch.rand(1, generator=generator)\n        order = torch.randperm(self.count, generator=generator)\n",
        ("tests/images/test_synthetic.py", "-k", "before"),
    ),
    Mutant(
        "synthetic-share-ignored",
        "each batch holds the recipe's share of synthetic letters",
        "training/stream.py",
        "return max(1, round(batch_size * share / (1 - share)))",
        "return 1",
        ("tests/images/test_synthetic.py", "-k", "share"),
    ),
    Mutant(
        "untrained-recommended",
        "no model is recommended where even the best is not yet useful",
        "evaluation/stats.py",
        "    if accuracy < USEFUL_FLOOR:\n",
        "    if accuracy < 0:\n",
        ("tests/reporting/test_ranking.py", "-k", "useful"),
    ),
    Mutant(
        "resume-without-rng",
        "a resumed run continues to the weights of an uninterrupted one (its random state restored)",
        "training/engine.py",
        '        self.rt.set_rng_state(ckpt["rng"])\n',
        "",
        ("tests/end_to_end/test_training_processes.py", "-k", "killed_run_resumes"),
    ),
    Mutant(
        "resume-without-rng-one-phase",
        "a resumed run draws what the interrupted one would have drawn (any recipe, not only dropout)",
        "training/engine.py",
        '        self.rt.set_rng_state(ckpt["rng"])\n',
        "",
        ("tests/training/test_run.py", "-k", "random_state"),
    ),
    Mutant(
        "compile-ignored",
        "--compile trains through torch.compile",
        "training/engine.py",
        "            net = torch.compile(net)\n",
        "            pass\n",
        ("tests/end_to_end/test_training_processes.py", "-k", "compile"),
    ),
    Mutant(
        "bootstrap-wrong-axis",
        "bootstrap intervals resample the test images",
        "evaluation/stats.py",
        "        acc.append(correct[:, idx].mean(2).mean(0))\n",
        "        acc.append(correct[:, idx].mean(1).mean(0))\n",
        ("tests/evaluation/test_stats.py", "-k", "binomial"),
    ),
    Mutant(
        "temperature-not-applied",
        "predict's probabilities are softmax(logits / T), T fitted on validation",
        "evaluation/inference.py",
        "            return predict_probabilities(model, torch.from_numpy(images), runtime, t, views)",
        "            return predict_probabilities(model, torch.from_numpy(images), runtime, 1.0, views)",
        ("tests/evaluation/test_evaluate.py", "-k", "temperature_and_predict"),
    ),
    Mutant(
        "dropped-held-top-epoch",
        "with checkpoints by time, the best checkpoint holds the best epoch even when it was not checkpointed itself",
        "training/observers.py",
        "            self._save([name], self.held[name])\n",
        "            pass\n",
        ("tests/end_to_end/test_training_processes.py", "-k", "checkpoints_by_time"),
    ),
    Mutant(
        "bf16-passes-in-float32",
        "with --precision auto on a CPU with native bf16, predictions are computed in bf16",
        "evaluation/inference.py",
        "        with runtime.inference_autocast():\n            out.append(model(prepare(chunk, view)).float().cpu())",
        "        with runtime.autocast():\n            out.append(model(prepare(chunk, view)).float().cpu())",
        ("tests/core/test_precision.py", "-k", "bf16_predictions"),
    ),
    Mutant(
        "seeds-together-unseeded",
        "each seed trained together is the seed it would be alone, in its own run folder",
        "study/runner.py",
        "(name, model, run, plan, root, replace(options, seed=model_seed)),",
        "(name, model, run, plan, root, options),",
        ("tests/end_to_end/test_seeds_together.py", "-k", "match"),
    ),
    Mutant(
        "resume-without-optimizer",
        "a resumed run continues to the weights of an uninterrupted one (its optimiser state restored)",
        "training/engine.py",
        '            self.optimizer.load_state_dict(ckpt["optimizer"])\n',
        "            pass\n",
        ("tests/end_to_end/test_training_processes.py", "-k", "killed_run_resumes"),
    ),
    Mutant(
        "forget-every-real-world-file",
        "evaluate without --real-world removes only the run's own readings, never a user's file",
        "runs/rundir.py",
        "        for phase in self.phases():\n"
        "            path = self.real_world_file(phase)\n"
        "            if path.is_file() and not path.is_symlink():\n"
        "                path.unlink()",
        '        for path in self.path.glob("real-world-*.npz"):\n            path.unlink()',
        ("tests/promises/test_user_files.py",),
    ),
    Mutant(
        "remove-every-hidden-tmp",
        "resume removes only the temporaries of letterbench's own atomic writes",
        "runs/rundir.py",
        "if path.is_file() and not path.is_symlink() and self.is_own_temporary(path)",
        'if path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp")',
        ("tests/promises/test_user_files.py",),
    ),
    Mutant(
        "local-by-the-typed-host",
        "serve decides it serves this machine only by the address it is bound to, not by --host's spelling",
        "cli/apps.py",
        "local = server.is_loopback(sock.getsockname()[0])",
        "local = server.is_loopback(args.host)",
        ("tests/apps/test_serve.py::test_a_loopback_host_however_typed_keeps_the_host_check",),
    ),
    Mutant(
        "origin-by-host-name-only",
        "serve refuses a page on another port of the same host (another site) posting to it",
        "apps/serve.py",
        'elif origin and origin != "null" and urlsplit(origin).netloc != host:',
        'elif origin and origin != "null" and urlsplit(origin).hostname != name:',
        ("tests/apps/test_serve.py::test_other_sites_cannot_use_the_page",),
    ),
    Mutant(
        "answer-before-the-letter-is-done",
        "the page reads a drawing only once the pen has been up for the time its hint states",
        "static/serve.html",
        'send(blob, "drawing.png"), "image/png"), SETTINGS.penUpMs);',
        'send(blob, "drawing.png"), "image/png"), 350);',
        ("tests/apps/test_serve.py::test_page_waits_for_the_whole_letter_through_a_slow_writers_pauses",),
    ),
    Mutant(
        "real-world-by-its-name-only",
        "a study reads a --real-world folder again when its images or labels changed, not by its name alone",
        "runs/rundir.py",
        "r is not None and r.folder == folder and fingerprint in (None, r.fingerprint) for r in readings",
        "r is not None and r.folder == folder for r in readings",
        (
            "tests/end_to_end/test_study.py::test_a_rerun_reads_a_real_world_folder_again_when_what_it_holds_changed",
        ),
    ),
]


def run_mutant(mutant: Mutant, workdir: Path) -> tuple[bool, float, str]:
    """(caught, seconds, the tests' last line) for ``mutant`` applied to a fresh copy of src."""
    src = workdir / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = src / "letterbench" / mutant.file
    text = target.read_text()
    if text.count(mutant.old) != 1:
        return False, 0.0, f"not applied: the text to replace occurs {text.count(mutant.old)} times"
    target.write_text(text.replace(mutant.old, mutant.new))
    env = {**os.environ, "PYTHONPATH": str(src), "CI": os.environ.get("CI", "true")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else done.stderr[-200:]
    if done.returncode not in (0, 1):  # not a test failure: the mutant broke collection or pytest
        last = f"exit {done.returncode}: {last}"
    return done.returncode == 1, time.perf_counter() - start, last


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and the guarantees they break")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name:32} {m.guarantee}")
        return
    caught = 0
    with tempfile.TemporaryDirectory(prefix="letterbench-mutants-") as tmp:
        for mutant in chosen:
            found, seconds, last = run_mutant(mutant, Path(tmp))
            caught += found
            print(
                f"{'caught  ' if found else 'SURVIVED'} {mutant.name:32} {seconds:6.0f} s  {last}", flush=True
            )
    print(f"\nscore: {caught} caught of {len(chosen)} tried")


if __name__ == "__main__":
    main()
