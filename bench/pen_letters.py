"""Letters drawn along pen paths, for the real-world bench set (``make_real_world.py``).

Every letter, upper and lower case, is a small table of strokes in a unit box (x to the right,
y down; capitals and ascenders reach y = 0, the x-height is y = 0.42, the baseline y = 1,
descenders reach y = 1.38). A stroke is one pen-down path written like SVG's: ``M x y`` moves,
``L x y`` draws a line, ``Q`` and ``C`` quadratic and cubic Beziers, and ``E cx cy rx ry a0 a1``
an elliptical arc from angle a0 to a1 in degrees (0 = right, 90 = down). Several variants of a
letter (double- and single-storey a, I with or without bars ...) are drawn in turn.

Per sample the control points are jittered (a shared point moves with all strokes through it),
each stroke shifted a little, the whole letter slanted, squeezed and bent by a smooth warp, and
drawn with a pen from a fine pen to a marker whose width varies along the stroke, anti-aliased
(supersampled three times).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

BASELINE = 1.0
PX_PER_UNIT = 160  # the mask's resolution: pixels per unit of the box (a capital's height)
SUPERSAMPLE = 3

O_ARC = "E 0.5 0.5 0.42 0.5 -90 270"
SMALL_O = "E 0.5 0.71 0.32 0.29 -90 270"
SMALL_BOWL_LEFT = "E 0.45 0.71 0.3 0.29 -10 350"  # a, d, g, q: the bowl left of the stem
SMALL_BOWL_RIGHT = "E 0.48 0.71 0.28 0.29 180 -180"  # b, p: the bowl right of the stem
P_BOWL = "M 0.15 0 C 0.95 0 0.95 0.55 0.15 0.55"

STROKES: dict[str, list[list[str]]] = {
    "A": [
        ["M 0.1 1 L 0.5 0 L 0.9 1", "M 0.27 0.62 L 0.73 0.62"],
        ["M 0.1 1 L 0.45 0 L 0.85 1", "M 0.2 0.7 L 0.8 0.55"],
    ],
    "B": [
        [
            "M 0.15 1 L 0.15 0",
            "M 0.15 0 C 0.85 0 0.85 0.48 0.15 0.48",
            "M 0.15 0.48 C 0.98 0.48 0.98 1 0.15 1",
        ]
    ],
    "C": [["E 0.55 0.5 0.45 0.5 -40 -320"]],
    "D": [["M 0.15 0 L 0.15 1", "M 0.15 0 C 1.05 0 1.05 1 0.15 1"]],
    "E": [["M 0.8 0 L 0.15 0 L 0.15 1 L 0.8 1", "M 0.15 0.5 L 0.65 0.5"]],
    "F": [["M 0.8 0 L 0.15 0 L 0.15 1", "M 0.15 0.48 L 0.62 0.48"]],
    "G": [
        ["E 0.52 0.5 0.45 0.5 -45 -360", "M 0.6 0.5 L 0.97 0.5"],
        ["E 0.52 0.5 0.45 0.5 -45 -350 L 0.97 0.95"],
    ],
    "H": [["M 0.15 0 L 0.15 1", "M 0.85 0 L 0.85 1", "M 0.15 0.5 L 0.85 0.5"]],
    "I": [["M 0.5 0 L 0.5 1"], ["M 0.5 0 L 0.5 1", "M 0.25 0 L 0.75 0", "M 0.25 1 L 0.75 1"]],
    "J": [
        ["M 0.75 0 L 0.75 0.72 C 0.75 1.05 0.2 1.05 0.2 0.72"],
        ["M 0.4 0 L 0.95 0", "M 0.7 0 L 0.7 0.75 C 0.7 1.05 0.2 1.05 0.2 0.75"],
    ],
    "K": [
        ["M 0.15 0 L 0.15 1", "M 0.85 0 L 0.15 0.58", "M 0.38 0.42 L 0.88 1"],
        ["M 0.15 0 L 0.15 1", "M 0.85 0 L 0.17 0.52 L 0.88 1"],
    ],
    "L": [["M 0.15 0 L 0.15 1 L 0.8 1"]],
    "M": [["M 0.1 1 L 0.15 0 L 0.5 0.65 L 0.85 0 L 0.9 1"], ["M 0.1 1 L 0.1 0 L 0.5 1 L 0.9 0 L 0.9 1"]],
    "N": [["M 0.15 1 L 0.15 0 L 0.85 1 L 0.85 0"]],
    "O": [[O_ARC]],
    "P": [["M 0.15 1 L 0.15 0", P_BOWL]],
    "Q": [[O_ARC, "M 0.6 0.72 L 0.95 1.05"], [O_ARC, "M 0.45 0.85 Q 0.7 1.1 0.98 1.02"]],
    "R": [["M 0.15 1 L 0.15 0", P_BOWL, "M 0.4 0.55 L 0.85 1"]],
    "S": [
        [
            "M 0.85 0.12 C 0.6 -0.08 0.12 0.0 0.15 0.25 C 0.2 0.5 0.85 0.45 0.85 0.75"
            " C 0.85 1.05 0.3 1.05 0.12 0.85"
        ]
    ],
    "T": [["M 0.1 0 L 0.9 0", "M 0.5 0 L 0.5 1"]],
    "U": [["M 0.15 0 L 0.15 0.65 C 0.15 1.1 0.85 1.1 0.85 0.65 L 0.85 0"]],
    "V": [["M 0.1 0 L 0.5 1 L 0.9 0"]],
    "W": [["M 0.05 0 L 0.27 1 L 0.5 0.35 L 0.73 1 L 0.95 0"]],
    "X": [["M 0.12 0 L 0.88 1", "M 0.88 0 L 0.12 1"]],
    "Y": [["M 0.1 0 L 0.5 0.5 L 0.9 0", "M 0.5 0.5 L 0.5 1"], ["M 0.1 0 L 0.5 0.5", "M 0.9 0 L 0.3 1"]],
    "Z": [
        ["M 0.12 0 L 0.88 0 L 0.12 1 L 0.88 1"],
        ["M 0.12 0 L 0.88 0 L 0.12 1 L 0.88 1", "M 0.3 0.5 L 0.7 0.5"],
    ],
    "a": [
        [
            "M 0.2 0.5 C 0.35 0.35 0.8 0.35 0.8 0.6 L 0.8 1",
            "M 0.8 0.66 C 0.5 0.6 0.15 0.7 0.18 0.88 C 0.22 1.05 0.65 1.02 0.8 0.85",
        ],
        [SMALL_BOWL_LEFT, "M 0.76 0.42 L 0.76 1"],
    ],
    "b": [["M 0.2 0 L 0.2 1", SMALL_BOWL_RIGHT]],
    "c": [["E 0.5 0.71 0.33 0.29 -40 -320"]],
    "d": [[SMALL_BOWL_LEFT, "M 0.75 0 L 0.75 1"]],
    "e": [["M 0.18 0.72 L 0.82 0.72 C 0.82 0.38 0.18 0.38 0.18 0.72 C 0.18 1.05 0.7 1.05 0.82 0.9"]],
    "f": [["M 0.8 0.08 C 0.6 -0.05 0.4 0.0 0.4 0.25 L 0.4 1", "M 0.15 0.45 L 0.7 0.45"]],
    "g": [
        [SMALL_BOWL_LEFT, "M 0.75 0.42 L 0.75 1.15 C 0.75 1.42 0.25 1.42 0.2 1.22"],
        ["E 0.45 0.65 0.28 0.24 -10 350", "M 0.73 0.45 L 0.73 1.1 C 0.7 1.4 0.3 1.42 0.2 1.25"],
    ],
    "h": [["M 0.2 0 L 0.2 1", "M 0.2 0.6 C 0.35 0.38 0.8 0.38 0.8 0.6 L 0.8 1"]],
    "i": [["M 0.5 0.45 L 0.5 1", "M 0.5 0.22 L 0.51 0.24"]],
    "j": [["M 0.6 0.45 L 0.6 1.2 C 0.6 1.42 0.25 1.42 0.2 1.25", "M 0.6 0.22 L 0.61 0.24"]],
    "k": [["M 0.2 0 L 0.2 1", "M 0.75 0.42 L 0.2 0.75", "M 0.4 0.65 L 0.8 1"]],
    "l": [["M 0.5 0 L 0.5 1"], ["M 0.45 0 L 0.45 0.88 C 0.45 1.0 0.6 1.02 0.72 0.94"]],
    "m": [
        [
            "M 0.1 0.42 L 0.1 1",
            "M 0.1 0.55 C 0.2 0.38 0.5 0.38 0.5 0.55 L 0.5 1",
            "M 0.5 0.55 C 0.6 0.38 0.9 0.38 0.9 0.55 L 0.9 1",
        ]
    ],
    "n": [["M 0.2 0.42 L 0.2 1", "M 0.2 0.6 C 0.35 0.38 0.8 0.38 0.8 0.6 L 0.8 1"]],
    "o": [[SMALL_O]],
    "p": [["M 0.2 0.42 L 0.2 1.38", SMALL_BOWL_RIGHT]],
    "q": [
        [SMALL_BOWL_LEFT, "M 0.75 0.42 L 0.75 1.38"],
        [SMALL_BOWL_LEFT, "M 0.75 0.42 L 0.75 1.3 Q 0.8 1.38 0.95 1.3"],
    ],
    "r": [["M 0.25 0.42 L 0.25 1", "M 0.25 0.62 C 0.35 0.42 0.6 0.38 0.8 0.45"]],
    "s": [
        [
            "M 0.78 0.5 C 0.6 0.36 0.2 0.4 0.25 0.58 C 0.3 0.72 0.78 0.7 0.78 0.86"
            " C 0.78 1.03 0.35 1.05 0.2 0.92"
        ]
    ],
    "t": [["M 0.45 0.1 L 0.45 0.9 C 0.45 1.02 0.65 1.02 0.75 0.93", "M 0.2 0.42 L 0.75 0.42"]],
    "u": [["M 0.2 0.42 L 0.2 0.8 C 0.2 1.05 0.8 1.05 0.8 0.8", "M 0.8 0.42 L 0.8 1"]],
    "v": [["M 0.15 0.42 L 0.5 1 L 0.85 0.42"]],
    "w": [["M 0.05 0.42 L 0.27 1 L 0.5 0.55 L 0.73 1 L 0.95 0.42"]],
    "x": [["M 0.18 0.42 L 0.82 1", "M 0.82 0.42 L 0.18 1"]],
    "y": [
        ["M 0.15 0.42 L 0.5 1", "M 0.85 0.42 L 0.35 1.38"],
        [
            "M 0.2 0.42 L 0.2 0.75 C 0.2 0.98 0.8 0.98 0.8 0.75",
            "M 0.8 0.42 L 0.8 1.15 C 0.8 1.42 0.3 1.42 0.2 1.25",
        ],
    ],
    "z": [["M 0.18 0.42 L 0.82 0.42 L 0.18 1 L 0.82 1"]],
}

# Pens: (name, width range in units of the box, share). Widths are drawn log-uniformly.
PENS = [("fine pen", 0.022, 0.04, 0.25), ("ballpoint", 0.04, 0.065, 0.3), ("felt tip", 0.065, 0.1, 0.25)]
PENS += [("marker", 0.1, 0.16, 0.2)]


def _flatten(stroke: str, jitter) -> np.ndarray:
    """One stroke's path -> dense points (n, 2) in unit coordinates, its control points jittered."""
    tokens = stroke.split()
    points: list[np.ndarray] = []
    i = 0
    while i < len(tokens):
        op, i = tokens[i], i + 1
        count = {"M": 2, "L": 2, "Q": 4, "C": 6, "E": 6}[op]
        args = [float(t) for t in tokens[i : i + count]]
        i += count
        if op == "E":
            cx, cy, rx, ry, a0, a1 = args
            (cx, cy), (ex, ey) = jitter((cx, cy)), jitter((rx, ry), scale=0.5)
            steps = max(8, int(abs(a1 - a0) / 3))
            a = np.radians(np.linspace(a0, a1, steps) + jitter.angle())
            points.extend(np.stack([cx + abs(ex) * np.cos(a), cy + abs(ey) * np.sin(a)], 1))
            continue
        ctrl = [jitter(tuple(args[k : k + 2])) for k in range(0, count, 2)]
        if op == "M":
            points.append(ctrl[0])
            continue
        start = points[-1]
        if op == "L":
            steps = max(2, int(np.hypot(*(ctrl[0] - start)) / 0.01))
            t = np.linspace(0, 1, steps)[1:, None]
            points.extend(start + t * (ctrl[0] - start))
        else:
            t = np.linspace(0, 1, 40)[1:, None]
            cps = [start, *ctrl]
            n = len(cps) - 1
            binom = [1, 2, 1] if n == 2 else [1, 3, 3, 1]
            points.extend(sum(binom[k] * (1 - t) ** (n - k) * t**k * cps[k] for k in range(n + 1)))
    return np.asarray(points, dtype=np.float64)


class _Jitter:
    """Control-point noise: the same point in a letter's table moves the same way in every stroke."""

    def __init__(self, rng: np.random.Generator, sigma: float):
        self.rng, self.sigma, self.moved = rng, sigma, {}

    def __call__(self, point: tuple[float, float], scale: float = 1.0) -> np.ndarray:
        key = (round(point[0], 3), round(point[1], 3), scale)
        if key not in self.moved:
            self.moved[key] = np.asarray(point) + self.rng.normal(0, self.sigma * scale, 2)
        return self.moved[key]

    def angle(self) -> float:
        return float(self.rng.normal(0, 6))


def _warp(points: np.ndarray, rng: np.random.Generator, shape: dict) -> np.ndarray:
    """Slant, squeeze and a smooth low-frequency bend of the whole letter (about x = 0.5 and the
    baseline)."""
    x, y = points[:, 0] - 0.5, points[:, 1] - BASELINE
    x = x * shape["width"] - y * shape["slant"]
    y = y * shape["height"]
    for freq, phase, amp in shape["bend"]:
        x = x + amp * np.sin(freq * y + phase)
        y = y + amp * np.sin(freq * x + phase * 1.7)
    return np.stack([x + 0.5, y + BASELINE], 1)


def pen_letter(letter: str, variant: int, rng: np.random.Generator) -> tuple[np.ndarray, float, str]:
    """One sample of ``letter`` (upper or lower case) drawn with a random pen: the ink mask (float32
    0..1, cropped to the ink with a margin), the baseline's row in it, and the pen's name."""
    strokes = STROKES[letter][variant % len(STROKES[letter])]
    jitter = _Jitter(rng, sigma=rng.uniform(0.01, 0.035))
    shape = {
        "width": rng.uniform(0.75, 1.25),
        "height": rng.uniform(0.9, 1.1),
        "slant": rng.normal(0.08, 0.12),
        "bend": [(rng.uniform(2, 6), rng.uniform(0, 6.3), rng.uniform(0, 0.025)) for _ in range(2)],
    }
    paths = []
    for stroke in strokes:
        points = _flatten(stroke, jitter) + rng.normal(0, 0.012, 2)  # each stroke a little off
        paths.append(_warp(points, rng, shape))
    names, lows, highs, shares = zip(*PENS, strict=True)
    k = int(rng.choice(len(PENS), p=np.asarray(shares) / sum(shares)))
    width = float(np.exp(rng.uniform(np.log(lows[k]), np.log(highs[k]))))
    mask, baseline = _render(paths, width, rng)
    return mask, baseline, f"{names[k]} {width:.3f}"


def _render(paths: list[np.ndarray], width: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Stamp the paths with a round pen whose width varies smoothly along each stroke."""
    scale = PX_PER_UNIT * SUPERSAMPLE
    every = np.concatenate(paths)
    margin = width + 0.05
    lo = every.min(0) - margin
    size = np.ceil((every.max(0) + margin - lo) * scale).astype(int)
    img = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(img)
    taper = rng.random() < 0.3  # brush-like: thinner at the ends
    for path in paths:
        px = (path - lo) * scale
        t = np.linspace(0, 1, len(px))
        wobble = 1 + rng.uniform(0, 0.3) * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6.3))
        if taper:
            wobble *= 0.55 + 0.45 * np.sin(np.pi * np.clip(t * 1.1 - 0.05, 0, 1)) ** 0.5
        radii = np.maximum(0.5 * width * scale * wobble, 1.0)
        for (x0, y0), (x1, y1), r in zip(px[:-1], px[1:], radii[1:], strict=True):
            draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, int(round(2 * r))))
        for (x, y), r in zip(px, radii, strict=True):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    small = img.resize(
        (max(1, img.width // SUPERSAMPLE), max(1, img.height // SUPERSAMPLE)), Image.Resampling.BOX
    )
    baseline = (BASELINE - lo[1]) * PX_PER_UNIT
    return np.asarray(small, dtype=np.float32) / 255.0, float(baseline)
