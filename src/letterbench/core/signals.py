"""SIGTERM as Ctrl-C: what a scheduler, a container stop or ``kill`` sends ends a command the way
Ctrl-C does (``KeyboardInterrupt``), so a training run stops at its last finished epoch and says
how to resume."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the block, SIGTERM raises ``KeyboardInterrupt``; the handler before is put back after.
    Outside the main thread signals are left alone (Python allows handlers only there)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
