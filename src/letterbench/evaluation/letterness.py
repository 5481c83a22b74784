"""Is it one letter? A small CNN that letterbench ships, trained once to tell a prepared 28x28
image of one letter from one of something else (a scribble, a symbol, a digit, a word, a dot), as
``predict`` and ``serve`` prepare every image. It judges whatever model answers, so that a first
model and a study's ensemble say "not a single letter" alike.

Trained by ``bench/train_letterness.py`` (the weights file beside this module, with its
record): letters from EMNIST's training images and from UNIPEN's training writers (drawn as users
draw, then prepared), non-letters from ``images/nonletters.py`` (seeds the reported sets never use).
``NOT_A_LETTER_ABOVE`` was chosen on letterbench's own tuning sets (non-letters of seed 1, EMNIST
validation letters, UNIPEN training writers' letters not used to train it), never on a bench set.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from letterbench.models import create_model

NOT_A_LETTER_ABOVE = 0.669  # chosen to flag 1.5% of the tuning letters (bench/train_letterness.py)


def weights_file() -> Path:
    return Path(str(resources.files("letterbench.evaluation") / "letterness.safetensors"))


def detector_model() -> torch.nn.Module:
    """The detector's network: letterbench's small CNN with two outputs (letter, not a letter)."""
    return create_model("smallcnn", num_classes=2)


@cache
def _detector() -> torch.nn.Module | None:
    from safetensors.torch import load_file

    path = weights_file()
    if not path.is_file():
        return None
    model = detector_model()
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def detector_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x 28 x 28 -> the network's float input, normalised as EMNIST's letters."""
    x = torch.as_tensor(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)
    return (x - 0.1728) / 0.3315


def not_letter_probability(images: np.ndarray) -> np.ndarray | None:
    """Per prepared image (uint8 N x 28 x 28), the probability that it holds no single letter;
    None where the detector's weights are missing (a source checkout that never built them)."""
    model = _detector()
    if model is None:
        return None
    with torch.inference_mode():
        return torch.softmax(model(detector_input(images)).float(), 1)[:, 1].numpy()


def judged(images: np.ndarray, shapes: list[str | None]) -> list[str | None]:
    """Per prepared image, why it holds no single letter: its shape (``images.shape``), or the
    detector's word; None where it may be one letter."""
    probs = not_letter_probability(images) if len(images) else None
    return [
        shape or ("it looks like no letter" if probs is not None and probs[i] > NOT_A_LETTER_ABOVE else None)
        for i, shape in enumerate(shapes)
    ]
