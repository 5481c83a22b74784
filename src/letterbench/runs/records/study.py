"""A study's records: the study itself (``study.json``) and the ensemble's choice
(``ensemble.json``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError

from letterbench.runs.records.base import Recorded


class StudyFile(Recorded):
    """A study's study.json: what `letterbench run` was asked for (a rerun must ask the same), the
    models and seeds it trains, where its data is, and (once it has run) its wall clock by part."""

    preset: str | None = None
    models: list[str] = []  # empty in a study written before it knew them: every run under runs/
    seed: int = 0  # the first seed; further seeds are seed + 1, ...
    seeds: int = 1
    split: str = "letters"
    preset_settings: dict[str, Any] = None
    data_dir: str = None
    time_budget: dict[str, Any] = None  # the command's parts, run by run (``core.timing``)


class EnsembleChoice(Recorded):
    """A study's ensemble.json: the models the ensemble averages (in the order given; none where no
    choice was made), the held-out images the choice was made on (0: not chosen, the mean of all),
    which images those were or why none, and each candidate subset's score (members, nll,
    accuracy)."""

    members: list[str]
    images: Annotated[int, Field(ge=0)]
    held_out: str
    candidates: list[dict[str, Any]] = []

    def to_dict(self) -> dict[str, Any]:
        """The file's content: every key, defaults included."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, record: Any, models: list[str] | None = None) -> EnsembleChoice | None:
        """A recorded choice, if it is well formed (else None); with ``models``, only a choice of
        some of them."""
        try:
            choice = cls.model_validate(record)
        except ValidationError:
            return None
        if models is not None and not (choice.members and set(choice.members) <= set(models)):
            return None
        return choice

    def _accuracy(self) -> str:
        scored = {frozenset(c["members"]): c["accuracy"] for c in self.candidates}
        chosen = scored.get(frozenset(self.members))
        singles = [v for k, v in scored.items() if len(k) == 1]
        if chosen is None or not singles:
            return "no scores recorded"
        return f"{100 * chosen:.1f}% against {100 * max(singles):.1f}% for the best single model"

    def describe(self) -> str:
        """How the members were chosen, in a clause: "the mean of all models (why)" or which images."""
        if not self.images:
            return f"the mean of all models ({self.held_out})"
        return (
            f"the subset of the models whose mean was the most accurate on {self.images:,} "
            f"{self.held_out} ({self._accuracy()})"
        )
