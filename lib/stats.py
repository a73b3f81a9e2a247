"""Small statistics shared by the chapters: bootstrap intervals, Wilson intervals, row correlations."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import stats


def bootstrap_ci(
    values, stat: Callable = np.mean, *, n_boot: int = 2000, rng: np.random.Generator | int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over the 1-D sample ``values`` (NaNs dropped).

    ``stat`` must accept ``axis=1`` (all resamples are drawn at once as one index matrix);
    ``rng`` is a numpy Generator or a seed. Fewer than two finite values give ``(nan, nan)``.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    boots = stat(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)
    a = (1 - level) / 2
    return float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` trials."""
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (c - h) / (1 + z * z / n), (c + h) / (1 + z * z / n)


def row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows (last axis); NaN where a row is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a**2).sum(-1) * (b**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1), np.nan)


def row_spearman(a: np.ndarray, b: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """Spearman's rho (partial on ``c`` if given) of matching rows: ranks within each row."""
    ra, rb = stats.rankdata(a, axis=-1), stats.rankdata(b, axis=-1)
    r_ab = row_pearson(ra, rb)
    if c is None:
        return r_ab
    rc = stats.rankdata(c, axis=-1)
    r_ac, r_bc = row_pearson(ra, rc), row_pearson(rb, rc)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_ab - r_ac * r_bc) / np.sqrt((1 - r_ac**2) * (1 - r_bc**2))


def spearman_with_ci(a, b, idx: np.ndarray, control=None) -> tuple[float, float, float]:
    """Spearman's rho of ``a`` and ``b`` (partial on ``control``) and its 95% interval over resamples ``idx``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = None if control is None else np.asarray(control, float)
    full = float(row_spearman(a, b, c))
    boots = row_spearman(a[idx], b[idx], None if c is None else c[idx])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, float(lo), float(hi)
