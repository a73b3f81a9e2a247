"""The two synthetic figures of the paper: seven points on a diagonal line, and a chessboard on a plane.

Each figure trains vanilla, small-init and weight-decay networks (``figure_seeds`` of
each; the chessboard also on the book's control plane z=0) with the authors' settings
(:data:`~.params.DIAGONAL`, :data:`~.params.CHESSBOARD`), and measures per network the
median exact distance to flip a label off the data, and the gains of the two variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ... import data, ensemble, flip
from .costs import STAGES
from .params import CHESSBOARD, DIAGONAL

__all__ = [
    "AFFINE",
    "VARIANTS",
    "Figure",
    "affine_drift",
    "affine_gain",
    "chessboard_measures",
    "decision_grid",
    "diagonal_measures",
    "figure_chessboard",
    "figure_diagonal",
    "fitted",
    "line_flip",
    "reach_summary",
    "robustness_gains",
]

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
    return [
        {"variant": v, "seed": i, "factor": settings[v][0], "weight_decay": settings[v][1]}
        for v in VARIANTS
        for i in range(S)
    ]


def _train_figure(ens, x, y, table: pd.DataFrame, spec: dict, steps: int, desc: str) -> Figure:
    w0, b0 = ens.w.clone(), ens.b.clone()
    fit = ensemble.fit(
        ens,
        x,
        y,
        lr=spec["lr"],
        steps=steps,
        weight_decay=table.weight_decay.tolist(),
        margin=spec["margin"],
        desc=desc,
    )
    return Figure(
        ens,
        fit,
        x,
        y,
        w0,
        b0,
        table.assign(steps=fit.steps.numpy(), reached=fit.reached.numpy(), min_margin=fit.min_margin.numpy()),
    )


@STAGES.timed("diagonal figure")
def figure_diagonal(cfg: SimpleNamespace) -> Figure:
    """The 2-D figure: ``figure_seeds`` vanilla, small-init and weight-decay networks on the 7 diagonal points."""
    x, y = data.diagonal_points(cfg.device)
    table = pd.DataFrame(_figure_members(cfg.figure_seeds, cfg.diagonal_small_init_factor, cfg.diagonal_weight_decay))
    ens = ensemble.init(
        len(table),
        2,
        DIAGONAL["width"],
        init_scale=(1 / table.factor).tolist(),
        scheme=cfg.diagonal_init,
        generator=cfg.generator,
        device=cfg.device,
    )
    return _train_figure(ens, x.expand(len(table), -1, -1), y, table, DIAGONAL, cfg.diagonal_steps, "diagonal figure")


@STAGES.timed("chessboard figure")
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
        init = ensemble.init(
            S,
            3,
            CHESSBOARD["width"],
            init_scale=(1 / group.factor).tolist(),
            scheme=cfg.chessboard_init,
            generator=cfg.generator,
            device=cfg.device,
        )
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
        runs=("reached", "size"),
        reached=("reached", "sum"),
        median_steps=("steps", "median"),
        max_steps=("steps", "max"),
        median_final_margin=("min_margin", "median"),
    )


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
