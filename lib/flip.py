"""Smallest label-flipping perturbation along given directions, for any binary classifier.

For a scalar score ``f`` (the label is its sign), a point ``x`` and a direction ``u``,
:func:`flip_distance` returns the smallest ``t > 0`` at which ``f(x + t u)`` has the
opposite sign of ``f(x)``: a grid scan brackets the first sign change, bisection then
narrows the bracket to ``tol``. On a linear score this is the exact distance
``-f(x) / (u . grad f)`` (to ``tol``); on a piecewise-linear network it is exact unless the
sign flips twice between two grid points. :func:`lib.ensemble.flip_distance` is the
exact version for two-layer ReLU networks.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .config import ParameterError

Score = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def flip_distance(f: Score, x: torch.Tensor, u: torch.Tensor, *, t_max: float, grid: int = 64,
                  tol: float = 1e-6, max_iter: int = 60) -> torch.Tensor:
    """Smallest ``t`` in ``(0, t_max]`` with ``sign f(x + t u) != sign f(x)``; ``inf`` if none.

    ``f`` maps ``(..., d)`` to ``(...)``; ``x`` and ``u`` have the same shape ``(..., d)``
    (unit ``u`` makes ``t`` an L2 distance). The first sign change on a uniform grid of
    ``grid`` steps is refined by bisection until the bracket is shorter than ``tol * t_max``.
    """
    if not t_max > 0 or not math.isfinite(t_max):
        raise ParameterError(f"parameter 't_max' must be finite and > 0, got {t_max}")
    if grid < 1:
        raise ParameterError(f"parameter 'grid' must be >= 1, got {grid}")
    if x.shape != u.shape:
        raise ValueError(f"x {tuple(x.shape)} and u {tuple(u.shape)} must have the same shape")
    s0 = torch.sign(f(x))
    lo = torch.zeros_like(s0)
    hi = torch.full_like(s0, math.inf)
    ts = torch.linspace(0, t_max, grid + 1, dtype=x.dtype, device=x.device)
    for a, b in zip(ts[:-1], ts[1:]):
        open_ = torch.isinf(hi)
        if not open_.any():
            break
        flipped = open_ & (torch.sign(f(x + b * u)) != s0)
        lo = torch.where(flipped, a, lo)
        hi = torch.where(flipped, b, hi)
    found = torch.isfinite(hi)
    lo = torch.where(found, lo, torch.zeros_like(lo))
    hi = torch.where(found, hi, torch.zeros_like(hi))
    for _ in range(max_iter):
        if float((hi - lo).max()) <= tol * t_max:
            break
        mid = (lo + hi) / 2
        flipped = torch.sign(f(x + mid[..., None] * u)) != s0
        hi = torch.where(flipped, mid, hi)
        lo = torch.where(flipped, lo, mid)
    return torch.where(found, hi, torch.full_like(hi, math.inf))
