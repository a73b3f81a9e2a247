"""Per-sample thresholds by vectorised bisection, e.g. the smallest budget that flips a label."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .config import ParameterError
from .train import predict


def bisect(predicate: Callable[[torch.Tensor], torch.Tensor], n: int, lo: float, hi: float, *,
           steps: int = 12, device=None) -> torch.Tensor:
    """Smallest value in ``[lo, hi]`` at which a monotone per-sample predicate turns true.

    ``predicate(values)`` takes one value per sample (shape ``(n,)``) and returns a bool
    tensor ``(n,)``; all samples are tested together at each step. Returns the upper end
    of each sample's final bracket (within ``(hi - lo) / 2**steps`` of the threshold):
    ``lo`` where the predicate already holds at ``lo``, ``inf`` where it fails at ``hi``.
    """
    if not hi > lo:
        raise ParameterError(f"bisection needs hi > lo, got lo={lo}, hi={hi}")
    if steps < 1:
        raise ParameterError(f"bisection needs steps >= 1, got {steps}")
    a = torch.full((n,), float(lo), device=device, dtype=torch.float64)
    b = torch.full((n,), float(hi), device=device, dtype=torch.float64)
    at_lo = predicate(a).bool()
    at_hi = predicate(b).bool()
    for _ in range(steps):
        mid = (a + b) / 2
        ok = predicate(mid).bool()
        b = torch.where(ok, mid, b)
        a = torch.where(ok, a, mid)
    b[~at_hi] = math.inf
    b[at_lo] = lo
    return b


def smallest_flipping_eps(model: nn.Module, attack: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                          eps_max: float, *, bisection_steps: int = 12, batch_size: int = 4096,
                          **attack_kw) -> torch.Tensor:
    """Per input, the smallest budget ``eps`` at which ``attack(model, x, y, eps)`` changes the label from ``y``.

    ``attack`` follows ``lib.attacks`` (per-sample ``eps`` tensor allowed). Found by
    :func:`bisect` on ``[0, eps_max]``: 0 for inputs already misclassified, ``inf`` for
    inputs the attack does not flip at ``eps_max``.
    """
    out = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]

        def flipped(eps: torch.Tensor, xb=xb, yb=yb) -> torch.Tensor:
            xa = attack(model, xb, yb, eps.to(xb.dtype), **attack_kw)
            return predict(model, xa).argmax(1) != yb

        out.append(bisect(flipped, len(xb), 0.0, eps_max, steps=bisection_steps, device=x.device))
    return torch.cat(out).to(torch.float32)
