"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from letterbench import LAYERS
from letterbench.cli.main import main
from letterbench.core.errors import LetterbenchError
from letterbench.models import create_model, display_name, get_model, model_names
from letterbench.recipes import builtin_recipes, describe_recipe, load_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import StudyDir

REPO = Path(__file__).resolve().parents[1]

# A run's and a study's file and folder names, as they could be spelled in code.
LAYOUT = re.compile(
    r"""["'](config|progress|metrics|study)\.json["']|last\.pt|best\.pt|best-|predictions-|"""
    r"""(curves|confusion|roc|errors)\.png|["']checkpoints["']|/ ["']runs["']|/ ["']report["']|["']tensorboard["']"""
)


def test_only_the_run_directory_module_spells_run_file_names():
    offenders = []
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "bench").rglob("*.py")]:
        if path.name in ("rundir.py", "studydir.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if LAYOUT.search(line) and "torch.hub" not in line:  # torch's own hub cache folder
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "run layout spelled outside rundir.py and studydir.py:\n" + "\n".join(offenders)


def test_the_layout_test_would_catch_a_spelled_name():
    assert LAYOUT.search('path = run_dir / "checkpoints" / "last.pt"')
    assert LAYOUT.search("(out / 'metrics.json').read_text()")
    assert not LAYOUT.search("run.checkpoint('last')")


def test_registry_lists_builds_and_names_every_model():
    assert model_names() == ("resnet18", "densenet121", "xception", "smallcnn")
    for name in model_names():
        entry = get_model(name)
        model = create_model(name)
        assert model.spec == entry.input and model.name == name
        assert load_recipe(entry.recipe).model == name
    assert display_name("densenet121") == "DenseNet-121" and display_name("timm:x") == "timm:x"
    assert get_model("resnet18").pretrained_tag is None
    assert get_model("xception").pretrained_tag == "legacy_xception.tf_in1k"
    timm_entry = get_model("timm:resnet10t")
    assert timm_entry.input.channels == 1 and timm_entry.input.size == 32
    with pytest.raises(LetterbenchError, match="unknown model 'nosuch'.*timm:<name>"):
        get_model("nosuch")
    with pytest.raises(LetterbenchError, match="timm has no model"):
        get_model("timm:nosuchnet")
    with pytest.raises(LetterbenchError, match="resnet18 has no ImageNet weights"):
        create_model("resnet18", pretrained=True)


def test_one_recipe_resolver_for_every_kind_of_model(tmp_path):
    timm = resolve_recipe("timm:resnet10t")
    assert (timm.model, timm.name) == ("timm:resnet10t", "timm:resnet10t")
    assert timm.phases == load_recipe("resnet18").phases  # the registry's default recipe for timm models
    x = resolve_recipe("xception", total_epochs=5, lr=0.01, batch_size=16, overrides=["phases.1.epochs=7"])
    assert [p.epochs for p in x.phases] == [3, 7]  # shared out, then --set wins
    assert [p.optimizer.lr for p in x.phases] == pytest.approx([0.01, 0.001])  # ratio kept
    assert x.batch_size == 16
    custom = tmp_path / "mine.toml"
    custom.write_text(
        'name = "mine"\nmodel = "resnet18"\n[[phases]]\nname = "p"\nepochs = 2\n'
        'optimizer = { name = "adam", lr = 0.001 }\n'
    )
    mine = resolve_recipe("timm:resnet10t", str(custom))
    assert (mine.name, mine.model) == ("mine", "timm:resnet10t")
    with pytest.raises(LetterbenchError, match="say what to train"):
        resolve_recipe()


def test_the_guides_recipe_table_is_the_shipped_recipes():
    readme = (REPO / "docs" / "guide.md").read_text()
    rows = dict(
        re.findall(
            r"^\| `([\w-]+)` \| (.+) \|$", readme.split("| recipe | what it does |")[1].split("\n\n")[0], re.M
        )
    )
    assert set(rows) == set(builtin_recipes())
    for name, text in rows.items():
        assert text == describe_recipe(load_recipe(name)), (
            f"docs/guide.md's row for {name} differs from the recipe file"
        )


def test_run_and_study_directories(tmp_path):
    study = StudyDir(tmp_path / "s")
    run = study.run("timm:resnet10t")
    assert run.path == tmp_path / "s" / "runs" / "timm-resnet10t" and run.status() == "not started"
    run.path.mkdir(parents=True)
    (run.path / "thesis.txt").write_text("mine")
    with pytest.raises(LetterbenchError, match="did not write.*thesis.txt"):
        run.clear_unstarted()
    assert (run.path / "thesis.txt").read_text() == "mine"
    (run.path / "thesis.txt").unlink()
    # What an epoch interrupted while writing its checkpoints leaves: all letterbench's, all removed.
    run.config_file.write_text(json.dumps({"recipe": {}}))  # a config cut short
    run.save_checkpoint("train", {"model": {}})
    run.save_checkpoint("best", {"model": {}})
    (run.checkpoint_dir / ".last.pt.abc1_x9z.tmp").write_bytes(b"half")
    (run.path / ".progress.json.x7k2m0qp.tmp").write_text("{")
    run.clear_unstarted()
    assert not run.path.exists() or not any(run.path.iterdir())
    with pytest.raises(LetterbenchError, match="neither a run directory nor a study"):
        from letterbench.runs.studydir import find_runs

        find_runs(tmp_path / "s")


def test_phase_names_cannot_collide_with_run_checkpoints():
    for name in ("last", "best", "a/b"):
        with pytest.raises(LetterbenchError, match="phase name"):  # 'a/b' would be a folder
            resolve_recipe("resnet18", overrides=[f"phases.0.name={name}"])


def test_fit_without_observers_carries_the_best_weights_into_the_next_phase(tiny_letters, tmp_path):
    import torch

    from letterbench.core.runtime import Runtime
    from letterbench.data.emnist import load_emnist
    from letterbench.data.splits import make_split
    from letterbench.training.engine import TrainData, Trainer

    data = load_emnist(tiny_letters)
    split = make_split(data, 0.25, 0, 4)
    tensors = TrainData(
        data.train_images[split.train],
        data.train_labels[split.train],
        data.train_images[split.val],
        data.train_labels[split.val],
    )
    recipe = resolve_recipe("timm:resnet10t", "xception", epochs=1, batch_size=26, overrides=["precise_bn=0"])
    trainer = Trainer(
        recipe, create_model("timm:resnet10t"), tensors, Runtime(torch.device("cpu")), RunDir(tmp_path)
    )
    state = trainer.fit()  # two phases, nothing written to disk, nothing read from it
    assert [h["phase"] for h in state.history] == ["initial", "fine-tune"]
    assert not (tmp_path / "run").exists()


def test_written_files_follow_the_umask(tmp_path):
    from letterbench.core.fsutil import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_tensorboard_observer_writes_what_tensorboard_reads_back(tiny_letters, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunDir(tmp_path / "r")
    args = ["train", "--model", "timm:resnet10t", "--quiet", "--train-per-class", "8", "--epochs", "2"]
    args += [
        "--set",
        "val_fraction=0.25",
        "--data-dir",
        str(tiny_letters),
        "--out",
        str(run.path),
        "--tensorboard",
    ]
    assert main(args) == 0
    history = run.read_progress().to_json()["history"]
    events = EventAccumulator(str(run.tensorboard_dir / "train"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {
        "loss/train",
        "loss/validation",
        "accuracy/train",
        "accuracy/validation",
        "learning_rate",
        "images_per_s",
    }
    for tag, key in (
        ("loss/train", "train_loss"),
        ("accuracy/validation", "val_acc"),
        ("learning_rate", "lr"),
    ):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([h[key] for h in history], rel=1e-5)


# Data flows one way: the package's folders are its layers (``letterbench.LAYERS``, in order); a
# module may import its own layer and the layers before it, never a later one.
PACKAGE = REPO / "src" / "letterbench"


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def test_every_module_lives_in_a_layer_folder():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"], "modules outside a layer's folder: " + ", ".join(top)
    folders = {p.parent.name for p in PACKAGE.glob("*/*.py")}
    assert folders == set(LAYERS), f"folders that are not layers: {folders ^ set(LAYERS)}"


def test_readme_states_the_layers_in_their_order():
    assert "`" + "` -> `".join(LAYERS) + "`" in (REPO / "docs" / "guide.md").read_text()


def test_imports_flow_one_way():
    import ast

    backwards = []
    for path in (REPO / "src" / "letterbench").rglob("*.py"):
        parts = path.relative_to(REPO / "src").with_suffix("").parts
        if len(parts) == 2:  # the package's __init__ and __main__
            continue
        own = _layer(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("letterbench."):
                if _layer(node.module) > own:
                    backwards.append(f"{'/'.join(parts)} imports {node.module}")
    assert not backwards, "imports against the flow data -> ... -> cli:\n" + "\n".join(backwards)


def test_load_measurement_sees_another_busy_process():
    import subprocess
    import sys
    import time

    import torch

    from letterbench.core.runtime import Runtime

    runtime = Runtime(torch.device("cpu"))
    with runtime.measure_load() as idle:
        time.sleep(0.5)
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.5)  # let it start spinning
        with runtime.measure_load() as loaded:
            time.sleep(1.0)
    finally:
        busy.kill()
        busy.wait()
    assert loaded.other_cpu_cores > 0.6 and loaded.under_load
    assert loaded.other_cpu_cores > idle.other_cpu_cores + 0.5


def test_no_module_imports_itself_through_others():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "tools" / "import_graph.py"), str(REPO / "src")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "\ncircles 0" in done.stdout, done.stdout  # lazy and type-only imports count too


def test_every_mutant_still_finds_the_line_it_breaks():
    """tests/tools/mutants.py breaks each guarantee by replacing one exact piece of code: after a refactor
    that moves the piece, the mutant would be "not applied" (and count as a survivor) unless its
    text follows. Each text occurs exactly once in its file."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("bench_mutants", REPO / "tests" / "tools" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    sys.modules["bench_mutants"] = mutants  # its dataclasses look their module up
    spec.loader.exec_module(mutants)
    for mutant in mutants.MUTANTS:
        text = (REPO / "src" / "letterbench" / mutant.file).read_text()
        assert text.count(mutant.old) == 1, f"{mutant.name}: its text occurs {text.count(mutant.old)} times"
