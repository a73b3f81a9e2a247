"""Intrinsic dimension of a point cloud: the TwoNN estimator (Facco et al., Sci. Rep. 2017).

For each point, ``mu = r2 / r1`` is the ratio of the distances to its second and
first nearest neighbours. For locally uniform data on a d-dimensional manifold
``mu`` is Pareto-distributed, ``F(mu) = 1 - mu^-d``, so ``-log(1 - F)`` is a line of
slope ``d`` through the origin against ``log mu``; the estimate is that slope, fitted
on the empirical distribution after dropping the largest ratios. Only the two
nearest neighbours enter, so the estimate probes the data at its smallest scale.
"""

from __future__ import annotations

import torch


def _two_nn_distances(x: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """Distances to the first and second nearest other point, (N, 2), computed in row blocks."""
    out = []
    for i in range(0, len(x), block):
        d = torch.cdist(x[i : i + block], x)
        idx = torch.arange(i, min(i + block, len(x)), device=x.device)
        d[torch.arange(len(idx), device=x.device), idx] = float("inf")  # not its own neighbour
        out.append(d.topk(2, dim=1, largest=False).values)
    return torch.cat(out)


@torch.no_grad()
def twonn(x: torch.Tensor, *, discard_fraction: float = 0.1) -> float:
    """TwoNN intrinsic dimension of the rows of ``x`` (computed in float64).

    Points with a duplicate (zero first-neighbour distance) are dropped; the largest
    ``discard_fraction`` of the ratios (the tail most distorted by curvature and
    noise; Facco et al. drop 10%) are left out of the line fit.
    """
    x = torch.as_tensor(x).flatten(1).to(torch.float64)
    if len(x) < 3:
        raise ValueError(f"TwoNN needs at least 3 points, got {len(x)}")
    if not 0 <= discard_fraction < 1:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    r = _two_nn_distances(x)
    keep = r[:, 0] > 0
    if keep.sum() < 3:
        raise ValueError("fewer than 3 distinct points: the intrinsic dimension is undefined")
    log_mu = torch.log(r[keep, 1] / r[keep, 0]).sort().values
    n = len(log_mu)
    m = min(n - 1, max(3, int(n * (1 - discard_fraction))))
    x_fit = log_mu[:m]
    y_fit = -torch.log1p(-torch.arange(1, m + 1, dtype=torch.float64, device=x.device) / n)
    denom = (x_fit**2).sum().item()
    if denom <= 0:
        raise ValueError("all second-neighbour distances equal the first: the intrinsic dimension is undefined")
    return (x_fit * y_fit).sum().item() / denom
