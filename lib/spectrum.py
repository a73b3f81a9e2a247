"""Eigen-spectra of representations: covariance spectrum, power-law exponent, participation ratio.

The exponent follows Stringer et al. (Nature 2019): the variance of the n-th
principal component decays as ``lambda_n ~ n^-alpha`` and ``alpha`` is the slope of
a least-squares line through ``log lambda_n`` against ``log n`` over a stated rank
window (their code weights rank ``n`` by ``1/n``, which spreads the weight evenly
along the log axis). This is the *rank-decay* exponent, not the exponent of the
eigenvalue density (for a pure power law the density exponent is ``1 + 1/alpha``).
Ranks are 1-based throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

WEIGHTINGS = ("inverse_rank", "uniform")


class SpectrumError(ValueError):
    """The data or the rank window cannot give a meaningful spectrum or fit."""


@dataclass(frozen=True)
class PowerLawFit:
    """``lambda_n ~ exp(intercept) * n^-alpha`` fitted over ranks ``window`` (inclusive, 1-based)."""

    alpha: float
    intercept: float
    r2: float
    window: tuple[int, int]
    weighting: str

    def line(self, ranks) -> np.ndarray:
        """The fitted power law evaluated at ``ranks``."""
        return np.exp(self.intercept) * np.asarray(ranks, dtype=float) ** (-self.alpha)


def _as_matrix(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise SpectrumError(f"activations must be a 2-D array (samples x units), got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise SpectrumError(f"need at least 2 samples and 1 unit, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise SpectrumError("activations contain NaN or infinite values")
    return x


def eigenspectrum(x) -> np.ndarray:
    """Eigenvalues of the sample covariance of ``x`` (samples x units), descending, in float64.

    Tiny negative round-off values are set to zero. At most ``min(units, samples - 1)``
    of them can be non-zero.
    """
    x = _as_matrix(x)
    xc = x - x.mean(axis=0)
    n, p = xc.shape
    if p <= n:
        eigs = np.linalg.eigvalsh(xc.T @ xc / (n - 1))
    else:  # same non-zero eigenvalues from the smaller Gram matrix
        eigs = np.concatenate([np.linalg.eigvalsh(xc @ xc.T / (n - 1)), np.zeros(p - n)])
    eigs = np.clip(np.sort(eigs)[::-1], 0.0, None)
    if eigs[0] <= 0:
        raise SpectrumError("all activations are constant over the samples: the covariance is zero")
    return eigs


def numerical_rank(eigs, rtol: float = 1e-10) -> int:
    """How many eigenvalues exceed ``rtol`` times the largest."""
    eigs = np.asarray(eigs, dtype=np.float64)
    if eigs.ndim != 1 or eigs.size == 0 or not np.all(np.isfinite(eigs)):
        raise SpectrumError("eigenvalues must be a non-empty 1-D array of finite numbers")
    top = eigs.max()
    return int(np.sum(eigs > rtol * top)) if top > 0 else 0


def check_window(window, n_eigs: int, rank: int | None = None) -> tuple[int, int]:
    """Validate a 1-based inclusive rank window against the spectrum's length and rank."""
    try:
        lo, hi = (int(v) for v in window)
    except (TypeError, ValueError) as exc:
        raise SpectrumError(f"window must be two integer ranks (first, last), got {window!r}") from exc
    if lo < 1:
        raise SpectrumError(f"window ranks are 1-based: first rank must be >= 1, got {lo}")
    if hi - lo + 1 < 3:
        raise SpectrumError(f"window {lo}..{hi} holds {hi - lo + 1} ranks; a line fit needs at least 3")
    if hi > n_eigs:
        raise SpectrumError(f"window {lo}..{hi} goes beyond the {n_eigs} eigenvalues of the spectrum")
    if rank is not None and hi > rank:
        raise SpectrumError(
            f"window {lo}..{hi} goes beyond the numerical rank {rank} of the covariance "
            f"(eigenvalues past rank {rank} are zero up to round-off); shrink the window"
        )
    return lo, hi


def fit_power_law(
    eigs, window: tuple[int, int], *, weighting: str = "inverse_rank", rtol: float = 1e-10
) -> PowerLawFit:
    """Fit ``log lambda_n = c - alpha log n`` by (weighted) least squares over ranks ``window``.

    ``weighting="inverse_rank"`` weights rank n by 1/n as in Stringer et al. (2019);
    ``"uniform"`` is ordinary least squares. ``r2`` is the (weighted) coefficient of
    determination of the log-log fit. Raises :class:`SpectrumError` when the window
    is too short, leaves the spectrum, or reaches eigenvalues that are zero.
    """
    if weighting not in WEIGHTINGS:
        raise SpectrumError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    eigs = np.asarray(eigs, dtype=np.float64)
    lo, hi = check_window(window, eigs.size, numerical_rank(eigs, rtol))
    ranks = np.arange(lo, hi + 1, dtype=np.float64)
    y = np.log(eigs[lo - 1 : hi])
    x = np.log(ranks)
    w = 1.0 / ranks if weighting == "inverse_rank" else np.ones_like(ranks)
    design = np.stack([np.ones_like(x), -x], axis=1)
    coef = np.linalg.solve(design.T @ (design * w[:, None]), design.T @ (w * y))
    resid = y - design @ coef
    ybar = np.sum(w * y) / np.sum(w)
    ss_tot = np.sum(w * (y - ybar) ** 2)
    r2 = 1.0 - np.sum(w * resid**2) / ss_tot if ss_tot > 0 else float("nan")
    return PowerLawFit(float(coef[1]), float(coef[0]), float(r2), (lo, hi), weighting)


def participation_ratio(eigs) -> float:
    """Linear dimensionality ``(sum lambda)^2 / sum lambda^2`` (1 for one direction, p for isotropic)."""
    eigs = np.asarray(eigs, dtype=np.float64)
    if eigs.ndim != 1 or eigs.size == 0 or not np.all(np.isfinite(eigs)):
        raise SpectrumError("eigenvalues must be a non-empty 1-D array of finite numbers")
    if np.any(eigs < 0):
        raise SpectrumError("eigenvalues of a covariance cannot be negative")
    s2 = np.sum(eigs**2)
    if s2 == 0:
        raise SpectrumError("participation ratio of an all-zero spectrum is undefined")
    return float(np.sum(eigs) ** 2 / s2)


@dataclass(frozen=True)
class SpectrumSummary:
    """A representation's spectrum with its power-law fit and participation ratio."""

    eigs: np.ndarray
    fit: PowerLawFit
    participation_ratio: float
    rank: int


def analyse(x, window: tuple[int, int], *, weighting: str = "inverse_rank", rtol: float = 1e-10) -> SpectrumSummary:
    """Spectrum, power-law fit over ``window`` and participation ratio of activations ``x``."""
    eigs = eigenspectrum(x)
    return SpectrumSummary(
        eigs,
        fit_power_law(eigs, window, weighting=weighting, rtol=rtol),
        participation_ratio(eigs),
        numerical_rank(eigs, rtol),
    )
