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

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .. import data, ensemble, manifold
from ..claims import Claim, FAILS, HOLDS, INCONCLUSIVE, by_interval, by_test, fmt
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
    "lr": Param(float, 0.02, 0.00125, check="positive", help="gradient-descent step size"),
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
    "universal_fraction": Param(float, 0.5, 0.5, check="positive",
                                help="norm of the universal perturbation, as a fraction of the median "
                                     "distance to the nearest differently labelled point"),
    "figure_steps": Param(int, 30000, 40000, check="positive", help="step budget of the two synthetic figures"),
    "figure_small_init": Param(float, 0.2, 0.2, check="positive", help="init scale of the figures' small-init runs"),
    "figure_weight_decay": Param(float, 0.005, 0.005, check="nonnegative", help="L2 coefficient of the figures' "
                                                                                 "weight-decay runs"),
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
    for name in ("sweep_d", "sweep_k", "sweep_width", "sweep_init_scale", "sweep_weight_decay"):
        vals = getattr(cfg, name)
        if len(set(vals)) < 2:
            raise ParameterError(f"parameter {name!r} needs at least two distinct values, got {vals}")
    if min(cfg.sweep_d) <= cfg.k:
        raise ParameterError(f"parameter 'sweep_d' values must all exceed k={cfg.k}, got {cfg.sweep_d}")
    if max(cfg.sweep_k) >= cfg.d or min(cfg.sweep_k) < min_k:
        raise ParameterError(f"parameter 'sweep_k' values must lie in [{min_k}, d-1={cfg.d - 1}], got {cfg.sweep_k}")
    if max(cfg.sweep_weight_decay) * cfg.lr >= 1:
        raise ParameterError("parameter 'sweep_weight_decay' times lr must stay below 1")
    if cfg.weight_decay * cfg.lr >= 1:
        raise ParameterError("parameter 'weight_decay' times lr must stay below 1")


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
        return self.fit.decay_factor(self.lr, self.weight_decay)


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
    """``||P_perp(W_T) - c_T P_perp(W_0)|| / ||P_perp(W_0)||`` per member (0 under exact arithmetic for GD)."""
    basis = run.batch.basis
    perp_t = manifold.project_perp(run.ens.w.double(), basis.double())
    perp_0 = manifold.project_perp(run.w0.double(), basis.double())
    c = run.decay.to(perp_0.device)[:, None, None]
    return ((perp_t - c * perp_0).flatten(1).norm(dim=1) / perp_0.flatten(1).norm(dim=1)).cpu()


# ---------------------------------------------------------------- measures

def universal_direction(run: Run) -> torch.Tensor:
    """Per member, the unit vector along ``P_perp(sum_j v_j w_j)``: one direction for all points."""
    u = manifold.project_perp((run.ens.v[:, :, None] * run.ens.w).sum(1, keepdim=True), run.batch.basis)
    return u / u.norm(dim=-1, keepdim=True)


def _random_perp(run: Run) -> torch.Tensor:
    z = torch.randn(run.ens.n_members, 1, run.ens.dim, generator=torch.Generator().manual_seed(12345))
    z = z * (torch.arange(run.ens.dim)[None, None, :] < run.batch.dims[:, None, None])  # member's own coordinates
    z = manifold.project_perp(z.to(run.batch.basis), run.batch.basis)
    return z / z.norm(dim=-1, keepdim=True)


@torch.no_grad()
def measure(run: Run, directions: bool = True) -> pd.DataFrame:
    """One row per (member, point): gradient norms in P and P-perp, the derivation's prediction,
    and the exact flip distances along P-perp, within P, along the universal direction and
    along a random P-perp direction."""
    ens, b = run.ens, run.batch
    f = ens(b.x)
    grad = ens.input_grad(b.x)
    g_par, g_perp = manifold.split(grad, b.basis)
    S = ens.active_output_mass(b.x)
    c = run.decay.to(S)[:, None]
    scale = (run.sigma_w * (b.dims - b.ks).double().sqrt()).to(S)[:, None]
    cols = {
        "f": f, "margin": b.y * f, "g_par": g_par.norm(dim=-1), "g_perp": g_perp.norm(dim=-1), "S": S,
        "pred_perp": c * scale * S.sqrt(), "dist_other": b.nearest_other_class(),
    }
    if directions:
        toward = -torch.sign(f)[..., None]

        def flip(u):
            return ensemble.flip_distance(ens, b.x, u / u.norm(dim=-1, keepdim=True).clamp_min(1e-30))

        cols["delta_perp"] = flip(toward * g_perp)
        cols["delta_par"] = flip(toward * g_par)
        cols["delta_univ"] = flip(toward * universal_direction(run).expand_as(b.x))
        cols["delta_rand"] = flip(toward * _random_perp(run).expand_as(b.x))
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


SWEEPS = ("d (fan-in init)", "d (fixed init std)", "k", "width", "init scale", "weight decay")


def sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    """Train one ensemble over the values of one sweep x ``n_seeds``; per-member medians with ``value``.

    Member ``e`` has value index ``e // n_seeds`` and seed ``e % n_seeds``; all values of a
    seed share the same data set except in the d and k sweeps (the data live in R^d).
    """
    S = cfg.n_seeds
    vals = {"d (fan-in init)": cfg.sweep_d, "d (fixed init std)": cfg.sweep_d, "k": cfg.sweep_k,
            "width": cfg.sweep_width, "init scale": cfg.sweep_init_scale,
            "weight decay": cfg.sweep_weight_decay}[name]
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
    else:
        kw["weight_decay"] = per
    batch = make_batch(cfg.n_points, dims, ks, rule=cfg.rule, radius=cfg.radius, generator=cfg.generator,
                       device=cfg.device, shared=shared)
    run = train(cfg, batch, desc=f"sweep over {name}", **kw)
    med = per_seed_medians(measure(run), S)
    med["value"] = per
    med["decay"] = run.decay.numpy()
    med["reached"] = run.fit.reached.numpy()
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


FIGURE_VARIANTS = ("vanilla", "small init", "weight decay")


def _variants(cfg):
    return ([1.0, cfg.figure_small_init, 1.0], [0.0, 0.0, cfg.figure_weight_decay])


def figure_diagonal(cfg: SimpleNamespace) -> tuple[ensemble.TwoLayerEnsemble, ensemble.FitResult]:
    """The 2-D figure: vanilla, small-init and weight-decay networks on the 7 diagonal points."""
    x, y = diagonal_data(cfg.device)
    scales, wds = _variants(cfg)
    ens = ensemble.init(3, 2, DIAGONAL["width"], init_scale=scales, generator=cfg.generator, device=cfg.device)
    fit = ensemble.fit(ens, x, y, lr=DIAGONAL["lr"], steps=cfg.figure_steps, weight_decay=wds,
                       margin=DIAGONAL["margin"], desc="diagonal figure")
    return ens, fit


@dataclass
class Chessboard:
    """Networks on the chessboard: the three variants on the plane z=0.5, then ``n_seeds`` vanilla
    networks on z=0.5 and the same initialisations on the linear plane z=0 (the control)."""

    ens: ensemble.TwoLayerEnsemble
    fit: ensemble.FitResult
    x: torch.Tensor  # (E, 25, 3)
    y: torch.Tensor
    w0: torch.Tensor
    b0: torch.Tensor
    n_seeds: int


def figure_chessboard(cfg: SimpleNamespace) -> Chessboard:
    """The 3-D figure plus a paired control on the linear plane z=0, all in one ensemble."""
    xa, y = chessboard_data(CHESSBOARD["z"], cfg.device)
    x0, _ = chessboard_data(0.0, cfg.device)
    S = cfg.n_seeds
    scales, wds = _variants(cfg)
    figure = ensemble.init(3, 3, CHESSBOARD["width"], init_scale=scales, generator=cfg.generator, device=cfg.device)
    pairs = ensemble.init(S, 3, CHESSBOARD["width"], generator=cfg.generator, device=cfg.device)
    ens = ensemble.TwoLayerEnsemble(*(torch.cat([a, b, b]) for a, b in
                                      ((figure.w, pairs.w), (figure.b, pairs.b), (figure.v, pairs.v))))
    x = torch.stack([xa] * (3 + S) + [x0] * S)
    w0, b0 = ens.w.clone(), ens.b.clone()
    fit = ensemble.fit(ens, x, y, lr=CHESSBOARD["lr"], steps=cfg.figure_steps,
                       weight_decay=wds + [0.0] * (2 * S), margin=CHESSBOARD["margin"], desc="chessboard figure")
    return Chessboard(ens, fit, x, y, w0, b0, S)


def chessboard_measures(cb: Chessboard) -> pd.DataFrame:
    """Per member: the plane, median |df/dx_3| and in-plane gradient, and the median exact distance
    to flip a label by moving straight off the plane (along +-e_3)."""
    f = cb.ens(cb.x)
    grad = cb.ens.input_grad(cb.x)
    dz = grad[..., 2]
    e3 = torch.zeros_like(cb.x)
    e3[..., 2] = 1.0
    toward = (-torch.sign(f) * torch.sign(dz))[..., None]
    delta_off = ensemble.flip_distance(cb.ens, cb.x, toward * e3)
    S = cb.n_seeds
    names = list(FIGURE_VARIANTS) + [f"vanilla, z=0.5 (seed {i})" for i in range(S)] + \
        [f"vanilla, z=0 (seed {i})" for i in range(S)]
    return pd.DataFrame({
        "run": names, "plane": ["z=0.5"] * (3 + S) + ["z=0"] * S,
        "seed": [-1, -1, -1] + list(range(S)) * 2,
        "off_plane_grad": dz.abs().median(1).values.cpu().numpy(),
        "in_plane_grad": grad[..., :2].norm(dim=-1).median(1).values.cpu().numpy(),
        "delta_off": delta_off.median(1).values.cpu().numpy(),
        "steps": cb.fit.steps.numpy(), "min_margin": cb.fit.min_margin.numpy(),
    })


def decision_grid(ens: ensemble.TwoLayerEnsemble, axes: tuple[torch.Tensor, torch.Tensor], embed) -> torch.Tensor:
    """``f`` of every member on a 2-D grid; ``embed(a, b)`` maps grid coordinates to inputs ``(N, d)``."""
    a, b = torch.meshgrid(*axes, indexing="xy")
    with torch.no_grad():
        out = ens(embed(a.flatten(), b.flatten()).to(ens.w))
    return out.reshape(ens.n_members, *a.shape).cpu()
