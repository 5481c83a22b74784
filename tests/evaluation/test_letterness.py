"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from letterbench.core.errors import LetterbenchError
from letterbench.evaluation.letterness import judged
from letterbench.images.letters import prepare_letter
from letterbench.images.nonletters import nonletters


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


@pytest.mark.slow
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
