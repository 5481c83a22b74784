"""A user's image -> EMNIST's 28x28 look: stroke width, ruled and shaded paper, colour, depths."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from letterbench.images.letters import (
    EMNIST_STROKE,
    EMNIST_THICKEST,
    emnist_like,
    prepare_image,
    stroke_width,
)

FONT = "DejaVuSans.ttf"  # Pillow finds matplotlib's copy by name when it is not installed system-wide


def load_font(size: int):
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def letter_mask(letter: str, stroke: int, size: int = 320) -> np.ndarray:
    """A letter's ink (0..1) drawn with a pen of ``stroke`` pixels added around the font's outline."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    draw.text(
        (size / 2, size / 2),
        letter,
        fill=255,
        font=load_font(190),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    return np.asarray(img, np.float32) / 255


def on_paper(ink: np.ndarray, paper_rgb, ink_rgb) -> np.ndarray:
    """Ink of a colour laid on paper of a colour: (H, W, 3) on 0..1."""
    paper = np.asarray(paper_rgb, np.float32) / 255
    pen = np.asarray(ink_rgb, np.float32) / 255
    return paper * (1 - ink[..., None]) + pen * ink[..., None]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two 28x28 inputs, as a share of full scale."""
    return float(np.abs(a.astype(float) - b.astype(float)).mean() / 255)


@pytest.mark.parametrize("letter", ["a", "e", "k", "s"])
def test_a_fine_pen_and_a_marker_give_nearly_the_same_input(letter):
    fine = 1 - letter_mask(letter, 0)
    marker = 1 - letter_mask(letter, 12)
    assert stroke_width(emnist_like(marker, normalise_stroke=False)) > 1.8 * stroke_width(
        emnist_like(fine, normalise_stroke=False)
    )
    raw = difference(emnist_like(fine, normalise_stroke=False), emnist_like(marker, normalise_stroke=False))
    normalised = difference(emnist_like(fine), emnist_like(marker))
    assert normalised < 0.6 * raw, (raw, normalised)
    for out in (emnist_like(fine), emnist_like(marker)):  # within EMNIST's own widths (5-95%)
        assert 0.65 * EMNIST_STROKE < stroke_width(out) < EMNIST_THICKEST


def test_emnist_stroke_width_is_measured_on_the_real_data(real_data_dir):
    from letterbench.data import load_emnist

    images = load_emnist(real_data_dir, "letters").train_images.numpy()[:2000]
    median = float(np.median([stroke_width(img) for img in images]))
    assert abs(median - EMNIST_STROKE) < 0.15, median


def test_ruled_paper_comes_out_clean():
    ink = letter_mask("h", 4)
    clean = emnist_like(on_paper(ink, (250, 250, 245), (20, 20, 30)))
    ruled = on_paper(ink, (250, 250, 245), (20, 20, 30))
    for y in range(12, 320, 34):  # blue rules every 34 px, 2 px thick, across the whole sheet
        ruled[y : y + 2] = np.minimum(ruled[y : y + 2], np.array([150, 180, 230], np.float32) / 255)
    ruled[:, 40:42] = np.minimum(ruled[:, 40:42], np.array([230, 120, 120], np.float32) / 255)  # margin
    out = emnist_like(ruled)
    assert difference(out, clean) < 0.03, difference(out, clean)
    assert out[:2].max() < 60 and out[-2:].max() < 60  # no rule left along the frame's edges


def test_shaded_photo_of_coloured_ink_on_coloured_paper_comes_out_clean():
    ink = letter_mask("r", 4)
    clean = emnist_like(1 - ink)
    h, w = ink.shape
    light = (
        np.linspace(1.0, 0.45, w, dtype=np.float32)[None, :, None]
        * np.linspace(0.8, 1.0, h, dtype=np.float32)[:, None, None]
    )  # a lamp on the left, a shadow to the right
    photo = on_paper(ink, (200, 230, 190), (40, 60, 170)) * light  # blue ink on green paper
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.02, photo.shape), 0, 1)
    img = Image.fromarray((noisy * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    out = prepare_image(img)
    assert difference(out, clean) < 0.04, difference(out, clean)
    naive = 1 - np.asarray(img.convert("L"), np.float32) / 255  # what a plain threshold would see
    assert (naive[:, -40:] > 0.4).mean() > 0.5  # the shadow alone looks like ink to a plain reading


def test_white_chalk_on_a_dark_board_reads_like_ink_on_paper():
    ink = letter_mask("t", 5)
    assert difference(emnist_like(ink * 0.8 + 0.1), emnist_like(1 - ink)) < 0.02


def test_big_photos_are_reduced_first_and_read_the_same():
    ink = letter_mask("q", 6)
    small = emnist_like(1 - ink)
    big = Image.fromarray(((1 - ink) * 255).astype(np.uint8)).resize((2400, 2400), Image.Resampling.BICUBIC)
    assert difference(prepare_image(big.convert("RGB")), small) < 0.02


def test_a_letter_drawn_edge_to_edge_keeps_its_bars():
    """A T or an E drawn across the whole canvas (as on the serve page) is not a ruled line."""
    for bars in ([(0, 0.03)], [(0, 0.03), (0.48, 0.52), (0.97, 1.0)]):
        img = np.full((280, 280), 255, np.uint8)
        for top, bottom in bars:
            img[int(top * 279) : int(bottom * 279) + 1, 2:278] = 0  # bars of a 17-px pen, edge to edge
        img[:, 130:148] = 0 if len(bars) == 1 else 255
        img[:, 2:20] = 0 if len(bars) > 1 else img[:, 2:20]
        out = emnist_like(img.astype(np.float32) / 255)
        assert out[2:5, 2:26].mean() > 100, "the top bar was removed as a ruled line"


def _pieces(image: np.ndarray, level: int = 100) -> int:
    from scipy import ndimage

    return ndimage.label(image > level)[1]


@pytest.mark.parametrize("letter", ["d", "e", "a", "s"])
def test_a_small_photo_of_a_thick_letter_is_redrawn_in_one_piece(letter):
    """A marker letter some 40 px tall (a phone photo from afar) is redrawn with EMNIST's stroke
    without its centre line breaking into a string of dots."""
    mask = letter_mask(letter, 8)
    big = emnist_like(1 - mask)
    page = Image.fromarray(((1 - mask) * 255).astype(np.uint8)).resize((64, 64), Image.Resampling.BOX)
    small = emnist_like(np.asarray(page, np.float32) / 255)
    assert _pieces(small) == _pieces(big) == 1
    assert difference(small, big) < 0.05, difference(small, big)


@pytest.mark.parametrize("dot", [1, 2])  # ellipses 2x2 and 3x3 pixels
def test_the_dot_of_a_fine_pen_i_is_kept(dot):
    """A dot of a few pixels is not a speck to leave out: without it an i reads as an l."""
    img = Image.new("L", (90, 90), 235)
    draw = ImageDraw.Draw(img)
    draw.line([(45, 40), (44, 75)], fill=30, width=2)
    draw.ellipse([44, 31, 44 + dot, 31 + dot], fill=30)
    out = emnist_like(np.asarray(img, np.float32) / 255)
    from scipy import ndimage

    parts, count = ndimage.label(out > 100)
    assert count == 2  # the stem and the dot
    dot_rows, stem_rows = sorted((np.nonzero(parts == k)[0] for k in (1, 2)), key=len)
    assert dot_rows.max() < stem_rows.min()  # the dot above the stem


@pytest.mark.parametrize("letter", ["a", "c", "m"])
def test_a_bold_letter_under_a_vignette_keeps_the_paper_out(letter):
    # a big, bold letter, grey ink on grey paper, on a wider photo; the lamp lights the middle and
    # the left, the corners and the right fall dark, and the camera adds noise
    bold = letter_mask(letter, 24)
    ink = np.zeros((320, 400), np.float32)
    ink[:, 70:390] = bold
    yy, xx = np.mgrid[0:320, 0:400].astype(np.float32)
    yy, xx = yy / 320 - 0.5, xx / 400 - 0.5
    light = ((1 - 0.7 * (xx**2 + yy**2)) * (1 - 0.3 * (0.5 + xx)))[..., None]
    photo = on_paper(ink, (210, 210, 205), (70, 70, 80)) * light
    photo = np.clip(photo + np.random.default_rng(0).normal(0, 0.04, photo.shape), 0, 1)
    out = emnist_like(photo)
    assert difference(out, emnist_like(1 - bold)) < 0.03, difference(out, emnist_like(1 - bold))


@pytest.mark.parametrize("letter", ["k", "v", "r"])
@pytest.mark.parametrize("direction", ["diagonal", "vertical"])
def test_a_shadow_falling_across_the_sheet_is_not_read_as_ink(letter, direction):
    # grey ink; a hand's shadow darkens the top left of the sheet (or its left side) by 45%, its
    # edge a straight, sharp line near the letter, which a smooth lighting surface cannot follow
    ink = letter_mask(letter, 2)
    yy, xx = np.mgrid[0:320, 0:320].astype(np.float32) / 320 - 0.5
    across = -(xx + yy) / np.sqrt(2) - 0.15 if direction == "diagonal" else -xx - 0.3
    shadow = 1 / (1 + np.exp(-across / 0.02))
    photo = on_paper(ink, (235, 235, 228), (110, 110, 120)) * (1 - 0.45 * shadow)[..., None]
    photo = np.clip(photo + np.random.default_rng(0).normal(0, 0.02, photo.shape), 0, 1)
    out = emnist_like(photo)
    assert difference(out, emnist_like(1 - ink)) < 0.05, difference(out, emnist_like(1 - ink))


def _drawn_close(letter: str, stroke: int, margin: float) -> np.ndarray:
    """A letter's ink filling the photo but for ``margin`` of its size on each side (320 px), as a
    letter drawn big on the page's canvas or a photo cropped close comes."""
    mask = letter_mask(letter, stroke)
    ys, xs = np.nonzero(mask > 0.5)
    side = max(ys.max() - ys.min(), xs.max() - xs.min())
    half = side // 2 + int(margin * side)
    cy, cx = (ys.max() + ys.min()) // 2 + 200, (xs.max() + xs.min()) // 2 + 200
    crop = np.pad(mask, 200)[cy - half : cy + half, cx - half : cx + half]
    return np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((320, 320)), np.float32) / 255


@pytest.mark.parametrize(("letter", "stroke"), [("L", 4), ("L", 8), ("T", 4), ("Z", 4)])
def test_a_bar_drawn_near_the_edge_is_not_taken_for_a_shadow(letter, stroke):
    # no shadow at all: the letter's bars run 2% of its size from the photo's edges
    ink = _drawn_close(letter, stroke, 0.02)
    photo = on_paper(ink, (235, 235, 228), (40, 40, 50))
    photo = np.clip(photo + np.random.default_rng(0).normal(0, 0.02, photo.shape), 0, 1)
    out = emnist_like(photo)
    assert difference(out, emnist_like(1 - ink)) < 0.03, difference(out, emnist_like(1 - ink))


def test_the_shadow_search_runs_blas_on_one_thread(monkeypatch):
    # its small products slowed down sixfold on a busy CPU when BLAS spread them over threads
    from threadpoolctl import threadpool_info

    from letterbench.images import lighting

    seen = []
    search = lighting.shadow_edge

    def watched(*args):
        seen.append(
            {
                lib["internal_api"]: lib["num_threads"]
                for lib in threadpool_info()
                if lib["user_api"] == "blas"
            }
        )
        return search(*args)

    monkeypatch.setattr(lighting, "shadow_edge", watched)
    emnist_like(1 - letter_mask("k", 4))
    assert seen and all(threads == 1 for threads in seen[0].values()), seen


@pytest.mark.parametrize("stroke", [(255, 255, 255), (20, 20, 20), (30, 60, 200)])
def test_strokes_on_a_transparent_sheet_are_ink_whatever_their_colour(stroke, tmp_path):
    """What drawing apps export: strokes on a see-through background. White strokes (a dark-mode
    app) read as the same letter as dark ones, not as a blank image."""
    from letterbench.images.letters import prepare_file

    sheet = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(sheet).line([(100, 30), (100, 170)], fill=(*stroke, 255), width=14)  # an l
    sheet.save(tmp_path / "l.png")
    prepared = prepare_file(tmp_path / "l.png")
    assert prepared.image is not None, prepared.error
    rows, cols = np.nonzero(prepared.image > 127)
    assert rows.max() - rows.min() > 15 and cols.max() - cols.min() < 10  # a tall, thin bar
