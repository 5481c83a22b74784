"""Letters as pen paths: every letter, upper and lower case, as a small table of strokes.

Coordinates are in a unit box: x to the right, y down; capitals and ascenders reach y = 0, the
x-height is y = 0.42, the baseline y = 1, descenders reach y = 1.38. A stroke is one pen-down path
written like SVG's: ``M x y`` moves, ``L x y`` draws a line, ``Q`` and ``C`` quadratic and cubic
Beziers, and ``E cx cy rx ry a0 a1`` an elliptical arc from angle a0 to a1 in degrees (0 = right,
90 = down). Several variants of a letter (double- and single-storey a, I with or without bars ...)
are drawn in turn. ``flatten`` turns a stroke into dense points with its control points jittered
(``Jitter``), ``warp`` slants, squeezes and bends a whole letter.

The synthetic training letters (``synthetic.py``) and the bench's pen letters
(``bench/sets/pen_letters.py``) both grow from this table; the bench draws only ``STROKES``, training
also the joined-writing forms of ``CURSIVE``.
"""

from __future__ import annotations

import numpy as np

BASELINE = 1.0

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


def flatten(stroke: str, jitter) -> np.ndarray:
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


class Jitter:
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


def warp(points: np.ndarray, rng: np.random.Generator, shape: dict) -> np.ndarray:
    """Slant, squeeze and a smooth low-frequency bend of the whole letter (about x = 0.5 and the
    baseline)."""
    x, y = points[:, 0] - 0.5, points[:, 1] - BASELINE
    x = x * shape["width"] - y * shape["slant"]
    y = y * shape["height"]
    for freq, phase, amp in shape["bend"]:
        x = x + amp * np.sin(freq * y + phase)
        y = y + amp * np.sin(freq * x + phase * 1.7)
    return np.stack([x + 0.5, y + BASELINE], 1)


# Joined-writing forms of the small letters (loops, looped descenders, the cursive r, s and z).
# Only the synthetic training letters draw them; the bench's pen letters never do.
ASCENDER_LOOP = "M 0.2 0.95 C 0.75 0.55 0.75 0.02 0.5 0.02 C 0.3 0.02 0.3 0.5 0.32 1.0"
CURSIVE: dict[str, list[list[str]]] = {
    "a": [[SMALL_BOWL_LEFT, "M 0.76 0.42 L 0.76 0.9 C 0.78 1.02 0.9 1.0 0.96 0.9"]],
    "b": [[ASCENDER_LOOP, "M 0.32 0.72 C 0.5 0.4 0.88 0.45 0.82 0.75 C 0.76 1.02 0.42 1.02 0.32 0.95"]],
    "d": [[SMALL_BOWL_LEFT, "M 0.75 1.0 L 0.75 0.15 C 0.75 -0.02 0.55 0.0 0.6 0.2"]],
    "e": [
        [
            "M 0.15 0.82 C 0.5 0.78 0.82 0.62 0.7 0.47 C 0.58 0.35 0.28 0.47 0.28 0.72 C 0.28 1.02 0.65 1.03 0.85 0.86"
        ]
    ],
    "f": [
        [
            "M 0.3 1.0 C 0.85 0.5 0.8 0.0 0.58 0.02 C 0.38 0.04 0.42 0.6 0.45 1.3"
            " C 0.46 1.42 0.7 1.2 0.62 0.95",
            "M 0.2 0.47 L 0.75 0.45",
        ]
    ],
    "g": [
        [SMALL_BOWL_LEFT, "M 0.75 0.42 L 0.75 1.2 C 0.75 1.45 0.3 1.45 0.35 1.25 C 0.4 1.1 0.7 1.0 0.9 0.95"]
    ],
    "h": [[ASCENDER_LOOP, "M 0.32 0.66 C 0.45 0.4 0.8 0.4 0.78 0.66 L 0.8 1.0"]],
    "i": [["M 0.2 0.62 L 0.5 0.42 L 0.5 0.9 C 0.52 1.0 0.62 1.0 0.75 0.9", "M 0.5 0.22 L 0.51 0.24"]],
    "j": [
        [
            "M 0.6 0.45 L 0.6 1.2 C 0.6 1.45 0.2 1.45 0.25 1.25 C 0.3 1.1 0.6 1.0 0.85 0.95",
            "M 0.6 0.22 L 0.61 0.24",
        ]
    ],
    "k": [
        [ASCENDER_LOOP, "M 0.32 0.72 C 0.5 0.4 0.88 0.45 0.7 0.62 C 0.6 0.72 0.42 0.72 0.45 0.7 L 0.85 1.0"]
    ],
    "l": [
        [ASCENDER_LOOP],
        ["M 0.25 0.8 C 0.8 0.4 0.7 0.0 0.52 0.02 C 0.35 0.04 0.35 0.6 0.4 0.9 C 0.45 1.02 0.65 1.0 0.8 0.9"],
    ],
    "m": [
        [
            "M 0.05 1.0 C 0.1 0.8 0.1 0.5 0.12 0.42 L 0.12 1",
            "M 0.12 0.58 C 0.2 0.38 0.48 0.38 0.48 0.58 L 0.48 1",
            "M 0.48 0.58 C 0.58 0.38 0.85 0.38 0.85 0.58 L 0.85 0.9 C 0.87 1.0 0.95 1.0 1.0 0.92",
        ]
    ],
    "n": [
        [
            "M 0.1 1.0 C 0.2 0.7 0.2 0.5 0.25 0.42 L 0.25 1",
            "M 0.25 0.6 C 0.35 0.38 0.8 0.38 0.8 0.6 L 0.8 0.9 C 0.82 1.0 0.92 1.0 0.98 0.9",
        ]
    ],
    "o": [[SMALL_O, "M 0.5 0.42 C 0.6 0.52 0.8 0.47 0.95 0.45"]],
    "p": [
        [
            "M 0.15 0.6 L 0.3 0.42 L 0.3 1.38",
            "M 0.3 0.62 C 0.5 0.38 0.85 0.45 0.8 0.75 C 0.75 1.02 0.42 1.02 0.3 0.92",
        ]
    ],
    "q": [[SMALL_BOWL_LEFT, "M 0.75 0.42 L 0.75 1.35 C 0.72 1.45 0.6 1.3 0.95 1.0"]],
    "r": [["M 0.15 1.0 L 0.3 0.45 C 0.4 0.52 0.55 0.52 0.62 0.44 L 0.68 1.0"]],
    "s": [["M 0.2 0.98 L 0.45 0.42 C 0.7 0.6 0.85 0.82 0.65 0.95 C 0.5 1.05 0.3 1.0 0.25 0.92"]],
    "t": [["M 0.45 0.05 L 0.45 0.9 C 0.45 1.02 0.65 1.02 0.82 0.9", "M 0.2 0.45 L 0.75 0.4"]],
    "u": [
        [
            "M 0.15 0.42 L 0.2 0.8 C 0.2 1.05 0.8 1.05 0.8 0.8",
            "M 0.8 0.42 L 0.8 0.9 C 0.82 1.0 0.92 1.0 0.98 0.9",
        ]
    ],
    "v": [["M 0.15 0.5 C 0.2 0.42 0.3 0.6 0.5 1.0 L 0.8 0.42 C 0.85 0.5 0.9 0.5 1.0 0.45"]],
    "w": [["M 0.05 0.5 L 0.25 1.0 L 0.5 0.5 L 0.72 1.0 L 0.9 0.42 C 0.92 0.5 0.96 0.5 1.02 0.45"]],
    "y": [
        [
            "M 0.2 0.42 L 0.2 0.75 C 0.2 0.98 0.8 0.98 0.8 0.75",
            "M 0.8 0.42 L 0.8 1.2 C 0.8 1.45 0.35 1.45 0.4 1.25 C 0.45 1.1 0.75 1.0 0.95 0.95",
        ]
    ],
    "z": [
        [
            "M 0.2 0.45 C 0.4 0.4 0.7 0.4 0.8 0.45 L 0.25 1.0 C 0.5 0.9 0.8 1.0 0.75 1.2 C 0.7 1.4 0.4 1.4 0.3 1.3"
        ]
    ],
}
