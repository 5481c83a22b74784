"""The recipe: what it may hold, field by field, with types, ranges and defaults (pydantic).

A recipe is a TOML file (the built-in ones live beside this module): the model, its weights, batch
size, label smoothing, augmentation, and a list of phases. A phase says what trains (``all``,
``head``, ``last:N``), the optimiser, the LR schedule, the epoch budget and an optional
early-stopping rule. Any value can be overridden with ``--set dotted.key=value``
(``phases.0.epochs=3``, ``augment.flip=true``; ``resolve``).

``Recipe`` is the one recipe type: the training code reads its fields (``phase.optimizer.lr``,
``recipe.augment``), and every default is written here once. A recipe is checked whole before
anything trains, so a wrong type (``lr = "fast"``, ``optimizer = "sgd"``, ``precise_bn = "all"``)
is refused at once with the key it concerns, not after an epoch. Validation is strict: a string
is not a number, a number is not a string; an integer is accepted where a float is expected.
``Recipe.to_dict`` records it as it was written (a table holds the keys that were given), and
``Recipe.updated`` changes it (presets, resume, the large-batch mode) through the same checks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from letterbench.core.errors import Issue, LetterbenchError
from letterbench.images.augment import Augment

# A run keeps its own checkpoints under these names (``runs.rundir``), beside one per phase: no
# phase may take them.
RESERVED = ("last", "best")


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def _given(value: Any) -> Any:
    """A table as recorded: the keys that were given (``{}`` for a table left at its defaults)."""
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


Fraction = Annotated[float, Field(ge=0, lt=1)]
OpenFraction = Annotated[float, Field(gt=0, lt=1)]
NonNegative = Annotated[float, Field(ge=0)]


class SGD(_Schema):
    name: Literal["sgd"]
    lr: Annotated[float, Field(gt=0)]
    momentum: Fraction = 0.9
    nesterov: bool = False
    weight_decay: NonNegative = 0.0


class Adam(_Schema):
    name: Literal["adam", "adamw"]
    lr: Annotated[float, Field(gt=0)]
    weight_decay: NonNegative = 0.0


class Constant(_Schema):
    name: Literal["constant"]
    warmup_epochs: NonNegative = 0.0  # a linear LR warm-up over this many epochs


class OneCycle(_Schema):
    name: Literal["onecycle"]
    warmup: OpenFraction = 0.2


class Cosine(_Schema):
    name: Literal["cosine"]
    warmup: Fraction = 0.05


class Plateau(_Schema):
    name: Literal["plateau"]
    factor: OpenFraction = 0.5
    patience: Annotated[int, Field(ge=0)] = 2
    min_lr: NonNegative = 0.0
    threshold: NonNegative = 1e-4
    warmup_epochs: NonNegative = 0.0


class EarlyStopping(_Schema):
    patience: Annotated[int, Field(ge=1)] = 3
    min_delta: NonNegative = 0.0


class Phase(_Schema):
    name: Annotated[str, Field(pattern=r"^[\w.+-]+$", max_length=64)]  # it names checkpoint files
    trainable: Annotated[str, Field(pattern=r"^(all|head|last:\d+)$")] = "all"
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 10
    optimizer: Annotated[SGD | Adam, Field(discriminator="name")] = Adam(name="adam", lr=1e-3)
    schedule: Annotated[Constant | OneCycle | Cosine | Plateau, Field(discriminator="name")] = Constant(
        name="constant"
    )
    early_stopping: EarlyStopping | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: _given(getattr(self, name)) for name in type(self).model_fields}


class DataMix(_Schema):
    """Training data beyond EMNIST: ``synthetic`` is the share of every training batch drawn from
    the pool of extra letters, ``pool`` how many of them a run draws, and ``handwriting`` the
    share of the pool that is real handwriting (UNIPEN's pen trajectories of writers not held
    out, ``images/pen_letters.py``); the rest are synthetic letters (``images/synthetic.py``)."""

    synthetic: Annotated[float, Field(ge=0, le=0.9)] = 0.0
    pool: Annotated[int, Field(ge=52, le=208_000)] = 8320  # 160 per letter and case; at most 4,000
    handwriting: Annotated[float, Field(ge=0, le=1)] = 0.0


class BatchScaling(_Schema):
    """Set by the large-batch mode: the batch size the recipe was written for, and the rule its
    learning rates were scaled by (linear for SGD, square root for Adam)."""

    base_batch_size: Annotated[int, Field(ge=2)]


class Recipe(_Schema):
    name: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    phases: Annotated[list[Phase], Field(min_length=1)]
    pretrained: Literal["true", "false", "auto"] = "false"
    weights: str | None = None
    dropout: Fraction | None = None
    batch_size: Annotated[int, Field(ge=2)] = 128
    label_smoothing: Fraction = 0.0
    val_fraction: OpenFraction = 0.1
    augment: Augment = Augment()
    data: DataMix = DataMix()
    precise_bn: Annotated[int, Field(ge=0)] = 0
    batch_scaling: BatchScaling | None = None

    @field_validator("pretrained", mode="before")
    @classmethod
    def _bool_or_word(cls, value: Any) -> Any:  # TOML `pretrained = true` means "true"
        return str(value).lower() if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _rules_across_fields(self) -> Recipe:
        """The rules that span fields: phase names differ, and none is a checkpoint name of its
        own (``RESERVED``); a share of extra letters gives at least one a batch."""
        share = self.data.synthetic
        if 0 < share and self.batch_size * share / (1 - share) < 0.5:
            least = 1 / (self.batch_size + 1)
            raise ValueError(
                f"data.synthetic={share:g} gives less than one extra letter per batch of {self.batch_size} "
                f"(each batch would still get one: {least:.1%}); give at least {least:.3f}, or 0"
            )
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must differ, got {names}")
        for name in names:
            if name in RESERVED:
                raise ValueError(
                    f"phase name {name!r}: use letters, digits, '.', '+', '_' or '-', and not {' or '.join(RESERVED)}"
                )
        return self

    def tables(self) -> dict[str, Any]:
        """The recipe's dict form, to edit: every field, each table with the keys given."""
        return {
            name: [p.to_dict() for p in self.phases] if name == "phases" else _given(getattr(self, name))
            for name in type(self).model_fields
        }

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a run records it: ``tables``, without ``data`` where it is not given (a
        recipe without the key records exactly what it recorded before the key existed)."""
        raw = self.tables()
        if not raw["data"]:
            del raw["data"]
        return raw

    def updated(self, changes: Mapping[tuple[str | int, ...], Any], source: str = "recipe") -> Recipe:
        """This recipe with the value at each key path replaced (``("phases", 0, "epochs"): 3``),
        checked whole again. A new optimiser or schedule ``name`` drops the old kind's settings
        the new one does not take."""
        raw = self.tables()
        for path, value in changes.items():
            set_path(raw, path, value)
        return Recipe.from_dict(raw, source)

    @classmethod
    def from_dict(cls, raw: Any, source: str = "recipe") -> Recipe:
        """A recipe from its TOML/JSON form, checked whole (types, ranges, names)."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            issues = Issue.all_of(exc)
            more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
            raise LetterbenchError(
                f"{source}: " + "; ".join(_message(e) for e in issues[:3]) + more
            ) from None

    @property
    def epochs(self) -> int:
        """The most epochs it trains, over every phase (early stopping may end one sooner)."""
        return sum(p.epochs for p in self.phases)

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    @property
    def synthetic_share(self) -> float:
        return self.data.synthetic

    @property
    def synthetic_pool(self) -> int:
        return self.data.pool

    @property
    def pretrained_arg(self) -> bool | str:
        return {"true": True, "false": False, "auto": "auto"}[self.pretrained]

    def with_epochs(self, epochs: int, first_phase: int = 0) -> dict[tuple, Any]:
        """The changes that give every phase from ``first_phase`` on ``epochs`` epochs."""
        return {("phases", i, "epochs"): epochs for i in range(first_phase, len(self.phases))}

    def with_lr(self, lr: float, first_phase: int = 0) -> dict[tuple, Any]:
        """The changes that give phase ``first_phase`` the LR ``lr``; the later phases keep their
        ratio to it (a fine-tuning phase at a tenth of the head's LR stays at a tenth)."""
        base = self.phases[first_phase].optimizer.lr
        return {
            ("phases", i, "optimizer", "lr"): lr
            if i == first_phase
            else lr * self.phases[i].optimizer.lr / base
            for i in range(first_phase, len(self.phases))
        }


def set_path(raw: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set ``value`` at ``path`` in a recipe's dict form; after a new optimiser or schedule
    ``name`` the old kind's settings the new one does not take (SGD's momentum, one-cycle's
    warm-up) go, the ones both take stay."""
    node: Any = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)
    if path[-1] == "name" and len(path) >= 2 and path[-2] in KINDS:
        keys = keys_of(str(path[-2]), str(value))
        if keys is not None:
            for key in set(node) - keys:
                del node[key]


def _where(loc: tuple) -> str:
    # drop the discriminator's tag pydantic inserts (phases.0.optimizer.sgd.lr -> phases.0.optimizer.lr)
    parts = [str(p) for i, p in enumerate(loc) if not (i and loc[i - 1] in ("optimizer", "schedule"))]
    return ".".join(parts)


PATTERN_HINTS = {
    "name": "a phase name uses letters, digits, '.', '+', '_' or '-'",
    "trainable": "trainable is all, head or last:N",
}
KINDS = {
    "optimizer": {"sgd": SGD, "adam": Adam, "adamw": Adam},
    "schedule": {"constant": Constant, "onecycle": OneCycle, "cosine": Cosine, "plateau": Plateau},
}


def keys_of(table: str, kind: str) -> set[str] | None:
    """The keys an ``optimizer`` or ``schedule`` table of that kind (``name``) takes; None for an
    unknown kind."""
    model = KINDS[table].get(kind)
    return None if model is None else set(model.model_fields)


def _message(issue: Issue) -> str:
    where, last = _where(issue.loc), str(issue.loc[-1]) if issue.loc else ""
    if issue.type == "value_error":  # a rule across fields: its own words
        return issue.msg.removeprefix("Value error, ")
    if issue.type == "string_pattern_mismatch" and last in PATTERN_HINTS:
        return f"{where}: {PATTERN_HINTS[last]}, got {issue.input!r}"
    if issue.type == "union_tag_invalid":
        tags, tag = (issue.ctx or {}).get("expected_tags"), (issue.ctx or {}).get("tag")
        return f"{where}.name: must be one of {tags}, got {tag!r}"
    if issue.type == "extra_forbidden":
        return f"unknown key {where!r}"
    if issue.type == "missing":
        return f"missing required key {where!r}"
    shown = repr(issue.input)
    if len(shown) >= 60:  # a long value: its start, or its type
        given = issue.input
        shown = (
            f"{shown[:40]}... ({len(given)} characters)" if isinstance(given, str) else type(given).__name__
        )
    return f"{where}: {issue.msg.lower()}, got {shown}"
