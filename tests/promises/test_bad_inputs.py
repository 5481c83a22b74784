"""Bad inputs and faults, as a user meets them: each case runs the real CLI in a child process and
must end with exit status 1, exactly one `letterbench: error:` line that names the file or option,
no traceback, and every file that existed before unchanged.

The cases run two at a time in one module fixture, each in a child process forked from the test's
(with its own folder, environment, output and warnings; torch is imported once, not per case);
those that need another user or a small disk in a fresh interpreter, as `python -m letterbench`.
Each test then checks one case's outcome.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_letters, write_emnist
from PIL import Image

import letterbench
from letterbench.cli.main import main
from letterbench.data.emnist import member_name
from letterbench.data.idx import encode_idx

# Over a hundred cases, each in a child process (about 20 s): left out of the quick loop.
pytestmark = pytest.mark.slow

SRC = Path(letterbench.__file__).resolve().parents[1]  # the code this test imports (mutants: a copy)


@dataclass
class World:
    """What the cases start from: a valid data folder and a trained, evaluated run (both only ever
    copied into a case's own folder, never changed)."""

    data: Path
    run: Path
    digest: dict[str, str] | None = None  # every file of both, as the cases found them


@dataclass
class Case:
    setup: Callable[[Path, World], list[str]]  # makes files in the case folder, returns the arguments
    expect: str  # must appear in the error line (case-insensitive)
    unprivileged: bool = False  # run as a user without root's right to ignore permissions
    small_disk: bool = False  # a 2 MiB file system is mounted on the case's small/ for the run
    filled_kb: int = 0  # of which this much is taken before the run starts


CASES: dict[str, Case] = {}


def case(name: str, expect: str, unprivileged: bool = False, small_disk: bool = False, filled_kb: int = 0):
    def wrap(setup):
        CASES[name] = Case(setup, expect, unprivileged, small_disk, filled_kb)
        return setup

    return wrap


def copy_data(tmp: Path, w: World) -> Path:
    return Path(shutil.copytree(w.data, tmp / "data"))


def copy_run(tmp: Path, w: World) -> Path:
    return Path(shutil.copytree(w.run, tmp / "run"))


def letter_png(path: Path) -> Path:
    a = np.full((40, 40), 255, np.uint8)
    a[6:34, 17:23] = 0
    Image.fromarray(a).save(path)
    return path


def idx_file(folder: Path, name: str, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(encode_idx(array))
    return folder / name


def recipe_file(tmp: Path, old: str, new: str) -> Path:
    from importlib import resources

    text = resources.files("letterbench.recipes").joinpath("densenet121.toml").read_text()
    assert old in text
    path = tmp / "mine.toml"
    path.write_text(text.replace(old, new, 1))
    return path


TRAIN = ["train", "--model", "timm:test_resnet", "--quiet", "--epochs", "1"]

# ---------------------------------------------------------------- 1. nothing of the user's deleted


@case("run-over-foreign-run-folder", "thesis.txt")
def _(tmp, w):
    (tmp / "study2/runs/resnet18").mkdir(parents=True)
    (tmp / "study2/runs/resnet18/thesis.txt").write_text("x")
    (tmp / "study2/study.json").write_text('{"preset": "smoke", "seed": 0, "split": "letters"}')
    return ["run", "--preset", "smoke", "--models", "resnet18", "--out", "study2", "--quiet"]


@case("run-into-a-foreign-folder", "neither empty nor a letterbench study")
def _(tmp, w):
    (tmp / "mine/report").mkdir(parents=True)
    (tmp / "mine/report/report.html").write_text("my own report")
    return ["run", "--preset", "smoke", "--models", "resnet18", "--out", "mine"]


@case("report-over-foreign-folder", "not a letterbench report")
def _(tmp, w):
    (tmp / "out").mkdir()
    (tmp / "out/report.html").write_text("mine")
    return ["report", str(copy_run(tmp, w)), "--out", "out"]


@case("train-into-folder-with-foreign-files", "did not write")
def _(tmp, w):
    (tmp / "r").mkdir()
    (tmp / "r/notes.txt").write_text("mine")
    return [*TRAIN, "--out", "r"]


# ---------------------------------------------------------------- 3. imports checked whole


@case("import-labels-not-matching-images-in-place", "would pair")
def _(tmp, w):
    data = copy_data(tmp, w)
    idx_file(tmp / "official-labels", member_name("letters", "train", "labels"), np.ones(10, np.uint8))
    return ["data", "import", "official-labels", "--data-dir", str(data)]


@case("import-label-zero", "label 0")
def _(tmp, w):
    data = copy_data(tmp, w)
    images, labels = synthetic_letters(2)
    idx_file(tmp / "new", member_name("letters", "train", "images"), images)
    idx_file(tmp / "new", member_name("letters", "train", "labels"), labels)  # 0-based: holds a 0
    return ["data", "import", "new", "--data-dir", str(data)]


@case("import-pair-counts-differ", "would pair")
def _(tmp, w):
    data = copy_data(tmp, w)
    images, labels = synthetic_letters(2)
    idx_file(tmp / "new", member_name("letters", "test", "images"), images)
    idx_file(tmp / "new", member_name("letters", "test", "labels"), labels[:-1] + 1)
    return ["data", "import", "new", "--data-dir", str(data)]


@case("import-garbage-mapping", "mapping")
def _(tmp, w):
    data = copy_data(tmp, w)
    (tmp / "new").mkdir()
    (tmp / "new/emnist-letters-mapping.txt").write_text("hello world\nthis is not a mapping\n")
    return ["data", "import", "new", "--data-dir", str(data)]


@case("import-short-mapping", "lists 2 classes")
def _(tmp, w):
    data = copy_data(tmp, w)
    (tmp / "new").mkdir()
    (tmp / "new/emnist-letters-mapping.txt").write_text("1 65 97\n2 66 98\n")
    return ["data", "import", "new", "--data-dir", str(data)]


# ---------------------------------------------------------------- 6, 7. resume


@case("resume-refuses-batch-size", "--batch-size")
def _(tmp, w):
    return ["train", "--resume", "--out", str(copy_run(tmp, w)), "--batch-size", "8"]


@case("resume-refuses-set", "--set")
def _(tmp, w):
    return ["train", "--resume", "--out", str(copy_run(tmp, w)), "--set", "label_smoothing=0.2"]


@case("resume-refuses-model-and-seed", "--seed: recorded 0, given 3")
def _(tmp, w):
    return ["train", "--resume", "--out", str(copy_run(tmp, w)), "--model", "resnet18", "--seed", "3"]


@case("resume-refuses-another-model", "--model: recorded 'timm:test_resnet', given 'resnet18'")
def _(tmp, w):
    return ["train", "--resume", "--out", str(copy_run(tmp, w)), "--model", "resnet18"]


@case("resume-fewer-epochs-than-trained", "already trained")
def _(tmp, w):
    run = copy_run(tmp, w)
    return ["train", "--resume", "--out", str(run), "--epochs", "1", "--quiet", "--device", "cpu"]


@case("resume-nothing-there", "--resume --out empty: no run has started there (no config.json); to start")
def _(tmp, w):
    (tmp / "empty").mkdir()
    return ["train", "--resume", "--out", "empty"]


@case(
    "resume-no-such-folder-with-the-users-command", "--resume --out nowhere: no such folder; to start a run"
)
def _(tmp, w):
    return ["train", "--model", "resnet18", "--epochs", "2", "--out", "nowhere", "--resume"]


# ---------------------------------------------------------------- 9. numbers


for option, value in [
    ("--train-per-class", "0"),
    ("--train-per-class", "-5"),
    ("--epochs", "0"),
    ("--lr", "-1"),
    ("--lr", "nan"),
    ("--batch-size", "1"),
    ("--seed", "-1"),
    ("--epochs", "two"),
]:

    def _numeric(tmp, w, option=option, value=value):
        return [*TRAIN, option, value, "--out", "r"]

    case(f"train{option}={value}", option)(_numeric)


@case("evaluate--test-per-class=0", "--test-per-class")
def _(tmp, w):
    return ["evaluate", str(copy_run(tmp, w)), "--test-per-class", "0"]


@case("models--num-classes=0", "--num-classes")
def _(tmp, w):
    return ["models", "resnet18", "--num-classes", "0"]


@case("unknown-option", "--nonsense")
def _(tmp, w):
    return ["train", "--nonsense"]


# ---------------------------------------------------------------- 11. paths


@case("fetch-url-not-a-url", "--url")
def _(tmp, w):
    return ["data", "fetch", "--url", "notaurl", "--data-dir", "d"]


@case("fetch-data-dir-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return ["data", "fetch", "--url", "http://127.0.0.1:9/gzip.zip", "--data-dir", "afile"]


@case("import-data-dir-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    data = copy_data(tmp, w)
    return ["data", "import", str(data), "--data-dir", "afile"]


@case("info-data-dir-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return ["data", "info", "--data-dir", "afile"]


@case("info-data-dir-unreadable", "permission denied", unprivileged=True)
def _(tmp, w):
    data = copy_data(tmp, w)
    data.chmod(0)
    return ["data", "info", "--data-dir", str(data)]


@case("import-into-read-only-folder", "permission denied", unprivileged=True)
def _(tmp, w):
    data = copy_data(tmp, w)
    images, labels = synthetic_letters(2)
    idx_file(tmp / "new", member_name("letters", "test", "images"), images)
    idx_file(tmp / "new", member_name("letters", "test", "labels"), labels + 1)
    data.chmod(0o555)
    return ["data", "import", "new", "--data-dir", str(data)]


@case("train-out-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return [*TRAIN, "--out", "afile"]


@case("train-out-under-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return [*TRAIN, "--out", "afile/run"]


@case("train-out-read-only-parent", "permission denied", unprivileged=True)
def _(tmp, w):
    (tmp / "ro").mkdir(mode=0o555)
    return [*TRAIN, "--out", "ro/run"]


@case("report-out-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return ["report", str(copy_run(tmp, w)), "--out", "afile"]


@case("predict-show-input-is-a-file", "is a file")
def _(tmp, w):
    (tmp / "afile").write_text("x")
    return [
        "predict",
        str(letter_png(tmp / "a.png")),
        "--run",
        str(copy_run(tmp, w)),
        "--show-input",
        "afile",
    ]


@case("evaluate-run-read-only", "permission denied", unprivileged=True)
def _(tmp, w):
    run = copy_run(tmp, w)
    for path in [run, *run.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return ["evaluate", str(run), "--no-plots", "--device", "cpu"]


@case(
    "export-disk-fills-up",
    "small/model.pt: no space left on device; the disk is full: free some space and run the same command again",
    small_disk=True,
    filled_kb=1800,  # 250 KB left: less than the exported model
)
def _(tmp, w):
    return ["export", "--run", str(copy_run(tmp, w)), "--format", "torchscript", "--out", "small/model.pt"]


@case("train-disk-fills-up", "no space left on device; the disk is full", small_disk=True)
def _(tmp, w):
    return ["train", "--model", "resnet18", "--epochs", "1", "--train-per-class", "4", "--quiet"] + [
        "--set",
        "val_fraction=0.5",
        "--out",
        "small/run",
    ]


# ---------------------------------------------------------------- 12. damaged run files


@case("resume-config-without-data", "'data'")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    config = json.loads((run / "config.json").read_text())
    del config["data"]
    (run / "config.json").write_text(json.dumps(config))
    return ["train", "--resume", "--out", str(run), "--epochs", "3"]


@case("run-truncated-study-json", "study.json")
def _(tmp, w):
    (tmp / "s").mkdir()
    (tmp / "s/study.json").write_text('{"preset": "smo')
    return ["run", "--preset", "smoke", "--models", "resnet18", "--out", "s"]


@case("run-study-json-not-an-object", "study.json")
def _(tmp, w):
    (tmp / "s").mkdir()
    (tmp / "s/study.json").write_text("[1, 2]")
    return ["run", "--preset", "smoke", "--models", "resnet18", "--out", "s"]


def _foreign_checkpoint(tmp: Path, w: World) -> Path:
    import torch

    from letterbench.models import create_model
    from letterbench.runs.checkpoints import CHECKPOINT_FORMAT

    run = copy_run(tmp, w)
    other = create_model("timm:test_efficientnet", 26).state_dict()
    torch.save({"format": CHECKPOINT_FORMAT, "model": other}, run / "checkpoints/best-train.pt")
    return run


@case("evaluate-foreign-checkpoint", "does not fit")
def _(tmp, w):
    return ["evaluate", str(_foreign_checkpoint(tmp, w)), "--no-plots"]


@case("predict-foreign-checkpoint", "does not fit")
def _(tmp, w):
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(_foreign_checkpoint(tmp, w))]


@case("predict-truncated-checkpoint", "corrupt or truncated")
def _(tmp, w):
    run = copy_run(tmp, w)
    path = run / "checkpoints/best-train.pt"
    path.write_bytes(path.read_bytes()[:1000])
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


# ---------------------------------------------------------------- 13. recipe types

for key, old, new in [
    ("lr", "lr = 1e-3", 'lr = "fast"'),
    ("optimizer", 'optimizer = { name = "adam", lr = 1e-3, weight_decay = 0.0 }', 'optimizer = "sgd"'),
    ("trainable", 'trainable = "all"', "trainable = 5"),
    ("val_fraction", "val_fraction = 0.1", 'val_fraction = "a quarter"'),
    ("momentum", 'name = "adam", lr = 1e-3', 'name = "sgd", momentum = "high", lr = 1e-3'),
    ("patience", "patience = 2", 'patience = "two"'),
    ("early_stopping.patience", "patience = 5", 'patience = "x"'),
    ("precise_bn", "batch_size = 128", 'batch_size = 128\nprecise_bn = "all"'),
    ("dropout", "dropout = 0.2", "dropout = 1.5"),
    ("schedule.name", 'name = "plateau"', 'name = "sometimes"'),
]:

    def _recipe(tmp, w, old=old, new=new):
        return ["train", "--recipe", str(recipe_file(tmp, old, new)), "--out", "r", "--quiet"]

    case(f"recipe-{key}", key)(_recipe)


@case("recipe-not-toml", "not valid toml")
def _(tmp, w):
    (tmp / "bad.toml").write_text("name = [unclosed\n")
    return ["train", "--recipe", "bad.toml", "--out", "r"]


# ---------------------------------------------------------------- 14. --set

for setting, expect in [
    ("augment.flip.x=1", "augment.flip"),
    ("batch_size.x=1", "batch_size"),
    ("phases.0.optimizer=5", "phases.0.optimizer"),
    ("phases.0.optimizer.lr=abc", "phases.0.optimizer.lr"),
    ("augment.rotate=lots", "augment.rotate"),
    ("phases.7.epochs=1", "phases.7.epochs"),
    ("nonsense=1", "nonsense"),
    ("no-equals-sign", "KEY=VALUE"),
]:

    def _set(tmp, w, setting=setting):
        return [*TRAIN, "--set", setting, "--out", "r"]

    case(f"set-{setting}", expect)(_set)

# ---------------------------------------------------------------- 15. devices


@case("device-gpu", "--device gpu")
def _(tmp, w):
    return ["evaluate", str(copy_run(tmp, w)), "--device", "gpu"]


@case("device-mps-absent", "--device mps")
def _(tmp, w):
    return [*TRAIN, "--device", "mps", "--out", "r"]


@case("device-cuda-absent", "--device cuda")
def _(tmp, w):
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(copy_run(tmp, w)), "--device", "cuda"]


@case("report-same-run-twice", "named twice")
def _(tmp, w):
    run = copy_run(tmp, w)
    return ["report", str(run), str(run), "--out", "out"]


@case("run-same-model-twice", "--models names resnet18 twice; name each model once")
def _(tmp, w):
    return ["run", "--preset", "smoke", "--models", "resnet18,resnet18", "--out", "s"]


def _with_temperature(tmp, w, value):
    import json

    run = copy_run(tmp, w)
    metrics = json.loads((run / "metrics.json").read_text())
    for stage in metrics["stages"]:
        stage["calibration"]["temperature"] = value
    (run / "metrics.json").write_text(json.dumps(metrics))
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


@case("predict-temperature-a-word", "metrics.json: damaged temperature 'abc'")
def _(tmp, w):
    return _with_temperature(tmp, w, "abc")


@case("predict-temperature-zero", "damaged temperature 0")
def _(tmp, w):
    return _with_temperature(tmp, w, 0)


@case("predict-temperature-negative", "damaged temperature -1")
def _(tmp, w):
    return _with_temperature(tmp, w, -1)


@case("predict-temperature-null", "damaged temperature None")
def _(tmp, w):
    return _with_temperature(tmp, w, None)


@case("run-models-only-commas", "names no model")
def _(tmp, w):
    return ["run", "--preset", "smoke", "--models", " , ", "--out", "s"]


@case("serve-upload-limit-absurd", "at most 1024 MB")
def _(tmp, w):
    return ["serve", "--run", str(copy_run(tmp, w)), "--max-upload-mb", "1e30"]


@case("set-phase-from-the-end", "phases are numbered from 0")
def _(tmp, w):
    return [*TRAIN, "--out", "r", "--set", "phases.-1.epochs=2"]


@case("set-epochs-forever", "phases.0.epochs")
def _(tmp, w):
    return [*TRAIN, "--out", "r", "--set", "phases.0.epochs=99999999999999999999"]


@case("set-trainable-beyond-the-model", "layer units; use last:")
def _(tmp, w):
    return [*TRAIN, "--out", "r", "--set", "val_fraction=0.25", "--set", "phases.0.trainable=last:99999"]


@case("import-mapping-all-one-letter", "class names must be distinct")
def _(tmp, w):
    (tmp / "new").mkdir()
    rows = "".join(f"{k} 65 97\n" for k in range(1, 27))
    (tmp / "new/emnist-letters-mapping.txt").write_text(rows)
    return ["data", "import", "new", "--data-dir", "data"]


@case("resume-config-seed-not-a-number", "config.json is damaged (seed: input should be a valid integer")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "seed": "seven"}))
    return ["train", "--resume", "--out", str(run), "--epochs", "3"]


@case("train-weights-file-missing", "nothere.pt")
def _(tmp, w):
    return [*TRAIN, "--weights", "nothere.pt", "--out", "r"]


@case("train-weights-a-folder", "a folder, not a file")
def _(tmp, w):
    (tmp / "weights").mkdir()
    return [*TRAIN, "--weights", "weights", "--out", "r"]


@case("models-weights-a-folder", "a folder, not a weights file")
def _(tmp, w):
    (tmp / "weights").mkdir()
    return ["models", "resnet18", "--weights", "weights"]


@case("train-phase-name-too-long", "at most 64 characters")
def _(tmp, w):
    return [*TRAIN, "--set", "phases.0.name=" + "p" * 300, "--out", "r"]


@case("run-seeds-zero", "--seeds")
def _(tmp, w):
    return ["run", "--preset", "smoke", "--seeds", "0", "--out", "s"]


@case("train-large-batch-one", "--large-batch")
def _(tmp, w):
    return [*TRAIN, "--large-batch", "1", "--out", "r"]


@case("train-recipe-file-missing", "nothere.toml")
def _(tmp, w):
    return ["train", "--recipe", "nothere.toml", "--out", "r"]


@case("report-run-not-evaluated", "has no predictions (no metrics.json); run `letterbench evaluate")
def _(tmp, w):
    run = copy_run(tmp, w)
    (run / "metrics.json").unlink()
    return ["report", str(run), "--out", "out"]


@case("report-into-a-run-folder", "not a letterbench report")
def _(tmp, w):
    run = copy_run(tmp, w)
    return ["report", str(run), "--out", str(run)]


@case("train-into-a-study-folder", "did not write")
def _(tmp, w):
    (tmp / "s").mkdir()
    (tmp / "s/study.json").write_text("{}")
    return [*TRAIN, "--out", "s"]


@case("evaluate-not-a-run", "not a letterbench run directory")
def _(tmp, w):
    (tmp / "nothing").mkdir()
    return ["evaluate", "nothing"]


@case("evaluate-other-data", "differs from the data")
def _(tmp, w):
    data = copy_data(tmp, w)
    images, labels = synthetic_letters(2, seed=9)
    idx_file(data, member_name("letters", "test", "images"), images.transpose(0, 2, 1))
    idx_file(data, member_name("letters", "test", "labels"), labels + 1)
    return ["evaluate", str(copy_run(tmp, w)), "--data-dir", str(data), "--no-plots"]


@case("data-import-missing-path", "no such file")
def _(tmp, w):
    return ["data", "import", "nothere", "--data-dir", "d"]


@case("train-one-image-per-class", "validation split")
def _(tmp, w):
    return [*TRAIN, "--train-per-class", "1", "--out", "r"]


@case("evaluate-progress-history-not-a-list", "progress.json is damaged (history")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    progress = json.loads((run / "progress.json").read_text())
    (run / "progress.json").write_text(json.dumps({**progress, "history": "x"}))
    return ["evaluate", str(run), "--no-plots"]


@case("report-metrics-a-list", "metrics.json is damaged (not a json object)")
def _(tmp, w):
    run = copy_run(tmp, w)
    (run / "metrics.json").write_text("[]")
    return ["report", str(run), "--out", "out"]


@case("report-metrics-without-stages", "'stages'")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["stages"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    return ["report", str(run), "--out", "out"]


@case("report-corrupt-predictions", "predictions missing or unreadable")
def _(tmp, w):
    run = copy_run(tmp, w)
    (run / "predictions-train.npz").write_bytes(b"PK\x03\x04garbage")
    return ["report", str(run), "--out", "out"]


@case("recipe-infinite-lr", "finite")
def _(tmp, w):
    return ["train", "--recipe", str(recipe_file(tmp, "lr = 1e-3", "lr = inf")), "--out", "r"]


@case("predict-config-recipe-empty", "config.json is damaged")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "recipe": {}}))
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


@case("predict-config-no-class-names", "config.json is damaged (data.class_names")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    config = json.loads((run / "config.json").read_text())
    config["data"]["class_names"] = []
    (run / "config.json").write_text(json.dumps(config))
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


@case("report-metrics-accuracy-not-a-number", "metrics.json is damaged")
def _(tmp, w):
    import json

    run = copy_run(tmp, w)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["stages"][0]["metrics"]["accuracy"] = "high"
    (run / "metrics.json").write_text(json.dumps(metrics))
    return ["report", str(run), "--out", "out"]


@case("predict-best-checkpoint-truncated", "best-train.pt: checkpoint is corrupt or truncated")
def _(tmp, w):
    run = copy_run(tmp, w)
    best = run / "checkpoints" / "best-train.pt"
    best.write_bytes(best.read_bytes()[:1000])
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


@case("predict-best-checkpoint-deleted", "it held the best epoch's weights, which no other file holds")
def _(tmp, w):
    run = copy_run(tmp, w)
    (run / "checkpoints" / "best-train.pt").unlink()
    return ["predict", str(letter_png(tmp / "a.png")), "--run", str(run)]


@case("export-to-a-device", "--out /dev/full is not a regular file")
def _(tmp, w):
    return ["export", "--run", str(copy_run(tmp, w)), "--format", "torchscript", "--out", "/dev/full"]


@case("export-to-a-pipe", "is not a regular file (a device or a pipe)")
def _(tmp, w):
    os.mkfifo(tmp / "pipe")
    return ["export", "--run", str(copy_run(tmp, w)), "--format", "torchscript", "--out", str(tmp / "pipe")]


def _damaged_metrics(where: str, value):
    """A case: the run's metrics.json with one field the report reads set to ``value``."""

    def setup(tmp, w):
        import json

        run = copy_run(tmp, w)
        metrics = json.loads((run / "metrics.json").read_text())
        *path, last = where.split(".")
        target = metrics
        for key in path:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
        (run / "metrics.json").write_text(json.dumps(metrics))
        return ["report", str(run), "--out", "out"]

    return setup


# Every field the report reads is checked when metrics.json is read: one line names it.
for _name, _where, _value, _expect in [
    ("intervals-null", "stages.0.intervals", None, "stages.0.intervals: input should be a valid dictionary"),
    ("run-empty", "run", {}, "metrics.json is damaged (no 'run.dir')"),
    ("overfitting-a-number", "stages.0.overfitting", 3, "stages.0.overfitting: not a JSON object"),
    ("confusion-a-string", "stages.0.confusion_matrix", "many", "stages.0.confusion_matrix: input should be"),
    ("per-class-row-null", "stages.0.per_class.a", None, "stages.0.per_class.a: not a JSON object"),
    ("training-time-empty", "cost.train_time_s", {}, "cost.train_time_s: dictionary should have at least 1"),
    ("epoch-a-string", "stages.0.epoch", "3", "stages.0.epoch: input should be a valid integer"),
    ("speed-a-string", "cost.inference_images_per_s", "fast", "cost.inference_images_per_s: input should be"),
]:
    case(f"report-metrics-{_name}", _expect)(_damaged_metrics(_where, _value))


# ---------------------------------------------------------------- running them


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and os.access(path, os.R_OK):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _unlock(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _prefix(spec: Case, tmp: Path) -> list[str]:
    """Root ignores file permissions; in a user namespace mapped to an ordinary user it does not.
    A small disk is a tmpfs mounted in a mount namespace of the run's own."""
    if spec.unprivileged and os.geteuid() == 0:
        return ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    if spec.small_disk:
        (tmp / "small").mkdir()
        fill = f"dd if=/dev/zero of={tmp / 'small' / '.filler'} bs=1k count={spec.filled_kb} 2>/dev/null && "
        mount = f'mount -t tmpfs -o size=2m none {tmp / "small"} && {fill if spec.filled_kb else ""}exec "$@"'
        return ["unshare", "-Urm", "sh", "-c", mount, "sh"]
    return []


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


def _prepare(name: str, root: Path, world: World) -> tuple[Path, list[str], dict[str, str], dict[str, str]]:
    """The case's folder, arguments, environment and the files in it before the command runs."""
    tmp = root / name.replace("/", "_")
    tmp.mkdir()
    args = [str(a) for a in CASES[name].setup(tmp, world)]
    os.chmod(tmp, 0o755)
    env = {"LETTERBENCH_DATA": str(world.data), "HOME": str(tmp), "OMP_NUM_THREADS": "1"}
    return tmp, args, env, _tree(tmp)


def _run_case(name: str, root: Path, world: World) -> Outcome:
    """In a fresh interpreter (``python -m letterbench``), as a user runs it: the cases that need
    another user or a small disk, which a namespace gives a new process."""
    tmp, args, env, before = _prepare(name, root, world)
    proc = subprocess.run(
        [*_prefix(CASES[name], tmp), sys.executable, "-m", "letterbench", *args],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    _unlock(tmp)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, before, _tree(tmp))


def _forked(tmp: Path, args: list[str], env: dict[str, str], streams: Path) -> int:
    """The CLI in a child process forked from this one (torch is imported already: the cases take
    a fraction of the time), with its own folder, environment, warnings and output files; its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        for fd, name in ((1, "out"), (2, "err")):
            os.dup2(os.open(streams.with_suffix(f".{name}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (the child's fd 1 and 2, unbuffered by exit)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.chdir(tmp)
        os.environ.update(env)
        import warnings

        import torch

        torch.set_num_threads(1)
        warnings.resetwarnings()  # as a fresh interpreter: no warning shown "once" already
        warnings.onceregistry.clear()
        sys.argv = ["letterbench", *args]
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_forked(names: list[str], root: Path, world: World, at_once: int = 2) -> dict[str, Outcome]:
    """Every case in ``names``, ``at_once`` child processes at a time."""
    found, running, waiting = {}, {}, list(names)
    while waiting or running:
        while waiting and len(running) < at_once:
            name = waiting.pop(0)
            tmp, args, env, before = _prepare(name, root, world)
            streams = root / f".{tmp.name}"
            running[_forked(tmp, args, env, streams)] = (name, tmp, before, streams)
        pid, status = os.waitpid(-1, 0)
        name, tmp, before, streams = running.pop(pid)
        _unlock(tmp)
        out, err = (streams.with_suffix(s).read_text() for s in (".out", ".err"))
        found[name] = Outcome(os.waitstatus_to_exitcode(status), out, err, before, _tree(tmp))
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    data = write_emnist(root / "emnist", synthetic_letters(6, seed=1), synthetic_letters(2, seed=2))
    run = root / "run"
    common = ["--quiet", "--data-dir", str(data), "--device", "cpu"]
    train = [*TRAIN, "--epochs", "2", "--out", str(run), "--batch-size", "16", "--set", "val_fraction=0.25"]
    assert main([*train, *common]) == 0
    assert main(["evaluate", str(run), *common[1:]]) == 0
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o444)
    return World(data, run, _tree(root))


@pytest.fixture(scope="module")
def outcomes(world, tmp_path_factory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("cases")
    os.chmod(root, 0o755)
    fresh = [n for n, c in CASES.items() if c.unprivileged or c.small_disk]
    found = {name: _run_case(name, root, world) for name in fresh}
    found.update(_run_forked([n for n in CASES if n not in fresh], root, world))
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clear_line_and_loses_nothing(name, outcomes):
    out = outcomes[name]
    shown = f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "Traceback" not in out.stderr + out.stdout, shown
    errors = [line for line in out.stderr.splitlines() if line.startswith("letterbench: error:")]
    assert len(errors) == 1, shown
    # and nothing else on stderr: no second line, no warning, no progress bar (one clear line)
    assert out.stderr.strip().splitlines() == errors, shown
    assert CASES[name].expect.lower() in errors[0].lower(), shown
    assert out.returncode == 1, shown
    changed = [p for p, digest in out.before.items() if out.after.get(p) != digest]
    assert not changed, f"changed or removed: {changed}\n{shown}"


def test_the_shared_data_and_run_are_unchanged_by_every_case(world, outcomes):
    """Cases without --data-dir read the shared data folder ($LETTERBENCH_DATA), and many copy the
    shared run: after every case has run, both hold exactly the files they held before."""
    assert len(outcomes) == len(CASES)
    assert _tree(world.data.parent) == world.digest
