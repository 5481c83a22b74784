"""Long preparation said as it goes: what is being done and how long it will take, measured on
its first steps, and a progress bar on a terminal (drawing a recipe's extra letters, preparing a
folder of a user's letters)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min``, ``1.5 h``: a time as a person reads it."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def in_steps(
    steps: Sequence[T], work: Callable[[T], R], what: str, probe: int = 1, quiet_below: float = 10.0
) -> list[R]:
    """``work`` on each of ``steps``, in order, the results in a list. After the first ``probe``
    steps, where the rest would take ``quiet_below`` seconds or more at the speed they measured,
    one line says ``what`` is being done and about how long the rest takes, and a bar shows the
    rest on a terminal."""
    start = time.perf_counter()
    done = [work(step) for step in steps[:probe]]
    rest = steps[probe:]
    left = (time.perf_counter() - start) / max(1, len(done)) * len(rest)
    if rest and left >= quiet_below:
        print(f"{what}: about {duration(left)} more", flush=True)
        rest = tqdm(rest, disable=not sys.stderr.isatty(), leave=False, desc=what.split(":")[0])
    done.extend(work(step) for step in rest)
    return done
