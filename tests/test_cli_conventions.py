"""Command-line conventions: `python -m letterbench` is the command, and a bare `letterbench` shows
what it can do instead of an error."""

from __future__ import annotations

import subprocess
import sys

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
