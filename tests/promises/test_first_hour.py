"""The first hour: the closing hint works where the user stands, and `letterbench --help` says
where to start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from letterbench.cli.evaluate import serve_hint
from letterbench.cli.main import main


def test_the_closing_hint_is_make_serve_after_make_run(monkeypatch):
    monkeypatch.setenv("LETTERBENCH_VIA_MAKE", "1")
    assert serve_hint(Path("first")) == "`make serve STUDY=first`"
    monkeypatch.delenv("LETTERBENCH_VIA_MAKE")
    if importlib.util.find_spec("fastapi") is not None:
        assert serve_hint(Path("first")) == "`letterbench serve --run first`"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    assert (
        serve_hint(Path("first"))
        == "`pip install 'letterbench[serve]'`, then `letterbench serve --run first`"
    )


def test_the_makefile_says_it_runs_the_study():
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "LETTERBENCH_VIA_MAKE=1 $(VENV)/bin/letterbench run" in makefile


def test_help_ends_with_where_to_start(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.endswith(
        "start here: `letterbench run --preset first --out first` trains a first model in a few minutes; "
        "then `letterbench serve --run first` reads the letters you draw."
    )


def test_a_bare_letterbench_ends_with_where_to_start(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "start here: `letterbench run --preset first --out first`" in " ".join(out.split())


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "main-run"


def test_predict_reads_a_folder_in_order_and_names_each_file_that_is_no_image(tmp_path, capfd):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("b.png", "a.png"):
        img = np.full((64, 64), 255, np.uint8)
        img[10:54, 28:36] = 0
        Image.fromarray(img).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "._a.png").write_bytes(b"macOS metadata")  # hidden: left out
    assert main(["predict", "--run", str(FIXTURE), str(folder)]) == 1  # one file was no image
    out, err = capfd.readouterr()
    lines = [line for line in out.splitlines() if line.startswith(str(folder))]
    assert [line.split(":")[0] for line in lines] == [str(folder / "a.png"), str(folder / "b.png")]
    assert err.strip().splitlines() == [
        f"{folder / 'notes.txt'}: error: not an image letterbench can read (use PNG, JPEG, GIF, BMP, TIFF or WebP)"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--run", str(FIXTURE), str(empty)]) == 1
    assert "the folder holds no files" in capfd.readouterr().err


def test_data_info_calls_a_partial_copy_partial(real_data_dir):
    from letterbench.data.emnist import load_emnist
    from letterbench.data.info import describe

    text = describe(load_emnist(real_data_dir, "letters"))
    assert "differs" not in text
    assert "partial copy (fewer images than the official file)" in text


@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_predict_warns_once_that_a_run_without_a_readable_evaluation_is_uncalibrated(
    tmp_path, capsys, damage
):
    import shutil

    import numpy as np
    from PIL import Image

    run = Path(shutil.copytree(FIXTURE, tmp_path / "run"))
    if damage == "missing":
        (run / "metrics.json").unlink()
    else:
        (run / "metrics.json").write_text("{not json")
    img = np.full((64, 64), 255, np.uint8)
    img[10:54, 28:36] = 0
    Image.fromarray(img).save(tmp_path / "l.png")
    assert main(["predict", "--run", str(run), str(tmp_path / "l.png")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "uncalibrated" in line]
    why = "it was never evaluated" if damage == "missing" else "its metrics.json is damaged"
    assert len(err) == 1 and err[0].startswith("letterbench: warning:") and why in err[0]
    assert f"run `letterbench evaluate {run}`" in err[0]


def test_evaluate_with_a_real_world_folder_prints_its_figures(tmp_path, capsys):
    import shutil
    import sys

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(FIXTURE.parent))
    from make_main_run import tiny_data

    run = Path(shutil.copytree(FIXTURE, tmp_path / "run"))
    for letter in "lo":
        (tmp_path / "set" / letter).mkdir(parents=True)
        img = np.full((64, 64), 255, np.uint8)
        img[10:54, 28:36] = 0
        Image.fromarray(img).save(tmp_path / "set" / letter / "1.png")
    data = tiny_data(tmp_path / "emnist")
    args = [
        "evaluate",
        str(run),
        "--data-dir",
        str(data),
        "--no-plots",
        "--real-world",
        str(tmp_path / "set"),
    ]
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("real-world "))
    assert line.startswith(f"real-world {tmp_path / 'set'} (2 images), phase train: top-1 ")
    assert "top-3" in line and "[" in line


def test_each_preset_takes_one_time_wherever_it_is_said():
    """The README's presets table, its quick start, the guide, docs/benchmarks.md (where the
    CPU presets were measured), `run --help` and the line `run` starts with quote one time per
    preset: the preset's own."""
    import re

    from letterbench.cli.main import build_parser
    from letterbench.study.presets import CPU_TIMED, PRESETS

    root = Path(__file__).resolve().parents[2]
    readme, guide = (root / "README.md").read_text(), (root / "docs" / "guide.md").read_text()
    benchmarks = (root / "docs" / "benchmarks.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| [^|]+ \|$", readme, re.M))
    guide_rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", guide.split("| preset | what |")[1], re.M))
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    help_text = " ".join(next(a for a in sub.choices["run"]._actions if a.dest == "preset").help.split())
    for name, preset in PRESETS.items():
        assert table[name] == preset.takes, f"README's presets table: {name}"
        assert preset.takes in guide_rows[name], f"docs/guide.md's presets table: {name}"
        assert preset.takes in help_text, f"run --help: {name}"
    for name in CPU_TIMED:
        assert f"| `{name}` | {PRESETS[name].takes} |" in benchmarks, f"docs/benchmarks.md: {name}"
    assert f"the `quick` study ({PRESETS['quick'].takes} on a 2-core" in " ".join(readme.split())
    assert f"reads letters, in {PRESETS['first'].takes} on a 2-core CPU" in readme
