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

from contextlib import contextmanager
import functools
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats
import seaborn as sns
import torch

from .. import config, data, ensemble, flip, plots, subspace
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
    "figure_seeds": Param(int, 4, 16, check=lambda v: None if v >= 2 else "needs >= 2 for a confidence interval",
                          help="networks per variant (and plane) of the two synthetic figures"),
    "diagonal_init": Param(str, "gaussian-weights", "gaussian-weights", choices=ensemble.INIT_SCHEMES,
                           help="initialisation of the diagonal figure (the authors': gaussian-weights)"),
    "diagonal_small_init_factor": Param(float, 3.0, 3.0, check="positive",
                                        help="weights divided by this in the diagonal's small-init runs (book's choice)"),
    "diagonal_weight_decay": Param(float, 0.005, 0.005, check="nonnegative",
                                   help="L2 coefficient of the diagonal's weight-decay runs (book's choice)"),
    "diagonal_steps": Param(int, 25000, 40000, check="positive",
                            help="step (epoch) budget of the diagonal figure (the authors': 40,000; quick: 25,000)"),
    "chessboard_init": Param(str, "pytorch-uniform", "pytorch-uniform", choices=ensemble.INIT_SCHEMES,
                             help="initialisation of the chessboard figure (the authors': pytorch-uniform)"),
    "chessboard_small_init_factor": Param(float, 3.0, 3.0, check="positive",
                                          help="weights divided by this in the chessboard's small-init runs "
                                               "(the authors': 3)"),
    "chessboard_weight_decay": Param(float, 0.003, 0.003, check="nonnegative",
                                     help="L2 coefficient of the chessboard's weight-decay runs (the authors': 0.003)"),
    "chessboard_steps": Param(int, 15000, 100000, check="positive",
                              help="step (epoch) budget of the chessboard figure (the authors': 100,000; "
                                   "quick: 15,000)"),
}

# The authors' settings for the two synthetic figures, from their public code
# (odeliamel/off-manifold-robustness: diagonal/train.py, chess/train.py): width, SGD step
# on the full batch, and the minimum margin at which training stops.
DIAGONAL = dict(width=100, lr=0.02, margin=0.3)
CHESSBOARD = dict(width=400, lr=0.05, margin=0.01, z=0.5)
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
    for fig in ("diagonal", "chessboard"):
        if getattr(cfg, f"{fig}_weight_decay") * (DIAGONAL if fig == "diagonal" else CHESSBOARD)["lr"] >= 1:
            raise ParameterError(f"parameter '{fig}_weight_decay' times the figure's step must stay below 1")
    if cfg.weight_decay * cfg.lr >= 1:
        raise ParameterError(f"parameter 'lr' ({cfg.lr}) times 'weight_decay' ({cfg.weight_decay}) must stay below 1")


config.register(PARAMS, validate)  # resolve and lib.sweep run it before any compute


# ---------------------------------------------------------------- cost of each stage

STAGE_SECONDS: dict[str, float] = {}  # wall time of each stage of this run, filled as the stages run


@contextmanager
def _stage(name: str):
    """Record the wall time of one stage of the chapter in ``STAGE_SECONDS``."""
    t0 = time.perf_counter()
    yield
    STAGE_SECONDS[name] = time.perf_counter() - t0


def _timed(name: str):
    """Decorator: the call is one stage of the chapter (see :func:`_stage`)."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kw):
            with _stage(name):
                return fn(*args, **kw)
        return inner
    return wrap


def stages(cfg: SimpleNamespace) -> pd.DataFrame:
    """Every training stage of the chapter: networks, points, input dim, width and step budget."""
    S = cfg.n_seeds
    rows = [("main runs", S, cfg.n_points, cfg.d, cfg.width, cfg.steps),
            ("optimizer comparison", S, cfg.n_points, cfg.d, cfg.width, 4 * OPTIMIZER_STEPS)]
    for name in SWEEPS:
        vals = sweep_values(cfg, name)
        d = max(vals) if name.startswith("d ") else cfg.d
        m = int(max(vals)) if name == "width" else cfg.width
        rows.append((f"sweep: {name}", S * len(vals), cfg.n_points, d, m, cfg.steps))
    rows += [("diagonal figure", 3 * cfg.figure_seeds, 7, 2, DIAGONAL["width"], cfg.diagonal_steps),
             ("chessboard figure", 5 * cfg.figure_seeds, 25, 3, CHESSBOARD["width"], cfg.chessboard_steps)]
    return pd.DataFrame(rows, columns=["stage", "networks", "points", "d", "width", "step budget"])


def _seconds_per_step(E: int, n: int, d: int, m: int, device, budget: float = 0.25) -> float:
    """Measured wall time of one full-batch step of ``E`` networks ``d -> m -> 1`` on ``n`` points."""
    g = torch.Generator().manual_seed(0)
    ens = ensemble.init(E, d, m, generator=g, device=device)
    x, y = torch.randn(n, d, generator=g).to(device), torch.randint(0, 2, (n,), generator=g).to(device)
    ensemble.fit(ens, x, y, lr=1e-3, steps=2, progress=False)  # warm-up
    t0 = time.perf_counter()
    ensemble.fit(ens, x, y, lr=1e-3, steps=2, progress=False)
    per = (time.perf_counter() - t0) / 2
    k = int(min(200, budget / max(per, 1e-9)))
    if k > 2:  # cheap enough: time more steps for a steadier figure
        t0 = time.perf_counter()
        ensemble.fit(ens, x, y, lr=1e-3, steps=k, progress=False)
        per = (time.perf_counter() - t0) / k
    return per


def expected_costs(cfg: SimpleNamespace) -> pd.DataFrame:
    """:func:`stages` with the calibrated time per step and the time of the whole step budget.

    The budget time is an upper bound: a network that reaches the margin leaves its batch,
    so a stage costs less the sooner its networks finish (the measurement and plotting
    after training are not counted).
    """
    out = stages(cfg)
    out["ms per step"] = [1e3 * _seconds_per_step(*r, device=cfg.device)
                          for r in out[["networks", "points", "d", "width"]].itertuples(index=False)]
    out["at most (s)"] = out["ms per step"] * out["step budget"] / 1e3
    return out.set_index("stage")


def cost_report(expected: pd.DataFrame) -> pd.DataFrame:
    """The expected upper bound of every stage next to the wall time it took in this run."""
    out = expected[["networks", "step budget", "at most (s)"]].copy()
    out["took (s)"] = [STAGE_SECONDS.get(name, math.nan) for name in out.index]
    return out


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest sensible unit (s, min or h)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


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

@_timed("main runs")
def baseline(cfg: SimpleNamespace) -> tuple[Run, pd.DataFrame]:
    """``n_seeds`` networks at the chapter's main setting, each on its own data set and subspace."""
    E = cfg.n_seeds
    batch = make_batch(cfg.n_points, [cfg.d] * E, [cfg.k] * E, rule=cfg.rule, radius=cfg.radius,
                       generator=cfg.generator, device=cfg.device)
    run = train(cfg, batch, desc="main runs")
    return run, measure(run)


OPTIMIZER_STEPS = 300  # fixed training length of the GD/Adam comparison (the book's choice)


@_timed("optimizer comparison")
def optimizer_comparison(cfg: SimpleNamespace, steps: int = OPTIMIZER_STEPS) -> pd.DataFrame:
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


def sweep_values(cfg: SimpleNamespace, name: str) -> list:
    """The values of sweep ``name``."""
    return {"d (fan-in init)": cfg.sweep_d, "d (fixed init std)": cfg.sweep_d, "k": cfg.sweep_k,
            "width": cfg.sweep_width, "init scale": cfg.sweep_init_scale,
            "weight decay": cfg.sweep_weight_decay, "data radius": cfg.sweep_radius}[name]


def sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    """Train one ensemble over the values of one sweep x ``n_seeds``; per-member medians with ``value``.

    Member ``e`` has value index ``e // n_seeds`` and seed ``e % n_seeds``; all values of a
    seed share the same data set except in the d and k sweeps (the data live in R^d).
    The weight-decay sweep runs the full ``steps`` budget without the margin stop, so
    its decay factors ``c_T = (1 - lr wd)^T`` span a range: stopped at the margin, its
    networks stop after a few hundred steps with ``c_T`` close to 1 everywhere and the
    slope in ``c_T`` is not measurable. The other sweeps stop at the margin. The radius sweep scales the data and the step size
    together (``lr * (radius / r)^2``), which keeps the first-layer step in units of the
    data the same.
    """
    with _stage(f"sweep: {name}"):
        return _sweep(cfg, name)


def _sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    S = cfg.n_seeds
    vals = sweep_values(cfg, name)
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

AFFINE = f"z={CHESSBOARD['z']:g}"
VARIANTS = ("vanilla", "small init", "weight decay")


@dataclass
class Figure:
    """The networks of one synthetic figure: ``table`` has one row per member (variant, seed,
    factor, weight decay, and for the chessboard the plane); ``x`` is ``(E, n, d)``."""

    ens: ensemble.TwoLayerEnsemble
    fit: ensemble.FitResult
    x: torch.Tensor
    y: torch.Tensor
    w0: torch.Tensor
    b0: torch.Tensor
    table: pd.DataFrame


def _figure_members(S: int, factor: float, wd: float) -> list[dict]:
    """(variant, seed, init factor, weight decay) of the ``3 S`` networks of a figure, variant-major."""
    settings = {"vanilla": (1.0, 0.0), "small init": (factor, 0.0), "weight decay": (1.0, wd)}
    return [{"variant": v, "seed": i, "factor": settings[v][0], "weight_decay": settings[v][1]}
            for v in VARIANTS for i in range(S)]


def _train_figure(ens, x, y, table: pd.DataFrame, spec: dict, steps: int, desc: str) -> Figure:
    w0, b0 = ens.w.clone(), ens.b.clone()
    fit = ensemble.fit(ens, x, y, lr=spec["lr"], steps=steps, weight_decay=table.weight_decay.tolist(),
                       margin=spec["margin"], desc=desc)
    return Figure(ens, fit, x, y, w0, b0, table.assign(steps=fit.steps.numpy(), reached=fit.reached.numpy(),
                                                       min_margin=fit.min_margin.numpy()))


@_timed("diagonal figure")
def figure_diagonal(cfg: SimpleNamespace) -> Figure:
    """The 2-D figure: ``figure_seeds`` vanilla, small-init and weight-decay networks on the 7 diagonal points."""
    x, y = data.diagonal_points(cfg.device)
    table = pd.DataFrame(_figure_members(cfg.figure_seeds, cfg.diagonal_small_init_factor, cfg.diagonal_weight_decay))
    ens = ensemble.init(len(table), 2, DIAGONAL["width"], init_scale=(1 / table.factor).tolist(),
                        scheme=cfg.diagonal_init, generator=cfg.generator, device=cfg.device)
    return _train_figure(ens, x.expand(len(table), -1, -1), y, table, DIAGONAL, cfg.diagonal_steps,
                         "diagonal figure")


@_timed("chessboard figure")
def figure_chessboard(cfg: SimpleNamespace) -> Figure:
    """The 3-D figure's networks on the plane z=0.5, and the book's paired control on z=0.

    Per seed, the vanilla and the small-init network start from the same initialisation on
    both planes (z=0 is a linear subspace, z=0.5 only affine); the weight-decay networks
    train on z=0.5 only.
    """
    S, z = cfg.figure_seeds, CHESSBOARD["z"]
    planes = {AFFINE: data.chessboard_points(z, cfg.device)[0], "z=0": data.chessboard_points(0.0, cfg.device)[0]}
    y = data.chessboard_points(z, cfg.device)[1]
    members = pd.DataFrame(_figure_members(S, cfg.chessboard_small_init_factor, cfg.chessboard_weight_decay))
    parts, xs, rows = [], [], []
    for variant, group in members.groupby("variant", sort=False):
        init = ensemble.init(S, 3, CHESSBOARD["width"], init_scale=(1 / group.factor).tolist(),
                             scheme=cfg.chessboard_init, generator=cfg.generator, device=cfg.device)
        for plane, xp in planes.items():
            if variant == "weight decay" and plane != AFFINE:
                continue
            parts.append(init)
            xs += [xp] * S
            rows.append(group.assign(plane=plane))
    table = pd.concat(rows, ignore_index=True)
    ens = ensemble.TwoLayerEnsemble.concat(parts)
    return _train_figure(ens, torch.stack(xs), y, table, CHESSBOARD, cfg.chessboard_steps, "chessboard figure")


def affine_drift(cb: Figure) -> np.ndarray:
    """``max_j |Delta w_j3 - z Delta b_j|`` per member: 0 under GD without weight decay, because on the
    plane x_3 = z the gradient of w_j3 is exactly z times the gradient of b_j."""
    z = cb.x[:, :1, 2]  # (E, 1): every point of a member has the same x_3
    return ((cb.ens.w[..., 2] - cb.w0[..., 2]) - z * (cb.ens.b - cb.b0)).abs().max(1).values.cpu().numpy()


def line_flip(ens: ensemble.TwoLayerEnsemble, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Exact smallest ``|t|`` that flips the label of ``x + t u`` (either way along the unit ``u``), ``(E, n)``."""
    plain = ens.bias_as_unit()
    u = u.expand_as(x)
    return torch.minimum(flip.ray_distance_exact(plain, x, u), flip.ray_distance_exact(plain, x, -u))


@torch.no_grad()
def diagonal_measures(fig: Figure) -> pd.DataFrame:
    """Per member: median exact flip distance perpendicular to the data line, and along it."""
    normal = torch.tensor([1.0, -1.0], dtype=fig.x.dtype, device=fig.x.device) / math.sqrt(2)
    out = fig.table.copy()
    out["delta_off"] = line_flip(fig.ens, fig.x, normal).median(1).values.cpu().numpy()
    out["delta_along"] = line_flip(fig.ens, fig.x, normal.flip(0).abs()).median(1).values.cpu().numpy()
    return out


@torch.no_grad()
def chessboard_measures(cb: Figure) -> pd.DataFrame:
    """Per member: median exact distance to flip a label by moving straight off the plane (along
    +-e_3), the off-plane derivative, and its split into the frozen initial part
    ``sum_j v_j a_j w_j3(0)`` and the part trained together with the biases."""
    grad = cb.ens.input_grad(cb.x)
    dz = grad[..., 2]
    gate = (cb.ens.preactivations(cb.x) > 0).to(dz) * cb.ens.v[:, None, :]
    frozen = (gate * cb.w0[:, None, :, 2]).sum(-1)
    e3 = torch.tensor([0.0, 0.0, 1.0], dtype=cb.x.dtype, device=cb.x.device)
    out = cb.table.copy()
    out["delta_off"] = line_flip(cb.ens, cb.x, e3).median(1).values.cpu().numpy()
    out["dfdz"] = dz.abs().median(1).values.cpu().numpy()
    out["frozen_part"] = frozen.abs().median(1).values.cpu().numpy()
    out["trained_part"] = (dz - frozen).abs().median(1).values.cpu().numpy()
    out["in_plane_grad"] = grad[..., :2].norm(dim=-1).median(1).values.cpu().numpy()
    return out


def reach_summary(diag: Figure, cb: Figure) -> pd.DataFrame:
    """How many runs of each figure and variant reached the stop margin within the step budget."""
    tables = [diag.table.assign(figure="diagonal", plane="line"), cb.table.assign(figure="chessboard")]
    both = pd.concat(tables, ignore_index=True)
    return both.groupby(["figure", "plane", "variant"], sort=False).agg(
        runs=("reached", "size"), reached=("reached", "sum"), median_steps=("steps", "median"),
        max_steps=("steps", "max"), median_final_margin=("min_margin", "median"))


def reach_sentences(reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """One computed sentence per figure: how many runs of each variant reached the stop margin."""
    out = []
    for fig, spec in (("diagonal", DIAGONAL), ("chessboard", CHESSBOARD)):
        items = [f"{int(r.reached)} of {int(r.runs)} {variant} runs" + (f" on {plane}" if fig == "chessboard" else "")
                 for (plane, variant), r in reach.loc[fig].iterrows()]
        out.append(f"{fig.capitalize()} (stop at margin {spec['margin']:g}, budget "
                   f"{getattr(cfg, fig + '_steps'):,} steps): " + ", ".join(items) + " reached the margin.")
    return "\n".join(out)


def fitted(table: pd.DataFrame) -> pd.Series:
    """Which networks classify every training point correctly (minimum margin above 0).

    A flip distance measures how far a label is from changing; for a network that has
    not fitted its points it measures nothing the paper speaks of, so gains are taken
    between fitted networks only. The stop margin is stricter; a network can fit its
    points without reaching it.
    """
    return table.min_margin > 0


def robustness_gains(meas: pd.DataFrame, plane: str | None = None) -> pd.DataFrame:
    """Per seed: how much small init and weight decay multiply the median off-data flip distance.

    NaN where the variant's or the vanilla network has not fitted its points (:func:`fitted`).
    """
    m = meas if plane is None else meas[meas.plane == plane]
    m = m.assign(delta_off=m.delta_off.where(fitted(m)))
    pv = m.pivot_table(index="seed", columns="variant", values="delta_off", dropna=False)
    return pd.DataFrame({v: pv[v] / pv["vanilla"] for v in ("small init", "weight decay") if v in pv})


def affine_gain(meas: pd.DataFrame) -> pd.DataFrame:
    """Per seed (rows) and plane (columns): how much small init multiplies the off-plane flip distance
    (NaN where a network has not fitted its points)."""
    return pd.DataFrame({plane: robustness_gains(meas, plane)["small init"] for plane in ("z=0", AFFINE)})


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


def sweep_key(name: str) -> str:
    """A sweep's name as a short snake_case key (``"d (fixed init std)"`` -> ``"d_fixed"``)."""
    return name.replace(" (fan-in init)", "").replace(" (fixed init std)", "_fixed").replace(" ", "_")


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
                          agreement_verdict(e["diff_lo"], e["diff_hi"]), id=f"ch04.exponent_{sweep_key(e['sweep'])}",
                          estimate=e["diff"], lo=e["diff_lo"], hi=e["diff_hi"]))
    return rows


def law_ratio(meds: list[pd.DataFrame]) -> tuple[float, float, float]:
    """Mean over every network of the mean measured / predicted squared orthogonal gradient norm."""
    return mean_ci(np.concatenate([m.law.to_numpy() for m in meds]))


def ratio_ci(ratios) -> tuple[float, float, float]:
    """Geometric mean of positive ratios (one per seed) and its 95% t-interval, from the logs."""
    m, lo, hi = mean_ci(np.log(np.asarray(ratios, dtype=float)))
    return math.exp(m), math.exp(lo), math.exp(hi)


def _interval_claim(cid: str, claim: str, statistic: str, est: tuple[float, float, float], threshold: float,
                    above: bool = True, digits: int = 2) -> Claim:
    """A claim decided by which side of ``threshold`` the interval ``est = (estimate, lo, hi)`` lies."""
    value = fmt(est[0], est[1:], digits) if np.isfinite(est[1]) else f"{est[0]:.{digits}g}"
    return Claim(claim, statistic, value, by_interval(est[1], est[2], threshold, above=above), id=cid,
                 estimate=est[0], lo=est[1], hi=est[2])


def claims(flips: dict, law: tuple[float, float, float], drift_gd: float, optim: pd.DataFrame,
           exps: list[dict], gain: pd.DataFrame, tol: float, figure_gains: dict[str, pd.DataFrame]) -> list[Claim]:
    """The chapter's claims table, every verdict computed from the run.

    ``figure_gains`` maps ``"diagonal"`` and ``"chessboard"`` to :func:`robustness_gains` of
    the two synthetic figures (the chessboard's on its plane z=0.5).
    """
    by_name = {e["sweep"]: e for e in exps}
    adam_rand = float(optim.query("optimizer == 'adam' and subspace == 'random'").drift.median())
    adam_axis = float(optim.query("optimizer == 'adam' and subspace == 'axis-aligned'").drift.max())
    init, wd = by_name["init scale"], by_name["weight decay"]
    nan = math.nan
    rows = [
        Claim("[book] plain GD never moves the P-perp part of the first-layer weights (c_T times it with L2)",
              "max relative drift over every GD network of the chapter (float32)", f"{drift_gd:.1e}",
              by_test(drift_gd < tol, drift_gd >= tol), id="ch04.frozen_orthogonal_weights",
              estimate=drift_gd, lo=nan, hi=nan),
        Claim("[book] Adam moves it when P is not axis-aligned, and not when it is",
              "median drift, Adam on a random P / max drift, Adam on an axis-aligned P",
              f"{adam_rand:.2g} / {adam_axis:.1e}", by_test(adam_rand > 1e-2 and adam_axis < tol,
                                                            adam_rand <= 1e-2 or adam_axis >= tol),
              id="ch04.adam_moves_orthogonal_weights", estimate=adam_rand, lo=nan, hi=nan),
        Claim("[book] E||grad_perp f(x)||^2 = c_T^2 sigma_w^2 (d-k) S(x) at data points",
              f"mean of measured / predicted squared norm over all networks of the chapter, 95% CI; "
              f"agreement within +-{EQUIVALENCE}",
              fmt(law[0], law[1:], 3), agreement_verdict(law[1] - 1, law[2] - 1), id="ch04.orthogonal_gradient_law",
              estimate=law[0], lo=law[1], hi=law[2]),
        _interval_claim("ch04.large_orthogonal_gradient",
                        "Trained networks have large gradients orthogonal to the data subspace",
                        "median ||grad_perp f|| / ||grad_P f|| at data points (the book reads 'large' as > 1)",
                        flips["grad_ratio"], 1.0),
        _interval_claim("ch04.orthogonal_flip_cheaper", "Small L2 perturbations orthogonal to P flip labels",
                        "median (flip distance along P-perp) / (flip distance within P); holds if < 1",
                        flips["delta_ratio"], 1.0, above=False),
        _interval_claim("ch04.universal_direction", "One universal orthogonal direction flips most training points",
                        f"fraction flipped at norm {flips['universal_norm']:.2g} (random P-perp direction: "
                        f"{flips['rand_flipped'][0]:.2f}); holds if > 0.5", flips["univ_flipped"], 0.5),
        _interval_claim("ch04.small_init_robust", "A smaller initialisation makes the network more robust "
                        "orthogonally to P", "log-log slope of the P-perp flip distance in the init scale; "
                        "holds if < 0", (init["delta_measured"], init["delta_measured_lo"], init["delta_measured_hi"]),
                        0.0, above=False),
        _interval_claim("ch04.weight_decay_robust", "L2 regularisation makes the network more robust "
                        "orthogonally to P", "log-log slope of the P-perp flip distance in the decay factor c_T; "
                        "holds if < 0", (wd["delta_measured"], wd["delta_measured_lo"], wd["delta_measured_hi"]),
                        0.0, above=False),
    ]
    for fig, where in (("diagonal", "perpendicular to the diagonal"), ("chessboard", "off the plane z=0.5")):
        g = figure_gains[fig]
        for variant, short in (("small init", "small_init"), ("weight decay", "weight_decay")):
            rows.append(_fitted_ratio_claim(
                f"ch04.{fig}_{short}_gain", f"{fig.capitalize()} figure: {variant} makes labels harder to flip "
                f"{where}", f"{variant} / vanilla median exact flip distance {where}, geometric mean over the",
                "; holds if > 1", g[variant], 1.0))
    rows.append(_fitted_ratio_claim(
        "ch04.affine_plane_weaker", "The effect is weaker on the chessboard's affine plane than on a linear subspace",
        "ratio of the small-init robustness gain off the plane z=0.5 to that off z=0, over the",
        "; holds if < 1", gain[AFFINE] / gain["z=0"], 1.0, above=False))
    return rows + sweep_claims(exps)


def _fitted_ratio_claim(cid: str, claim: str, before: str, after: str, ratios: pd.Series, threshold: float,
                        above: bool = True) -> Claim:
    """:func:`_interval_claim` on the per-seed ``ratios`` of fitted networks (NaN: a network did not fit).

    With fewer than two such seeds there is no interval, and the claim is inconclusive:
    its value says how many seeds fitted.
    """
    ok = ratios.dropna()
    stat = f"{before} {len(ok)} of {len(ratios)} seeds whose networks all fit their points, 95% CI{after}"
    if len(ok) < 2:
        nan = math.nan
        return Claim(claim, stat, f"not measured: {len(ok)} of {len(ratios)} seeds fitted", INCONCLUSIVE, id=cid,
                     estimate=nan, lo=nan, hi=nan)
    return _interval_claim(cid, claim, stat, ratio_ci(ok), threshold, above=above)


# ---------------------------------------------------------------- figures

GPERP = "$\\|\\Pi_\\perp\\nabla_x f(x)\\|$"
GPAR = "$\\|\\Pi_P\\nabla_x f(x)\\|$"


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
        plots.log_ticks(ax.xaxis, mean.x)
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
    plots.log_ticks(ax.xaxis, mean.index)
    ax.legend(fontsize="x-small")


def _first_seed(fig: Figure, variant: str, plane: str | None = None) -> int:
    """Index of the seed-0 member of ``variant`` (on ``plane``)."""
    q = (fig.table.variant == variant) & (fig.table.seed == 0)
    if plane is not None:
        q &= fig.table.plane == plane
    return int(np.flatnonzero(q.to_numpy())[0])


def _variant_title(fig: Figure, i: int, meas: pd.DataFrame, plane: str | None = None) -> str:
    """Three short title lines: the variant (and plane), its training, its off-data flip distance."""
    r = fig.table.iloc[i]
    what = {"vanilla": "vanilla", "small init": f"small init (weights / {r.factor:g})",
            "weight decay": f"weight decay {r.weight_decay:g}"}[r.variant]
    decay = f", $c_T$ = {float(fig.fit.decay[i]):.2f}" if r.variant == "weight decay" else ""
    d = float(meas.delta_off.iloc[i])
    flip_text = f"median off-data flip {d:.2f}" if math.isfinite(d) else "median off-data flip: no label change"
    fit = "" if fitted(fig.table).iloc[i] else " (not fitted)"
    return (f"{what}{', plane ' + plane if plane else ''}\n{int(r.steps)} steps{decay}, min margin "
            f"{r.min_margin:.2f}{fit}\n{flip_text}")


def plot_diagonal(fig: Figure, meas: pd.DataFrame, axes) -> None:
    """Decision regions of the seed-0 network of each variant; the data line P is dashed."""
    x, y = data.diagonal_points()
    t = torch.linspace(-2, 2, 241)
    vals = decision_grid(fig.ens, (t, t), lambda a, b: torch.stack([a, b], 1))
    a, b = torch.meshgrid(t, t, indexing="xy")
    for ax, variant in zip(axes, VARIANTS):
        i = _first_seed(fig, variant)
        _regions(ax, a, b, vals[i])
        ax.plot([-2, 2], [-2, 2], ls="--", color="0.4", lw=0.8, label="data line $P$")
        _points(ax, x[:, 0], x[:, 1], y, legend=ax is axes[0])
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
        ax.set_title(_variant_title(fig, i, meas), fontsize="small")
    axes[0].legend(fontsize="x-small", loc="lower right")


def plot_chessboard(cb: Figure, meas: pd.DataFrame, axes) -> None:
    """Vertical slices (x_1, x_3) through the row x_2 = 0 of the chessboard; last panel: the gains."""
    t1, t3 = torch.linspace(-0.4, 1.4, 181), torch.linspace(-0.5, 1.5, 161)
    a, b = torch.meshgrid(t1, t3, indexing="xy")
    xg, yg = data.chessboard_points(0.0)
    row = xg[:, 1] == 0
    picks = [("vanilla", AFFINE), ("small init", AFFINE), ("weight decay", AFFINE),
             ("vanilla", "z=0"), ("small init", "z=0")]
    vals = decision_grid(cb.ens, (t1, t3), lambda u, w: torch.stack([u, torch.zeros_like(u), w], 1))
    for ax, (variant, plane) in zip(axes[:5], picks):
        i = _first_seed(cb, variant, plane)
        _regions(ax, a, b, vals[i])
        z = float(cb.x[i, 0, 2])
        ax.axhline(z, ls="--", color="0.4", lw=0.8)
        _points(ax, xg[row, 0], torch.full((int(row.sum()),), z), yg[row], legend=ax is axes[0])
        ax.set(xlabel="$x_1$", ylabel="$x_3$ (off the plane)")
        ax.set_title(_variant_title(cb, i, meas, plane), fontsize="small")
    axes[0].legend(fontsize="x-small", loc="lower left")
    gain = affine_gain(meas)
    for col, color in zip(gain.columns, ("C2", "C1")):
        axes[5].scatter(np.full(len(gain), list(gain.columns).index(col)), gain[col], color=color, s=25)
    for _, r in gain.iterrows():
        axes[5].plot(range(len(gain.columns)), r.to_numpy(), color="0.6", lw=0.8)
    axes[5].set(xticks=range(len(gain.columns)), xticklabels=[f"plane {c}" for c in gain.columns],
                xlim=(-0.5, len(gain.columns) - 0.5),
                ylabel="off-plane flip distance:\nsmall init / vanilla")
    # A gain is not drawn where a network has not fitted its points (NaN), or where the exact flip
    # distance is infinite because the label never changes off the data; the title counts both.
    g = gain.to_numpy()
    unfit, inf = int(np.isnan(g).sum()), int(np.isinf(g).sum())
    notes = ([f"{unfit} of {g.size} not drawn: points not fitted"] if unfit else []) + \
        ([f"{inf} not drawn: no label change off the plane"] if inf else [])
    axes[5].set_title("\n".join(["gain of small init", "(one line per seed)"] + notes), fontsize="small")
    if not np.isfinite(g).any():  # an empty panel says why instead of showing a meaningless axis
        axes[5].set_yticks([])
        axes[5].text(0.5, 0.5, "no seed with both networks\nfitted and a label change\noff the plane",
                     transform=axes[5].transAxes, ha="center", va="center", fontsize="small", color="0.3")


def key_results(flips: dict, law: tuple, drift: float, exps: list[dict], gain: pd.DataFrame,
                reach: pd.DataFrame) -> dict:
    """The scalars a sweep over this chapter collects (see lib.results)."""
    out = {"orthogonal_drift": drift, "universal_norm": flips["universal_norm"], "law_ratio": law[0]}
    for (fig, plane, variant), r in reach.iterrows():
        out[f"reached_{fig}_{plane}_{variant}".replace(" ", "_").replace("=", "").replace(".", "")] = int(r.reached)
    for name in ("grad_ratio", "delta_ratio", "univ_flipped", "rand_flipped"):
        out[name] = flips[name][0]
    for e in exps:
        key = sweep_key(e["sweep"])
        out[f"slope_{key}"] = e["measured"]
        out[f"predicted_{key}"] = e["predicted"]
        out[f"delta_slope_{key}"] = e["delta_measured"]
    fitted_ratios = (gain[AFFINE] / gain["z=0"]).dropna()  # NaN (recorded null) when no seed fitted
    out["affine_gain_ratio"] = float(np.exp(np.log(fitted_ratios).mean())) if len(fitted_ratios) else math.nan
    return out
