"""The seven sweeps: one setting varied at a time, and the log-log exponents the derivation predicts."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from .costs import STAGES
from .networks import Run, make_batch, mean_ci, measure, per_seed_medians, train
from .params import DATA_SCALE, sweep_values

__all__ = ["DATA_SCALE", "RATIOS", "data_scale_sweep", "exponents", "ratio_slopes", "sweep", "sweep_key"]


def sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    """Train one ensemble over the values of one sweep x ``n_seeds``; per-member medians with ``value``.

    Member ``e`` has value index ``e // n_seeds`` and seed ``e % n_seeds``; all values of a
    seed share the same data set except in the d and k sweeps (the data live in R^d).
    The weight-decay sweep runs the full ``steps`` budget without the margin stop, so
    its decay factors ``c_T = (1 - lr wd)^T`` span a range: stopped at the margin, its
    networks stop after a few hundred steps with ``c_T`` close to 1 everywhere and the
    slope in ``c_T`` is not measurable. The other sweeps stop at the margin. The radius
    sweep scales the data and the step size together (``lr * (radius / r)^2``), which
    keeps the first-layer step in units of the data the same.
    """
    with STAGES(f"sweep: {name}"):
        return _sweep(cfg, name)


@STAGES.timed(f"sweep: {DATA_SCALE}")
def data_scale_sweep(cfg: SimpleNamespace) -> tuple[Run, pd.DataFrame]:
    """The ambient dimension at the book's data scale: d over ``sweep_d``, radius ``radius * sqrt(d / d_0)``.

    ``d_0`` is the chapter's ``d``, so the radius stays the chapter's choice relative to
    sqrt(d) (pre-activations at unit scale with fan-in initialisation) while the orthogonal
    dimension ``d - k`` grows. The step size scales as in the radius sweep
    (``lr * (radius / r)^2``). Per-member medians with ``value`` (d), ``radius`` and ``ell`` (d - k).
    """
    return _sweep(cfg, DATA_SCALE)


def _sweep(cfg: SimpleNamespace, name: str) -> tuple[Run, pd.DataFrame]:
    S = cfg.n_seeds
    vals = cfg.sweep_d if name == DATA_SCALE else sweep_values(cfg, name)
    per = [v for v in vals for _ in range(S)]
    E = len(per)
    dims, ks = [cfg.d] * E, [cfg.k] * E
    kw: dict = {}
    shared = S
    radii = None  # per-member data radius, where the sweep rescales the data
    if name == DATA_SCALE:
        dims, shared = per, None
        radii = [cfg.radius * math.sqrt(d / cfg.d) for d in per]
        kw["lr"] = [cfg.lr * (cfg.radius / r) ** 2 for r in radii]
    elif name.startswith("d "):
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
        radii = per
        kw["lr"] = [cfg.lr * (cfg.radius / r) ** 2 for r in per]
    batch = make_batch(
        cfg.n_points,
        dims,
        ks,
        rule=cfg.rule,
        radius=cfg.radius,
        generator=cfg.generator,
        device=cfg.device,
        shared=shared,
    )
    if radii is not None:
        batch.x *= torch.as_tensor(radii, dtype=batch.x.dtype, device=batch.x.device)[:, None, None] / cfg.radius
    if name == "weight decay":
        kw["margin"] = False
    run = train(cfg, batch, desc=f"sweep over {name}", **kw)
    med = per_seed_medians(measure(run), S)
    med["value"] = per
    med["decay"] = run.decay.numpy()
    med["reached"] = (run.fit.min_margin >= cfg.margin).numpy()
    med["steps"] = run.fit.steps.numpy()
    med["sweep"] = name
    med["radius"] = radii if radii is not None else cfg.radius
    med["ell"] = (batch.dims - batch.ks).numpy()
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
        rows.append(
            {
                "seed": seed,
                "measured": _slope(x, g.g_perp),
                "predicted": _slope(x, g.pred_perp),
                "structural": _slope(x, struct),
                "S": _slope(x, g.S),
                "delta_measured": _slope(x, g.delta_perp),
                "delta_first_order": _slope(x, g.f.abs() / g.pred_perp),
            }
        )
    per = pd.DataFrame(rows)
    out = {"sweep": name, "x": "c_T" if xcol == "decay" else name.split(" (")[0]}
    for col in ("measured", "predicted", "structural", "delta_measured", "delta_first_order"):
        out[col], out[col + "_lo"], out[col + "_hi"] = mean_ci(per[col])
    diff = (per.measured - per.predicted).to_numpy()
    out["diff"], out["diff_lo"], out["diff_hi"] = mean_ci(diff)
    out["reached"] = float(med.reached.mean())
    return out


RATIOS = (
    "rel_perp",
    "rel_par",
    "rel_perp0",
    "grad_gain",
    "flip_gain",
    "perp_over_par",
)  # :func:`~.networks.point_ratios`


def ratio_slopes(med: pd.DataFrame, x: str) -> dict:
    """Per-seed log-log slopes of every :data:`RATIOS` median against column ``x``; mean and CI over seeds.

    Keys ``<ratio>``, ``<ratio>_lo``, ``<ratio>_hi``; and ``levels``: the geometric mean over seeds
    of each ratio at every value of ``x`` (a DataFrame indexed by ``x``).
    """
    out: dict = {"x": x}
    for col in RATIOS:
        per = [_slope(g[x], g[col]) for _, g in med.groupby("seed")]
        out[col], out[col + "_lo"], out[col + "_hi"] = mean_ci(per)
    out["levels"] = med.groupby(x)[list(RATIOS)].agg(lambda v: float(np.exp(np.log(v).mean())))
    return out


def sweep_key(name: str) -> str:
    """A sweep's name as a short snake_case key (``"d (fixed init std)"`` -> ``"d_fixed"``)."""
    return name.replace(" (fan-in init)", "").replace(" (fixed init std)", "_fixed").replace(" ", "_")
