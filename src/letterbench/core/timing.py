"""Where a command's wall clock goes: its time budget.

One ``Budget`` per command. Every stretch of wall-clock time is charged to exactly one part: the
innermost ``part`` open on the main thread, within the current ``scope`` (a run's name, or
``study``); time in no part goes to ``other``. So the parts sum to the time since the budget began,
by construction, and nothing is counted twice. Code deep in the engine marks its parts with
``timing.part("validation")`` without being handed the budget; where no budget is open (a library
call, a test) that is free and records nothing. Work on other threads (the checkpoint writer) is
not charged; the main thread's wait for it is ("checkpoint writes").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

COMMAND = "command"  # the scope of what a command does outside any run (a study's own work)


class Budget:
    def __init__(self, scope: str = COMMAND):
        self.started = self.mark = time.perf_counter()
        self.parts: dict[str, dict[str, float]] = {}
        self.scopes, self.stack = [scope], ["other"]

    def _charge(self) -> None:
        now = time.perf_counter()
        scope = self.parts.setdefault(self.scopes[-1], {})
        scope[self.stack[-1]] = scope.get(self.stack[-1], 0.0) + now - self.mark
        self.mark = now

    def enter(self, name: str, scope: bool = False) -> None:
        self._charge()
        (self.scopes if scope else self.stack).append(name)
        if scope:
            self.stack.append("other")

    def leave(self, scope: bool = False) -> None:
        self._charge()
        if scope:
            self.scopes.pop()
            self.stack.pop()
        else:
            self.stack.pop()

    def of(self, scope: str | None = None) -> dict[str, float]:
        """Seconds by part so far, of one scope (default: the current one)."""
        self._charge()
        return dict(self.parts.get(scope or self.scopes[-1], {}))

    def record(self) -> dict:
        """Every scope's parts and the wall clock since the budget began (they sum to it)."""
        self._charge()
        return {"wall_s": self.mark - self.started, "parts": {k: dict(v) for k, v in self.parts.items()}}


_open: list[Budget] = []


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def budget(scope: str = COMMAND) -> Iterator[Budget]:
    """Open the command's budget (a nested call shares the one already open)."""
    if _open or not _main():
        yield _open[0] if _open else Budget(scope)
        return
    opened = Budget(scope)
    _open.append(opened)
    try:
        yield opened
    finally:
        _open.remove(opened)


def current() -> Budget | None:
    return _open[0] if _open and _main() else None


def spent_here() -> dict[str, float]:
    """Seconds by part in the current scope so far; empty where no budget is open."""
    spent = current()
    return spent.of() if spent is not None else {}


@contextmanager
def _entered(name: str, scope: bool) -> Iterator[None]:
    spent = current()
    if spent is None:
        yield
        return
    spent.enter(name, scope=scope)
    try:
        yield
    finally:
        spent.leave(scope=scope)


def part(name: str):
    """Charge the time inside to ``name`` (within the current scope), not to the part around it."""
    return _entered(name, scope=False)


def scope(name: str):
    """Charge the time inside to the run ``name``: its parts, not the study's."""
    return _entered(name, scope=True)


@contextmanager
def spent_inside() -> Iterator[dict[str, float]]:
    """A dict that, once the block ends, holds the seconds by part the block added to the current
    scope (empty where no budget is open)."""
    before, found = spent_here(), {}
    try:
        yield found
    finally:
        after = spent_here()
        found.update({k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0})


def merged(before: dict[str, float] | None, now: dict[str, float]) -> dict[str, float]:
    """A run's parts across the commands that worked on it (an interrupted run resumed)."""
    out = dict(before or {})
    for name, seconds in now.items():
        out[name] = out.get(name, 0.0) + seconds
    return out
