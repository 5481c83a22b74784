"""A real-world reading broken down (``evaluation.real_world_breakdowns``): what labels.csv says of
each image beside its label, top-1 by source, case and scene, and the commonest confusions."""

from __future__ import annotations

import json
import string
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from letterbench.evaluation.real_world import load_real_world, real_world_scores
from letterbench.evaluation.real_world_breakdowns import (
    Share,
    confusions,
    image_details,
    real_world_breakdown,
    top1_by,
)

BAR = np.full((40, 40), 255, np.uint8)
BAR[6:34, 17:23] = 0  # a dark bar on white paper: a letter the preparation reads
BLANK = np.full((40, 40), 255, np.uint8)  # nothing on it: prepared as unreadable


def _set(folder: Path, table: str, blank: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    for name in ("p1.png", "p2.png", "f1.png", "f2.png", "f3.png"):
        Image.fromarray(BLANK if name in blank else BAR).save(folder / name)
    (folder / "labels.csv").write_text(table)
    return folder


TABLE = (
    " File , Label ,Case,Source,Font_or_pen,Scene\n"  # headers as a spreadsheet leaves them
    "f2.png,B,upper,font,delius bold+2,paper=cream;ink=blue;size=large\n"
    "p1.png,a,lower,pen,fine pen 0.031,paper=white;ink=black;size=small\n"
    "f1.png,a,upper,font,mali,paper=white;ink=blue;size=small\n"
    "p2.png,c,lower,pen,marker 0.120,paper=cream;ink=black;size=small\n"
    "f3.png,c,lower,font,mali thinned,paper=white;ink=black;size=large\n"
    "p1.png,a,lower,pen,fine pen 0.031,paper=white;ink=black;size=small\n"  # a repeated row: once
)


def _load(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the repeated row and an unreadable image are said once, here
        return load_real_world(folder)


def test_the_details_of_each_image_follow_the_sets_order_with_the_scene_and_stroke(tmp_path):
    found = _load(_set(tmp_path / "set", TABLE))
    assert [Path(p).name for p in found.files] == ["f2.png", "p1.png", "f1.png", "p2.png", "f3.png"]
    details = image_details(found)
    assert len(details) == len(found) == 5
    assert details[0] == {
        "case": "upper",
        "source": "font",
        "font_or_pen": "delius bold+2",
        "scene": "paper=cream;ink=blue;size=large",
        "paper": "cream",
        "ink": "blue",
        "size": "large",
        "stroke": "font bold",
    }
    assert [d["stroke"] for d in details] == ["font bold", "fine pen", "font", "marker", "font thinned"]


def test_a_folder_labelled_by_sub_folders_says_nothing_more(tmp_path):
    for letter in "ab":
        (tmp_path / "set" / letter).mkdir(parents=True)
        Image.fromarray(BAR).save(tmp_path / "set" / letter / "one.png")
    found = _load(tmp_path / "set")
    assert image_details(found) == [{}, {}]
    probs = np.eye(26)[[0, 0]]
    reading = real_world_breakdown(probs, found)
    assert reading.by == {} and reading.confusions == [("b->a", 1)]


def test_top1_is_split_by_each_keys_values_and_a_missing_key_is_left_out():
    outcome = np.array([True, False, True, True])
    details = [{"case": "upper"}, {"case": "lower"}, {"case": "lower"}, {"case": "upper", "ink": "blue"}]
    by = top1_by(outcome, details, ("case", "ink", "paper"))
    assert by == {
        "case": {"lower": Share(0.5, 2), "upper": Share(1.0, 2)},
        "ink": {"blue": Share(1.0, 1)},
    }
    assert list(by["case"]) == ["lower", "upper"]  # values sorted


def test_confusions_count_the_readable_images_read_wrong_commonest_first():
    labels = np.array([0, 0, 0, 1, 2, 2, 3])
    read = np.array([4, 4, 0, 2, 1, 1, 4])  # a->e twice, b->c, c->b twice; the d is unreadable
    readable = np.array([True, True, True, True, True, True, False])
    probs = np.eye(26)[read]
    assert confusions(probs, labels, readable) == [("a->e", 2), ("c->b", 2), ("b->c", 1)]
    assert confusions(probs, labels, readable, most=1) == [("a->e", 2)]
    assert confusions(np.eye(26)[labels], labels, readable) == []


def test_a_breakdown_scores_as_the_real_world_scores_and_counts_an_unreadable_image_wrong(tmp_path):
    found = _load(_set(tmp_path / "set", TABLE, blank=("p2.png",)))
    assert found.readable.tolist() == [True, True, True, False, True]
    probs = np.eye(26)[[1, 0, 3, 0, 2]].astype(np.float64)  # f1 read as d; p2 unreadable (its row unused)
    probs[~found.readable] = 0.0
    reading = real_world_breakdown(probs, found)
    plain = real_world_scores(probs, found.labels, found.readable)
    assert reading.scores.top1 == plain.top1 == pytest.approx(3 / 5)
    assert reading.scores.outcome.tolist() == [True, True, False, False, True]
    assert reading.by["source"] == {"font": Share(2 / 3, 3), "pen": Share(0.5, 2)}
    assert reading.by["case"] == {"lower": Share(2 / 3, 3), "upper": Share(0.5, 2)}
    assert reading.by["stroke"]["font thinned"] == Share(1.0, 1)
    assert reading.confusions == [("a->d", 1)]  # the unreadable c is wrong, but no confusion
    record = json.loads(json.dumps(reading.record()))
    assert record["top1"] == pytest.approx(0.6) and record["by"]["paper"]["cream"] == {
        "top1": 0.5,
        "images": 2,
    }
    assert record["confusions"] == [["a->d", 1]]
    assert string.ascii_lowercase[int(found.labels[0])] == "b"  # capitals are read case-merged
