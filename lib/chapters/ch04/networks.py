"""Chapter 4's networks: data in a random subspace, batched training, and the per-point measures.

Every experiment trains a batched ensemble (:mod:`lib.ensemble`): one member per
(setting, seed), full-batch gradient descent on the logistic loss until the minimum
margin reaches ``margin`` or ``steps`` run out. :func:`measure` compares each trained
network with the book's derivation (see the package's docstring): the orthogonal
input gradient and its prediction, and the exact flip distances along four directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ... import data, ensemble, flip, subspace

__all__ = [
    "Batch",
    "Run",
    "law_ratio",
    "make_batch",
    "mean_ci",
    "measure",
    "orthogonal_drift",
    "per_seed_medians",
    "point_ratios",
    "ratio_ci",
    "train",
    "universal_direction",
]


@dataclass
class Batch:
    """One data set per ensemble member, zero-padded to a common dimension ``D``."""

    x: torch.Tensor  # (E, n, D)
    y: torch.Tensor  # (E, n), +-1
    basis: torch.Tensor  # (E, D, K) orthonormal columns (zero-padded)
    dims: torch.Tensor  # (E,)
    ks: torch.Tensor  # (E,)

    def nearest_other_class(self) -> torch.Tensor:
        """Distance from every point to the nearest training point of the other label, ``(E, n)``."""
        dist = torch.cdist(self.x, self.x)
        other = self.y[:, :, None] != self.y[:, None, :]
        return torch.where(other, dist, torch.full_like(dist, math.inf)).min(-1).values


def make_batch(
    n: int,
    dims: Sequence[int],
    ks: Sequence[int],
    *,
    rule: str,
    radius: float,
    generator: torch.Generator,
    device,
    axis_aligned: bool = False,
    shared: int | None = None,
) -> Batch:
    """Points on a sphere of ``radius`` in a random ``k_e``-dim subspace of R^{d_e}, per member.

    ``shared=S`` draws only ``S`` data sets and gives member ``e`` the set ``e % S``
    (a paired design: every setting of a sweep sees the same data for a given seed).
    """
    E, D, K = len(dims), max(dims), max(ks)
    x = torch.zeros(E, n, D)
    y = torch.zeros(E, n)
    basis = torch.zeros(E, D, K)
    cache: dict[int, data.SubspaceData] = {}
    for e, (d, k) in enumerate(zip(dims, ks)):
        key = e % shared if shared else e
        sd = cache.get(key) if shared else None
        if sd is None:
            sd = data.subspace_points(n, d, k, rule=rule, generator=generator, radius=radius, axis_aligned=axis_aligned)
            cache[key] = sd
        x[e, :, :d] = sd.x
        y[e] = ensemble.signed(sd.y)
        basis[e, :d, :k] = sd.basis
    return Batch(x.to(device), y.to(device), basis.to(device), torch.as_tensor(list(dims)), torch.as_tensor(list(ks)))


@dataclass
class Run:
    """A trained ensemble with everything needed to measure it against the derivation."""

    ens: ensemble.TwoLayerEnsemble
    w0: torch.Tensor  # first-layer weights at initialisation
    fit: ensemble.FitResult
    batch: Batch
    lr: torch.Tensor  # (E,)
    weight_decay: torch.Tensor  # (E,)
    sigma_w: torch.Tensor  # (E,) first-layer init standard deviation
    init: ensemble.TwoLayerEnsemble | None = None  # the untrained networks (same width, same initialisation)

    @property
    def decay(self) -> torch.Tensor:
        """``c_T = (1 - lr * wd)^T`` per member."""
        return self.fit.decay


def train(
    cfg: SimpleNamespace,
    batch: Batch,
    *,
    init_scale=None,
    widths=None,
    weight_decay=None,
    first_layer_std=None,
    optimizer: str = "gd",
    lr=None,
    steps: int | None = None,
    margin: float | None | bool = True,
    desc: str = "training",
) -> Run:
    """Initialise and train one ensemble on ``batch`` (per-member settings may be lists)."""
    E, D = batch.x.shape[0], batch.x.shape[-1]
    s = ensemble.per_member(cfg.init_scale if init_scale is None else init_scale, E, "init_scale", dtype=torch.float64)
    m = cfg.width if widths is None else max(widths)
    ens = ensemble.init(
        E,
        D,
        m,
        init_scale=s,
        dims=batch.dims.tolist(),
        widths=widths,
        first_layer_std=first_layer_std,
        generator=cfg.generator,
        device=cfg.device,
    )
    init = ens.clone()
    w0 = init.w
    lr = cfg.lr if lr is None else lr
    wd = cfg.weight_decay if weight_decay is None else weight_decay
    fit = ensemble.fit(
        ens,
        batch.x,
        batch.y,
        lr=lr,
        steps=cfg.steps if steps is None else steps,
        weight_decay=wd,
        margin=cfg.margin if margin is True else (margin or None),
        optimizer=optimizer,
        desc=desc,
    )
    sigma = (
        (s / batch.dims.double().sqrt())
        if first_layer_std is None
        else ensemble.per_member(first_layer_std, E, "first_layer_std", dtype=torch.float64)
    )
    return Run(
        ens,
        w0,
        fit,
        batch,
        ensemble.per_member(lr, E, "lr", dtype=torch.float64),
        ensemble.per_member(wd, E, "weight_decay", dtype=torch.float64),
        sigma,
        init,
    )


def orthogonal_drift(run: Run) -> torch.Tensor:
    """``||P_perp(W_T) - c_T P_perp(W_0)|| / ||P_perp(W_0)||`` per member (0 in exact arithmetic under GD).

    In float32 it is not 0: every update rounds each weight, P-perp directions included, so
    the drift grows slowly with the number of steps (about 1e-5 after 10^4 steps here).
    """
    basis = run.batch.basis.double()
    perp_t = subspace.project_perp(run.ens.w.double(), basis)
    perp_0 = subspace.project_perp(run.w0.double(), basis)
    c = run.decay.to(perp_0)[:, None, None]
    return ((perp_t - c * perp_0).flatten(1).norm(dim=1) / perp_0.flatten(1).norm(dim=1)).cpu()


# ---------------------------------------------------------------- measures


def universal_direction(run: Run) -> torch.Tensor:
    """Per member, the unit vector along ``P_perp(sum_j v_j w_j)``: one direction for all points."""
    u = subspace.project_perp((run.ens.v[:, :, None] * run.ens.w).sum(1, keepdim=True), run.batch.basis)
    return u / u.norm(dim=-1, keepdim=True)


def _random_perp(run: Run) -> torch.Tensor:
    z = torch.randn(run.ens.n_members, 1, run.ens.dim, generator=torch.Generator().manual_seed(12345))
    z = z * (torch.arange(run.ens.dim)[None, None, :] < run.batch.dims[:, None, None])  # member's own coordinates
    z = subspace.project_perp(z.to(run.batch.basis), run.batch.basis)
    return z / z.norm(dim=-1, keepdim=True)


@torch.no_grad()
def measure(run: Run, directions: bool = True) -> pd.DataFrame:
    """One row per (member, point): gradient norms in P and P-perp, the derivation's prediction,
    and the exact flip distances along P-perp, within P, along the universal direction and
    along a random P-perp direction; with ``directions`` also the norm of the point and the
    untrained network's (``run.init``) output, orthogonal gradient norm and flip distance along it."""
    ens, b = run.ens, run.batch
    f = ens(b.x)
    grad = ens.input_grad(b.x)
    g_par, g_perp = subspace.split(grad, b.basis)
    S = ens.active_output_mass(b.x)
    c = run.decay.to(S)[:, None]
    scale = (run.sigma_w * (b.dims - b.ks).double().sqrt()).to(S)[:, None]
    cols = {
        "f": f,
        "margin": b.y * f,
        "g_par": g_par.norm(dim=-1),
        "g_perp": g_perp.norm(dim=-1),
        "S": S,
        "pred_perp": c * scale * S.sqrt(),
        "dist_other": b.nearest_other_class(),
        "S_all": (ens.v**2).sum(-1, keepdim=True).expand_as(S),
    }
    if directions:
        toward = -torch.sign(f)[..., None]

        def along(u, net=ens):
            return flip.ray_distance_exact(net, b.x, u / u.norm(dim=-1, keepdim=True).clamp_min(1e-30))

        cols["delta_perp"] = along(toward * g_perp)
        cols["delta_par"] = along(toward * g_par)
        cols["delta_univ"] = along(toward * universal_direction(run).expand_as(b.x))
        cols["delta_rand"] = along(toward * _random_perp(run).expand_as(b.x))
        cols["x_norm"] = b.x.norm(dim=-1)
        if run.init is not None:  # the untrained network of the same width at the same points (the null)
            f0 = run.init(b.x)
            g0_par, g0_perp = subspace.split(run.init.input_grad(b.x), b.basis)
            cols["f0"] = f0
            cols["g_perp0"] = g0_perp.norm(dim=-1)
            cols["delta_perp0"] = along(-torch.sign(f0)[..., None] * g0_perp, run.init)
    E, n = f.shape
    df = pd.DataFrame({k: v.double().cpu().numpy().ravel() for k, v in cols.items()})
    df.insert(0, "point", np.tile(np.arange(n), E))
    df.insert(0, "member", np.repeat(np.arange(E), n))
    return df


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of the mean over independent values (seeds)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else math.nan, math.nan, math.nan)
    m, se = v.mean(), v.std(ddof=1) / math.sqrt(len(v))
    h = stats.t.ppf(0.5 + level / 2, len(v) - 1) * se
    return float(m), float(m - h), float(m + h)


def per_seed_medians(df: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    """Median over points of every measure, per member, with the member's seed (``member % n_seeds``)."""
    med = df.groupby("member").median(numeric_only=True).drop(columns="point")
    med["law"] = (df.g_perp**2 / df.pred_perp**2).groupby(df.member).mean()  # mean, not median
    for name, ratio in point_ratios(df).items():
        med[name] = ratio.groupby(df.member).median()
    med["seed"] = med.index % n_seeds
    return med


def point_ratios(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Per point, the data-scale and untrained-network comparisons of the orthogonal gradient and flip.

    ``rel_perp``, ``rel_par``, ``rel_perp0``: flip distance along P-perp, within P, and the untrained
    network's along its P-perp gradient, over the norm of the point; ``grad_gain``: trained over
    untrained orthogonal gradient norm; ``flip_gain``: trained over untrained P-perp flip distance;
    ``perp_over_par``: P-perp over in-P flip distance (descriptive: it moves with the data radius).
    Empty where :func:`measure` ran without the directions or the untrained network.
    """
    if "x_norm" not in df or "g_perp0" not in df:
        return {}
    return {
        "rel_perp": df.delta_perp / df.x_norm,
        "rel_par": df.delta_par / df.x_norm,
        "rel_perp0": df.delta_perp0 / df.x_norm,
        "grad_gain": df.g_perp / df.g_perp0,
        "flip_gain": df.delta_perp / df.delta_perp0,
        "perp_over_par": df.delta_perp / df.delta_par,
    }


def law_ratio(meds: list[pd.DataFrame]) -> tuple[float, float, float]:
    """Mean over every network of the mean measured / predicted squared orthogonal gradient norm."""
    return mean_ci(np.concatenate([m.law.to_numpy() for m in meds]))


def ratio_ci(ratios) -> tuple[float, float, float]:
    """Geometric mean of positive ratios (one per seed) and its 95% t-interval, from the logs."""
    with np.errstate(divide="ignore"):  # a ratio of 0 or inf (a label that never flips) is left out, as NaN is
        m, lo, hi = mean_ci(np.log(np.asarray(ratios, dtype=float)))
    return math.exp(m), math.exp(lo), math.exp(hi)
