"""`letterbench run` end to end on the real partial data, and `letterbench predict` on drawn letters."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import page_drawing
from PIL import Image, ImageDraw, ImageFont

from letterbench.cli.main import main
from letterbench.images.letters import emnist_like, framed, prepare_file

# ---------------------------------------------------------------- predict

FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]


def load_font(name: str, size: int):
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size)


def draw_letter(
    letter: str,
    font: str,
    size: int = 200,
    text_size: int = 120,
    stroke: int = 0,
    offset=(0, 0),
    dark_on_light: bool = True,
) -> Image.Image:
    bg, fg = (255, 0) if dark_on_light else (0, 255)
    img = Image.new("L", (size, size), bg)
    draw = ImageDraw.Draw(img)
    draw.text(
        (size / 2 + offset[0], size / 2 + offset[1]),
        letter,
        fill=fg,
        font=load_font(font, text_size),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=fg,
    )
    return img


def test_preprocessing_matches_emnist_conventions():
    img = draw_letter("l", FONTS[0], size=300, text_size=200, offset=(60, -40))
    out = emnist_like(np.asarray(img, np.float32) / 255)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    assert out[:2].max() == 0 and out[-2:].max() == 0  # a 2-pixel margin
    rows, cols = np.nonzero(out > 64)
    assert rows.max() - rows.min() > 3 * (cols.max() - cols.min())  # tall stroke, aspect ratio kept
    assert abs((cols.min() + cols.max()) / 2 - 13.5) < 2  # centred although drawn off-centre
    inverted = emnist_like(1 - np.asarray(img, np.float32) / 255)
    assert np.abs(inverted.astype(int) - out.astype(int)).max() <= 1  # light-on-dark gives the same


@pytest.fixture(scope="module")
def letter_model(tmp_path_factory):
    """timm's tiny test ResNet trained here (seconds) on letters drawn in many fonts, sizes and
    strokes, framed as ``predict`` frames them. Dark ink on clean white paper: the ink is the
    picture's darkness, which ``predict``'s paper and light removal also finds (within 2 of 255
    on these letters), without the 50 ms per picture its search for shadows takes."""
    from conftest import write_emnist

    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    images, labels = [], []
    for k, letter in enumerate(letters):
        for font in FONTS:
            for _ in range(6):
                img = draw_letter(
                    letter,
                    font,
                    text_size=int(rng.integers(90, 150)),
                    stroke=int(rng.integers(0, 5)),
                    offset=tuple(rng.integers(-25, 25, 2)),
                )
                images.append(framed(1 - np.asarray(img, np.float32) / 255))
                labels.append(k)
    images, labels = np.stack(images), np.array(labels, np.uint8)
    write_emnist(root / "data", (images, labels), (images[::6], labels[::6]))
    run = root / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small gains nothing from two threads (see test_serve)
    try:
        train = ["train", "--model", "timm:test_resnet", "--pretrained", "false", "--quiet"]
        args = ["--data-dir", str(root / "data"), "--out", str(run), "--epochs", "10", "--batch-size", "32"]
        assert main([*train, *args, "--set", "val_fraction=0.15"]) == 0
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.mark.slow  # trains its own model on drawn letters (about 5 s)
def test_predict_recognises_drawn_letters(letter_model, tmp_path, capsys):
    cases = []
    for i, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        font = FONTS[i % len(FONTS)]
        img = draw_letter(
            letter,
            font,
            size=240 + 20 * (i % 3),
            text_size=100 + 10 * (i % 4),
            stroke=i % 3,
            offset=(15 * (i % 3) - 15, 10 - 10 * (i % 2)),
            dark_on_light=i % 2 == 0,
        )
        path = tmp_path / f"{letter}.png"
        (img.convert("RGB") if i % 3 == 0 else img).save(path)
        cases.append((path, letter))
    assert (
        main(
            [
                "predict",
                "--run",
                str(letter_model),
                "--json",
                "--show-input",
                str(tmp_path / "seen"),
                *[str(p) for p, _ in cases],
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    hits = sum(
        r["top3"][0]["letter"] == letter for r, (_, letter) in zip(result["predictions"], cases, strict=True)
    )
    assert hits >= 20, f"only {hits}/26 drawn letters recognised"
    assert all(abs(sum(t["probability"] for t in r["top3"])) <= 1.0 + 1e-6 for r in result["predictions"])
    with Image.open(tmp_path / "seen" / "a.input.png") as seen:
        assert seen.size == (28, 28)


@pytest.mark.slow  # trains its own model on drawn letters (about 5 s)
def test_predict_reports_bad_files_and_processes_the_rest(letter_model, tmp_path, capsys):
    good = tmp_path / "x.png"
    draw_letter("x", FONTS[0]).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:100])
    pipe = tmp_path / "pipe.png"  # a named pipe would block a reader for ever
    os.mkfifo(pipe)
    code = main(
        [
            "predict",
            "--run",
            str(letter_model),
            str(good),
            str(blank),
            str(text),
            str(broken),
            str(tmp_path / "missing.png"),
            str(pipe),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    models, case, answer = captured.out.splitlines()[:3]
    assert models.startswith("models: ") and answer.startswith(f"{good}: ")
    assert case.startswith("note: small and capital letters are one class")
    errors = [
        line for line in captured.err.strip().splitlines() if "uncalibrated" not in line
    ]  # (never evaluated)
    assert len(errors) == 5
    assert (
        "blank" in errors[0]
        and "not an image" in errors[1]
        and "unreadable" in errors[2]
        and "no such file" in errors[3]
        and errors[4] == f"{pipe}: error: not a regular file (a pipe or a device), not an image"
    )
    assert prepare_file(blank).error == "the image is blank (no ink found)"


@pytest.mark.slow  # trains its own model on drawn letters (about 5 s)
def test_predict_needs_a_finished_model(letter_model, tmp_path, capsys):
    shutil.copytree(letter_model, tmp_path / "run")
    (tmp_path / "run" / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    image = tmp_path / "a.png"
    draw_letter("a", FONTS[0]).save(image)
    assert main(["predict", "--run", str(tmp_path / "run"), str(image)]) == 1
    assert "no finished model" in capsys.readouterr().err


def test_input_names_stay_distinct_when_a_file_is_named_twice():
    from letterbench.apps.predict import input_names

    paths = [Path("a.png"), Path("a-2.png"), Path("a.png"), Path("x/l.png"), Path("y/l.jpg"), Path("x/l.png")]
    names = input_names(paths)
    assert names == ["a", "a-2", "a-3", "x-l", "y-l", "x-l-2"] and len(set(names)) == len(names)


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "main-run"


def test_predict_says_not_a_single_letter_and_still_gives_the_top_3(tmp_path, capsys):
    dot = page_drawing([], dots=[(140, 140)])
    dot.save(tmp_path / "dot.png")
    page_drawing([[(60, 140), (220, 130)]]).save(tmp_path / "dash.png")
    page_drawing([[(140, 60), (140, 220)]]).save(tmp_path / "l.png")
    files = [str(tmp_path / n) for n in ("dot.png", "dash.png", "l.png")]
    assert main(["predict", "--run", str(FIXTURE), "--json", *files]) == 0
    records = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["not_a_letter"] for r in records] == [True, True, False]
    assert records[0]["not_a_letter_why"] == "a dot" and records[1]["not_a_letter_why"] == "a dash"
    assert all(len(r["top3"]) == 3 for r in records)
    assert main(["predict", "--run", str(FIXTURE), *files]) == 0
    out = capsys.readouterr().out
    assert "small and capital letters are one class" in out
    assert f"{files[0]}: not a single letter (a dot); closest: " in out


def _scorer(model: str, logits: list[float]):
    from letterbench.evaluation.inference import Scorer

    z = np.array(logits)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return Scorer(model, model, list("abc"), 1.0, lambda images, p=p: np.repeat(p[None], len(images), 0))


def test_a_study_s_choice_of_one_model_answers_as_that_model_not_an_ensemble():
    """A study whose held-out images chose Xception alone: predict names Xception, not "the
    ensemble of Xception", and its answer is Xception's, given once."""
    from letterbench.apps.predict import Predictor, records_json

    scorers = [_scorer("resnet18", [3.0, 0, 0]), _scorer("xception", [0, 3.0, 0])]
    chosen = Predictor(scorers, ensemble=["xception"])
    assert (
        chosen.describe().splitlines()[1] == "answer: Xception alone (the study's choice on held-out images)"
    )
    [answer] = chosen.answers(np.zeros((1, 28, 28), np.uint8))
    assert answer.ensemble is None and answer.answer_model == "xception"
    assert answer.top3 == answer.models["xception"] and answer.top3[0][0] == "b"
    said = records_json([{"file": "x.png", "answer": answer}], chosen)
    assert said["ensemble"] == ["xception"] and said["predictions"][0]["top3"][0]["letter"] == "b"
    # a mean of both is still an ensemble, and named so
    both = Predictor(scorers)
    assert both.describe().splitlines()[1] == "answer: the ensemble of ResNet-18 + Xception (every model)"
    assert both.answers(np.zeros((1, 28, 28), np.uint8))[0].ensemble is not None
