"""The code's shape: one owner per concept (the run-directory layout), the layers and the one way
data flows through them, no import circle, the size rules, no private name used across modules, no
path of the checkout read by the package, and the developer page's layout table."""

from __future__ import annotations

import re
from pathlib import Path

from letterbench import LAYERS

REPO = Path(__file__).resolve().parents[2]

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


def test_the_developer_page_states_the_layers_in_their_order():
    assert "`" + "` -> `".join(LAYERS) + "`" in (REPO / "docs" / "developers.md").read_text()


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
        files = [t.split("::")[0] for t in mutant.tests if t.startswith("tests/")]
        assert files and all((REPO / f).is_file() for f in files), f"{mutant.name}: runs {files}"


# The guide's size rules: a module a reader takes in at once, a function that fits a screen.
MODULE_LINES, FUNCTION_LINES = 350, 50


def _sizes(root: Path) -> tuple[list[str], list[str]]:
    import ast

    modules, functions = [], []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(root)
        if len(text.splitlines()) > MODULE_LINES:
            modules.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    functions.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    return modules, functions


def test_no_module_over_350_lines_and_no_function_over_50(tmp_path):
    modules, functions = _sizes(PACKAGE)
    assert not modules, f"modules over {MODULE_LINES} lines:\n" + "\n".join(modules)
    assert not functions, f"functions over {FUNCTION_LINES} lines:\n" + "\n".join(functions)
    # the rule sees what it should: a long module and a long function written for the purpose
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    (tmp_path / "long.py").write_text("def f():\n" + body + "\n" + "\n" * MODULE_LINES)
    modules, functions = _sizes(tmp_path)
    assert len(modules) == 1 and functions == [f"long.py:1 f: {FUNCTION_LINES + 1} lines"]


def test_no_private_name_is_imported_across_modules():
    import ast

    crossing = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("letterbench"):
                private = [
                    a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
                crossing += [f"{path.relative_to(REPO)} imports {node.module}.{name}" for name in private]
    assert not crossing, "private names used outside their module:\n" + "\n".join(crossing)


def test_the_package_reads_no_path_of_the_checkout():
    """Installed, letterbench behaves the same wherever it is started: it never looks for the
    checkout's bench/ or tests/ folders, or the shared data beside it (make and the tests pass
    those paths explicitly)."""
    spelled = re.compile(r"""["'](bench|tests)["']|["'](bench|tests)/|\.\./shared""")
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "checkout paths in the package:\n" + "\n".join(found)
    assert spelled.search('Path("bench") / "real-world"') and spelled.search("'../shared/data'")


def _layout_rows(page: str) -> dict[str, set[str]]:
    """The developer page's layout table: folder -> the modules (and sub-folders) it names."""
    table = page.split("| folder | modules and what they own |")[1].split("\n\n")[0]
    rows = {}
    for folder, text in re.findall(r"^\| `letterbench/(\w+)/` \| (.+) \|$", table, re.M):
        rows[folder] = set(re.findall(r"`((?:\w+/)*\w+\.py|\w+/)`", text))
    return rows


def test_the_developer_page_names_every_module_in_its_folder():
    rows = _layout_rows((REPO / "docs" / "developers.md").read_text())
    assert list(rows) == list(LAYERS), "the layout table's folders are not the layers, in order"
    for layer in LAYERS:
        folder = PACKAGE / layer
        modules = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
        modules |= {p.name + "/" for p in folder.iterdir() if p.is_dir() and any(p.glob("*.py"))}
        # a data folder (data/unipen/) and a sub-folder's modules (runs/records/run.py) may be named too
        gone = {name for name in rows[layer] - modules if not (folder / name).exists()}
        assert modules <= rows[layer] and not gone, (
            f"docs/developers.md's row for {layer}/: missing {sorted(modules - rows[layer])}, gone {sorted(gone)}"
        )
