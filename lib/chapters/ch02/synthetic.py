"""Chapter 2, experiment 1: synthetic manifolds, flat and curved, in the plane and in ``synth_dim`` dimensions.

The decision boundary's geometry relative to a known manifold (tangent share of its normal,
distance, angle) is measured along standard and adversarial training, and the book's
criterion for "clinging, then dimpling" is applied to the curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import attacks, flip, manifold, models, train


def random_band(n: int, k: int, count: int, width: float = 3.0) -> tuple[float, float]:
    """Range of the RMS on-subspace fraction of ``count`` random directions: ``sqrt(k/n)`` +- ``width`` s.e.

    The squared fraction of a random direction is Beta(k/2, (n-k)/2): mean k/n, variance
    (k/n)(1-k/n)/(n/2+1); the delta method carries the standard error of its mean to the RMS.
    """
    mu = k / n
    se = math.sqrt(mu * (1 - mu) / (n / 2 + 1) / count) / (2 * math.sqrt(mu))
    return max(math.sqrt(mu) - width * se, 0.0), min(math.sqrt(mu) + width * se, 1.0)


@dataclass
class Setting:
    """A labelled synthetic manifold: training points, evaluation points and their tangent bases."""

    name: str
    phi: manifold.SineManifold
    x: torch.Tensor
    y: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    bases: torch.Tensor
    random_bases: torch.Tensor
    class_distance: torch.Tensor  # per eval point: distance in manifold coordinates to the nearest label change

    @property
    def n(self) -> int:
        return self.phi.n

    @property
    def k(self) -> int:
        return self.phi.k


def make_setting(
    name: str,
    n: int,
    k: int,
    amplitude: float,
    *,
    cells: int,
    n_train: int,
    n_eval: int,
    generator: torch.Generator,
    device: torch.device,
    axis_aligned: bool = False,
) -> Setting:
    """A manifold ``SineManifold(n, k, amplitude)`` with checkerboard labels, on ``device``."""
    phi = manifold.SineManifold(n, k, amplitude, axis_aligned=axis_aligned, generator=generator).to(device)
    x, y, _ = manifold.manifold_points(phi, n_train, cells=cells, generator=generator)
    xe, ye, ce = manifold.manifold_points(phi, n_eval, cells=cells, generator=generator)
    pos = (ce + 1) / 2 * cells  # cell coordinates; edges at the integers strictly inside (0, cells)
    cell = pos.floor()
    frac = pos - cell
    inf = torch.full_like(frac, math.inf)
    to_lower = torch.where(cell >= 1, frac, inf)
    to_upper = torch.where(cell + 1 <= cells - 1, 1 - frac, inf)
    inner = torch.minimum(to_lower, to_upper)
    class_distance = inner.min(dim=1).values * 2 / cells
    return Setting(
        name,
        phi,
        x,
        y,
        xe,
        ye,
        manifold.tangent_basis(phi, ce),
        manifold.random_bases(n_eval, n, k, generator=generator, device=device),
        class_distance,
    )


def angle_to_manifold(normal: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between each normal vector and its tangent space (90 = perpendicular)."""
    return torch.rad2deg(torch.arccos(manifold.on_fraction(normal, bases).clamp(max=1.0)))


def geometry(cfg: SimpleNamespace, model: torch.nn.Module, s: Setting, restricted: bool = False) -> dict[str, float]:
    """The boundary's geometry at the evaluation points of ``s`` (medians over points).

    ``frac_tangent``/``frac_random``: RMS share of the boundary normal's norm in the tangent
    space / in a random subspace of the same dimension; ``dist_full``: L2 distance to the
    boundary, the smallest flipping perturbation the minimal-norm attack finds
    (:func:`lib.flip.flip_norms`, away from the current prediction); ``angle``: angle between
    the normal at that nearest boundary point and the tangent space. With ``restricted``
    also ``dist_on``/``dist_off``: the same attack with steps along / off the manifold.
    The attack draws no random numbers, so measuring does not change the training run.
    """
    search = dict(eps_max=2 * float((s.x.amax(0) - s.x.amin(0)).norm()), steps=cfg.fmn_steps)  # twice the box diagonal
    pred = train.predict(model, s.x_eval).argmax(1)
    normal = manifold.boundary_normal(model, s.x_eval)
    restrictions = {"full": (None, "on"), **({part: (s.bases, part) for part in manifold.PARTS} if restricted else {})}
    searches = flip.flip_norms(model, s.x_eval, pred, restrictions, **search)
    full = searches["full"]
    found = torch.isfinite(full.norm)
    angle = angle_to_manifold(manifold.boundary_normal(model, s.x_eval + full.delta)[found], s.bases[found])
    out = {
        "accuracy": (pred == s.y_eval).float().mean().item(),
        "frac_tangent": manifold.rms(manifold.on_fraction(normal, s.bases)),
        "frac_random": manifold.rms(manifold.on_fraction(normal, s.random_bases)),
        "dist_full": full.norm.median().item(),
        "angle": angle.median().item() if found.any() else math.nan,
    }
    if restricted:
        for part in manifold.PARTS:
            out[f"dist_{part}"] = searches[part].norm.median().item()
    return out


def grid_points(lim: float = 1.5, size: int = 160, device="cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square grid over ``[-lim, lim]^2``: its axes and the ``(size^2, 2)`` points."""
    ax = torch.linspace(-lim, lim, size, device=device)
    gx, gy = torch.meshgrid(ax, ax, indexing="xy")
    return gx, gy, torch.stack([gx.flatten(), gy.flatten()], 1)


def train_tracked(
    cfg: SimpleNamespace,
    model: torch.nn.Module,
    s: Setting,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    checkpoints: list[int],
    adversarial: bool = False,
    grid: torch.Tensor | None = None,
    desc: str = "training",
) -> tuple[pd.DataFrame, dict]:
    """Train on ``s`` for ``steps`` optimizer steps, measuring :func:`geometry` at ``checkpoints``.

    With ``adversarial`` every mini-batch is replaced by its L2 PGD examples (budget
    ``cfg.synth_at_eps``, ``cfg.synth_at_steps`` steps). The last checkpoint also measures
    the restricted distances. With ``grid`` the margin (logit 1 minus
    logit 0) over the grid points is kept at every checkpoint, for pictures.
    """
    opt = train.make_optimizer(model.parameters(), optimizer, lr)
    n = len(s.x)
    per_epoch = math.ceil(n / batch_size)
    rows, fields, step = [], {}, 0
    order = torch.randperm(n, generator=cfg.generator).to(s.x.device)
    todo = sorted(set(checkpoints))
    bar = tqdm(total=steps, desc=desc, leave=False)
    while True:
        if todo and step == todo[0]:
            todo.pop(0)
            rows.append({"step": step, "epoch": step / per_epoch, **geometry(cfg, model, s, not todo)})
            if grid is not None:
                out = train.predict(model, grid)
                fields[step] = (out[:, 1] - out[:, 0]).cpu()
        if step >= steps:
            break
        i = (step % per_epoch) * batch_size
        if i == 0 and step > 0:
            order = torch.randperm(n, generator=cfg.generator).to(s.x.device)
        xb, yb = s.x[order[i : i + batch_size]], s.y[order[i : i + batch_size]]
        if adversarial:
            xb = attacks.pgd(
                model,
                xb,
                yb,
                cfg.synth_at_eps,
                norm="l2",
                steps=cfg.synth_at_steps,
                clamp=None,
                generator=cfg.generator,
            )
        model.train()
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update()
    bar.close()
    model.eval()
    return pd.DataFrame(rows), fields


def log_checkpoints(steps: int, count: int) -> list[int]:
    """About ``count`` integer steps from 0 to ``steps``, log-spaced (fast early changes stay visible)."""
    pts = np.unique(np.round(np.logspace(0, math.log10(max(steps, 1)), count - 1)).astype(int))
    return [0, *pts.tolist()]


TRAININGS = ("standard", "adversarial")


def synthetic_settings(cfg: SimpleNamespace) -> dict[str, Setting]:
    """The four manifolds: flat and curved, as a curve in the plane and in ``synth_dim`` dimensions."""
    g, dev, k, n = cfg.generator, cfg.device, cfg.synth_manifold_dim, cfg.synth_dim
    low = dict(
        cells=cfg.picture_cells,
        n_train=cfg.picture_points,
        n_eval=cfg.synth_n_eval,
        generator=g,
        device=dev,
        axis_aligned=True,
    )
    high = dict(cells=cfg.synth_cells, n_train=cfg.synth_n_train, n_eval=cfg.synth_n_eval, generator=g, device=dev)
    return {
        "2-D flat": make_setting("2-D flat", 2, 1, 0.0, **low),
        "2-D curved": make_setting("2-D curved", 2, 1, cfg.picture_curvature, **low),
        f"{n}-D flat": make_setting(f"{n}-D flat", n, k, 0.0, **high),
        f"{n}-D curved": make_setting(f"{n}-D curved", n, k, cfg.synth_curvature, **high),
    }


def run_synthetic(cfg: SimpleNamespace, settings: dict[str, Setting]) -> tuple[pd.DataFrame, dict]:
    """Train a fresh MLP per setting and training kind; return the geometry curves and 2-D boundary fields.

    Adversarial training runs on the high-dimensional settings only. The 2-D settings train full-batch for ``max(picture_steps)`` steps and keep the margin on
    a grid at every picture step; the high-dimensional ones train in mini-batches for
    ``synth_epochs`` epochs. Both measure :func:`geometry` at log-spaced checkpoints.
    """
    curves, fields = [], {}
    _, _, grid = grid_points(device=cfg.device)
    for name, s in settings.items():
        low = s.n == 2
        bs = len(s.x) if low else cfg.synth_batch_size
        steps = max(cfg.picture_steps) if low else cfg.synth_epochs * math.ceil(len(s.x) / bs)
        marks = log_checkpoints(steps, cfg.synth_checkpoints) + (list(cfg.picture_steps) if low else [])
        for kind in TRAININGS[:1] if low else TRAININGS:
            net = models.MLP(s.n, cfg.synth_widths, 2).to(cfg.device)
            df, f = train_tracked(
                cfg,
                net,
                s,
                steps=steps,
                batch_size=bs,
                lr=cfg.synth_lr,
                optimizer=cfg.synth_optimizer,
                checkpoints=marks,
                adversarial=kind == "adversarial",
                grid=grid if low else None,
                desc=f"{name}, {kind}",
            )
            curves.append(df.assign(setting=name, training=kind))
            fields[(name, kind)] = f
    return pd.concat(curves, ignore_index=True), fields


def clinging_dimpling(curves: pd.DataFrame, settings: dict[str, Setting], training: str = "standard") -> pd.DataFrame:
    """The book's criterion for "a fast clinging phase, then a slow dimpling phase", per setting.

    Clinging: at some checkpoint after the start, the RMS on-manifold fraction of the
    boundary normal is below the lower edge of the random-direction band and below its
    value at initialisation (training made the boundary run more parallel to the manifold
    than a random hyperplane). Dimpling: at least half of the accuracy gained in training
    comes after the first such checkpoint, and at the end the fraction is still below the
    band's upper edge (the fit came from bulges of a boundary that still follows the
    manifold, not from tilting it across). Seen when both hold.
    """
    rows = []
    for name, part in curves[curves.training == training].groupby("setting", sort=False):
        s = settings[name]
        lo, hi = random_band(s.n, s.k, len(s.x_eval))
        part = part.sort_values("step")
        start = part.iloc[0]
        below = part[(part.step > 0) & (part.frac_tangent < min(lo, start.frac_tangent))]
        gain = part.accuracy.iloc[-1] - start.accuracy
        clinging = len(below) > 0
        later_gain = part.accuracy.iloc[-1] - below.accuracy.iloc[0] if clinging else math.nan
        dimpling = clinging and later_gain >= gain / 2 and part.frac_tangent.iloc[-1] < hi
        rows.append(
            {
                "setting": name,
                "baseline sqrt(k/n)": math.sqrt(s.k / s.n),
                "band low": lo,
                "band high": hi,
                "initial fraction": start.frac_tangent,
                "min fraction after start": part.frac_tangent.iloc[1:].min(),
                "final fraction": part.frac_tangent.iloc[-1],
                "clinging at epoch": below.epoch.iloc[0] if clinging else math.nan,
                "accuracy gain after it": later_gain,
                "total accuracy gain": gain,
                "clinging": clinging,
                "dimpling": dimpling,
                "seen": clinging and dimpling,
            }
        )
    return pd.DataFrame(rows).set_index("setting")
