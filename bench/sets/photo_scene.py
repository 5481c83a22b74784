"""'Photograph' an ink mask of one letter, for the real-world bench set (``make_real_world.py``).

The letter is written in some ink on some paper (white, off-white, cream, grey, coloured, kraft;
plain, ruled or squared, the baseline on a ruled line), placed off-centre at a size from small
to filling the frame, and the sheet is seen by a tilted camera (rotation up to 14 degrees and a
perspective warp); then lit unevenly (a gradient, a vignette, sometimes a soft shadow), white
balanced a little off, defocused, noisy, sometimes shot at a low resolution, and saved as JPEG at
varying quality (or PNG).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import gaussian_filter

PAPERS = {  # name: (RGB on 0..1, share)
    "white": ((0.97, 0.97, 0.97), 0.22),
    "off-white": ((0.93, 0.92, 0.88), 0.18),
    "cream": ((0.96, 0.91, 0.78), 0.14),
    "grey": ((0.78, 0.78, 0.77), 0.12),
    "yellow": ((0.99, 0.94, 0.58), 0.08),
    "blue": ((0.76, 0.86, 0.96), 0.07),
    "pink": ((0.98, 0.8, 0.85), 0.07),
    "green": ((0.8, 0.94, 0.78), 0.06),
    "kraft": ((0.76, 0.63, 0.47), 0.06),
}
INKS = {  # name: (RGB on 0..1, share)
    "black": ((0.07, 0.07, 0.09), 0.28),
    "blue": ((0.1, 0.16, 0.55), 0.22),
    "navy": ((0.08, 0.1, 0.3), 0.08),
    "dark red": ((0.55, 0.07, 0.1), 0.08),
    "pencil": ((0.3, 0.3, 0.33), 0.16),
    "green": ((0.08, 0.4, 0.16), 0.06),
    "purple": ((0.35, 0.13, 0.5), 0.06),
    "red": ((0.82, 0.1, 0.1), 0.06),
}
RULINGS = {"plain": 0.6, "ruled": 0.28, "squared": 0.12}


def _pick(rng: np.random.Generator, table: dict) -> str:
    names = list(table)
    shares = np.asarray([v[1] if isinstance(v, tuple) else v for v in table.values()], dtype=np.float64)
    return names[int(rng.choice(len(names), p=shares / shares.sum()))]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise on -1..1: a coarse random grid, bicubically enlarged."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC)).clip(-1, 1)


def _paper(rng: np.random.Generator, h: int, w: int, description: dict) -> np.ndarray:
    name = _pick(rng, PAPERS)
    colour = np.asarray(PAPERS[name][0]) + rng.normal(0, 0.015, 3)
    fibre = rng.normal(0, rng.uniform(0.004, 0.02), (h, w)).astype(np.float32)
    fibre = gaussian_filter(fibre, 0.7)
    blotch = rng.uniform(0, 0.04) * _smooth_noise(rng, h, w, 5)
    description["paper"] = name
    return (colour[None, None, :] * (1 + fibre + blotch)[..., None]).astype(np.float32)


def _ruling(rng: np.random.Generator, paper: np.ndarray, baseline: float, spacing: float, desc: dict) -> None:
    """Draw ruled or squared lines on the paper (in place), one ruled line under the letter."""
    kind = _pick(rng, RULINGS)
    desc["ruling"] = kind
    if kind == "plain":
        return
    h, w = paper.shape[:2]
    colour = np.asarray([(0.55, 0.7, 0.9), (0.6, 0.6, 0.62), (0.5, 0.75, 0.8)][int(rng.integers(3))])
    strength = rng.uniform(0.35, 0.8)
    lines = Image.new("L", (w * 2, h * 2), 0)
    draw = ImageDraw.Draw(lines)
    width = int(rng.integers(1, 4))
    step = spacing * (0.5 if kind == "squared" else 1.0)
    for y in np.arange(baseline % step, h, step):
        draw.line([(0, 2 * y), (2 * w, 2 * y)], fill=255, width=width)
    if kind == "squared":
        for x in np.arange(rng.uniform(0, step), w, step):
            draw.line([(2 * x, 0), (2 * x, 2 * h)], fill=255, width=width)
    elif rng.random() < 0.3:  # a red margin line
        x = rng.uniform(0.05, 0.3) * w
        draw.line([(2 * x, 0), (2 * x, 2 * h)], fill=200, width=width + 1)
        colour = np.asarray([0.85, 0.35, 0.4]) if rng.random() < 0.5 else colour
    alpha = (
        np.asarray(lines.resize((w, h), Image.Resampling.BOX), dtype=np.float32)[..., None] / 255 * strength
    )
    paper *= 1 - alpha * (1 - colour)


def _ink_alpha(rng: np.random.Generator, mask: np.ndarray, ink: str) -> np.ndarray:
    """The ink's coverage: pencil is grainy and lighter, pens a little uneven."""
    h, w = mask.shape
    if ink == "pencil":
        grain = rng.uniform(0.35, 1.0, (h, w)).astype(np.float32)
        return mask * grain * rng.uniform(0.55, 0.9)
    density = rng.uniform(0.8, 1.0) + 0.12 * _smooth_noise(rng, h, w, 4)
    return (mask * density).clip(0, 1)


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """PIL's PERSPECTIVE data mapping output corners ``dst`` to input corners ``src``."""
    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.asarray(rows, np.float64), src.reshape(-1)).tolist()


def _camera_quad(
    rng: np.random.Generator, frame: tuple[float, float, float, float], desc: dict
) -> np.ndarray:
    """The sheet's quadrilateral the camera sees as its frame: rotated, each corner pulled a little."""
    x0, y0, w, h = frame
    angle = rng.uniform(-14, 14)
    desc["rotation"] = round(angle, 1)
    corners = np.asarray([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - [w / 2, h / 2]
    corners += rng.uniform(-1, 1, (4, 2)) * rng.uniform(0, 0.09) * np.asarray([w, h])
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return corners @ np.asarray([[c, s], [-s, c]]) + [x0 + w / 2, y0 + h / 2]


def _lighting(rng: np.random.Generator, h: int, w: int, desc: dict) -> np.ndarray:
    """A multiplicative light field: a gradient, a vignette and, sometimes, a soft shadow."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h - 0.5, xx / w - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0, 0.4) * (0.5 + np.cos(theta) * xx + np.sin(theta) * yy)
    light *= 1 - rng.uniform(0, 0.35) * (xx**2 + yy**2) * 2
    desc["light"] = "gradient"
    if rng.random() < 0.22:
        phi, offset = rng.uniform(0, 2 * np.pi), rng.uniform(-0.35, 0.35)
        edge = rng.uniform(0.02, 0.25)
        side = (np.cos(phi) * xx + np.sin(phi) * yy - offset) / edge
        light *= 1 - rng.uniform(0.2, 0.5) / (1 + np.exp(-side))
        desc["light"] = "shadow"
    return light * rng.uniform(0.8, 1.12)


def photograph(
    mask: np.ndarray, baseline: float, unit: float, rng: np.random.Generator
) -> tuple[bytes, str, dict]:
    """A photo of the letter in ``mask`` (float 0..1, ink = 1; ``baseline`` its row, ``unit`` a
    capital's height in its pixels): encoded bytes, the format ("jpg" or "png") and the scene."""
    desc: dict = {}
    out_h = int(rng.integers(72, 300))
    out_w = int(np.clip(out_h * rng.uniform(0.75, 1.3), 60, 360))
    fill = rng.uniform(0.22, 0.85)
    desc["size"] = "small" if fill < 0.4 else "large" if fill > 0.7 else "medium"
    scale = min(fill * out_h / mask.shape[0], 0.85 * out_w / mask.shape[1])
    lh, lw = max(4, round(mask.shape[0] * scale)), max(3, round(mask.shape[1] * scale))
    letter = np.asarray(Image.fromarray(mask).resize((lw, lh), Image.Resampling.LANCZOS)).clip(0, 1)
    pad_w = pad_h = int(0.4 * max(out_w, out_h))
    H, W = out_h + 2 * pad_h, out_w + 2 * pad_w
    frame = (pad_w, pad_h, out_w, out_h)
    for _ in range(20):  # place the letter off-centre; try again where the camera would cut it
        quad = _camera_quad(rng, frame, desc)
        top = pad_h + int(rng.uniform(0.04, 0.96) * (out_h - lh))
        left = pad_w + int(rng.uniform(0.04, 0.96) * (out_w - lw))
        coeffs = _perspective_coeffs(
            np.asarray([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], float), quad
        )
        alpha = np.zeros((H, W), np.float32)
        alpha[top : top + lh, left : left + lw] = letter
        seen = np.asarray(
            Image.fromarray(alpha).transform((out_w, out_h), Image.Transform.PERSPECTIVE, coeffs)
        )
        ring = np.concatenate(
            [seen[:2].ravel(), seen[-2:].ravel(), seen[:, :2].ravel(), seen[:, -2:].ravel()]
        )
        if ring.max(initial=0) < 0.02:
            break
    ink = _pick(rng, INKS)
    desc["ink"] = ink
    paper = _paper(rng, H, W, desc)
    _ruling(rng, paper, top + baseline * scale, unit * scale * rng.uniform(1.0, 1.7), desc)
    cover = _ink_alpha(rng, alpha, ink)[..., None]
    sheet = paper * (1 - cover * (1 - np.asarray(INKS[ink][0]) + rng.normal(0, 0.03, 3)).clip(0, 1))
    channels = [
        np.asarray(
            Image.fromarray(sheet[..., c]).transform((out_w, out_h), Image.Transform.PERSPECTIVE, coeffs)
        )
        for c in range(3)
    ]
    return _camera(np.stack(channels, -1), rng, desc)


def _camera(img: np.ndarray, rng: np.random.Generator, desc: dict) -> tuple[bytes, str, dict]:
    """Light, white balance, defocus, resolution, sensor noise and the file format."""
    h, w = img.shape[:2]
    img = img * _lighting(rng, h, w, desc)[..., None] * (1 + rng.normal(0, 0.04, 3))
    pil = Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8))
    blur = float(rng.choice([0, rng.uniform(0.3, 1.0), rng.uniform(1.0, 2.0)], p=[0.3, 0.5, 0.2]))
    if blur:
        pil = pil.filter(ImageFilter.GaussianBlur(blur * max(1, h / 150)))
    if rng.random() < 0.15:  # a low-resolution camera, enlarged again
        f = rng.uniform(0.35, 0.7)
        pil = pil.resize((max(8, int(w * f)), max(8, int(h * f))), Image.Resampling.BILINEAR).resize((w, h))
    arr = np.asarray(pil, dtype=np.float32) / 255
    sigma = rng.uniform(0.004, 0.05)
    arr = arr + rng.normal(0, sigma, arr.shape) * (1.3 - arr) + rng.normal(0, sigma / 2, (h, w, 1))
    pil = Image.fromarray((arr.clip(0, 1) * 255 + 0.5).astype(np.uint8))
    desc["blur"], desc["noise"] = round(blur, 2), round(sigma, 3)
    if rng.random() < 0.08:
        pil = pil.convert("L")
    buf = io.BytesIO()
    if rng.random() < 0.75:
        quality = int(rng.integers(30, 96))
        pil.save(buf, format="JPEG", quality=quality)
        desc["format"] = f"jpeg q{quality}"
        return buf.getvalue(), "jpg", desc
    pil.save(buf, format="PNG")
    desc["format"] = "png"
    return buf.getvalue(), "png", desc
