"""Every bench script runs once: on tiny data where a real run is short, with ``--help`` where it
needs a GPU, a browser, the network, the real data or more than about 20 s. The scripts are found
by globbing ``bench/``, ``bench/sets/`` and ``docs/tools/``, so a new script fails
``test_every_script_is_run_or_listed`` until it is added to ``RUN``, ``HELP_ONLY`` or ``MODULES``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("bench", "bench/sets", "docs/tools")
SCRIPTS = sorted(p.relative_to(REPO).as_posix() for f in FOLDERS for p in (REPO / f).glob("*.py"))
MAIN = 'if __name__ == "__main__":'
SCRIPT_FOLDERS = {REPO / f for f in FOLDERS}

MODULES = {  # imported by the scripts beside them; no command of their own
    "bench/common.py": "what the scripts in bench/ share (the data folder, a timed study, the a..l slice)",
    "bench/sets/pen_letters.py": "make_real_world.py's letters drawn along pen paths",
    "bench/sets/photo_scene.py": "make_real_world.py's photographed scenes",
}
HELP_ONLY = {  # script: why a real run does not fit here
    "bench/first_model.py": "a first-preset study: about 40 s even on tiny data",
    "bench/seeds_together.py": "two studies of two seeds: about 30 s even on tiny data",
    "bench/real_subset.py": "ResNet-18's recipe on the real copy's a..l test slice: many minutes",
    "bench/time_to_accuracy.py": "trains on the real copy until a target accuracy: many minutes",
    "bench/train_letterness.py": "about 7 minutes, and it rewrites the detector's weights in src/",
    "docs/tools/screenshots.py": "drives a browser (Chromium through Playwright)",
}
RUN = {  # script: the test that runs it
    "bench/sets/make_real_world.py": "test_set_builders_build_tiny_sets (and tests/bench/test_make_real_world.py)",
    "bench/sets/make_font_set.py": "test_set_builders_build_tiny_sets",
    "bench/sets/nonletters.py": "test_set_builders_build_tiny_sets",
    "bench/sets/unipen_bench.py": "test_set_builders_build_tiny_sets",
    "bench/sets/unipen_extract.py": "test_unipen_letters_are_extracted_and_packed",
    "bench/sets/unipen_letters.py": "test_unipen_letters_are_extracted_and_packed",
    "bench/study_wall.py": "test_the_measuring_scripts_read_a_tiny_study",
    "bench/real_world.py": "test_the_measuring_scripts_read_a_tiny_study",
    "bench/reading.py": "test_the_measuring_scripts_read_a_tiny_study",
    "bench/serve_latency.py": "test_the_measuring_scripts_read_a_tiny_study",
    "bench/recipe_sweep.py": "test_the_training_scripts_run_on_tiny_data",
    "bench/train_throughput.py": "test_the_training_scripts_run_on_tiny_data",
}


def run_script(script: str, args: str = "", *more: object, cwd: Path, process: bool = False) -> str:
    """``python SCRIPT ARGS MORE`` on this checkout's code, in ``cwd`` (``args`` split as a shell
    would), torch on one thread; what it printed (a failure shows its stderr). It runs in this process
    as Python runs a script (``__main__``, its folder first on the path), which spares the
    seconds of importing torch again; ``process`` runs it in a process of its own."""
    assert script in RUN or script in HELP_ONLY or script in MODULES, f"{script} is in no list"
    argv = [str(REPO / script), *shlex.split(args), *map(str, more)]
    if not process:
        return _in_this_process(argv, cwd)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"  # one thread: a CPU shared with other work is not oversubscribed
    command = [sys.executable, *argv]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _in_this_process(argv: list[str], cwd: Path) -> str:
    """The script run as ``python`` runs it, here, torch on one thread, with none of the tests'
    own folders on its path; the path, modules, folder, threads and torch's random state it found
    are restored after it."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    saved = (list(sys.argv), list(sys.path), set(sys.modules), os.getcwd(), torch.get_num_threads())
    state = torch.get_rng_state()
    tests = str(REPO / "tests")
    sys.argv, sys.path[:] = (
        argv,
        [str(Path(argv[0]).parent), *(p for p in saved[1] if not p.startswith(tests))],
    )
    os.chdir(cwd)
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
        err.write("" if isinstance(stop.code, int | None) else str(stop.code))
    except Exception as exc:  # what it printed before, with the failure
        raise AssertionError(f"{shlex.join(argv)} failed:\n{out.getvalue()}\n{err.getvalue()}") from exc
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]
        for name in set(sys.modules) - saved[2]:  # the scripts' own modules (common, ...) go
            if Path(getattr(sys.modules[name], "__file__", None) or "/").parent in SCRIPT_FOLDERS:
                del sys.modules[name]
        os.chdir(saved[3])
        torch.set_num_threads(saved[4])
        torch.set_rng_state(state)
    assert code == 0, f"{shlex.join(argv)} failed ({code}):\n{out.getvalue()}\n{err.getvalue()}"
    return out.getvalue()


def rows_of(labels_csv: Path) -> list[dict[str, str]]:
    with labels_csv.open(newline="") as f:
        return list(csv.DictReader(f))


def tiny_real_world_set(folder: Path) -> str:
    """Eight pen letters (a and b, each case), photographed: the real-world set's builder, small."""
    run_script(
        "bench/sets/make_real_world.py",
        "--pen-only --letters ab --per-letter 4 --out",
        folder,
        cwd=folder.parent,
    )
    return str(folder)


def test_every_script_is_run_or_listed():
    lists = [set(RUN), set(HELP_ONLY), set(MODULES)]
    assert sum(map(len, lists)) == len(set().union(*lists)), "a script is in more than one list"
    assert set(SCRIPTS) - set().union(*lists) == set(), "scripts neither run nor listed as help-only"
    assert set().union(*lists) - set(SCRIPTS) == set(), "listed scripts that are gone"
    for script in SCRIPTS:
        has_main = MAIN in (REPO / script).read_text()
        assert has_main == (script not in MODULES), f"{script}: a command has a main block, a module none"
    hacks = [
        s
        for s in SCRIPTS
        if re.search(r"sys\.path\.(insert|append)|sys\.path\s*[+]?=", (REPO / s).read_text())
    ]
    assert not hacks, f"scripts that reach another through sys.path: {hacks}"


@pytest.mark.parametrize("script", sorted(HELP_ONLY))
def test_help_only_scripts_say_how_to_run_them(script, tmp_path):
    out = run_script(script, "--help", cwd=tmp_path)
    assert out.startswith("usage:") and "--" in out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_shared_modules_load(module, tmp_path):
    assert run_script(module, cwd=tmp_path) == ""  # definitions only: nothing runs, nothing prints


@pytest.mark.slow
def test_set_builders_build_tiny_sets(tmp_path):
    run_script(
        "bench/sets/make_real_world.py", "--pen-only --letters qz --per-letter 4 --out rw", cwd=tmp_path
    )
    assert {(r["label"], r["case"], r["source"]) for r in rows_of(tmp_path / "rw" / "labels.csv")} == {
        (c, case, "pen") for c in "qz" for case in ("upper", "lower")
    }
    fonts = tmp_path / "fonts"  # two of the training fonts stand in for the held-out ones
    fonts.mkdir()
    for name in ("delius.woff", "mali.woff"):
        (fonts / name).write_bytes((REPO / "src" / "letterbench" / "images" / "fonts" / name).read_bytes())
    said = run_script("bench/sets/make_font_set.py", "--out fs --per-letter 1 --fonts", fonts, cwd=tmp_path)
    assert said.startswith("104 images, 2 fonts") and len(rows_of(tmp_path / "fs" / "labels.csv")) == 104
    run_script("bench/sets/nonletters.py", "nl --count 12 --seed 2", cwd=tmp_path)
    assert len(list((tmp_path / "nl").rglob("*.png"))) == 12
    run_script("bench/sets/unipen_bench.py", "ub --per-class 2", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "ub").iterdir()) == list("abcdefghijklmnopqrstuvwxyz")
    assert len(list((tmp_path / "ub").rglob("*.png"))) == 52


def _unipen_copy(folder: Path) -> Path:
    """A git copy laid out as UNIPEN train_r01_v07: a data file of category 1b whose segments (an
    "A" of two strokes, an "l" of one) point into the pen stream of the file it includes."""
    (folder / "include" / "site").mkdir(parents=True)
    (folder / "data" / "1b" / "site").mkdir(parents=True)
    strokes = [["0 0", "100 200", "200 0"], ["50 100", "150 100"], ["0 0", "0 200"]]
    pen = "".join(".PEN_DOWN\n" + "\n".join(s) + "\n.PEN_UP\n" for s in strokes)
    head = ".X_POINTS_PER_INCH 100\n.Y_POINTS_PER_INCH 100\n.WRITER_ID w1\n"
    (folder / "include" / "site" / "w1.dat").write_text(head + pen)
    (folder / "data" / "1b" / "site" / "w1.dat").write_text(
        '.INCLUDE site/w1.dat\n.SEGMENT CHARACTER 0-1 OK "A"\n.SEGMENT CHARACTER 2 OK "l"\n'
    )
    for git in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(folder), *git], check=True, capture_output=True)
    return folder


@pytest.mark.slow
def test_unipen_letters_are_extracted_and_packed(tmp_path):
    repo = _unipen_copy(tmp_path / "unipen")
    run_script("bench/sets/unipen_extract.py", "", repo, "letters.jsonl.gz", cwd=tmp_path)
    said = run_script("bench/sets/unipen_letters.py", "letters.jsonl.gz --out letters.npz", cwd=tmp_path)
    assert "'letters': 2, 'writers': 1" in said
    with np.load(tmp_path / "letters.npz") as packed:
        assert packed["labels"].tolist() == [0, 11] and packed["capital"].tolist() == [True, False]
        assert packed["strokes"].tolist() == [0, 2, 3]  # the A's two strokes, the l's one


@pytest.mark.slow
def test_the_measuring_scripts_read_a_tiny_study(tiny_letters, tmp_path):
    study = "--preset smoke --out study --args '--models smallcnn' --data-dir"
    table = run_script("bench/study_wall.py", study, tiny_letters, cwd=tmp_path, process=True)
    assert "training" in table and "(outside the process)" in table
    letters = tiny_real_world_set(tmp_path / "rw")
    read = run_script("bench/real_world.py", "--run study --device cpu --json --set", letters, cwd=tmp_path)
    reading = json.loads(read)["sets"][0]["results"]["study"]["smallcnn"]
    assert reading["images"] == 8 and set(reading["by"]["case"]) == {"lower", "upper"}
    assert sum(share["images"] for share in reading["by"]["source"].values()) == 8
    printed = run_script("bench/reading.py", "--run study --below 0.3 --set", letters, cwd=tmp_path)
    assert "EMNIST a..l slice: smallcnn" in printed and "top-1" in printed
    latency = run_script("bench/serve_latency.py", "--run study --n 2 --device cpu", cwd=tmp_path)
    assert "one model  smallcnn" in latency


@pytest.mark.slow
def test_the_training_scripts_run_on_tiny_data(tiny_letters, tmp_path):
    letters = tiny_real_world_set(tmp_path / "rw")
    variants = "--variant base=val_fraction=0.25 --variant wd=val_fraction=0.25,phases.0.optimizer.weight_decay=0.001"
    tiny = "--model smallcnn --train-per-class 4 --epochs 1 --seeds 0 --device cpu --prepared rw.npz"
    sweep = run_script(
        "bench/recipe_sweep.py", f"{variants} {tiny} --set {letters} --data-dir", tiny_letters, cwd=tmp_path
    )
    assert "base seed 0: val" in sweep and "wd seed 0: val" in sweep and "real-world: 8 images" in sweep
    assert (tmp_path / "rw.npz").is_file()
    speed = "--models smallcnn --batches 16 --repeats 1 --workers 0 --device cpu --inference"
    printed = run_script("bench/train_throughput.py", speed, cwd=tmp_path)
    assert (
        "smallcnn @28" in printed
        and "engine/loader" in printed
        and "predict_probabilities against" in printed
    )
