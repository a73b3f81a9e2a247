"""Is y monotonic in x, or does it peak inside the range? Statistics with bootstrap intervals.

Two statistics, both resampled over (x, y) pairs:

* Spearman's rank correlation: a monotonic trend has an interval that excludes 0.
* The *two-lines* test (Simonsohn, "Two lines: a valid alternative to the invalid
  testing of U-shaped relationships with quadratic regressions", AMPPS 2018): a
  breakpoint is placed at the vertex of a fitted quadratic (kept inside the inner
  quantiles of x so both sides hold points) and a separate least-squares line is
  fitted on each side. An interior maximum needs the left slope significantly
  positive *and* the right slope significantly negative (an interior minimum the
  reverse). A quadratic alone is not enough: it also bends for a trend that rises
  and saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import row_pearson
from .verdicts import FAILS, HOLDS, INCONCLUSIVE

SHAPES = ("increasing", "decreasing", "interior maximum", "interior minimum", "undetermined")


def spearman(x, y) -> np.ndarray | float:
    """Spearman's rank correlation along the last axis (NaN where either side is constant)."""
    from scipy.stats import rankdata

    r = row_pearson(rankdata(np.asarray(x, float), axis=-1), rankdata(np.asarray(y, float), axis=-1))
    return float(r) if np.ndim(r) == 0 else r


def _slope_rows(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x over the masked entries of each row (NaN if < 2 distinct x)."""
    m = mask.astype(float)
    n = m.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (m * x).sum(-1, keepdims=True) / n
        my = (m * y).sum(-1, keepdims=True) / n
        sxx = (m * (x - mx) ** 2).sum(-1)
        sxy = (m * (x - mx) * (y - my)).sum(-1)
        return np.where(sxx > 1e-12 * np.maximum(1.0, np.abs(mx[..., 0]) ** 2), sxy / np.where(sxx > 0, sxx, 1), np.nan)


def quadratic_vertex(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Vertex and curvature ``c`` of the least-squares parabola ``y = a + b x + c x^2``, row-wise."""
    x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    mu, sd = x.mean(-1, keepdims=True), x.std(-1, keepdims=True)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd  # standardised for a well-conditioned solve
    mom = np.stack([(z**k).sum(-1) for k in range(5)], -1)
    a = np.stack([mom[..., 0:3], mom[..., 1:4], mom[..., 2:5]], -2)
    rhs = np.stack([(z**k * y).sum(-1) for k in range(3)], -1)
    coef = np.linalg.solve(a + 1e-12 * np.eye(3), rhs[..., None])[..., 0]
    b, c = coef[..., 1], coef[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = np.where(c != 0, mu[..., 0] - sd[..., 0] * b / (2 * np.where(c != 0, c, 1)), np.nan)
    return vertex.squeeze(), (c / sd[..., 0] ** 2).squeeze()


@dataclass(frozen=True)
class Trend:
    """The shape of y against x with its statistics; intervals are bootstrap percentiles."""

    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    breakpoint: float
    breakpoint_ci: tuple[float, float]
    curvature: float
    left_slope: float
    left_ci: tuple[float, float]
    right_slope: float
    right_ci: tuple[float, float]
    shape: str

    @property
    def monotonic(self) -> bool:
        return self.shape in ("increasing", "decreasing")

    @property
    def interior_extremum(self) -> bool:
        return self.shape in ("interior maximum", "interior minimum")


def _ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return float("nan"), float("nan")
    q = (1 - level) / 2
    return float(np.quantile(s, q)), float(np.quantile(s, 1 - q))


def _above(ci) -> bool:
    return ci[0] > 0


def _below(ci) -> bool:
    return ci[1] < 0


def trend(
    x, y, *, n_boot: int = 2000, level: float = 0.95, inner: float = 0.2, rng: np.random.Generator | int | None = 0
) -> Trend:
    """Classify y(x) as increasing, decreasing, interior maximum/minimum or undetermined.

    The breakpoint is the vertex of the fitted quadratic, clipped to the ``inner`` and
    ``1 - inner`` quantiles of x (so each side keeps at least that fraction of the
    points); the side slopes are refitted on every bootstrap
    resample with the breakpoint fixed (as in the two-lines test), while the
    breakpoint's own interval comes from refitting the quadratic on each resample.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    if x.size < 8:
        raise ValueError(f"a trend needs at least 8 points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    if np.ptp(x) == 0:
        raise ValueError("x is constant: no trend can be measured")
    if not 0 < level < 1 or not 0 <= inner < 0.5 or n_boot < 10:
        raise ValueError("need 0 < level < 1, 0 <= inner < 0.5 and n_boot >= 10")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    lo_q, hi_q = np.quantile(x, [inner, 1 - inner])

    def clip_vertex(v, c):
        return np.where(np.isfinite(v), np.clip(np.nan_to_num(v), lo_q, hi_q), np.where(c > 0, hi_q, lo_q))

    vertex, curv = quadratic_vertex(x, y)
    bp = float(clip_vertex(vertex, curv))
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    xb, yb = x[idx], y[idx]
    rho_ci = _ci(spearman(xb, yb), level)
    bp_ci = _ci(clip_vertex(*quadratic_vertex(xb, yb)), level)
    left_ci = _ci(_slope_rows(xb, yb, xb <= bp), level)
    right_ci = _ci(_slope_rows(xb, yb, xb >= bp), level)
    if _above(left_ci) and _below(right_ci):
        shape = "interior maximum"
    elif _below(left_ci) and _above(right_ci):
        shape = "interior minimum"
    elif _above(rho_ci):
        shape = "increasing"
    elif _below(rho_ci):
        shape = "decreasing"
    else:
        shape = "undetermined"
    left_slope = float(_slope_rows(x, y, x <= bp))
    right_slope = float(_slope_rows(x, y, x >= bp))
    return Trend(
        x.size, spearman(x, y), rho_ci, bp, bp_ci, float(curv), left_slope, left_ci, right_slope, right_ci, shape
    )


def direction_verdict(t: Trend, want: str) -> str:
    """Verdict for a claimed shape (``increasing``, or ``non-monotonic``: an interior extremum) of a trend."""
    if t.shape == "undetermined":
        return INCONCLUSIVE
    if want == "non-monotonic":
        return HOLDS if t.interior_extremum else FAILS
    return HOLDS if t.shape == want else FAILS
