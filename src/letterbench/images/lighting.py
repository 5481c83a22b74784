"""The paper under the ink of a photographed letter: its colour and its lighting.

A smooth (quadratic) surface per colour channel, fitted robustly to the pixels that are not ink,
follows uneven lighting, a vignette and the paper's colour. A shadow cast across the sheet has an
edge that no smooth surface follows; where one is found, a logistic step along a straight line is
fitted with the surface. ``letters.ink_map`` measures ink against what this returns.
"""

from __future__ import annotations

import numpy as np

EDGE_BAND = 0.12  # of the side: where the paper's first fit looks
# A shadow's edge across the sheet: looked for in SHADOW_ANGLES directions; kept where it darkens
# (or lightens) the paper by MIN_SHADOW of full scale, leaves SHADOW_SIDE of the sheet on either
# side and lowers the fit's capped squared residual by SHADOW_GAIN.
SHADOW_ANGLES = 24
SHADOW_SAMPLES = 512
MIN_SHADOW = 0.06
SHADOW_SIDE = 0.12
SHADOW_GAIN = 0.25
SHADOW_SOFTEST = 0.1  # the widest edge (logistic scale, of the side); softer shading is the surface's
RIM = 0.04  # of the side: the photo's rim, where a shadow must fit on both sides of its edge
RIM_FITS = 0.7


def paper(pixels: np.ndarray, rounds: int = 4) -> np.ndarray:
    """The paper under the ink: a smooth (quadratic) surface per channel fitted to the pixels
    that are not ink, which removes uneven lighting, shading and the paper's colour; plus, where
    a shadow falls across the sheet, its straight soft edge (``shadow_edge``)."""
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    h, w = planes.shape[:2]
    y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None] + np.zeros((1, w), np.float32)
    x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :] + np.zeros((h, 1), np.float32)
    terms = [np.ones((h, w), np.float32), x, y, x * x, x * y, y * y]
    stride = max(1, int(np.sqrt(h * w / 4096)))
    samples = planes[::stride, ::stride].reshape(-1, planes.shape[2])
    # first fitted to a band along the edges, which a letter rarely fills: a big, bold letter in
    # the middle would otherwise pull the first fit, and the outliers that the rounds drop, its way
    band = (np.maximum(np.abs(x), np.abs(y)) > 0.5 - EDGE_BAND)[::stride, ::stride].ravel()
    basis = np.stack([t[::stride, ::stride].ravel() for t in terms], 1)
    coef, residual, _ = _robust_fit(basis, samples, band, rounds)
    light = planes[::stride, ::stride].mean(-1)
    across = np.abs(np.diff(light, axis=1))
    noise = 1.4826 * float(np.median(across)) / np.sqrt(2) if across.size else 0.0  # between neighbours
    # enough samples to place an edge, on a grid (a stride over the flat list would pick a few columns)
    every = max(1, int(np.sqrt(len(samples) / SHADOW_SAMPLES)))
    sparse = np.zeros(light.shape, bool)
    sparse[::every, ::every] = True
    sparse = sparse.ravel()
    with one_blas_thread():
        edge = shadow_edge(basis[sparse], light.ravel()[sparse], residual[sparse], noise)
    if edge is not None:
        terms.append(edge(x, y))
        basis = np.stack([t[::stride, ::stride].ravel() for t in terms], 1)
        coef, *_ = _robust_fit(basis, samples, band, rounds)
    surface = np.stack(
        [sum(c * t for c, t in zip(coef[:, k], terms, strict=True)) for k in range(coef.shape[1])], -1
    )
    return surface.reshape(pixels.shape).astype(np.float32)


_controller = None


def one_blas_thread():
    """A context in which BLAS runs on one thread. The shadow search multiplies small matrices,
    and on a busy CPU a BLAS thread pool waiting for free cores made it six times slower (466
    against 76 ms per image with both cores of this machine taken by other work)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _robust_fit(basis: np.ndarray, samples: np.ndarray, keep: np.ndarray, rounds: int):
    """Least squares of ``samples`` (N, channels) on ``basis`` (N, terms), first over ``keep``, then
    over the samples within 3 robust deviations of the fit: the coefficients, the residual (N,)
    and its robust deviation."""
    for _ in range(rounds):
        a = basis[keep].astype(np.float64)  # normal equations: a small solve
        coef = np.linalg.solve(a.T @ a + 1e-9 * np.eye(basis.shape[1]), a.T @ samples[keep])
        residual = (samples - basis @ coef).mean(1)
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        keep = np.abs(residual) < max(3 * spread, 0.04)
    return coef, residual, spread


def shadow_edge(basis: np.ndarray, light: np.ndarray, residual: np.ndarray, noise: float):
    """The straight, soft edge of a shadow across the sheet, which a quadratic surface cannot
    follow: a function (x, y) -> 0..1 (a logistic step), or None where there is none. Steps in
    ``SHADOW_ANGLES`` directions, at offsets that leave ``SHADOW_SIDE`` of the sheet either side,
    and of several softnesses are fitted with the quadratic (``basis`` columns 1, x, y, x², xy, y²)
    to the samples' brightness ``light``, then the best is refined on a finer grid around it; a
    fit is scored by its squared residuals capped at 3 times the pixels' ``noise``, so that ink
    counts little. The step is kept where it is ``MIN_SHADOW`` deep and lowers the score by
    ``SHADOW_GAIN`` against the quadratic alone (``residual``), and fits the photo's rim on both
    sides of its edge (``_StepFit.reaches_rim``)."""
    fit = _StepFit(basis, light, max(3 * noise, 0.02) ** 2)
    best = fit.best(
        np.linspace(0, np.pi, SHADOW_ANGLES, endpoint=False),
        np.linspace(SHADOW_SIDE, 1 - SHADOW_SIDE, 12),
        SHADOW_SOFTEST * np.array([0.15, 0.4, 1.0]),
    )
    if best is None:
        return None
    turn, shift = np.pi / SHADOW_ANGLES, (1 - 2 * SHADOW_SIDE) / 22
    score, phi, offset, width = fit.best(
        best[1] + np.linspace(-turn, turn, 5),
        best[2] + np.linspace(-shift, shift, 9),
        np.minimum(best[3] * np.array([0.5, 1, 2]), SHADOW_SOFTEST),
    )
    if score > float(np.minimum(residual**2, fit.cap).sum()) * (1 - SHADOW_GAIN) or not fit.reaches_rim(
        phi, offset, width
    ):
        return None
    return lambda x, y: step(phi, np.array([offset]), np.array([width]), x, y)[..., 0]


def step(phi: float, offset: np.ndarray, width: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic steps across direction ``phi`` at points ``x``, ``y`` (-0.5..0.5): (..., K) for
    ``offset`` (K,), a share of the sheet's extent in that direction, and ``width`` (K,)."""
    t = np.cos(phi) * x + np.sin(phi) * y
    reach = 0.5 * (abs(np.cos(phi)) + abs(np.sin(phi)))  # the sheet spans -reach..reach
    at = (-reach + 2 * reach * offset).astype(np.float32)
    return 1 / (1 + np.exp(-(t[..., None] - at) / width.astype(np.float32)))


class _StepFit:
    """Scores a quadratic plus a logistic step fitted to ``light`` at the samples of ``basis``; a
    step's offset is a share of the sheet's extent in its direction."""

    def __init__(self, basis: np.ndarray, light: np.ndarray, cap: float):
        self.basis, self.light, self.cap = basis, light, cap

    def best(self, angles, offsets, widths):
        """(score, angle, offset, width) of the best step at least ``MIN_SHADOW`` deep, or None."""
        found = None
        offset, width = np.repeat(offsets, len(widths)), np.tile(widths, len(offsets))
        for phi in angles:
            score = self._scores(step(phi, offset, width, self.basis[:, 1], self.basis[:, 2]))
            i = int(np.argmin(score))
            if np.isfinite(score[i]) and (found is None or score[i] < found[0]):
                found = (float(score[i]), float(phi), float(offset[i]), float(width[i]))
        return found

    def reaches_rim(self, phi: float, offset: float, width: float) -> bool:
        """Whether the step fits the photo's rim (its outer ``RIM`` on each side) on both sides of
        its edge, as a shadow cast across the whole sheet does. A letter's bold bar near the rim,
        which a step can follow too, leaves a strip of bright paper between itself and the rim."""
        x, y = self.basis[:, 1], self.basis[:, 2]
        shape = step(phi, np.array([offset]), np.array([width]), x, y)[:, 0]
        fits = self._fit(shape[:, None])[0][:, 0] < self.cap
        rim = np.maximum(np.abs(x), np.abs(y)) >= 0.5 - RIM
        for side in (shape < 0.12, shape > 0.88):  # two widths or more from the edge
            there = side & rim
            if there.sum() >= 4 and fits[there].mean() < RIM_FITS:
                return False
        return True

    def _scores(self, steps: np.ndarray) -> np.ndarray:
        """Capped squared residuals of the fit with each step (N, K) -> (K,); inf where the step
        is under ``MIN_SHADOW`` deep."""
        error, coef = self._fit(steps)
        score = np.minimum(error, self.cap).sum(0)
        score[np.abs(coef[:, 6]) < MIN_SHADOW] = np.inf
        return score

    def _fit(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fit with each step (N, K): least squares, then again without the samples the first
        fit left beyond the cap (ink, mostly); squared residuals (N, K) and coefficients (K, 7)."""
        basis, light, k = self.basis, self.light, steps.shape[1]
        outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(basis), 36)
        weight = np.ones(steps.shape)
        for _ in range(2):  # weighted normal equations, for all K steps at once
            ws = weight * steps
            a = np.empty((k, 7, 7))
            a[:, :6, :6] = (outer.T @ weight).T.reshape(k, 6, 6)
            a[:, :6, 6] = a[:, 6, :6] = (basis.T @ ws).T
            a[:, 6, 6] = (ws * steps).sum(0)
            b = np.concatenate([(basis.T @ (weight * light[:, None])).T, (light @ ws)[:, None]], 1)
            coef = np.linalg.solve(a + 1e-9 * np.eye(7), b[..., None])[..., 0]  # (K, 7)
            error = (light[:, None] - basis @ coef[:, :6].T - steps * coef[:, 6]) ** 2
            weight = (error < self.cap).astype(np.float64)
        return error, coef
