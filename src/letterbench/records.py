"""The shapes of the files a run keeps (config, progress, metrics), checked when they are read.

A hand-edited or damaged file then gives one clear line naming the file and what is wrong with it,
instead of a KeyError deep in an evaluation. Only what readers rely on is required; everything else
a file holds passes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from letterbench.errors import TrainingError


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _ModelRecord(_Recorded):
    name: str
    pretrained: str
    notes: list[str]


class _DataRecord(_Recorded):
    split: str
    sha256: dict[str, str]
    data_dir: str
    train_per_class: int | None
    class_names: list[str]


class RunProgress(_Recorded):
    """What a run's progress.json must hold for an evaluation to read it."""

    status: str
    history: list[dict[str, Any]]
    phase_times_s: dict[str, float]


class _Stage(_Recorded):
    phase: str
    metrics: dict[str, Any]


class RunMetrics(_Recorded):
    """What a run's metrics.json must hold for a report to read it."""

    schema_: str = Field(alias="schema")
    run: dict[str, Any]
    class_names: list[str]
    stages: Annotated[list[_Stage], Field(min_length=1)]
    cost: dict[str, Any]


class RunConfig(_Recorded):
    """What a run's config.json must hold, with its types, to be resumed, evaluated or loaded."""

    recipe: dict[str, Any]
    seed: int
    model: _ModelRecord
    data: _DataRecord


def checked(path: Path, content: Any, model: type[BaseModel], fix: str = "") -> Any:
    """``content`` (read from ``path``) if it has the shape ``model`` describes; else one clear error."""
    try:
        model.model_validate(content)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            problem = f"no {where!r}"
        else:
            message = "not a JSON object" if err["type"] == "model_type" else err["msg"].lower()
            problem = f"{where}: {message}" if where else message
        raise TrainingError(f"{path} is damaged ({problem})" + (f"; {fix}" if fix else "")) from None
    return content
