"""Training beyond EMNIST: the synthetic letters (seeded, every class in both cases, EMNIST's framing
and stroke widths) and their share of each batch, while recipes without them draw what they drew."""

from __future__ import annotations

import hashlib
import string

import numpy as np
import pytest
import torch

from letterbench.core.errors import LetterbenchError
from letterbench.core.runtime import Runtime
from letterbench.data.emnist import load_emnist
from letterbench.images.letters import stroke_width
from letterbench.images.synthetic import Shares, draw_letter, font_paths, synthetic_letters
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model
from letterbench.recipes import describe_recipe, resolve_recipe
from letterbench.runs.rundir import RunDir
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.stream import BatchStream, Mix

CPU = Runtime(torch.device("cpu"))


def _framing(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: the stroke width, the long side of the ink's box and the box's centre (ink > 127)."""
    widths, sides, centres = [], [], []
    for image in images:
        rows, cols = np.nonzero(image > 127)
        widths.append(stroke_width(image))
        sides.append(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)
        centres.append(((rows.max() + rows.min()) / 2, (cols.max() + cols.min()) / 2))
    return {"width": np.array(widths), "side": np.array(sides), "centre": np.array(centres)}


def test_the_same_seed_draws_the_same_letters_in_any_order():
    a, labels = synthetic_letters(60, seed=4)
    b, _ = synthetic_letters(60, seed=4)
    assert np.array_equal(a, b)
    tail, tail_labels = synthetic_letters(20, seed=4, first=40)  # drawn alone, the same images
    assert np.array_equal(tail, a[40:]) and np.array_equal(tail_labels, labels[40:])
    other, _ = synthetic_letters(60, seed=5)
    assert (other != a).any(axis=(1, 2)).mean() > 0.9


def test_every_class_in_both_cases_and_every_source():
    images, labels = synthetic_letters(52 * 3, seed=0)
    assert images.shape == (156, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=26).tolist() == [6] * 26
    assert all(images[k].max() >= 250 for k in range(156))  # ink rescaled to full contrast
    # sample i is class i % 26, a capital when (i // 26) is even: both cases of every letter
    for i, ch in ((0, "A"), (25, "Z"), (26, "a"), (51, "z"), (52, "A")):
        assert np.array_equal(images[i], draw_letter(ch, np.random.default_rng([0, i])))
    assert len(font_paths()) >= 20
    only_fonts, _ = synthetic_letters(52, seed=0, shares=Shares(font=1.0, cursive=0.0, neighbour=0.0))
    only_pens, _ = synthetic_letters(52, seed=0, shares=Shares(font=0.0, cursive=0.0, neighbour=0.0))
    assert not np.array_equal(only_fonts, only_pens)


def test_a_letter_cut_from_a_word_keeps_its_own_frame_with_a_neighbour_at_an_edge():
    alone, _ = synthetic_letters(104, seed=2, shares=Shares(neighbour=0.0))
    cut, _ = synthetic_letters(104, seed=2, shares=Shares(neighbour=1.0))
    edges = np.zeros((28, 28), bool)
    edges[:, :2] = edges[:, -2:] = True
    ink_at_edges = lambda images: (images[:, edges] > 64).any(axis=1).mean()  # noqa: E731
    assert ink_at_edges(alone) < 0.05  # EMNIST's 2-pixel border stays empty (0.9% of its letters)
    assert ink_at_edges(cut) > 0.4  # a neighbour's strokes enter at the left or right


@pytest.mark.slow
def test_framing_and_stroke_widths_match_emnists(real_data_dir):
    """Measured on 1,040 synthetic letters against 1,040 real EMNIST training letters. Tolerances:
    the median stroke width within 0.4 px (of EMNIST's 3.2), its 10th and 90th percentiles within
    0.6 px; the median long side of the ink's box within 2.5 px (EMNIST's letters fade at their
    ends, so their boxes at half ink measure shorter); the mean box centre within 0.5 px."""
    real = load_emnist(real_data_dir).train_images[:1040].numpy()
    drawn, _ = synthetic_letters(1040, seed=0)
    ours, theirs = _framing(drawn), _framing(real)
    for q, tol in ((50, 0.4), (10, 0.6), (90, 0.6)):
        mine, emnist = np.percentile(ours["width"], q), np.percentile(theirs["width"], q)
        assert abs(mine - emnist) <= tol, f"stroke width p{q}: {mine:.2f} against EMNIST's {emnist:.2f}"
    assert abs(np.median(ours["side"]) - np.median(theirs["side"])) <= 2.5
    assert np.abs(ours["centre"].mean(0) - theirs["centre"].mean(0)).max() <= 0.5


def _stream_digest(stream: BatchStream, epochs: int = 2) -> str:
    digest = hashlib.sha256()
    for e in range(epochs):
        for batch in stream.epoch(torch.Generator().manual_seed(11 + e)):
            digest.update(batch.index.numpy().tobytes())
            digest.update(batch.theta.numpy().tobytes())
            digest.update(stream.inputs(batch)[1].numpy().tobytes())
    return digest.hexdigest()


def _images(n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(n) % 26


def test_a_recipe_without_synthetic_letters_draws_the_batches_it_drew_before(tmp_path):
    """The digest is of the batches the code before synthetic letters drew for this recipe and seed
    (indices, affine matrices, labels; printed by that code for this test)."""
    recipe = resolve_recipe("resnet18")
    assert "data" not in recipe.to_dict()  # its config records what it recorded before
    images, labels = _images()
    data = TrainData(images, labels, images[:30], labels[:30])
    trainer = Trainer(recipe, create_model("resnet18"), data, CPU, RunDir(tmp_path / "r"))
    assert trainer.stream.mix is None
    assert _stream_digest(trainer.stream) == (
        "416f2b42e79322fae782422a75934599dcf7e7567c4b7922f522b056dfe1696c"
    )


@pytest.mark.parametrize("share, batch, n", [(0.5, 64, 300), (0.25, 32, 300), (0.8, 10, 97), (0.25, 64, 290)])
def test_each_batch_holds_the_recipes_share_of_synthetic_letters_on_top_of_the_unmixed_batch(share, batch, n):
    images, labels = _images(n)
    extra, extra_labels = synthetic_letters(104, seed=1)
    mix = Mix(torch.from_numpy(extra), torch.from_numpy(extra_labels), share)
    spec = create_model("resnet18").spec
    augment = {"rotate": 10.0, "shear": 0.2, "thickness": 0.5}
    plain = BatchStream(images, labels, Preprocess(spec, "cpu"), batch, augment)
    mixed = BatchStream(images, labels, plain.preprocess, batch, augment, mix=mix)
    assert mixed.steps == plain.steps  # as many steps; every batch grows by the mix's images
    on_top = round(batch * share / (1 - share))
    assert mixed.full_batch_size == batch + on_top
    unmixed = list(plain.epoch(torch.Generator().manual_seed(0)))
    for b, own in zip(mixed.epoch(torch.Generator().manual_seed(0)), unmixed, strict=True):
        synthetic = b.index >= n
        assert int(synthetic.sum()) == (
            on_top if len(own) == batch else round(len(own) * share / (1 - share))
        )
        assert abs(synthetic.float().mean() - share) <= 1 / len(b)
        # the batch's own images are the unmixed batch's: the same images, matrices and styles
        assert torch.equal(b.index[~synthetic], own.index)
        assert torch.equal(b.theta[~synthetic], own.theta) and torch.equal(b.style[~synthetic], own.style)
        x, y = mixed.inputs(b)
        drawn = b.index[synthetic] - n
        assert torch.equal(y[synthetic], torch.from_numpy(extra_labels)[drawn])
        assert torch.equal(
            x[synthetic],
            plain.preprocess(torch.from_numpy(extra)[drawn], b.theta[synthetic], b.style[synthetic]),
        )


def test_the_reader_recipe_mixes_half_of_each_batch_and_says_so(tmp_path):
    recipe = resolve_recipe(recipe="reader")
    assert recipe.synthetic_share == 0.5 and recipe.model == "resnet18"
    assert "50% of each batch extra letters (20,800 drawn, 60% of them real handwriting)" in describe_recipe(
        recipe
    )
    assert recipe.to_dict()["data"] == {"synthetic": 0.5, "pool": 20800, "handwriting": 0.6}
    images, labels = _images()
    extra, extra_labels = synthetic_letters(52, seed=0)
    data = TrainData(
        images, labels, images[:30], labels[:30], torch.from_numpy(extra), torch.from_numpy(extra_labels)
    )
    trainer = Trainer(recipe, create_model("resnet18"), data, CPU, RunDir(tmp_path / "r"))
    batch = next(iter(trainer.stream.epoch(torch.Generator().manual_seed(0))))
    assert len(batch) == 128 and int((batch.index >= len(labels)).sum()) == 64  # 64 EMNIST + 64
    off = resolve_recipe(recipe="reader", overrides=["data.synthetic=0"])
    assert off.synthetic_share == 0
    with pytest.raises(LetterbenchError, match="data.synthetic"):
        resolve_recipe(recipe="reader", overrides=["data.synthetic=0.95"])
    # a share under one letter a batch would be recorded as it is and trained as one letter a batch
    with pytest.raises(
        LetterbenchError, match=r"data.synthetic=0.0001 gives less than one extra letter per batch of 64"
    ):
        resolve_recipe(recipe="reader", overrides=["data.synthetic=0.0001"])
    with pytest.raises(LetterbenchError, match="synthetic letters"):
        Trainer(
            recipe, create_model("resnet18"), TrainData(images, labels, images, labels), CPU, RunDir(tmp_path)
        )


def test_synthetic_labels_are_the_letters_classes():
    images, labels = synthetic_letters(52, seed=0)
    assert [string.ascii_lowercase[k] for k in labels[:26]] == list(string.ascii_lowercase)
