"""What an image holds when it is no single letter (a dot, a dash, a scribble, several letters),
and which of its ink blobs is the letter (``main_part``) and which a neighbour's stroke cut by the
frame (``edge_fragment``).

Checked on the ink of the user's image (``letters.letter_mask``) before the model reads it, by the
shape of the letter's box and strokes, measured in units of the ink's own stroke width so that a
fine pen and a marker, a small drawing and a large photo, are judged alike. What the shapes cannot
tell (a scribble drawn over itself, a symbol, a digit) is left to the shipped detector
(``evaluation/letterness.py``). The limits were chosen on letterbench's own non-letters
(``images/nonletters.py``, seed 1) and EMNIST's letters, never on a bench set;
``docs/benchmarks.md`` gives both error rates.
"""

from __future__ import annotations

import numpy as np

DOT = 2.6  # a box no longer than this many stroke widths is a dot or a tap
DASH_ELONGATION = 4.5  # a near-horizontal stroke this many times longer than thick is a dash
DASH_ANGLE = 30.0  # degrees from horizontal (a vertical stroke is an l, I or 1)
WORD_ASPECT = 2.6  # a box this many times wider than high holds several letters
WORD_PIECES = {2: 1.7, 3: 1.3}  # ... or this wide, with this many letter-sized pieces side by side
SCRIBBLE_LENGTH = 5.5  # ink this many box diagonals long (area / stroke width) is a scribble


def not_a_letter(mask: np.ndarray) -> str | None:
    """Why the ink ``mask`` (bool, the letter's box: ``letters.letter_mask``) holds no single
    letter ("a dot", "a dash", "several letters", "a scribble"), or None where it may be one."""
    from scipy import ndimage

    area = float(mask.sum())
    outline = float(np.count_nonzero(mask & ~ndimage.binary_erosion(mask)))
    width = max(1.0, 2.0 * area / max(outline, 1.0))  # the mean stroke width, in pixels
    h, w = mask.shape
    if max(h, w) <= DOT * width:
        return "a dot"
    if _dash(mask, width):
        return "a dash"
    pieces = min(_pieces_side_by_side(mask), 3)
    if w >= WORD_ASPECT * h or (pieces in WORD_PIECES and w >= WORD_PIECES[pieces] * h):
        return "several letters"
    if area / width >= SCRIBBLE_LENGTH * np.hypot(h, w):
        return "a scribble"
    return None


def _dash(mask: np.ndarray, width: float) -> bool:
    """A single straight stroke within ``DASH_ANGLE`` of horizontal."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        return False
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    values, vectors = np.linalg.eigh(cov)
    minor, major = np.sqrt(np.maximum(values, 1e-9))
    length, thickness = np.sqrt(12) * major, max(np.sqrt(12) * minor, width)
    angle = np.degrees(np.arctan2(abs(vectors[1, 1]), abs(vectors[0, 1])))
    return bool(length >= DASH_ELONGATION * thickness and angle <= DASH_ANGLE)


def _pieces_side_by_side(mask: np.ndarray) -> int:
    """How many letter-sized pieces of ink (at least 35% of the box's height) stand side by side:
    the groups their column ranges fall into, pieces whose columns overlap counted as one."""
    from scipy import ndimage

    parts, count = ndimage.label(mask, structure=np.ones((3, 3)))
    spans = sorted(
        (box[1].start, box[1].stop)
        for box in ndimage.find_objects(parts)
        if box is not None and box[0].stop - box[0].start >= 0.35 * mask.shape[0]
    )
    groups, end = 0, -1
    for start, stop in spans:
        if start >= end:
            groups += 1
        end = max(end, stop)
    return groups


def main_part(parts: np.ndarray, sizes: np.ndarray) -> int:
    """The letter's blob: the largest, unless it touches the left or right edge and a blob at
    least a third its size does not (a large neighbour cut by the frame beside a smaller letter)."""
    sides = set(np.unique(parts[:, 0])) | set(np.unique(parts[:, -1]))
    inner = [k for k in np.argsort(-sizes) + 1 if k not in sides and sizes[k - 1] >= sizes.max() / 3]
    largest = 1 + int(np.argmax(sizes))
    return int(inner[0]) if largest in sides and inner else largest


def edge_fragment(parts: np.ndarray, part: int, main: int) -> bool:
    """Whether ink blob ``part`` is a neighbouring letter's stroke entering at the left or right
    edge of an image cut from a word: it touches that edge and lies beside the largest blob, the
    letter, not above or below it (an i's dot, a t's bar, a letter that itself touches the edge
    are kept: they overlap the letter's columns, or are the letter)."""
    if part == main:
        return False
    cols = np.flatnonzero((parts == part).any(0))
    letter = np.flatnonzero((parts == main).any(0))
    at_edge = cols[0] == 0 or cols[-1] == parts.shape[1] - 1
    overlap = max(0, min(cols[-1], letter[-1]) - max(cols[0], letter[0]) + 1)
    return bool(at_edge and overlap <= 0.25 * len(cols))
