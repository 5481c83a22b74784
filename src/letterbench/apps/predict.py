"""Predictions on a user's own images of single handwritten letters (``letters`` prepares them)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from letterbench.core.errors import LetterbenchError
from letterbench.core.fsutil import atomic_save, ensure_folder
from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import Scorer, mean_probabilities, torch_scorers
from letterbench.evaluation.letterness import judged
from letterbench.evaluation.thresholds import CASE_NOTE, UNSURE_BELOW
from letterbench.images.letters import prepare_file
from letterbench.models import display_name
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import RunKey, StudyDir, find_runs


def top_k(probs: torch.Tensor | np.ndarray, class_names: list[str], k: int = 3) -> list[tuple[str, float]]:
    values, indices = torch.as_tensor(probs).topk(min(k, len(class_names)))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def choose_runs(path: Path, model: str | None, ensemble: bool) -> dict[RunKey, RunDir]:
    """The runs to predict with: one run directory, or a study's models chosen by name / all."""
    runs = find_runs(path)
    if ensemble:  # every finished model of a study; one still training (or stopped) is left out
        finished = {k: run for k, run in runs.items() if run.status() == "finished"}
        left = [k for k in runs if k not in finished]
        if finished and left:
            warnings.warn(
                f"{path}: {', '.join(map(str, left))} not finished, left out; "
                f"answering with {', '.join(map(str, finished))}",
                stacklevel=2,
            )
        return finished or runs  # none finished: each says so when it loads
    if model:  # every seed of it, averaged
        chosen = {k: run for k, run in runs.items() if k.model == model}
        if not chosen:
            raise LetterbenchError(f"{path} has no run of {model}; it has {', '.join(map(str, runs))}")
        return chosen
    if len(runs) == 1:
        return runs
    if len({k.model for k in runs}) == 1:  # one model, several seeds
        return runs
    raise LetterbenchError(
        f"{path} holds {', '.join(map(str, runs))}: choose one with --model NAME, or --ensemble"
    )


def torch_predictor(
    path: Path,
    model: str | None,
    ensemble: bool,
    runtime: Runtime,
    tta: bool = False,
    unsure_below: float = UNSURE_BELOW,
) -> tuple[dict[RunKey, RunDir], Predictor]:
    """The runs ``choose_runs`` picks and a Predictor over them, whose ensemble averages the
    models the study chose (``recorded_ensemble``)."""
    runs = choose_runs(path, model, ensemble)
    scorers = torch_scorers(runs, runtime, tta=tta)
    return runs, Predictor(scorers, unsure_below=unsure_below, ensemble=recorded_ensemble(path, runs))


def recorded_ensemble(path: Path, runs: dict[RunKey, RunDir]) -> list[str] | None:
    """The models a study's ensemble averages, as ``letterbench run`` chose them on held-out
    images (``ensemble``); None where ``path`` is not such a study."""
    models = list(dict.fromkeys(k.model for k in runs))
    choice = StudyDir(path).read_ensemble(models)
    return choice.members if choice is not None and choice.images else None


@dataclass
class Answer:
    """One image's answer: the top 3 of every model (its seeds averaged) and, where the ensemble
    averages several models, the ensemble's; ``top3`` is the ensemble's where there is one, else
    that of the model that answers (``answer_model``: the one model, or the study's choice of one)."""

    models: dict[str, list[tuple[str, float]]]
    ensemble: list[tuple[str, float]] | None
    unsure_below: float
    # why the image holds no single letter (its shape, or the detector's word:
    # ``evaluation.letterness.judged``), or None; its answer is then "not a single letter", the
    # top 3 still given
    not_a_letter: str | None = None
    answer_model: str | None = None  # the model whose top 3 is the answer where no ensemble is

    @property
    def top3(self) -> list[tuple[str, float]]:
        if self.ensemble is not None:
            return self.ensemble
        return self.models[self.answer_model] if self.answer_model else next(iter(self.models.values()))

    @property
    def unsure(self) -> bool:
        return self.top3[0][1] < self.unsure_below


class Predictor:
    """Scorers -> answers: each model's calibrated probabilities (a model's seeds averaged first,
    so that each model weighs the same in the ensemble), and the ensemble's mean of them: of the
    models named in ``ensemble`` (a study's choice, ``recorded_ensemble``), else of all."""

    def __init__(
        self, scorers: list[Scorer], unsure_below: float = UNSURE_BELOW, ensemble: list[str] | None = None
    ):
        if not scorers:
            raise LetterbenchError("no model to predict with")
        self.class_names = scorers[0].class_names
        if any(s.class_names != self.class_names for s in scorers):
            raise LetterbenchError(
                "the chosen models were trained on different classes; they cannot be ensembled"
            )
        self.scorers, self.unsure_below = scorers, unsure_below
        self.models = list(dict.fromkeys(s.model for s in scorers))
        chosen = [m for m in self.models if m in (ensemble or [])]
        self.ensemble = chosen or self.models  # the models the ensemble averages
        self.chosen = bool(chosen)  # a study's recorded choice, rather than every model

    @property
    def answer_model(self) -> str | None:
        """The model that answers alone (the only one, or the study's choice of one), or None where
        the answer is the mean of several: a mean of one model is that model, not an ensemble."""
        return self.ensemble[0] if len(self.ensemble) == 1 else None

    @property
    def trained_on(self) -> dict[str, str]:
        """What each model learned from, where its run recorded it."""
        return {s.model: s.trained_on for s in self.scorers if s.trained_on}

    @property
    def caveat(self) -> str | None:
        """One sentence where the models that answer (the ensemble's, or the one model) are not yet
        useful by their measured test accuracy: their answers are guesses, not the drawing's fault."""
        answering = self.ensemble if len(self.models) > 1 else self.models
        reasons = {s.model: s.not_useful for s in self.scorers if s.model in answering}
        if not reasons or not all(reasons.values()):
            return None
        which = "; ".join(f"{display_name(m)} is {why}" for m, why in reasons.items())
        return f"these models are not yet useful, so their answers are guesses: {which}"

    def describe(self) -> str:
        """One line: the models and what each learned from."""
        learned = self.trained_on
        said = "models: " + "; ".join(
            display_name(m) + (f", trained on {learned[m]}" if m in learned else "") for m in self.models
        )
        if len(self.models) == 1:
            return said
        why = "the study's choice on held-out images" if self.chosen else "every model"
        if self.answer_model:  # the study chose one model: it answers alone
            return f"{said}\nanswer: {display_name(self.answer_model)} alone ({why})"
        return f"{said}\nanswer: the ensemble of {' + '.join(map(display_name, self.ensemble))} ({why})"

    def probabilities(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per model (N, C), and "ensemble" where the ensemble averages more than one model."""
        seeds: dict[str, list[np.ndarray]] = {}
        for scorer in self.scorers:
            seeds.setdefault(scorer.model, []).append(scorer.probabilities(images))
        out = {model: mean_probabilities(each) for model, each in seeds.items()}
        if self.answer_model is None:
            out[ENSEMBLE] = mean_probabilities([out[m] for m in self.ensemble])
        return out

    def answers(self, images: np.ndarray, shapes: list[str | None] | None = None) -> list[Answer]:
        """One answer per image; ``shapes``: what each image's ink is instead of a letter, where
        its preparation found that (``images.shape.not_a_letter``)."""
        probs = self.probabilities(images)
        shapes = judged(images, shapes or [None] * len(images))
        return [
            Answer(
                {m: top_k(probs[m][i], self.class_names) for m in self.models},
                top_k(probs[ENSEMBLE][i], self.class_names) if ENSEMBLE in probs else None,
                self.unsure_below,
                shapes[i],
                self.answer_model,
            )
            for i in range(len(images))
        ]


ENSEMBLE = "ensemble"


def predict_files(paths: list[Path], predictor: Predictor) -> list[dict]:
    """One record per file, in order: ``file``, ``answer`` and the 28x28 ``input`` the models saw;
    or ``file`` and ``error``."""
    prepared = [prepare_file(Path(p)) for p in paths]
    good = [p for p in prepared if p.image is not None]
    shapes = [p.not_a_letter for p in good]
    answers = iter(predictor.answers(np.stack([p.image for p in good]), shapes) if good else [])
    return [
        {"file": str(p.path), "error": p.error}
        if p.image is None
        else {"file": str(p.path), "answer": next(answers), "input": p.image}
        for p in prepared
    ]


def top3_json(top: list[tuple[str, float]]) -> list[dict]:
    return [{"letter": c, "probability": p} for c, p in top]


def records_json(records: list[dict], predictor: Predictor) -> dict:
    """What `predict --json` prints: the models, and per file its top 3 (the ensemble's where
    there is one), whether it is unsure, each model's top 3; or its error."""
    out = []
    for r in records:
        if "error" in r:
            out.append({"file": r["file"], "error": r["error"]})
            continue
        answer = r["answer"]
        out.append(
            {
                "file": r["file"],
                "top3": top3_json(answer.top3),
                "unsure": answer.unsure,
                "not_a_letter": answer.not_a_letter is not None,
                **({"not_a_letter_why": answer.not_a_letter} if answer.not_a_letter else {}),
                "models": {m: top3_json(top) for m, top in answer.models.items()},
            }
        )
    return {
        "models": [s.name for s in predictor.scorers],
        "temperatures": {s.name: s.temperature for s in predictor.scorers},
        "trained_on": predictor.trained_on,
        "not_useful": predictor.caveat,
        "unsure_below": predictor.unsure_below,
        "case": CASE_NOTE,
        "ensemble": predictor.ensemble if len(predictor.models) > 1 else None,
        "predictions": out,
    }


def answer_line(answer: Answer) -> str:
    """``a 91.2%  o  5.0%  d  1.1%``, and ``(unsure)`` below the threshold; ``not a single letter
    (a dot); closest: o 74.5% ...`` where the image holds none."""
    text = "  ".join(f"{c} {p:6.1%}" for c, p in answer.top3)
    if answer.not_a_letter:
        return f"not a single letter ({answer.not_a_letter}); closest: {text}"
    return text + ("  (unsure)" if answer.unsure else "")


INPUT_MARK = "letterbench input"  # PNG text chunk: an input image letterbench saved


def _saved_by_us(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return img.info.get("Software") == INPUT_MARK
    except (OSError, ValueError):
        return False


def input_names(paths: list[Path]) -> list[str]:
    """A distinct name per input: its stem, with as many parent folders as it takes to tell two
    inputs apart (``x/letter.png`` and ``y/letter.jpg`` -> ``x-letter``, ``y-letter``)."""
    names = [p.stem for p in paths]
    for depth in range(1, max((len(p.parts) for p in paths), default=1)):
        clashing = {n for n in names if names.count(n) > 1}
        if not clashing:
            break
        names = [
            "-".join([*p.parent.parts[-depth:], p.stem]).lstrip("/") if n in clashing else n
            for p, n in zip(paths, names, strict=True)
        ]
    taken: set[str] = set()
    for i, n in enumerate(names):  # the very same file named twice: number it past every name in use
        number, name = 1, n
        while name in taken:
            number += 1
            name = f"{n}-{number}"
        names[i] = name
        taken.add(name)
    return names


def save_inputs(records: list[dict], folder: Path) -> list[Path]:
    """Save the 28x28 image each model saw as ``<folder>/<name>.input.png``. An earlier input image
    of letterbench's is replaced; any other file of that name is kept and the new one gets a
    numbered name beside it."""
    ensure_folder(folder, "--show-input")
    good = [r for r in records if "input" in r]
    saved = []
    for record, name in zip(good, input_names([Path(r["file"]) for r in good]), strict=True):
        target, n = folder / f"{name}.input.png", 2
        while target.exists() and not _saved_by_us(target):
            target, n = folder / f"{name}-{n}.input.png", n + 1
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", INPUT_MARK)
        atomic_save(
            target, lambda f, r=record, i=info: Image.fromarray(r["input"]).save(f, format="PNG", pnginfo=i)
        )
        saved.append(target)
    return saved
