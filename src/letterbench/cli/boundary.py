"""The line between letterbench and its user: what reaches the terminal when something goes wrong.

A problem the user can cause (a ``LetterbenchError``, an ``OSError`` from a path, disk or network,
a bad option) becomes exactly one ``letterbench: error:`` line that names the file or option and
the fix, and exit status 1. Anything else is a bug: its traceback stays, with a line asking to
report it. Warnings become one ``letterbench: warning:`` line each; the deprecation chatter of
the libraries underneath is not the user's business and is dropped.
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
import traceback
import warnings
from pathlib import Path

from letterbench import __version__
from letterbench.core.errors import LetterbenchError
from letterbench.core.signals import sigterm_as_interrupt

EXIT_ERROR = 1
EXIT_BUG = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130

_DISK_FULL = "the disk is full: free some space and run the same command again"
TRAINS = ("cmd_train", "cmd_run")  # the commands whose disk-full advice adds how training resumes
_RESUMES = " (a training run keeps its last finished epoch; continue it with --resume)"
OS_FIXES = {
    errno.ENOSPC: _DISK_FULL,
    errno.EDQUOT: _DISK_FULL,
    errno.EFBIG: "the file is larger than this file system or its limits allow: choose another location",
    errno.EACCES: "check that path's permissions, or choose another location",
    errno.EPERM: "check that path's permissions, or choose another location",
    errno.EROFS: "that file system is read-only: choose a writable location",
    errno.ENOTDIR: "part of that path is a file, not a folder: choose another path",
    errno.EISDIR: "that is a folder where a file is expected: name a file",
    errno.ENOENT: "check the path",
    errno.EEXIST: "something is already there: choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.ELOOP: "the path has a symbolic-link loop: choose another path",
}


def os_error_line(exc: OSError, trains: bool = False) -> str:
    """``<path>: <what the system said>; <the fix>`` for an OSError (``trains``: the command
    trains, so a full disk's advice says how training resumes)."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    what = exc.strerror or str(exc) or type(exc).__name__
    fix = OS_FIXES.get(exc.errno, "")
    if fix == _DISK_FULL and trains:
        fix += _RESUMES
    return f"{where + ': ' if where else ''}{what}" + (f"; {fix}" if fix else "")


def error(message: str) -> None:
    print(f"letterbench: error: {' '.join(message.splitlines())}", file=sys.stderr)


def run_command(func, args: argparse.Namespace) -> int:
    """Run one sub-command behind the boundary and return its exit status. SIGTERM ends it as
    Ctrl-C does, wherever it is (drawing letters, loading data, waiting for seeds): one line, exit
    status 130, its lock released."""
    try:
        with sigterm_as_interrupt():
            return func(args)
    except LetterbenchError as exc:
        error(str(exc))
    except KeyboardInterrupt:
        print("letterbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    except OSError as exc:
        error(os_error_line(exc, getattr(func, "__name__", "") in TRAINS))
    except Exception:
        traceback.print_exc()
        print(
            f"letterbench: internal error: this is a bug in letterbench {__version__}, not something you "
            "did; please report it with the traceback above and the command you ran",
            file=sys.stderr,
        )
        return EXIT_BUG
    return EXIT_ERROR


# ---------------------------------------------------------------- warnings

_LIBRARY_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    ours = Path(__file__).parent in Path(filename).parents
    if not ours and issubclass(category, _LIBRARY_NOISE):
        return
    text = " ".join(str(message).split())
    origin = "" if ours else f" ({Path(filename).parent.name or Path(filename).stem})"
    print(f"letterbench: warning: {text}{origin}", file=file or sys.stderr)


def install_warning_format() -> None:
    """Every warning as one line, shown once."""
    warnings.simplefilter("once")
    warnings.showwarning = _show_warning


# ---------------------------------------------------------------- options


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors said as one ``letterbench: error:`` line and exit status 1."""

    def error(self, message: str):  # noqa: D401 (argparse's name)
        error(f"{message} (see `{self.prog} --help`)")
        sys.exit(EXIT_ERROR)


def _number(kind, text: str, low: float, strict: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, 0, True, "a whole number >= 1")


def min2_int(text: str) -> int:
    return _number(int, text, 2, False, "a whole number >= 2")


def nonneg_int(text: str) -> int:
    return _number(int, text, 0, False, "a whole number >= 0")


def nonneg_float(text: str) -> float:
    return _number(float, text, 0.0, False, "a number >= 0")


def positive_float(text: str) -> float:
    return _number(float, text, 0.0, True, "a number > 0")


def probability(text: str) -> float:
    value = _number(float, text, 0.0, False, "a probability between 0 and 1")
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def given_path(text: str) -> Path:
    """A path argument that is not empty (``--real-world ""``, an unset shell variable, would
    otherwise name the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?); give the folder")
    return Path(text)
