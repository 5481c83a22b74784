"""A user's image of one handwritten letter -> the 28x28 input EMNIST's letters look like.

The owner of "what a model sees" for images from outside EMNIST (predict, serve, export, the
real-world bench). It follows how EMNIST was made from NIST's scans (Cohen et al., 2017), after
making a photo look like a scan: the paper's colour and uneven lighting are estimated and
removed, the long lines of ruled paper dropped, the stroke width brought to EMNIST's; then a
Gaussian blur, the ink's bounding box centred in a square that keeps the aspect ratio, a
2-pixel border, bicubic downsampling to 28x28 and the ink rescaled to reach 255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from letterbench.core.errors import LetterbenchError
from letterbench.images.lighting import paper
from letterbench.images.shape import edge_fragment, main_part, not_a_letter

INK_THRESHOLD = 0.25  # of the ink's full contrast: what counts as ink for the bounding box
MIN_CONTRAST = 0.08  # below this (on 0..1) the image holds no letter
WORK_SIDE = 320  # a photo is reduced to this long side before the clean-up (the letter ends at 24)
# EMNIST's stroke widths, in pixels of the 28x28 image, by ``stroke_width`` on the 8,879 real
# training images here: median 3.14; 10th, 90th and 95th percentiles 2.2, 4.35 and 4.76.
EMNIST_STROKE = 3.1  # what a thin letter (under 80% of it) is redrawn to
EMNIST_THICK = 4.35  # what a thick letter (over EMNIST_THICKEST) is eroded to: still in EMNIST's range
EMNIST_THICKEST = 4.76
RESTROKE_SIDE = 96  # a letter is redrawn on a square of at least this side
SMALLEST_PART = 0.02  # ink blobs under this share of the largest one are specks, not strokes


class BlankImage(LetterbenchError):
    """The image holds no letter (no ink stands out from the paper)."""


@dataclass
class Prepared:
    path: Path
    image: np.ndarray | None  # uint8 28x28, ink bright on black, upright
    error: str | None = None
    blank: bool = False  # the error is that no ink was found
    not_a_letter: str | None = None  # what the ink is instead of one letter ("a dot", ...)


def _full_scale(values: np.ndarray) -> np.ndarray:
    """A single-channel image of any depth on 0..1, by the range its values live in: 0..1 (float),
    0..255, 0..65535 or 0..2**32-1; not by the data's own min and max, so that a faint image stays
    faint and a blank one stays blank. The range is read from the image as decoded and the image
    is reduced to ``WORK_SIDE`` before any float copy of it is made (a 64-megapixel 16-bit scan
    would otherwise become half a gigabyte of float64)."""
    low, top = values.min(), values.max()  # NaN and infinity show in these two
    if not (np.isfinite(low) and np.isfinite(top)):
        raise ValueError("non-finite pixel values (NaN or infinity)")
    shift = min(0.0, float(low))
    top = float(top) - shift
    full = next((f for f in (1.0, 255.0, 65535.0, 4294967295.0) if top <= f), top or 1.0)
    small = _block_mean(values)
    return ((small - shift) / full).astype(np.float32)


def _block_mean(values: np.ndarray) -> np.ndarray:
    """The mean of each factor x factor block (float64, small), where the image is larger than
    ``WORK_SIDE``; the image itself otherwise. Sums run block row by block row: nothing the size
    of the full image is allocated."""
    factor = math.ceil(max(values.shape[:2]) / WORK_SIDE)
    if factor <= 1:
        return values.astype(np.float64)
    rows, cols = values.shape[0] // factor, values.shape[1] // factor
    out = np.empty((max(rows, 1), max(cols, 1)), np.float64)
    if rows == 0 or cols == 0:  # a thin strip: one block across its short side
        return values.astype(np.float64).mean(axis=0 if rows == 0 else 1, keepdims=True)
    for r in range(rows):
        band = values[r * factor : (r + 1) * factor, : cols * factor]
        out[r] = band.reshape(factor, cols, factor).sum(axis=(0, 2), dtype=np.float64) / factor**2
    return out


def _to_pixels(img: Image.Image) -> np.ndarray:
    """(H, W) gray or (H, W, 3) colour on 0..1, upright, reduced to ``WORK_SIDE`` at most."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):  # 16/32-bit integer or float pixels
        return _reduce(_full_scale(np.asarray(img)))  # _reduce: the last step to WORK_SIDE
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 26 and alpha.max() > 229:  # strokes on a see-through sheet: the ink is
            img = Image.fromarray(255 - alpha)  # where it is opaque, whatever its colour (white
        else:  # strokes from a dark-mode drawing app included)
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent = paper
            img = Image.alpha_composite(background, rgba)
    img = img.convert("L" if img.mode in ("1", "L") else "RGB")
    factor = max(img.size) / WORK_SIDE
    if factor > 1:  # on 8-bit pixels, before anything else touches the full-size photo
        img = img.resize(_reduced_size(img.size[::-1], factor)[::-1], Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def _reduced_size(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    return max(1, round(shape[0] / factor)), max(1, round(shape[1] / factor))


def _reduce(pixels: np.ndarray) -> np.ndarray:
    factor = max(pixels.shape[:2]) / WORK_SIDE
    if factor <= 1:
        return pixels
    size = _reduced_size(pixels.shape, factor)[::-1]
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    out = [
        np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX)) for p in planes.transpose(2, 0, 1)
    ]
    return np.stack(out, -1).squeeze(-1) if pixels.ndim == 2 else np.stack(out, -1)


def ink_map(pixels: np.ndarray) -> np.ndarray:
    """How strongly each pixel differs from the paper (0..), in the direction most of the ink
    does: dark ink on light paper or light on dark, any colour on any colour."""
    diff = pixels - paper(pixels)
    planes = diff[..., None] if diff.ndim == 2 else diff
    lum = planes.mean(-1)
    strength = np.sqrt((planes**2).mean(-1))
    strong = strength > max(0.08, 3 * float(np.median(strength)))
    polarity = -1.0 if lum[strong].sum() <= 0 else 1.0
    return np.where(polarity * lum > -0.5 * strength, strength, 0.0).astype(np.float32)


def remove_rules(ink: np.ndarray) -> np.ndarray:
    """Drop the long straight lines of ruled or squared paper (thin lines that cross the whole
    image, edge to edge), then close the small gaps they leave in the strokes that crossed them.
    Where that would leave little ink, the "line" was the letter (an ``l`` drawn edge to edge)
    and the image is kept as it was."""
    from scipy import ndimage

    out = ink
    for axis in (1, 0):  # rows (ruled paper), then columns (a margin, squared paper)
        length = ink.shape[axis]
        if length < 16:
            continue
        size = (1, int(length * 0.6)) if axis == 1 else (int(length * 0.6), 1)
        lines = ndimage.grey_opening(out, size=size)
        parts, count = ndimage.label(lines > 0.25 * max(float(out.max()), 1e-6))
        spans = ndimage.find_objects(parts)
        across = ink.shape[1 - axis]
        whole = [  # edge to edge, and as thin as a printed rule (a pen's bar of a T is thicker)
            i + 1
            for i, box in enumerate(spans)
            if box[axis].start <= 0.02 * length
            and box[axis].stop >= 0.98 * length
            and box[1 - axis].stop - box[1 - axis].start <= max(4, 0.025 * across)
        ]
        if not whole:
            continue
        lines = np.where(np.isin(parts, whole), lines, 0)
        cleaned = np.clip(out - lines, 0, None)
        bridge = (5, 1) if axis == 1 else (1, 5)  # across the removed line
        cleaned = np.maximum(cleaned, np.minimum(ndimage.grey_closing(cleaned, size=bridge), out))
        if cleaned.sum() >= 0.2 * out.sum():
            out = cleaned
    return out


def _letter_box(ink: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of the ink's strokes, leaving out specks of noise."""
    from scipy import ndimage

    # smoothed, a lone noisy pixel falls under the threshold and an i's dot does not
    parts, count = ndimage.label(ndimage.gaussian_filter(ink, 1.0) > INK_THRESHOLD)
    if count == 0:
        parts, count = ndimage.label(ink > INK_THRESHOLD)
    sizes = ndimage.sum_labels(np.ones_like(ink), parts, index=np.arange(1, count + 1))
    kept = [k + 1 for k in np.flatnonzero(sizes >= SMALLEST_PART * sizes.max())]
    main = main_part(parts, sizes)
    kept = [k for k in kept if not edge_fragment(parts, k, main)]
    rows, cols = np.nonzero(np.isin(parts, kept))
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def stroke_width(image: np.ndarray, upscale: int = 8) -> float:
    """The mean stroke width of a 28x28 letter (0..255), in its pixels: twice the ink's area over
    its outline, measured on a smooth ``upscale``-times enlargement thresholded at half the peak."""
    from scipy import ndimage

    big = np.asarray(
        Image.fromarray(image.astype(np.uint8)).resize((28 * upscale, 28 * upscale), Image.Resampling.BICUBIC)
    )
    mask = big > 0.5 * big.max()
    outline = np.count_nonzero(mask & ~ndimage.binary_erosion(mask))
    return 2.0 * np.count_nonzero(mask) / max(outline, 1) / upscale


def frame(square: np.ndarray, bordered: bool = False) -> np.ndarray:
    """A square ink crop (0..1) -> uint8 28x28: EMNIST's blur, bicubic resize to 24, 2-px border,
    ink rescaled to reach 255. ``bordered``: the crop already holds the border (24/28 of it is the
    letter's box), and whatever ink lies there is kept."""
    side = square.shape[0] * (24 / 28 if bordered else 1)
    img = Image.fromarray((np.clip(square, 0, 1) * 255).astype(np.uint8))
    # EMNIST blurred NIST's 128-px frames with sigma 1, where a letter is about half the frame.
    img = img.filter(ImageFilter.GaussianBlur(radius=max(0.5, side / 64)))
    out = np.zeros((28, 28), np.float32)
    if bordered:
        out[:] = np.asarray(img.resize((28, 28), Image.Resampling.BICUBIC), dtype=np.float32)
    else:
        out[2:26, 2:26] = np.asarray(img.resize((24, 24), Image.Resampling.BICUBIC), dtype=np.float32)
    peak = out.max()
    return (out * (255.0 / peak)).clip(0, 255).astype(np.uint8) if peak > 0 else out.astype(np.uint8)


def _restroke(square: np.ndarray, width: float) -> np.ndarray:
    """The letter of ``square`` redrawn with strokes of a width EMNIST has (``width`` is its own,
    in the 28x28 frame's pixels). A thick letter is eroded to ``EMNIST_THICK``, which keeps its
    strokes joined; a thin one is redrawn at ``EMNIST_STROKE`` along its centre lines (the ridge
    of the distance to the paper), found on a smoothed copy so that grainy pencil or a stroke
    broken by noise stays one."""
    from scipy import ndimage

    if square.shape[0] < RESTROKE_SIDE:  # a small crop's centre line breaks into dots
        square = ndimage.zoom(square, RESTROKE_SIDE / square.shape[0], order=1)
    side = square.shape[0]
    smooth = np.pad(square, max(2, side // 4))
    if width < EMNIST_STROKE:
        smooth = ndimage.gaussian_filter(smooth, sigma=max(0.5, side / 64))
    mask = smooth > 0.4 * smooth.max()
    parts, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, parts, index=np.arange(1, count + 1))
        mask = np.isin(parts, 1 + np.flatnonzero(sizes >= SMALLEST_PART * sizes.max()))
    depth = ndimage.distance_transform_edt(mask)
    ridge = mask & (depth >= ndimage.maximum_filter(depth, size=3))
    radius = max(0.5, EMNIST_STROKE / 2 * side / 24 - 0.5)  # in the crop's pixels
    if width > EMNIST_STROKE:
        return _eroded(depth, float(np.median(depth[ridge])) - radius * EMNIST_THICK / EMNIST_STROKE, side)
    return (ndimage.distance_transform_edt(~ridge) <= radius).astype(np.float32)


def _eroded(depth: np.ndarray, by: float, side: float, rounds: int = 2) -> np.ndarray:
    """A thick letter's mask (``depth``: the distance to the paper) eroded ``by`` pixels, then
    by as much more or less as its framed stroke width is off ``EMNIST_THICK`` (a letter's joins
    and ends make its strokes measure wider than their middles)."""
    top = 0.8 * float(depth.max())
    for _ in range(rounds):
        width = stroke_width(frame(_square((depth > min(max(by, 0.0), top)).astype(np.float32))))
        by += (width - EMNIST_THICK) / 2 * side / 24
    return (depth > min(max(by, 0.0), top)).astype(np.float32)


def _square(ink: np.ndarray, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """The letter's box of ``ink`` (``box``, where already found), centred in a square that keeps
    its aspect ratio."""
    rows, cols = box or _letter_box(ink)
    crop = ink[rows, cols]
    side = max(crop.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return square


def letter_ink(pixels: np.ndarray) -> np.ndarray:
    """A gray (0..1, H x W) or colour (H x W x 3) image, either polarity -> its ink (0..1, the
    image reduced to ``WORK_SIDE``), paper, light and ruled lines removed; ``BlankImage`` if none."""
    ink = remove_rules(ink_map(_reduce(pixels)))
    contrast = float(np.percentile(ink, 99.9)) if ink.size > 1000 else float(ink.max())
    if contrast < MIN_CONTRAST:
        raise BlankImage("the image is blank (no ink found)")
    return np.clip(ink / contrast, 0, 1)


def framed(
    ink: np.ndarray, normalise_stroke: bool = True, box: tuple[slice, slice] | None = None
) -> np.ndarray:
    """The letter of ``ink`` (``letter_ink``; its box ``box`` where already found) as uint8 28x28
    as EMNIST draws letters: ink bright on black, centred, about EMNIST's stroke width."""
    square = _square(ink, box)
    out = frame(square)
    width = stroke_width(out)
    if normalise_stroke and (width < 0.8 * EMNIST_STROKE or width > EMNIST_THICKEST):
        redrawn = frame(_square(_restroke(square, width)))
        if _pieces(redrawn) <= _pieces(out):  # not where the redrawing broke strokes apart
            out = redrawn
    return out


def emnist_like(pixels: np.ndarray, normalise_stroke: bool = True) -> np.ndarray:
    """A gray (0..1, H x W) or colour (H x W x 3) image of one letter, either polarity -> uint8
    28x28 as EMNIST draws letters: ink bright on black, centred, about EMNIST's stroke width."""
    return framed(letter_ink(pixels), normalise_stroke)


def _pieces(image: np.ndarray) -> int:
    from scipy import ndimage

    parts, count = ndimage.label(image > 127)
    return int((ndimage.sum_labels(np.ones_like(image), parts, index=np.arange(1, count + 1)) >= 4).sum())


def prepare_file(path: Path) -> Prepared:
    if path.exists() and not path.is_file():  # a pipe would block for ever, a device never end
        what = "a folder" if path.is_dir() else "not a regular file (a pipe or a device)"
        return Prepared(path, None, f"{what}, not an image")
    try:
        with Image.open(path) as img:
            img.load()
            image, reason = prepare_letter(img)
            return Prepared(path, image, not_a_letter=reason)
    except FileNotFoundError:
        return Prepared(path, None, "no such file")
    except UnidentifiedImageError:
        return Prepared(
            path, None, "not an image letterbench can read (use PNG, JPEG, GIF, BMP, TIFF or WebP)"
        )
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return Prepared(path, None, f"unreadable image ({exc})")
    except LetterbenchError as exc:
        return Prepared(path, None, str(exc), blank=isinstance(exc, BlankImage))


def prepare_letter(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """A PIL image -> (uint8 28x28, ink bright on black; why it holds no single letter, or None:
    ``shape.not_a_letter``); LetterbenchError if it holds no ink."""
    try:
        pixels = _to_pixels(img)
    except (OSError, ValueError) as exc:
        raise LetterbenchError(f"unreadable image ({exc})") from exc
    ink = letter_ink(pixels)
    box = _letter_box(ink)  # found once, for the framing and the shape check
    return framed(ink, box=box), not_a_letter(letter_mask(ink, box))


def letter_mask(ink: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """The ink of the letter's box (``_letter_box``) as a mask, smoothed as the box was found."""
    from scipy import ndimage

    rows, cols = box
    mask = ndimage.gaussian_filter(ink, 1.0)[rows, cols] > INK_THRESHOLD
    return mask if mask.any() else ink[rows, cols] > INK_THRESHOLD


def prepare_image(img: Image.Image) -> np.ndarray:
    """A PIL image -> uint8 28x28, ink bright on black; LetterbenchError if it holds no letter."""
    return prepare_letter(img)[0]
