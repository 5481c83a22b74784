"""The ensemble's models, chosen on held-out training images: the subset search, which images are
held out, the recorded choice, predict's ensemble (a real study's choice: test_study.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from letterbench.apps.predict import Predictor
from letterbench.core.runtime import Runtime
from letterbench.evaluation import ensemble
from letterbench.evaluation.ensemble import best_subset, held_out_images
from letterbench.evaluation.inference import Scorer, softmax
from letterbench.runs.records import EnsembleChoice
from letterbench.runs.rundir import RunDir


def _model(labels: np.ndarray, right: np.ndarray, classes: int, sure: float, rng) -> np.ndarray:
    """Probabilities that put ``sure`` on the true class where ``right``, else on another one."""
    n = len(labels)
    top = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
    probs = np.full((n, classes), (1 - sure) / (classes - 1))
    probs[np.arange(n), top] = sure
    return probs


def _three_models(n: int = 600, classes: int = 5):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, classes, n)
    good = _model(labels, rng.random(n) < 0.85, classes, 0.6, rng)
    other = _model(labels, rng.random(n) < 0.83, classes, 0.6, rng)  # errs on other images
    weak = _model(labels, rng.random(n) < 0.35, classes, 0.95, rng)  # weak and sure of itself
    return {"good": good, "weak": weak, "other": other}, labels


def _accuracy(probs, labels) -> float:
    return float((probs.argmax(1) == labels).mean())


def test_the_chosen_subset_leaves_out_a_weak_sure_model_and_beats_every_other_subset():
    probs, labels = _three_models()
    members, tried = best_subset(probs, labels)
    assert len(tried) == 7  # every non-empty subset of three models
    assert "weak" not in members
    everyone = _accuracy(np.mean(list(probs.values()), 0), labels)
    chosen = _accuracy(np.mean([probs[m] for m in members], 0), labels)
    assert chosen > everyone + 0.05  # the plain mean of all is pulled down by the weak model
    assert chosen >= max(_accuracy(p, labels) for p in probs.values())
    assert chosen == max(t["accuracy"] for t in tried)


def test_beyond_the_exhaustive_limit_a_greedy_path_still_beats_the_best_single_model(monkeypatch):
    probs, labels = _three_models()
    monkeypatch.setattr(ensemble, "EXHAUSTIVE", 2)  # three models: the greedy path
    members, tried = best_subset(probs, labels)
    assert len(tried) < 7 and "weak" not in members
    assert _accuracy(np.mean([probs[m] for m in members], 0), labels) >= max(
        _accuracy(p, labels) for p in probs.values()
    )


def _config(model: str = "resnet18", seed: int = 0, per_class: int | None = None):
    """A run's config as held_out_images reads it (its recipe's split, seed and training subset)."""
    from letterbench.runs.records import RunConfig

    return RunConfig.model_validate(
        {
            "recipe": {"name": model, "model": model, "phases": [{"name": "train"}], "val_fraction": 0.25},
            "seed": seed,
            "model": {"name": model, "pretrained": "none", "notes": []},
            "data": {
                "split": "letters",
                "sha256": {},
                "data_dir": "-",
                "train_per_class": per_class,
                "class_names": list("abcdefghijklmnopqrstuvwxyz"),
            },
        }
    )


def test_held_out_images_are_those_no_run_trained_or_validated_on(tiny_letters):
    from letterbench.data.emnist import load_emnist
    from letterbench.data.splits import make_split

    data = load_emnist(tiny_letters, "letters")
    configs = [_config(per_class=n) for n in (4, 8)]
    held, what, seed_of = held_out_images(data, configs)
    used = set()
    for c in configs:
        split = make_split(data, 0.25, 0, c.data.train_per_class)
        used |= set(split.train.tolist()) | set(split.val.tolist())
    assert set(held.tolist()) == set(range(len(data.train_labels))) - used
    assert what == "training images no model trained on" and seed_of is None

    everything = [_config(m) for m in ("resnet18", "densenet121")]
    held, what, seed_of = held_out_images(data, everything)  # all the data, one split: its validation images
    assert set(held.tolist()) == set(make_split(data, 0.25, 0, None).val.tolist())
    assert what.startswith("validation images no model trained on") and seed_of is None


def test_seeds_with_their_own_splits_score_each_seed_s_validation_images_with_that_seed_s_runs(tiny_letters):
    from letterbench.data.emnist import load_emnist
    from letterbench.data.splits import make_split

    data = load_emnist(tiny_letters, "letters")
    # two models, three seeds, all the data: each seed draws its own validation split, so almost
    # no image is held out by every run, and none is left unused
    configs = [_config(m, s) for s in (0, 1, 2) for m in ("resnet18", "densenet121")]
    held, what, seed_of = held_out_images(data, configs)
    vals = {s: set(make_split(data, 0.25, s, None).val.tolist()) for s in (0, 1, 2)}
    assert what.startswith("validation images of each seed's runs")
    assert set(held.tolist()) == vals[0] | vals[1] | vals[2]
    assert len(held) > 2 * len(vals[0])  # far more than the images every run held out
    for i, seed in zip(held.tolist(), seed_of.tolist(), strict=True):
        assert i in vals[seed]  # no run of the seed that scores it trained on it
        assert all(i not in vals[s] for s in (0, 1, 2) if s < seed)  # the first seed that held it out

    uneven = configs[:-1]  # seed 2 lacks a model: its runs cannot stand for every model
    _, what, seed_of = held_out_images(data, uneven)
    assert seed_of is None and what.startswith("validation images no model trained on")


def test_predictor_ensemble_averages_only_the_chosen_models():
    names = list("abc")

    def scorer(name, logits):
        return Scorer(
            name, name, names, 1.0, lambda images, z=logits: softmax(np.repeat(z[None], len(images), 0))
        )

    scorers = [scorer("m1", np.array([4.0, 0, 0])), scorer("m2", np.array([0, 4.0, 0]))]
    scorers.append(scorer("m3", np.array([0, 0, 9.0])))
    images = np.zeros((2, 28, 28), np.uint8)
    everyone = Predictor(scorers).probabilities(images)["ensemble"]
    chosen = Predictor(scorers, ensemble=["m1", "m2"]).probabilities(images)["ensemble"]
    assert everyone[0].argmax() == 2  # the sure third model wins the plain mean
    assert chosen[0, 2] < 0.1 and chosen[0, 0] == pytest.approx(chosen[0, 1])
    assert Predictor(scorers, ensemble=["gone"]).ensemble == ["m1", "m2", "m3"]  # unknown: all


def test_a_recorded_choice_is_read_only_when_it_names_the_study_s_models():
    record = EnsembleChoice(
        members=["resnet18"], images=260, held_out="training images no model trained on"
    ).to_dict()
    assert EnsembleChoice.from_dict(record, ["resnet18", "xception"]).members == ["resnet18"]
    assert EnsembleChoice.from_dict(json.loads(json.dumps(record)), ["resnet18"]) is not None
    assert EnsembleChoice.from_dict(record, ["xception"]) is None
    for damaged in ({"members": "resnet18"}, None, [], {**record, "members": [["resnet18"]]}):
        assert EnsembleChoice.from_dict(damaged, ["resnet18"]) is None
    assert EnsembleChoice.from_dict({**record, "images": True}, ["resnet18"]) is None


def test_predict_falls_back_to_all_models_when_ensemble_json_is_damaged(tmp_path):
    from letterbench.apps.predict import recorded_ensemble
    from letterbench.runs.studydir import RunKey, StudyDir

    study = StudyDir(tmp_path)
    runs = {
        RunKey("resnet18", 0): None,
        RunKey("xception", 0): None,
        RunKey("resnet18", 1, seeded=True): None,
    }
    assert recorded_ensemble(tmp_path, runs) is None  # no ensemble.json
    study.write_ensemble(EnsembleChoice(members=["xception"], images=260, held_out="training images"))
    assert recorded_ensemble(tmp_path, runs) == ["xception"]
    study.write_ensemble(
        EnsembleChoice(members=["resnet18", "xception"], images=0, held_out="too few held out")
    )
    assert recorded_ensemble(tmp_path, runs) is None  # not chosen: the mean of all
    study.ensemble_file.write_text('{"members": ["xcept')  # cut short
    assert recorded_ensemble(tmp_path, runs) is None


def test_a_choice_that_cannot_be_made_falls_back_to_the_mean_of_all_with_the_reason(tmp_path):
    from letterbench.evaluation.ensemble import choose_ensemble_or_all

    choice = choose_ensemble_or_all([RunDir(tmp_path / "a"), RunDir(tmp_path / "b")], Runtime.create("cpu"))
    assert choice.images == 0 and choice.members == []
    assert choice.describe().startswith("the mean of all models (no choice was made: ")


def _probs(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def test_ensemble_ties_go_to_the_lower_log_loss_then_to_fewer_models():
    labels = np.array([0, 1])
    # a and b are each right on both images: every subset is 100% accurate. b is surer (lower
    # log-loss) than a, and the mean of a and b lies between them: b alone wins.
    a = _probs([[0.6, 0.4], [0.4, 0.6]])
    b = _probs([[0.9, 0.1], [0.1, 0.9]])
    chosen, tried = best_subset({"a": a, "b": b}, labels)
    assert chosen == ["b"] and len(tried) == 3
    # c is b's twin: b, c and b + c tie in accuracy and log-loss, and the fewest models win,
    # the first named among equals
    chosen, _ = best_subset({"b": b, "c": b.copy()}, labels)
    assert chosen == ["b"]
