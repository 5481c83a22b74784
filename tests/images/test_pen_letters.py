"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

import numpy as np

from letterbench.data.handwriting import pen_letters, training_choice
from letterbench.images.pen_letters import pen_letter_images


def test_pen_letters_are_drawn_as_emnist_letters_and_the_same_seed_draws_the_same():
    letters = pen_letters()
    chosen = training_choice(letters, 52, 3)
    a, b = pen_letter_images(letters, chosen, 3), pen_letter_images(letters, chosen, 3)
    assert a.shape == (52, 28, 28) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert (a.reshape(52, -1).max(1) >= 250).all()  # the ink reaches full scale, as EMNIST's
    assert a[:, :2].max() < 128 and a[:, -2:].max() < 128  # EMNIST's 2-pixel border, nearly clear
