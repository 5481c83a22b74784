"""The records' common ground: a run's identity (``RunKey``), the record type every file's class
builds on (checked strictly on reading, its unknown keys kept), the value types they share, and
one clear line for a file that is damaged (``checked``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from letterbench.core.errors import Issue, TrainingError
from letterbench.recipes import Recipe


class RunKey(NamedTuple):
    """Which run: its model and seed. ``seeded``: named with its seed, as a model's further seeds
    are wherever several seeds of it are listed ("resnet18 (seed 1)"; the first is "resnet18")."""

    model: str
    seed: int
    seeded: bool = False

    def __str__(self) -> str:
        return f"{self.model} (seed {self.seed})" if self.seeded else self.model

    @property
    def label(self) -> str:
        """As the report names it: the model's display name, with the seed where ``seeded``."""
        from letterbench.models.registry import display_name

        name = display_name(self.model)
        return f"{name} (seed {self.seed})" if self.seeded else name


class Recorded(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    def to_json(self) -> dict[str, Any]:
        """The record as its file holds it: the keys it was read or built with, extras included."""
        return self.model_dump(by_alias=True, exclude_unset=True)


# A recipe as a run's files hold it: read as the ``Recipe`` it was, checked whole, and written back
# as it was recorded (``Recipe.to_dict``: the tables with the keys given).
RecordedRecipe = Annotated[Recipe, PlainSerializer(lambda recipe: recipe.to_dict(), return_type=dict)]
Share = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


def checked(path: Path, content: Any, model: type[BaseModel], fix: str = "") -> Any:
    """``content`` (read from ``path``) as the record ``model`` describes; else one clear error."""
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        issue = Issue.all_of(exc)[0]
        if issue.type == "missing":
            problem = f"no {issue.where!r}"
        else:
            message = "not a JSON object" if issue.type == "model_type" else issue.msg.lower()
            problem = f"{issue.where}: {message}" if issue.where else message
        raise TrainingError(f"{path} is damaged ({problem})" + (f"; {fix}" if fix else "")) from None
