"""Command-line conventions: `python -m letterbench` is the command, and a bare `letterbench` shows
what it can do instead of an error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from letterbench import __version__
from letterbench.cli.main import main


def test_python_dash_m_letterbench_is_the_command():
    for module in ("letterbench", "letterbench.cli"):
        done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.strip() == f"letterbench {__version__}", done.stderr


def test_a_bare_letterbench_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: letterbench") and "{data,models,train" in out.out and not out.err


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from letterbench.cli.main import build_parser

    silent = []

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{command} {name}")
            elif not action.help and action.dest != "help":
                silent.append(f"{command} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "letterbench")
    assert not silent, f"options without help: {silent}"


@pytest.mark.slow
def test_progress_bars_stay_out_of_a_log_file(tiny_letters, tmp_path):
    """stderr sent to a file: the per-epoch lines are there, a progress bar's redraws are not."""
    import os
    from pathlib import Path

    log = tmp_path / "train.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__import__("letterbench").__file__).resolve().parents[1])}
    args = ["train", "--model", "timm:resnet10t", "--epochs", "2", "--train-per-class", "8"]
    args += ["--set", "val_fraction=0.25", "--data-dir", str(tiny_letters), "--out", str(tmp_path / "r")]
    with log.open("w") as err:
        done = subprocess.run([sys.executable, "-m", "letterbench", *args], stdout=err, stderr=err, env=env)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "epoch 2/2" in text and "\r" not in text and "batch/s" not in text


def test_help_does_not_import_torch():
    """`--help` of every command is answered by the parser alone: torch, numpy and timm (seconds
    to import) stay unloaded, so help is instant."""
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__import__("letterbench").__file__).resolve().parents[1])}
    probe = (
        "import sys\n"
        "from letterbench.cli.main import build_parser\n"
        "parser = build_parser()\n"
        "for command in [[], *[[name] for name in sys.argv[1:]]]:\n"
        "    try:\n"
        "        parser.parse_args([*command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'timm', 'matplotlib', 'sklearn') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    commands = ["data", "models", "train", "evaluate", "report", "run", "predict", "export", "serve"]
    done = subprocess.run([sys.executable, "-c", probe, *commands], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr[-500:]
    for name in commands:
        assert f"usage: letterbench {name}" in done.stdout


def test_a_full_disk_names_the_file_and_gives_resume_advice_only_where_a_command_trains():
    import errno

    from letterbench.cli.boundary import os_error_line

    full = OSError(errno.ENOSPC, "No space left on device", "out/report.html")
    said = os_error_line(full)
    assert (
        said
        == "out/report.html: No space left on device; the disk is full: free some space and run the same command again"
    )
    assert "--resume" in os_error_line(full, trains=True) and "--resume" not in said
