"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from letterbench.cli.main import main
from letterbench.core.errors import LetterbenchError
from letterbench.data.handwriting import data_file, pen_letters, training_choice
from letterbench.evaluation.letterness import judged
from letterbench.images.letters import emnist_like, prepare_letter
from letterbench.images.nonletters import nonletters
from letterbench.images.pen_letters import pen_letter_images
from letterbench.recipes import resolve_recipe
from letterbench.study.presets import PRESETS

FIXTURE = Path(__file__).parent / "fixtures" / "main-run"
PAGE_PEN = 280 / 16  # the page's pen on its 280-pixel pad


def page_drawing(strokes: list[list[tuple[float, float]]], dots=(), side: int = 280) -> Image.Image:
    img = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        draw.line(stroke, fill=0, width=int(PAGE_PEN), joint="curve")
    for x, y in dots:
        r = PAGE_PEN / 2
        draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return img


def pieces(image: np.ndarray) -> list[np.ndarray]:
    parts, count = ndimage.label(image > 100)
    return [np.nonzero(parts == k) for k in range(1, count + 1)]


@pytest.mark.parametrize("letter", ["i", "j"])
def test_the_detached_dot_of_i_and_j_is_kept_above_the_stem(letter):
    stem = [(140, 110), (140, 220)] if letter == "i" else [(150, 110), (150, 230), (120, 250), (100, 235)]
    image, _ = prepare_letter(page_drawing([stem], dots=[(stem[0][0], 70)]))
    found = sorted(pieces(image), key=lambda p: len(p[0]))
    assert len(found) == 2, "the dot and the stem"
    assert found[0][0].max() < found[1][0].min()  # the dot above the stem


def test_a_neighbours_stroke_at_the_edge_is_dropped_and_a_letter_at_the_edge_kept():
    o = [[(140 + 50 * np.cos(t), 150 + 60 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]]
    alone = emnist_like(np.asarray(page_drawing(o), np.float32) / 255)
    cut = o + [[(0, 120), (30, 110), (45, 150), (20, 200)]]  # a neighbour's stroke entering at the left
    assert np.abs(emnist_like(np.asarray(page_drawing(cut), np.float32) / 255).astype(int) - alone).mean() < 3
    # a letter that touches the edge itself is the letter: an l from the top edge, a c at the left
    for strokes in ([[(140, 0), (140, 200)]], [[(90, 40), (0, 140), (90, 240)]]):
        framed = emnist_like(np.asarray(page_drawing(strokes), np.float32) / 255)
        assert len(pieces(framed)) == 1 and framed.max() == 255
    c_inside = emnist_like(np.asarray(page_drawing([[(150, 40), (60, 140), (150, 240)]]), np.float32) / 255)
    c_edge = emnist_like(np.asarray(page_drawing([[(90, 40), (0, 140), (90, 240)]]), np.float32) / 255)
    assert np.abs(c_inside.astype(int) - c_edge).mean() < 12  # the same c, cut a little at the edge


def judged_images(images: list[Image.Image]) -> list[str | None]:
    """What ``predict`` says of each image: why it holds no single letter (its shape, the
    detector), "blank" where no ink was found, or None for a letter."""
    out, prepared, shapes = [], [], []
    for img in images:
        try:
            image, shape = prepare_letter(img)
        except LetterbenchError:  # a dot too small to find: blank
            out.append("blank")
            continue
        prepared.append(image)
        shapes.append(shape)
    return out + judged(np.stack(prepared), shapes)


def test_not_a_letter_for_dots_dashes_words_and_scribbles_and_not_for_letters(real_data_dir):
    """Rates on fixed seeds (seed 7; the limits were chosen on seed 1 and letterbench's own tuning
    letters), with bounds below what was measured on 2026-12-06: dots and dashes 100%, scribbles
    98.3%, words 91.7%; of 600 EMNIST test letters, enlarged as a photo, 1.5% flagged."""
    for kind, least in (("dot", 0.95), ("dash", 0.95), ("scribble", 0.9), ("word", 0.8)):
        said = judged_images([img for _, img in nonletters(60, seed=7, kinds=(kind,))])
        assert np.mean([s is not None for s in said]) >= least, (kind, said)
    from letterbench.data.emnist import load_emnist

    data = load_emnist(real_data_dir, "letters")
    chosen = np.random.default_rng(0).choice(len(data.test_labels), 600, replace=False)
    photos = [
        Image.fromarray(255 - np.kron(data.test_images[i].numpy(), np.ones((4, 4), np.uint8))) for i in chosen
    ]
    said = judged_images(photos)
    assert np.mean([s is not None for s in said]) <= 0.04, said


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


def test_real_handwriting_for_training_never_comes_from_a_held_out_writer():
    letters = pen_letters()
    held = letters.held_out()
    assert 0.05 < held.mean() < 0.15 and len(set(letters.writer[held])) >= 20
    for seed in (0, 1, 2):
        chosen = training_choice(letters, 2080, seed)
        assert not held[chosen].any()
        assert [string.ascii_lowercase[c] for c in letters.labels[chosen[:26]]] == list(
            string.ascii_lowercase
        )
        assert letters.capital[chosen[:26]].all() and not letters.capital[chosen[26:52]].any()
    # the bench's letters (the held-out writers') are none of the training letters, by content
    digest = lambda i: hashlib.sha256(b"".join(p.tobytes() for p in letters.paths(int(i)))).hexdigest()  # noqa: E731
    bench = {digest(i) for i in np.flatnonzero(held)[:3000]}
    trained = {digest(i) for i in training_choice(letters, 5200, 0)}
    assert not bench & trained
    assert (data_file().parent / "UNIPEN-LICENSE-CC-BY-4.0.txt").is_file()
    assert (data_file().parent / "PROVENANCE.md").is_file()


def test_pen_letters_are_drawn_as_emnist_letters_and_the_same_seed_draws_the_same():
    letters = pen_letters()
    chosen = training_choice(letters, 52, 3)
    a, b = pen_letter_images(letters, chosen, 3), pen_letter_images(letters, chosen, 3)
    assert a.shape == (52, 28, 28) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert (a.reshape(52, -1).max(1) >= 250).all()  # the ink reaches full scale, as EMNIST's
    assert a[:, :2].max() < 128 and a[:, -2:].max() < 128  # EMNIST's 2-pixel border, nearly clear


def test_the_first_preset_and_the_reader_recipe_learn_from_real_and_synthetic_letters():
    first = resolve_recipe("smallcnn", overrides=list(PRESETS["first"].overrides))
    reader = resolve_recipe(recipe="reader")
    for recipe in (first, reader):
        assert recipe.synthetic_share > 0 and recipe.data.handwriting > 0 and recipe.augment.shear > 0
    assert "data" not in resolve_recipe("smallcnn").to_dict()  # the plain recipe draws as before
