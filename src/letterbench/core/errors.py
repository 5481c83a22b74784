"""The one exception type users see.

Every failure caused by input (files, options, environment) is raised as a
``LetterbenchError`` whose message names the problem and the fix. The CLI prints
it as a single line and exits non-zero; anything else is a bug and keeps its traceback.
``Issue`` reads one of pydantic's validation errors for such a message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import ValidationError


class LetterbenchError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class DataError(LetterbenchError):
    """Missing, truncated, corrupt or foreign data files."""


class WeightsError(LetterbenchError):
    """Weights that cannot be had, or do not fit the model."""


class TrainingError(LetterbenchError):
    """A run that cannot start or continue (existing run dir, corrupt checkpoint, non-finite loss)."""


class Issue(NamedTuple):
    """One of pydantic's validation errors, as the messages that name it read it."""

    loc: tuple
    type: str
    msg: str
    input: Any = None
    ctx: dict[str, Any] | None = None

    @classmethod
    def all_of(cls, exc: ValidationError) -> list[Issue]:
        return [cls(*(err.get(name) for name in cls._fields)) for err in exc.errors(include_url=False)]

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.loc)
