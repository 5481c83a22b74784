"""Reading people's letters: the preparation keeps an i's and a j's dot and drops a neighbour's
stroke at the frame's edge; "not a single letter" for dots, dashes and words and not for letters;
real handwriting (UNIPEN) drawn for training from writers a bench never holds; the first preset
and the reader recipe widen what they learn from, and a recipe without the key draws as before."""

from __future__ import annotations

import hashlib
import string

import numpy as np

from letterbench.data.handwriting import data_file, pen_letters, training_choice


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
