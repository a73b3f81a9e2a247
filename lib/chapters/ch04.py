"""Chapter 4: two-layer ReLU networks trained on data in a low-dimensional linear subspace.

Melamed, Yehudai & Vardi (NeurIPS 2023). Every experiment trains a batched ensemble
(:mod:`lib.ensemble`): one member per (setting, seed), full-batch gradient descent on
the logistic loss until the minimum margin reaches ``margin`` or ``steps`` run out.

The book's own derivation (not the paper's theorem) that the measures are compared
with: for data in a subspace P and plain GD with L2 coefficient ``wd`` and step ``lr``,
the gradient of the loss with respect to each first-layer weight lies in P, so after
``T`` steps the P-perp part of the weights is ``c_T`` times its initial value,
``c_T = (1 - lr * wd)^T``. Everything the network does on P (its output weights,
biases and activation pattern) is independent of those frozen Gaussian components,
so at a point ``x`` of P the orthogonal input gradient is Gaussian with

    E ||grad_perp f(x)||^2 = c_T^2 * sigma_w^2 * (d - k) * S(x),
    S(x) = sum_j v_j^2 1[w_j . x + b_j > 0],

where ``sigma_w`` is the first-layer init standard deviation (``s / sqrt(d)`` with
fan-in scaling). To first order a label flips along that gradient at distance
``|f(x)| / ||grad_perp f(x)||``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

from matplotlib.ticker import FormatStrFormatter, NullFormatter
import numpy as np
import pandas as pd
from scipy import stats
import seaborn as sns
import torch

from .. import config, data, ensemble, flip, subspace
from ..claims import INCONCLUSIVE, Claim, by_interval, by_test, fmt
from ..config import Param, ParameterError


def _positive_list(v):
    return None if v > 0 else "every value must be > 0"


PARAMS: dict[str, Param] = {
    "d": Param(int, 64, 1024, check="positive", help="ambient input dimension"),
    "k": Param(int, 2, 8, check="positive", help="dimension of the data subspace P"),
    "n_points": Param(int, 16, 64, check="positive", help="training points per network"),
    "rule": Param(str, "xor", "xor", choices=data.LABEL_RULES,
                  help="labels: sign / xor of the first (two) subspace coordinates, or random"),
    "radius": Param(float, 8.0, 32.0, check="positive",
                    help="norm of every data point (the book chooses about sqrt(d))"),
    "width": Param(int, 64, 512, check="positive", help="hidden units"),
    "init_scale": Param(float, 1.0, 1.0, check="positive",
                        help="s: w, b ~ N(0, s^2/d), v ~ N(0, s^2/width)"),
    "weight_decay": Param(float, 0.0, 0.0, check="nonnegative", help="L2 coefficient of the main runs"),
    "lr": Param(float, 0.02, 0.00125, check="positive", max=10.0, help="gradient-descent step size"),
    "steps": Param(int, 3000, 40000, check="positive", help="step budget per network"),
    "margin": Param(float, 0.3, 0.3, check="positive", help="stop once min_i y_i f(x_i) reaches this"),
    "n_seeds": Param(int, 6, 16, check=lambda v: None if v >= 2 else "needs >= 2 for a confidence interval",
                     help="networks (and data sets) per setting"),
    "sweep_d": Param((list, int), [16, 32, 64, 128, 256], [128, 256, 512, 1024, 2048], check=_positive_list,
                     help="ambient dimensions of the d sweep (k fixed)"),
    "sweep_k": Param((list, int), [2, 4, 8, 16, 32], [2, 8, 32, 128, 512], check=_positive_list,
                     help="subspace dimensions of the k sweep (d fixed)"),
    "sweep_width": Param((list, int), [16, 32, 64, 128, 256], [64, 128, 256, 512, 1024], check=_positive_list,
                         help="widths of the width sweep"),
    "sweep_init_scale": Param((list, float), [0.125, 0.25, 0.5, 1.0, 2.0], [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0],
                              check=_positive_list, help="init scales of the init sweep"),
    "sweep_weight_decay": Param((list, float), [0.0, 0.003, 0.01, 0.02, 0.03], [0.0, 0.003, 0.01, 0.02, 0.03],
                                check="nonnegative", help="L2 coefficients of the weight-decay sweep"),
    "sweep_radius": Param((list, float), [1.0, 2.0, 4.0, 8.0, 16.0], [2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                          check=_positive_list, help="data radii of the radius sweep (lr scaled by (radius/r)^2)"),
    "universal_fraction": Param(float, 0.5, 0.5, check="positive",
                                help="norm of the universal perturbation, as a fraction of the median "
                                     "distance to the nearest differently labelled point"),
    "figure_steps": Param(int, 40000, 40000, check="positive", help="step budget of the two synthetic figures"),
    "figure_small_init": Param(float, 0.2, 0.2, check="positive", help="init scale of the figures' small-init runs"),
    "figure_weight_decay": Param((list, float), [0.005, 0.003], [0.005, 0.003], check="nonnegative",
                                 help="L2 coefficients of the weight-decay runs of the diagonal and chessboard figures"),
}

# The authors' public settings for the two synthetic figures (PAPERS.md, chapter 4).
DIAGONAL = dict(n=7, width=100, lr=0.02, margin=0.3)
CHESSBOARD = dict(side=5, width=400, lr=0.05, margin=0.3, z=0.5)
ADAM_LR = 0.003  # the book's choice for the Adam comparison
EQUIVALENCE = 0.1  # |measured - predicted| exponent the book accepts as agreement


def validate(cfg: SimpleNamespace) -> None:
    """Cross-parameter checks, before any compute; raises ParameterError naming the parameter."""
    if cfg.k >= cfg.d:
        raise ParameterError(f"parameter 'k' must be < d (P-perp must exist), got k={cfg.k}, d={cfg.d}")
    min_k = 2 if cfg.rule == "xor" else 1
    if cfg.k < min_k:
        raise ParameterError(f"parameter 'k' must be >= {min_k} for rule {cfg.rule!r}, got {cfg.k}")
    if cfg.n_points < 4:
        raise ParameterError(f"parameter 'n_points' must be >= 4, got {cfg.n_points}")
    for name in ("sweep_d", "sweep_k", "sweep_width", "sweep_init_scale", "sweep_weight_decay", "sweep_radius"):
        vals = getattr(cfg, name)
        if len(set(vals)) < 2:
            raise ParameterError(f"parameter {name!r} needs at least two distinct values, got {vals}")
    if min(cfg.sweep_d) <= cfg.k:
        raise ParameterError(f"parameter 'sweep_d' values must all exceed k={cfg.k}, got {cfg.sweep_d}")
    if max(cfg.sweep_k) >= cfg.d or min(cfg.sweep_k) < min_k:
        raise ParameterError(f"parameter 'sweep_k' values must lie in [{min_k}, d-1={cfg.d - 1}], got {cfg.sweep_k}")
    if max(cfg.sweep_weight_decay) * cfg.lr >= 1:
        raise ParameterError(f"parameter 'lr' ({cfg.lr}) times the largest 'sweep_weight_decay' "
                             f"({max(cfg.sweep_weight_decay)}) must stay below 1")
    if len(cfg.figure_weight_decay) != 2:
        raise ParameterError(f"parameter 'figure_weight_decay' needs two values (diagonal, chessboard), "
                             f"got {cfg.figure_weight_decay}")
    if cfg.weight_decay * cfg.lr >= 1:
        raise ParameterError(f"parameter 'lr' ({cfg.lr}) times 'weight_decay' ({cfg.weight_decay}) must stay below 1")


config.register(PARAMS, validate)  # resolve and lib.sweep run it before any compute


# ---------------------------------------------------------------- data and training

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


def make_batch(n: int, dims: Sequence[int], ks: Sequence[int], *, rule: str, radius: float,
               generator: torch.Generator, device, axis_aligned: bool = False,
               shared: int | None = None) -> Batch:
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
            sd = data.subspace_points(n, d, k, rule=rule, generator=generator, radius=radius,
                                      axis_aligned=axis_aligned)
            cache[key] = sd
        x[e, :, :d] = sd.x
        y[e] = ensemble.signed(sd.y)
        basis[e, :d, :k] = sd.basis
    return Batch(x.to(device), y.to(device), basis.to(device),
                 torch.as_tensor(list(dims)), torch.as_tensor(list(ks)))


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

    @property
    def decay(self) -> torch.Tensor:
        """``c_T = (1 - lr * wd)^T`` per member."""
        return self.fit.decay


def train(cfg: SimpleNamespace, batch: Batch, *, init_scale=None, widths=None, weight_decay=None,
          first_layer_std=None, optimizer: str = "gd", lr=None, steps: int | None = None,
          margin: float | None | bool = True, desc: str = "training") -> Run:
    """Initialise and train one ensemble on ``batch`` (per-member settings may be lists)."""
    E, D = batch.x.shape[0], batch.x.shape[-1]
    s = ensemble.per_member(cfg.init_scale if init_scale is None else init_scale, E, "init_scale",
                            dtype=torch.float64)
    m = cfg.width if widths is None else max(widths)
    ens = ensemble.init(E, D, m, init_scale=s, dims=batch.dims.tolist(), widths=widths,
                        first_layer_std=first_layer_std, generator=cfg.generator, device=cfg.device)
    w0 = ens.w.clone()
    lr = cfg.lr if lr is None else lr
    wd = cfg.weight_decay if weight_decay is None else weight_decay
    fit = ensemble.fit(ens, batch.x, batch.y, lr=lr, steps=cfg.steps if steps is None else steps,
                       weight_decay=wd, margin=cfg.margin if margin is True else (margin or None),
                       optimizer=optimizer, desc=desc)
    sigma = (s / batch.dims.double().sqrt()) if first_layer_std is None else \
        ensemble.per_member(first_layer_std, E, "first_layer_std", dtype=torch.float64)
    return Run(ens, w0, fit, batch, ensemble.per_member(lr, E, "lr", dtype=torch.float64),
               ensemble.per_member(wd, E, "weight_decay", dtype=torch.float64), sigma)


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
    along a random P-perp direction."""
    ens, b = run.ens, run.batch
    f = ens(b.x)
    grad = ens.input_grad(b.x)
    g_par, g_perp = subspace.split(grad, b.basis)
    S = ens.active_output_mass(b.x)
    c = run.decay.to(S)[:, None]
    scale = (run.sigma_w * (b.dims - b.ks).double().sqrt()).to(S)[:, None]
    cols = {
        "f": f, "margin": b.y * f, "g_par": g_par.norm(dim=-1), "g_perp": g_perp.norm(dim=-1), "S": S,
        "pred_perp": c * scale * S.sqrt(), "dist_other": b.nearest_other_class(),
        "S_all": (ens.v ** 2).sum(-1, keepdim=True).expand_as(S),
    }
    if directions:
        toward = -torch.sign(f)[..., None]

        def along(u):
            return flip.ray_distance_exact(ens, b.x, u / u.norm(dim=-1, keepdim=True).clamp_min(1e-30))

        cols["delta_perp"] = along(toward * g_perp)
        cols["delta_par"] = along(toward * g_par)
        cols["delta_univ"] = along(toward * universal_direction(run).expand_as(b.x))
        cols["delta_rand"] = along(toward * _random_perp(run).expand_as(b.x))
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
    med["law"] = (df.g_perp ** 2 / df.pred_perp ** 2).groupby(df.member).mean()  # mean, not median
    med["seed"] = med.index % n_seeds
    return med


# ---------------------------------------------------------------- experiments

def baseline(cfg: SimpleNamespace) -> tuple[Run, pd.DataFrame]:
    """``n_seeds`` networks at the chapter's main setting, each on its own data set and subspace."""
    E = cfg.n_seeds
    batch = make_batch(cfg.n_points, [cfg.d] * E, [cfg.k] * E, rule=cfg.rule, radius=cfg.radius,
                       generator=cfg.generator, device=cfg.device)
    run = train(cfg, batch, desc="main runs")
    return run, measure(run)


def optimizer_comparison(cfg: SimpleNamespace, steps: int = 300) -> pd.DataFrame:
    """Drift of the P-perp weights under GD and Adam, for an axis-aligned and a random subspace.

    Every network trains for a fixed ``steps`` (no margin stop) so the drift can accumulate.
    """
    rows = []
    for aligned in (True, False):
        batch = make_batch(cfg.n_points, [cfg.d] * cfg.n_seeds, [cfg.k] * cfg.n_seeds, rule=cfg.rule,
                           radius=cfg.radius, generator=cfg.generator, device=cfg.device, axis_aligned=aligned)
        for opt, lr in (("gd", cfg.lr), ("adam", ADAM_LR)):
            run = train(cfg, batch, optimizer=opt, lr=lr, steps=steps, margin=False, weight_decay=0.0,
                        desc=f"{opt}, {'axis-aligned' if aligned else 'random'} P")
            med = per_seed_medians(measure(run, directions=False), cfg.n_seeds)
            for e, drift in enumerate(orthogonal_drift(run).tolist()):
                rows.append({"subspace": "axis-aligned" if aligned else "random", "optimizer": opt,
                             "seed": e, "drift": drift, "g_perp": med.g_perp.iloc[e], "g_par": med.g_par.iloc[e],
                             "min_margin": float(run.fit.min_margin[e])})
    return pd.DataFrame(rows)


SWEEPS = ("d (fan-in init)", "d (fixed init std)", "k", "width", "init scale", "weight decay", "data radius")


def sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    """Train one ensemble over the values of one sweep x ``n_seeds``; per-member medians with ``value``.

    Member ``e`` has value index ``e // n_seeds`` and seed ``e % n_seeds``; all values of a
    seed share the same data set except in the d and k sweeps (the data live in R^d).
    The weight-decay sweep runs the full ``steps`` budget without the margin stop, so
    every member of a value decays by the same factor ``c_T``. The radius sweep scales
    the data and the step size together (``lr * (radius / r)^2``), which keeps the
    first-layer step in units of the data the same.
    """
    S = cfg.n_seeds
    vals = {"d (fan-in init)": cfg.sweep_d, "d (fixed init std)": cfg.sweep_d, "k": cfg.sweep_k,
            "width": cfg.sweep_width, "init scale": cfg.sweep_init_scale,
            "weight decay": cfg.sweep_weight_decay, "data radius": cfg.sweep_radius}[name]
    per = [v for v in vals for _ in range(S)]
    E = len(per)
    dims, ks = [cfg.d] * E, [cfg.k] * E
    kw: dict = {}
    shared = S
    if name.startswith("d "):
        dims, shared = per, None
        if "fixed" in name:  # the std every d gets = the fan-in std at the chapter's d
            kw["first_layer_std"] = cfg.init_scale / math.sqrt(cfg.d)
    elif name == "k":
        ks, shared = per, None
    elif name == "width":
        kw["widths"] = per
    elif name == "init scale":
        kw["init_scale"] = per
    elif name == "weight decay":
        kw["weight_decay"] = per
    else:
        kw["lr"] = [cfg.lr * (cfg.radius / r) ** 2 for r in per]
    batch = make_batch(cfg.n_points, dims, ks, rule=cfg.rule, radius=cfg.radius, generator=cfg.generator,
                       device=cfg.device, shared=shared)
    if name == "data radius":
        batch.x *= torch.as_tensor(per, dtype=batch.x.dtype, device=batch.x.device)[:, None, None] / cfg.radius
    if name == "weight decay":
        kw["margin"] = False
    run = train(cfg, batch, desc=f"sweep over {name}", **kw)
    med = per_seed_medians(measure(run), S)
    med["value"] = per
    med["decay"] = run.decay.numpy()
    med["reached"] = (run.fit.min_margin >= cfg.margin).numpy()
    med["steps"] = run.fit.steps.numpy()
    med["sweep"] = name
    return run, med


def _slope(x, y) -> float:
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def exponents(med: pd.DataFrame) -> dict:
    """Per-seed log-log slopes of the orthogonal gradient and flip distance against the swept value.

    The weight-decay sweep uses the decay factor ``c_T`` as its x (the derivation's variable).
    ``structural`` is the slope of ``c_T sigma_w sqrt(d-k)`` alone (closed form); ``predicted``
    adds the measured output-weight mass S (the derivation's full prediction).
    """
    name = med.sweep.iloc[0]
    xcol = "decay" if name == "weight decay" else "value"
    rows = []
    for seed, g in med.groupby("seed"):
        x = g[xcol].to_numpy()
        struct = g.pred_perp / np.sqrt(g.S)
        rows.append({"seed": seed, "measured": _slope(x, g.g_perp), "predicted": _slope(x, g.pred_perp),
                     "structural": _slope(x, struct), "S": _slope(x, g.S),
                     "delta_measured": _slope(x, g.delta_perp),
                     "delta_first_order": _slope(x, g.f.abs() / g.pred_perp)})
    per = pd.DataFrame(rows)
    out = {"sweep": name, "x": "c_T" if xcol == "decay" else name.split(" (")[0]}
    for col in ("measured", "predicted", "structural", "delta_measured", "delta_first_order"):
        out[col], out[col + "_lo"], out[col + "_hi"] = mean_ci(per[col])
    diff = (per.measured - per.predicted).to_numpy()
    out["diff"], out["diff_lo"], out["diff_hi"] = mean_ci(diff)
    out["reached"] = float(med.reached.mean())
    return out


def agreement_verdict(lo: float, hi: float, tol: float = EQUIVALENCE) -> str:
    """Holds when the CI of (measured - predicted) lies inside [-tol, tol]; fails when it lies outside."""
    if any(math.isnan(v) for v in (lo, hi)):
        return INCONCLUSIVE
    return by_test(-tol <= lo and hi <= tol, hi < -tol or lo > tol)


# ---------------------------------------------------------------- the two synthetic figures

def diagonal_data(device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """7 points evenly spaced on the diagonal of [-1, 1]^2 with alternating labels (+ - + ... +)."""
    t = torch.linspace(-1, 1, DIAGONAL["n"])
    x = torch.stack([t, t], 1)
    y = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(DIAGONAL["n"])])
    return x.to(device), y.to(device)


def chessboard_data(z: float, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A 5x5 grid on [-1, 1]^2 lifted to the plane ``x_3 = z`` of R^3; XNOR (chessboard) labels."""
    n = CHESSBOARD["side"]
    t = torch.linspace(-1, 1, n)
    gx, gy = torch.meshgrid(t, t, indexing="xy")
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="xy")
    x = torch.stack([gx.flatten(), gy.flatten(), torch.full((n * n,), float(z))], 1)
    y = torch.where((i.flatten() % 2) == (j.flatten() % 2), 1.0, -1.0)
    return x.to(device), y.to(device)


AFFINE = f"z={CHESSBOARD['z']:g}"




def figure_diagonal(cfg: SimpleNamespace) -> tuple[ensemble.TwoLayerEnsemble, ensemble.FitResult]:
    """The 2-D figure: vanilla, small-init and weight-decay networks on the 7 diagonal points."""
    x, y = diagonal_data(cfg.device)
    scales, wds = [1.0, cfg.figure_small_init, 1.0], [0.0, 0.0, cfg.figure_weight_decay[0]]
    ens = ensemble.init(3, 2, DIAGONAL["width"], init_scale=scales, generator=cfg.generator, device=cfg.device)
    fit = ensemble.fit(ens, x, y, lr=DIAGONAL["lr"], steps=cfg.figure_steps, weight_decay=wds,
                       margin=DIAGONAL["margin"], desc="diagonal figure")
    return ens, fit


@dataclass
class Chessboard:
    """Networks on the 5x5 chessboard. Members ``0 .. 4S-1`` are (variant, plane, seed) with
    variant in (vanilla, small init), plane in (z=0.5, z=0) and the same initialisation on
    both planes (a paired control: z=0 is a linear subspace); the last member is the
    weight-decay network of the figure, on z=0.5."""

    ens: ensemble.TwoLayerEnsemble
    fit: ensemble.FitResult
    x: torch.Tensor  # (E, 25, 3)
    y: torch.Tensor
    w0: torch.Tensor
    b0: torch.Tensor
    table: pd.DataFrame  # one row per member: variant, plane, seed, weight_decay


def figure_chessboard(cfg: SimpleNamespace) -> Chessboard:
    """The 3-D figure (vanilla, small init, weight decay on z=0.5) and its paired z=0 control."""
    S, z = cfg.n_seeds, CHESSBOARD["z"]
    planes = {AFFINE: chessboard_data(z, cfg.device)[0], "z=0": chessboard_data(0.0, cfg.device)[0]}
    y = chessboard_data(z, cfg.device)[1]
    rows, parts, xs = [], [], []
    for variant, scale in (("vanilla", 1.0), ("small init", cfg.figure_small_init)):
        init = ensemble.init(S, 3, CHESSBOARD["width"], init_scale=scale, generator=cfg.generator, device=cfg.device)
        for plane, xp in planes.items():
            parts.append(init)
            xs += [xp] * S
            rows += [{"variant": variant, "plane": plane, "seed": i, "weight_decay": 0.0} for i in range(S)]
    parts.append(ensemble.init(1, 3, CHESSBOARD["width"], generator=cfg.generator, device=cfg.device))
    xs.append(planes[AFFINE])
    rows.append({"variant": "weight decay", "plane": AFFINE, "seed": 0, "weight_decay": cfg.figure_weight_decay[1]})
    ens = ensemble.TwoLayerEnsemble(*(torch.cat([getattr(p, a) for p in parts]) for a in ("w", "b", "v")))
    table = pd.DataFrame(rows)
    w0, b0 = ens.w.clone(), ens.b.clone()
    x = torch.stack(xs)
    fit = ensemble.fit(ens, x, y, lr=CHESSBOARD["lr"], steps=cfg.figure_steps, weight_decay=table.weight_decay.tolist(),
                       margin=CHESSBOARD["margin"], desc="chessboard figure")
    return Chessboard(ens, fit, x, y, w0, b0, table)


def affine_drift(cb: Chessboard) -> np.ndarray:
    """``max_j |Delta w_j3 - z Delta b_j|`` per member: 0 under GD without weight decay, because on the
    plane x_3 = z the gradient of w_j3 is exactly z times the gradient of b_j."""
    z = cb.x[:, :1, 2]  # (E, 1): every point of a member has the same x_3
    return ((cb.ens.w[..., 2] - cb.w0[..., 2]) - z * (cb.ens.b - cb.b0)).abs().max(1).values.cpu().numpy()


@torch.no_grad()
def chessboard_measures(cb: Chessboard) -> pd.DataFrame:
    """Per member: median exact distance to flip a label by moving straight off the plane (along
    +-e_3), the off-plane derivative, and its split into the frozen initial part
    ``sum_j v_j a_j w_j3(0)`` and the part trained together with the biases."""
    f = cb.ens(cb.x)
    grad = cb.ens.input_grad(cb.x)
    dz = grad[..., 2]
    gate = (cb.ens.preactivations(cb.x) > 0).to(f) * cb.ens.v[:, None, :]
    frozen = (gate * cb.w0[:, None, :, 2]).sum(-1)
    e3 = torch.zeros_like(cb.x)
    e3[..., 2] = 1.0
    delta_off = flip.ray_distance_exact(cb.ens, cb.x, (-torch.sign(f) * torch.sign(dz))[..., None] * e3)
    out = cb.table.copy()
    out["delta_off"] = delta_off.median(1).values.cpu().numpy()
    out["dfdz"] = dz.abs().median(1).values.cpu().numpy()
    out["frozen_part"] = frozen.abs().median(1).values.cpu().numpy()
    out["trained_part"] = (dz - frozen).abs().median(1).values.cpu().numpy()
    out["in_plane_grad"] = grad[..., :2].norm(dim=-1).median(1).values.cpu().numpy()
    out["steps"] = cb.fit.steps.numpy()
    out["reached"] = cb.fit.reached.numpy()
    return out


def affine_gain(meas: pd.DataFrame) -> pd.DataFrame:
    """Per seed (rows) and plane (columns): how much small init multiplies the off-plane flip distance."""
    pv = meas[meas.variant != "weight decay"].pivot_table(index=["plane", "seed"], columns="variant",
                                                          values="delta_off")
    gain = (pv["small init"] / pv["vanilla"]).rename("gain").reset_index()
    return gain.pivot(index="seed", columns="plane", values="gain")


def decision_grid(ens: ensemble.TwoLayerEnsemble, axes: tuple[torch.Tensor, torch.Tensor], embed) -> torch.Tensor:
    """``f`` of every member on a 2-D grid; ``embed(a, b)`` maps grid coordinates to inputs ``(N, d)``."""
    a, b = torch.meshgrid(*axes, indexing="xy")
    with torch.no_grad():
        out = ens(embed(a.flatten(), b.flatten()).to(ens.w))
    return out.reshape(ens.n_members, *a.shape).cpu()


# ---------------------------------------------------------------- summaries and claims

def seed_stat(df: pd.DataFrame, fn, n_seeds: int) -> tuple[float, float, float]:
    """Mean and CI over seeds of ``fn(rows of one seed)`` (members are seeds in the main runs)."""
    return mean_ci([fn(g) for _, g in df.groupby(df.member % n_seeds)])


def flip_summary(df: pd.DataFrame, n_seeds: int, fraction: float) -> dict:
    """The flip statistics of the main runs: ratios, the universal norm and the fractions it flips."""
    t_u = fraction * float(df.dist_other.median())
    out = {"universal_norm": t_u}
    stats_ = {
        "grad_ratio": lambda g: float((g.g_perp / g.g_par).median()),
        "delta_ratio": lambda g: float((g.delta_perp / g.delta_par).median()),
        "delta_vs_other": lambda g: float((g.delta_perp / g.dist_other).median()),
        "univ_flipped": lambda g: float((g.delta_univ <= t_u).mean()),
        "rand_flipped": lambda g: float((g.delta_rand <= t_u).mean()),
        "perp_flipped": lambda g: float((g.delta_perp <= t_u).mean()),
        "univ_over_perp": lambda g: float((g.delta_univ / g.delta_perp).median()),
    }
    for name, fn in stats_.items():
        out[name] = seed_stat(df, fn, n_seeds)
    return out


def sweep_claims(exps: list[dict]) -> list[Claim]:
    """One claims-table row per sweep: measured exponent of ||grad_perp f|| vs the derivation's."""
    rows = []
    for e in exps:
        value = (f"{fmt(e['measured'], (e['measured_lo'], e['measured_hi']), 2)} vs "
                 f"{e['predicted']:.2f} (closed-form part {e['structural']:.2f})")
        what = "the decay factor c_T (weight-decay sweep)" if e["x"] == "c_T" else e["sweep"]
        rows.append(Claim(f"[book] exponent of ||grad_perp f|| in {what} follows the derivation",
                          f"log-log slope, mean [95% CI] over seeds, vs prediction; agreement within "
                          f"+-{EQUIVALENCE} on (measured - predicted)", value,
                          agreement_verdict(e["diff_lo"], e["diff_hi"])))
    return rows


def law_ratio(meds: list[pd.DataFrame]) -> tuple[float, float, float]:
    """Mean over every network of the mean measured / predicted squared orthogonal gradient norm."""
    return mean_ci(np.concatenate([m.law.to_numpy() for m in meds]))


def claims(flips: dict, law: tuple[float, float, float], drift_gd: float, optim: pd.DataFrame,
           exps: list[dict], gain: pd.DataFrame, tol: float) -> list[Claim]:
    """The chapter's claims table, every verdict computed from the run."""
    by_name = {e["sweep"]: e for e in exps}
    adam_rand = float(optim.query("optimizer == 'adam' and subspace == 'random'").drift.median())
    adam_axis = float(optim.query("optimizer == 'adam' and subspace == 'axis-aligned'").drift.max())
    gr, dr, uf = flips["grad_ratio"], flips["delta_ratio"], flips["univ_flipped"]
    init, wd = by_name["init scale"], by_name["weight decay"]
    log_gain = np.log(gain[AFFINE] / gain["z=0"]).to_numpy()
    lg = mean_ci(log_gain)
    rows = [
        Claim("[book] plain GD never moves the P-perp part of the first-layer weights (c_T times it with L2)",
              "max relative drift over every GD network of the chapter (float32)", f"{drift_gd:.1e}",
              by_test(drift_gd < tol, drift_gd >= tol)),
        Claim("[book] Adam moves it when P is not axis-aligned, and not when it is",
              "median drift, Adam on a random P / max drift, Adam on an axis-aligned P",
              f"{adam_rand:.2g} / {adam_axis:.1e}", by_test(adam_rand > 1e-2 and adam_axis < tol,
                                                            adam_rand <= 1e-2 or adam_axis >= tol)),
        Claim("[book] E||grad_perp f(x)||^2 = c_T^2 sigma_w^2 (d-k) S(x) at data points",
              f"mean of measured / predicted squared norm over all networks of the chapter, 95% CI; "
              f"agreement within +-{EQUIVALENCE}",
              fmt(law[0], law[1:], 3), agreement_verdict(law[1] - 1, law[2] - 1)),
        Claim("Trained networks have large gradients orthogonal to the data subspace",
              "median ||grad_perp f|| / ||grad_P f|| at data points (the book reads 'large' as > 1)",
              fmt(gr[0], gr[1:], 2), by_interval(gr[1], gr[2], 1.0)),
        Claim("Small L2 perturbations orthogonal to P flip labels",
              "median (flip distance along P-perp) / (flip distance within P); holds if < 1",
              fmt(dr[0], dr[1:], 2), by_interval(dr[1], dr[2], 1.0, above=False)),
        Claim("One universal orthogonal direction flips most training points",
              f"fraction flipped at norm {flips['universal_norm']:.2g} (random P-perp direction: "
              f"{flips['rand_flipped'][0]:.2f}); holds if > 0.5", fmt(uf[0], uf[1:], 2),
              by_interval(uf[1], uf[2], 0.5)),
        Claim("A smaller initialisation makes the network more robust orthogonally to P",
              "log-log slope of the P-perp flip distance in the init scale; holds if < 0",
              fmt(init["delta_measured"], (init["delta_measured_lo"], init["delta_measured_hi"]), 2),
              by_interval(init["delta_measured_lo"], init["delta_measured_hi"], 0.0, above=False)),
        Claim("L2 regularisation makes the network more robust orthogonally to P",
              "log-log slope of the P-perp flip distance in the decay factor c_T; holds if < 0",
              fmt(wd["delta_measured"], (wd["delta_measured_lo"], wd["delta_measured_hi"]), 2),
              by_interval(wd["delta_measured_lo"], wd["delta_measured_hi"], 0.0, above=False)),
        Claim("The effect is weaker on the chessboard's affine plane than on a linear subspace",
              "ratio of the small-init robustness gain off the plane z=0.5 to that off z=0 (paired seeds); "
              "holds if < 1", fmt(math.exp(lg[0]), (math.exp(lg[1]), math.exp(lg[2])), 2)
              if np.isfinite(lg[1]) else f"{math.exp(lg[0]):.2f}", by_interval(lg[1], lg[2], 0.0, above=False)),
    ]
    return rows + sweep_claims(exps)


# ---------------------------------------------------------------- figures

GPERP = "$\\|\\Pi_\\perp\\nabla_x f(x)\\|$"
GPAR = "$\\|\\Pi_P\\nabla_x f(x)\\|$"


def _log_ticks(axis, values=None) -> None:
    """Readable log axes: plain-number labels (at ``values`` when given), no crowded minor labels."""

    if values is not None:
        ticks: list[float] = []
        for v in sorted(set(float(v) for v in values)):
            if not ticks or v / ticks[-1] > 1.3:  # skip a tick too close to the previous one
                ticks.append(v)
        axis.set_ticks(ticks)
    axis.set_major_formatter(FormatStrFormatter("%.3g"))
    axis.set_minor_formatter(NullFormatter())


LABEL_STYLE = {1.0: dict(marker="o", color="C3", label="label +1"), -1.0: dict(marker="s", color="C0",
                                                                                label="label -1")}


def _regions(ax, a, b, values):
    ax.contourf(a, b, values, levels=[-np.inf, 0, np.inf], colors=["C0", "C3"], alpha=0.18)
    ax.contour(a, b, values, levels=[0], colors="k", linewidths=1.2)


def _points(ax, u, v, y, legend=False):
    for lab, st in LABEL_STYLE.items():
        sel = y == lab
        ax.scatter(u[sel], v[sel], s=30, edgecolor="k", linewidth=0.5, zorder=3,
                   **{**st, "label": st["label"] if legend else None})


def plot_optimizers(optim: pd.DataFrame, axes) -> None:
    """Drift of the P-perp weights and the orthogonal gradient, GD vs Adam, per subspace."""

    d = optim.assign(setting=optim.optimizer.str.upper().str.replace("GD", "plain GD").str.replace("ADAM", "Adam"),
                     drift_plot=optim.drift.clip(lower=1e-12))
    sns.stripplot(d, x="subspace", y="drift_plot", hue="setting", dodge=True, ax=axes[0], log_scale=True, size=6)
    axes[0].set(xlabel="data subspace $P$", ylabel="relative drift of $\\Pi_\\perp W$\n(0 shown as $10^{-12}$)",
                title="does training move the orthogonal weights?")
    sns.stripplot(d, x="subspace", y="g_perp", hue="setting", dodge=True, ax=axes[1], size=6, legend=False)
    axes[1].set(xlabel="data subspace $P$", ylabel=f"median {GPERP} at data points",
                title="orthogonal input gradient after training")


def plot_gradients(df: pd.DataFrame, axes) -> None:
    """Per point: in-P vs P-perp gradient norms, and measured vs predicted P-perp norm."""
    ax = axes[0]
    ax.scatter(df.g_par, df.g_perp, s=12, alpha=0.6, color="C2")
    lim = [min(df.g_par.min(), df.g_perp.min()) * 0.8, max(df.g_par.max(), df.g_perp.max()) * 1.2]
    ax.plot(lim, lim, "k--", lw=1, label="equal norms")
    ax.set(xscale="log", yscale="log", xlabel=f"{GPAR} (within the data subspace)",
           ylabel=f"{GPERP} (orthogonal to it)", title="input gradient at each training point")
    ax.legend()
    ax = axes[1]
    ax.scatter(df.pred_perp, df.g_perp, s=12, alpha=0.6, color="C4")
    lim = [df[["pred_perp", "g_perp"]].min().min() * 0.8, df[["pred_perp", "g_perp"]].max().max() * 1.2]
    ax.plot(lim, lim, "k--", lw=1, label="measured = predicted")
    ax.set(xscale="log", yscale="log", xlabel="predicted $c_T\\,\\sigma_w\\sqrt{(d-k)\\,S(x)}$",
           ylabel=f"measured {GPERP}", title="the book's derivation, point by point")
    ax.legend()


def plot_flips(df: pd.DataFrame, t_u: float, axes) -> None:
    """ECDFs of the flip distances, and universal vs per-point orthogonal flips."""
    ax = axes[0]
    curves = [("delta_perp", "along $\\Pi_\\perp\\nabla f(x)$ (orthogonal to $P$)", "C3"),
              ("delta_univ", "along one universal orthogonal direction", "C1"),
              ("delta_par", "along $\\Pi_P\\nabla f(x)$ (within $P$)", "C0"),
              ("delta_rand", "along a random orthogonal direction", "C7")]
    for col, label, color in curves:
        v = np.sort(df[col].to_numpy())
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label, color=color)
    half = np.sort(df.dist_other.to_numpy() / 2)
    ax.step(half, np.arange(1, len(half) + 1) / len(half), where="post", ls=":", color="k",
            label="half the distance to the nearest other-label point")
    ax.axvline(t_u, color="C1", ls="--", lw=1)
    ax.set(xscale="log", xlabel="$L_2$ norm of the perturbation", ylabel="fraction of training points flipped",
           title="smallest label-flipping perturbation", ylim=(0, 1.02))
    ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize="x-small")
    ax = axes[1]
    ax.scatter(np.sqrt(df.S_all / df.S), df.delta_univ / df.delta_perp, s=12, alpha=0.6, color="C1")
    lim = [1, max(2.0, float(np.sqrt(df.S_all / df.S).max()) * 1.1)]
    ax.plot(lim, lim, "k--", lw=1, label="first-order prediction")
    ax.set(xlabel="$\\sqrt{\\sum_j v_j^2 / S(x)}$", ylabel="universal / own-gradient flip distance",
           title="price of using one direction for all points")
    ax.legend()


def plot_sweeps(meds: list[pd.DataFrame], exps: list[dict], axes, column: str = "g_perp") -> None:
    """Per sweep: per-member medians (one line per seed), seed mean, and the derivation's prediction."""
    ylabel = {"g_perp": f"median {GPERP} at data points",
              "delta_perp": "median flip distance along $\\Pi_\\perp\\nabla f$"}[column]
    for ax, med, e in zip(axes, meds, exps):
        xcol = "decay" if e["sweep"] == "weight decay" else "value"
        for _, g in med.groupby("seed"):
            ax.plot(g[xcol], g[column], color="C0", alpha=0.25, marker=".", lw=0.8)
        mean = med.groupby("value").agg(x=(xcol, "mean"), y=(column, lambda v: float(np.exp(np.log(v).mean()))),
                                        p=("pred_perp", lambda v: float(np.exp(np.log(v).mean()))))
        ax.plot(mean.x, mean.y, color="C0", marker="o", lw=2, label="measured (geometric mean)")
        if column == "g_perp":
            ax.plot(mean.x, mean.p, color="C3", ls="--", lw=1.5, label="derivation with measured S")
            x0, y0 = np.exp(np.log(mean.x).mean()), np.exp(np.log(mean.p).mean())
            xs = np.array([mean.x.min(), mean.x.max()])
            ax.plot(xs, y0 * (xs / x0) ** e["structural"], color="C2", ls=":", lw=1.5,
                    label=f"closed-form part (slope {e['structural']:.2f})")
            title = f"{e['sweep']}: slope {e['measured']:.2f} (pred. {e['predicted']:.2f})"
        else:
            title = f"{e['sweep']}: slope {e['delta_measured']:.2f}"
        xlabel = "decay factor $c_T = (1-\\eta\\lambda)^T$" if xcol == "decay" else e["sweep"]
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
        _log_ticks(ax.xaxis, mean.x)
    axes[0].legend(fontsize="x-small")


def plot_radius_ratio(med: pd.DataFrame, ax) -> None:
    """Orthogonal over in-subspace flip distance against the data radius (the scale the claim needs)."""
    ratio = med.delta_perp / med.delta_par
    for _, g in med.assign(ratio=ratio).groupby("seed"):
        ax.plot(g.value, g.ratio, color="C0", alpha=0.25, marker=".", lw=0.8)
    mean = med.assign(ratio=np.log(ratio)).groupby("value").ratio.mean()
    ax.plot(mean.index, np.exp(mean), color="C0", marker="o", lw=2, label="geometric mean over seeds")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="equal distances")
    ax.set(xscale="log", yscale="log", xlabel="data radius",
           ylabel="median flip distance: orthogonal / within $P$", title="which direction is cheaper?")
    _log_ticks(ax.xaxis, mean.index)
    ax.legend(fontsize="x-small")


def plot_diagonal(ens: ensemble.TwoLayerEnsemble, fit: ensemble.FitResult, cfg: SimpleNamespace, axes) -> None:
    """Decision regions of the three diagonal networks; the data line P is dashed."""
    x, y = diagonal_data()
    t = torch.linspace(-2, 2, 241)
    vals = decision_grid(ens, (t, t), lambda a, b: torch.stack([a, b], 1))
    a, b = torch.meshgrid(t, t, indexing="xy")
    names = ["vanilla (s = 1)", f"small init (s = {cfg.figure_small_init:g})",
             f"weight decay {cfg.figure_weight_decay[0]:g} ($c_T$ = {float(fit.decay[2]):.2f})"]
    for i, ax in enumerate(axes):
        _regions(ax, a, b, vals[i])
        ax.plot([-2, 2], [-2, 2], ls="--", color="0.4", lw=0.8, label="data line $P$")
        _points(ax, x[:, 0], x[:, 1], y, legend=i == 0)
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal",
               title=f"{names[i]}\n{int(fit.steps[i])} steps, min margin {float(fit.min_margin[i]):.2f}")
    axes[0].legend(fontsize="x-small", loc="lower right")


def plot_chessboard(cb: Chessboard, meas: pd.DataFrame, axes) -> None:
    """Vertical slices (x_1, x_3) through the row x_2 = -1 of the chessboard; last panel: the gains."""
    t1, t3 = torch.linspace(-1.6, 1.6, 161), torch.linspace(-1.0, 2.0, 151)
    a, b = torch.meshgrid(t1, t3, indexing="xy")
    xg, yg = chessboard_data(0.0)
    row = xg[:, 1] == -1
    picks = [("vanilla", AFFINE), ("small init", AFFINE), ("weight decay", AFFINE),
             ("vanilla", "z=0"), ("small init", "z=0")]
    vals = decision_grid(cb.ens, (t1, t3), lambda u, w: torch.stack([u, torch.full_like(u, -1.0), w], 1))
    for ax, (variant, plane) in zip(axes[:5], picks):
        i = int(cb.table.query("variant == @variant and plane == @plane and seed == 0").index[0])
        _regions(ax, a, b, vals[i])
        z = float(cb.x[i, 0, 2])
        ax.axhline(z, ls="--", color="0.4", lw=0.8)
        _points(ax, xg[row, 0], torch.full((int(row.sum()),), z), yg[row], legend=ax is axes[0])
        extra = f", $c_T$ = {float(cb.fit.decay[i]):.2f}" if variant == "weight decay" else ""
        ax.set(xlabel="$x_1$", ylabel="$x_3$ (off the plane)",
               title=f"{variant}, plane {plane}{extra}\n{int(cb.fit.steps[i])} steps, "
                     f"median off-plane flip {meas.delta_off[i]:.2f}")
    axes[0].legend(fontsize="x-small", loc="lower left")
    gain = affine_gain(meas)[["z=0", AFFINE]]
    for col, color in zip(gain.columns, ("C2", "C1")):
        axes[5].scatter(np.full(len(gain), list(gain.columns).index(col)), gain[col], color=color, s=25)
    for _, r in gain.iterrows():
        axes[5].plot(range(len(gain.columns)), r.to_numpy(), color="0.6", lw=0.8)
    axes[5].set(xticks=range(len(gain.columns)), xticklabels=[f"plane {c}" for c in gain.columns],
                xlim=(-0.5, len(gain.columns) - 0.5), ylabel="off-plane flip distance, small init / vanilla",
                title="robustness gain of small init\n(one line per seed)")


def key_results(flips: dict, law: tuple, drift: float, exps: list[dict], gain: pd.DataFrame) -> dict:
    """The scalars a sweep over this chapter collects (see lib.results)."""
    out = {"orthogonal_drift": drift, "universal_norm": flips["universal_norm"], "law_ratio": law[0]}
    for name in ("grad_ratio", "delta_ratio", "univ_flipped", "rand_flipped"):
        out[name] = flips[name][0]
    for e in exps:
        key = e["sweep"].replace(" (fan-in init)", "").replace(" (fixed init std)", "_fixed").replace(" ", "_")
        out[f"slope_{key}"] = e["measured"]
        out[f"predicted_{key}"] = e["predicted"]
        out[f"delta_slope_{key}"] = e["delta_measured"]
    out["affine_gain_ratio"] = float(np.exp(np.log(gain[AFFINE] / gain["z=0"]).mean()))
    return out
