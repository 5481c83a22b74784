"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import page_drawing
from scipy import ndimage

from letterbench.images.letters import emnist_like, prepare_letter


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
