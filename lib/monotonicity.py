"""Is y monotonic in x, or does it peak inside the range? Statistics with bootstrap intervals.

Two statistics, both resampled over (x, y) pairs (or over groups of them, :func:`cluster_trend`):

* Spearman's rank correlation: a monotonic trend has an interval that excludes 0.
* The *two-lines* test (Simonsohn, "Two lines: a valid alternative to the invalid
  testing of U-shaped relationships with quadratic regressions", AMPPS 2018): a
  breakpoint is placed at the vertex of a fitted quadratic (kept inside the inner
  quantiles of x so both sides hold points) and a separate least-squares line is
  fitted on each side. An interior maximum needs the left slope significantly
  positive *and* the right slope significantly negative (an interior minimum the
  reverse). A quadratic alone is not enough: it also bends for a trend that rises
  and saturates.

A claimed shape is decided from the two side slopes alone (:func:`shape_verdict`,
:func:`shape_statistic`): monotonic needs both sides significant with one sign, an
extremum both significant with opposite signs; anything else is undecided, so an
extremum that is not detected is not evidence of monotonicity.
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
    x, y = _check_trend_inputs(x, y, n_boot, level, inner)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return _trend_of_resamples(x, y, rng.integers(0, x.size, size=(n_boot, x.size)), level, inner)


def _check_trend_inputs(x, y, n_boot: int, level: float, inner: float) -> tuple[np.ndarray, np.ndarray]:
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
    return x, y


def _trend_of_resamples(x: np.ndarray, y: np.ndarray, idx, level: float, inner: float) -> Trend:
    """:func:`trend`'s statistics with the bootstrap resamples given as indices into x and y.

    ``idx``: an array with one resample per row, or a list of index arrays of different lengths.
    """
    lo_q, hi_q = np.quantile(x, [inner, 1 - inner])

    def clip_vertex(v, c):
        return np.where(np.isfinite(v), np.clip(np.nan_to_num(v), lo_q, hi_q), np.where(c > 0, hi_q, lo_q))

    vertex, curv = quadratic_vertex(x, y)
    bp = float(clip_vertex(vertex, curv))

    def stats(xb, yb):  # rows of resampled points -> Spearman, breakpoint, left and right slopes per row
        vb = clip_vertex(*quadratic_vertex(xb, yb))
        return spearman(xb, yb), vb, _slope_rows(xb, yb, xb <= bp), _slope_rows(xb, yb, xb >= bp)

    if isinstance(idx, np.ndarray):
        rho_b, bp_b, left_b, right_b = stats(x[idx], y[idx])
    else:  # resamples of different sizes (clusters of unequal size): one row at a time
        rho_b, bp_b, left_b, right_b = (
            np.array(v, float).ravel() for v in zip(*(stats(x[None, i], y[None, i]) for i in idx))
        )
    rho_ci, bp_ci = _ci(np.atleast_1d(rho_b), level), _ci(np.atleast_1d(bp_b), level)
    left_ci, right_ci = _ci(np.atleast_1d(left_b), level), _ci(np.atleast_1d(right_b), level)
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


def cluster_trend(
    x,
    y,
    groups,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    inner: float = 0.2,
    rng: np.random.Generator | int | None = 0,
) -> Trend:
    """:func:`trend` with a cluster bootstrap: each resample draws whole groups (e.g. networks) with replacement.

    Points of one group (the layers of one network) are not independent; resampling
    the groups keeps their dependence inside every resample, so the intervals reflect
    how many groups there are, not how many points. Needs at least 3 groups.
    """
    x, y = _check_trend_inputs(x, y, n_boot, level, inner)
    labels = np.asarray(groups).ravel()
    if labels.size != x.size:
        raise ValueError(f"groups and x differ in length: {labels.size} vs {x.size}")
    members = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels.tolist())]
    if len(members) < 3:
        raise ValueError(f"a cluster bootstrap needs at least 3 groups, got {len(members)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    draws = rng.integers(0, len(members), size=(n_boot, len(members)))
    if len({m.size for m in members}) == 1:
        idx = np.stack(members)[draws].reshape(n_boot, -1)
    else:
        idx = [np.concatenate([members[g] for g in row]) for row in draws]
    return _trend_of_resamples(x, y, idx, level, inner)


SHAPE_CLAIMS = ("monotonic", "non-monotonic", "increasing", "decreasing")


def _margin(ci: tuple[float, float]) -> float:
    """How far an interval lies from 0 (> 0: it excludes 0)."""
    return max(ci[0], -ci[1])


def shape_statistic(t: Trend, want: str) -> tuple[float, float, float]:
    """The one number that decides the claimed shape ``want`` from the trend's two side slopes, with its interval.

    The claim is judged only where both sides are measured (the breakpoint splits the
    observed x range in two): a shape is established when both side slopes are
    significant, and absence of an extremum is never evidence of monotonicity.

    * ``monotonic`` / ``non-monotonic``: the weaker side's slope (the one whose interval is
      nearer 0), signed so that positive means it goes the same way as the stronger side.
      Its interval above 0: both sides rise (or both fall), monotonic; below 0: they go
      opposite ways, an interior extremum; containing 0: undecided.
    * ``increasing``: a side's slope whose interval lies below 0 if there is one (the
      lowest), else the side least clearly above 0; ``decreasing`` mirrors it.

    Returns (estimate, lo, hi); NaN when a side's slope could not be measured.
    """
    if want not in SHAPE_CLAIMS:
        raise ValueError(f"want must be one of {SHAPE_CLAIMS}, got {want!r}")
    sides = [(t.left_slope, tuple(t.left_ci)), (t.right_slope, tuple(t.right_ci))]
    if not all(np.isfinite([v, *ci]).all() for v, ci in sides):
        return float("nan"), float("nan"), float("nan")
    if want in ("monotonic", "non-monotonic"):
        strong, weak = sorted(sides, key=lambda s: _margin(s[1]), reverse=True)
        ci = strong[1]
        sign = 1.0 if ci[0] > 0 else -1.0 if ci[1] < 0 else (1.0 if strong[0] >= 0 else -1.0)
        lo, hi = sorted((sign * weak[1][0], sign * weak[1][1]))
        return float(sign * weak[0]), float(lo), float(hi)
    if want == "increasing":
        against = [s for s in sides if s[1][1] < 0]
        side = min(against, key=lambda s: s[1][1]) if against else min(sides, key=lambda s: s[1][0])
    else:
        against = [s for s in sides if s[1][0] > 0]
        side = max(against, key=lambda s: s[1][0]) if against else max(sides, key=lambda s: s[1][1])
    return float(side[0]), float(side[1][0]), float(side[1][1])


def shape_verdict(t: Trend, want: str) -> str:
    """Verdict for a claimed shape from :func:`shape_statistic`'s interval (threshold 0).

    Holds when both side slopes establish the claimed shape, does not hold when both
    establish another one (monotonic against non-monotonic, a significant fall against
    increasing), inconclusive otherwise: "no extremum detected" alone is inconclusive.
    """
    _, lo, hi = shape_statistic(t, want)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    above = want in ("monotonic", "increasing")
    if above:
        return HOLDS if lo > 0 else FAILS if hi < 0 else INCONCLUSIVE
    return HOLDS if hi < 0 else FAILS if lo > 0 else INCONCLUSIVE


def side_shape(t: Trend) -> str:
    """The shape the two side slopes establish (both significant), else ``undetermined``; Spearman plays no part."""
    left, right = (1 if _above(ci) else -1 if _below(ci) else 0 for ci in (t.left_ci, t.right_ci))
    return {
        (1, 1): "increasing",
        (-1, -1): "decreasing",
        (1, -1): "interior maximum",
        (-1, 1): "interior minimum",
    }.get((left, right), "undetermined")
