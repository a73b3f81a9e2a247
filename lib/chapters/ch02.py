"""Chapter 2 (book/02_dimpled_manifold.ipynb): the dimpled manifold model of Shamir, Melamed & BenShmuel.

Three experiments. (1) Synthetic manifolds, flat and curved, in a 2-D picture and in a
higher-dimensional space: the decision boundary's geometry relative to the manifold is
measured along training. (2) Natural images: an autoencoder's tangent spaces split
adversarial perturbations into on- and off-manifold parts, against a random subspace of
the same dimension. (3) The mislabelled-training experiment of Ilyas et al. (2019).
Standard and PGD adversarial training are compared on the measures of (1) and (2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

from matplotlib.lines import Line2D
import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from tqdm.auto import tqdm

from .. import attacks, config, data, flip, manifold, models, plots, train
from ..claims import Claim, by_interval, by_test, fmt
from ..stats import bootstrap_ci, wilson
from ..config import DATASETS, Param, ParameterError
from ..train import OPTIMIZERS

PARAMS: dict[str, Param] = {
    # natural images
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "n_train": Param(int, 2000, 60000, check="positive", help="training images (seeded subset if fewer)"),
    "widths": Param((list, int), [128, 128], [512, 512], check="positive", help="classifier MLP hidden widths"),
    "epochs": Param(int, 30, 30, check="positive", help="classifier training epochs"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size (images)"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate (images)"),
    "latent_dim": Param(int, 8, 16, check="positive", help="autoencoder latent (manifold) dimension k"),
    "ae_widths": Param((list, int), [128], [512, 256], check="positive", help="autoencoder hidden widths"),
    "ae_epochs": Param(int, 60, 40, check="positive", help="autoencoder training epochs"),
    "n_attacked": Param(int, 200, 1000, check="positive", help="test images whose geometry is measured"),
    "attack_eps": Param(float, 1.0, 2.0, check="positive", help="L2 budget of the PGD attack that is decomposed"),
    "attack_steps": Param(int, 20, 50, check="positive", help="steps of that PGD attack"),
    "flip_eps_max": Param(float, 8.0, 20.0, check="positive", help="largest L2 budget tried when searching the flip norm"),
    "flip_steps": Param(int, 10, 20, check="positive", help="PGD steps per trial budget of the flip-norm search"),
    "bisection_steps": Param(int, 4, 5, check="nonnegative", help="geometric bisection rounds of the flip-norm search"),
    "at_eps": Param(float, 0.5, 1.5, check="positive", help="L2 budget of PGD adversarial training (images)"),
    "at_steps": Param(int, 5, 10, check="positive", help="PGD steps of adversarial training"),
    "mislabel_eps": Param((list, float), [0.5, 1.0, 1.5, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], check="positive",
                          help="L2 budgets of the targeted attacks that build the mislabelled sets"),
    "mislabel_steps": Param(int, 30, 100, check="positive", help="PGD steps of those targeted attacks"),
    # synthetic manifolds
    "synth_dim": Param(int, 50, 200, check=lambda v: None if v >= 3 else "must be >= 3", help="ambient dimension n"),
    "synth_manifold_dim": Param(int, 2, 2, check="positive", help="manifold dimension k (< n)"),
    "synth_curvature": Param(float, 0.5, 0.5, check="nonnegative", help="amplitude of the curved manifold's sine bend"),
    "synth_cells": Param(int, 3, 3, check=lambda v: None if v >= 2 else "must be >= 2", help="checkerboard cells per manifold axis"),
    "synth_n_train": Param(int, 1000, 4000, check="positive", help="training points on the manifold"),
    "synth_n_eval": Param(int, 200, 500, check="positive", help="fresh manifold points where the geometry is measured"),
    "synth_widths": Param((list, int), [128, 128], [512, 512], check="positive", help="synthetic classifier widths"),
    "synth_epochs": Param(int, 50, 200, check="positive", help="synthetic training epochs"),
    "synth_batch_size": Param(int, 64, 64, check="positive", help="synthetic mini-batch size"),
    "synth_lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="synthetic learning rate"),
    "synth_optimizer": Param(str, "adam", "adam", choices=OPTIMIZERS, help="synthetic optimizer"),
    "synth_checkpoints": Param(int, 10, 20, check=lambda v: None if v >= 3 else "must be >= 3", help="log-spaced measurement points"),
    "synth_at_eps": Param(float, 0.1, 0.1, check="positive", help="L2 budget of adversarial training (synthetic)"),
    "synth_at_steps": Param(int, 3, 7, check="positive", help="PGD steps of adversarial training (synthetic)"),
    "picture_points": Param(int, 40, 60, check=lambda v: None if v >= 4 else "must be >= 4", help="points on the 2-D picture's curve"),
    "picture_cells": Param(int, 6, 6, check=lambda v: None if v >= 2 else "must be >= 2", help="label segments along the 2-D picture's curve"),
    "picture_curvature": Param(float, 0.3, 0.3, check="nonnegative", help="amplitude of the curved 2-D picture's sine"),
    "picture_steps": Param((list, int), [0, 10, 30, 100, 300, 1500], check="nonnegative",
                           help="full-batch steps at which the 2-D boundary is drawn (the last ends training)"),
}


def check(cfg: SimpleNamespace) -> None:
    """Constraints between parameters, checked before any compute."""
    if cfg.synth_manifold_dim >= cfg.synth_dim:
        raise ParameterError(f"parameter 'synth_manifold_dim' must be < synth_dim ({cfg.synth_dim}), "
                             f"got {cfg.synth_manifold_dim}")
    n_pixels = {"digits": 64}.get(cfg.dataset, 784)
    if cfg.latent_dim >= n_pixels:
        raise ParameterError(f"parameter 'latent_dim' must be < {n_pixels} (pixels of {cfg.dataset}), got {cfg.latent_dim}")
    if sorted(set(cfg.mislabel_eps)) != cfg.mislabel_eps:
        raise ParameterError(f"parameter 'mislabel_eps' must be increasing without repeats, got {cfg.mislabel_eps}")
    if cfg.attack_eps > cfg.flip_eps_max:
        raise ParameterError(f"parameter 'flip_eps_max' must be >= attack_eps ({cfg.attack_eps}), got {cfg.flip_eps_max}")


config.register(PARAMS, check, min_per_class=10, within={"n_attacked": "test"})  # run by resolve and lib.sweep


# ---------------------------------------------------------------- synthetic manifolds

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


def make_setting(name: str, n: int, k: int, amplitude: float, *, cells: int, n_train: int, n_eval: int,
                 generator: torch.Generator, device: torch.device, axis_aligned: bool = False) -> Setting:
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
    return Setting(name, phi, x, y, xe, ye, manifold.tangent_basis(phi, ce),
                   manifold.random_bases(n_eval, n, k, generator=generator, device=device), class_distance)


def angle_to_manifold(normal: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between each normal vector and its tangent space (90 = perpendicular)."""
    return torch.rad2deg(torch.arccos(manifold.on_fraction(normal, bases).clamp(max=1.0)))


def geometry(cfg: SimpleNamespace, model: torch.nn.Module, s: Setting, restricted: bool = False) -> dict[str, float]:
    """The boundary's geometry at the evaluation points of ``s`` (medians over points).

    ``frac_tangent``/``frac_random``: RMS share of the boundary normal's norm in the tangent
    space / in a random subspace of the same dimension; ``dist_full``: L2 distance to the
    boundary found by PGD (away from the current prediction); ``angle``: angle between
    the normal at that nearest boundary point and the tangent space. With ``restricted``
    also ``dist_on``/``dist_off``: the same search with steps along / off the manifold.
    Attacks draw from their own generator, so measuring does not change the training run.
    """
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    search = dict(eps_max=2 * float((s.x.amax(0) - s.x.amin(0)).norm()), steps=cfg.flip_steps,
                bisection_steps=cfg.bisection_steps, generator=gen)  # eps_max: twice the data's box diagonal
    pred = train.predict(model, s.x_eval).argmax(1)
    normal = manifold.boundary_normal(model, s.x_eval)
    full = flip.min_flip_norm(model, s.x_eval, pred, **search)
    found = torch.isfinite(full.norm)
    angle = angle_to_manifold(manifold.boundary_normal(model, s.x_eval + full.delta)[found], s.bases[found])
    out = {"accuracy": (pred == s.y_eval).float().mean().item(),
           "frac_tangent": manifold.rms(manifold.on_fraction(normal, s.bases)),
           "frac_random": manifold.rms(manifold.on_fraction(normal, s.random_bases)),
           "dist_full": full.norm.median().item(),
           "angle": angle.median().item() if found.any() else math.nan}
    if restricted:
        for part in manifold.PARTS:
            out[f"dist_{part}"] = flip.min_flip_norm(model, s.x_eval, pred, bases=s.bases, part=part,
                                                        **search).norm.median().item()
    return out


def grid_points(lim: float = 1.5, size: int = 160, device="cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square grid over ``[-lim, lim]^2``: its axes and the ``(size^2, 2)`` points."""
    ax = torch.linspace(-lim, lim, size, device=device)
    gx, gy = torch.meshgrid(ax, ax, indexing="xy")
    return gx, gy, torch.stack([gx.flatten(), gy.flatten()], 1)


def train_tracked(cfg: SimpleNamespace, model: torch.nn.Module, s: Setting, *, steps: int, batch_size: int,
                  lr: float, optimizer: str, checkpoints: list[int], adversarial: bool = False,
                  grid: torch.Tensor | None = None, desc: str = "training") -> tuple[pd.DataFrame, dict]:
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
        xb, yb = s.x[order[i:i + batch_size]], s.y[order[i:i + batch_size]]
        if adversarial:
            xb = attacks.pgd(model, xb, yb, cfg.synth_at_eps, norm="l2", steps=cfg.synth_at_steps, clamp=None,
                             generator=cfg.generator)
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
    low = dict(cells=cfg.picture_cells, n_train=cfg.picture_points, n_eval=cfg.synth_n_eval, generator=g,
               device=dev, axis_aligned=True)
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
            df, f = train_tracked(cfg, net, s, steps=steps, batch_size=bs, lr=cfg.synth_lr,
                                  optimizer=cfg.synth_optimizer, checkpoints=marks,
                                  adversarial=kind == "adversarial", grid=grid if low else None,
                                  desc=f"{name}, {kind}")
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
        rows.append({"setting": name, "baseline sqrt(k/n)": math.sqrt(s.k / s.n), "band low": lo, "band high": hi,
                     "initial fraction": start.frac_tangent, "min fraction after start": part.frac_tangent.iloc[1:].min(),
                     "final fraction": part.frac_tangent.iloc[-1],
                     "clinging at epoch": below.epoch.iloc[0] if clinging else math.nan,
                     "accuracy gain after it": later_gain, "total accuracy gain": gain,
                     "clinging": clinging, "dimpling": dimpling, "seen": clinging and dimpling})
    return pd.DataFrame(rows).set_index("setting")


# ---------------------------------------------------------------- natural images

def load_images(cfg: SimpleNamespace) -> data.Dataset:
    """The image dataset on the device, in [0, 1], with ``n_train`` training images."""
    return data.load(cfg.dataset, device=cfg.device, n_train=cfg.n_train, seed=cfg.seed)


def train_classifier(cfg: SimpleNamespace, ds: data.Dataset, x: torch.Tensor, y: torch.Tensor, *,
                     adversarial: bool = False, desc: str = "classifier") -> tuple[models.MLP, pd.DataFrame]:
    """A fresh MLP trained with Adam on (x, y); with ``adversarial``, on L2 PGD examples (Madry et al.)."""
    net = models.MLP(ds.n_features, cfg.widths, ds.n_classes).to(cfg.device)
    transform = None
    if adversarial:
        def transform(model, xb, yb):
            return attacks.pgd(model, xb, yb, cfg.at_eps, norm="l2", steps=cfg.at_steps,
                               generator=cfg.generator, clamp=ds.value_range)
    hist = train.fit(net, x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, generator=cfg.generator,
                     transform=transform, x_val=ds.x_test, y_val=ds.y_test, desc=desc)
    return net, hist


def train_autoencoder(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[manifold.AutoEncoder, pd.DataFrame]:
    """The autoencoder whose decoder defines the image manifold (latent dimension ``latent_dim``)."""
    ae = manifold.AutoEncoder(ds.n_features, cfg.latent_dim, cfg.ae_widths).to(cfg.device)
    hist = manifold.fit_autoencoder(ae, ds.x_train, epochs=cfg.ae_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                   generator=cfg.generator, x_val=ds.x_test)
    return ae, hist


RESTRICTIONS = {  # name: (which bases, part)
    "unrestricted": (None, "on"),
    "on-manifold": ("tangent", "on"),
    "off-manifold": ("tangent", "off"),
    "random k-dim": ("random", "on"),
    "random (n-k)-dim": ("random", "off"),
}


def image_geometry(cfg: SimpleNamespace, model: torch.nn.Module, ds: data.Dataset, x: torch.Tensor,
                   bases: torch.Tensor, random_bases: torch.Tensor) -> tuple[pd.DataFrame, dict]:
    """Per test image: on-manifold fractions of the boundary normal and of a PGD perturbation
    (tangent space vs random subspace), and the L2 norm needed to flip the prediction under
    PGD restricted to each of :data:`RESTRICTIONS`. Also returns the perturbations found.
    """
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    pred = train.predict(model, x).argmax(1)
    normal = manifold.boundary_normal(model, x)
    adv = attacks.pgd(model, x, pred, cfg.attack_eps, norm="l2", steps=cfg.attack_steps, generator=gen,
                      clamp=ds.value_range)
    delta = adv - x
    df = pd.DataFrame({
        "normal_tangent": manifold.on_fraction(normal, bases).cpu(),
        "normal_random": manifold.on_fraction(normal, random_bases).cpu(),
        "pgd_tangent": manifold.on_fraction(delta, bases).cpu(),
        "pgd_random": manifold.on_fraction(delta, random_bases).cpu(),
        "pgd_flipped": (train.predict(model, adv).argmax(1) != pred).cpu(),
    })
    deltas = {"pgd": delta}
    for name, (which, part) in RESTRICTIONS.items():
        b = {"tangent": bases, "random": random_bases}.get(which)
        res = flip.min_flip_norm(model, x, pred, eps_max=cfg.flip_eps_max, bases=b, part=part,
                                    steps=cfg.flip_steps, bisection_steps=cfg.bisection_steps, generator=gen)
        df[name] = res.norm.cpu()
        deltas[name] = res.delta
    return df, deltas


def nearest_other_class(ds: data.Dataset, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L2 distance from each x to the nearest training image of another class."""
    d = torch.cdist(x, ds.x_train)
    return d.masked_fill(y[:, None] == ds.y_train[None, :], math.inf).amin(dim=1)


def mislabelled_training(cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module, eps: float) -> dict:
    """Ilyas et al. (2019), deterministic variant, at L2 budget ``eps``: every training image is
    attacked (targeted L2 PGD on ``source``) towards class ``y + 1 mod C`` and labelled with that
    target; a fresh network trained on this set alone is tested on the clean test set.
    """
    target = (ds.y_train + 1) % ds.n_classes
    x_adv = attacks.pgd(source, ds.x_train, target, eps, norm="l2", steps=cfg.mislabel_steps,
                        targeted=True, generator=cfg.generator, clamp=ds.value_range)
    net, _ = train_classifier(cfg, ds, x_adv, target, desc=f"mislabelled, eps={eps:g}")
    pred = train.predict(net, ds.x_test).argmax(1)
    return {"eps": eps,
            "attack_success": (train.predict(source, x_adv).argmax(1) == target).float().mean().item(),
            "clean_accuracy": (pred == ds.y_test).float().mean().item(),
            "shifted_accuracy": (pred == (ds.y_test + 1) % ds.n_classes).float().mean().item(),
            "mean_norm": (x_adv - ds.x_train).norm(dim=1).mean().item()}


MIN_SUCCESS = 0.95  # the mislabelled claim is judged at the smallest budget whose attacks nearly all succeed


def mislabelled_sweep(cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module) -> pd.DataFrame:
    """:func:`mislabelled_training` at every budget of ``cfg.mislabel_eps``; marks the judged budget."""
    df = pd.DataFrame([mislabelled_training(cfg, ds, source, e) for e in tqdm(cfg.mislabel_eps, leave=False,
                                                                              desc="mislabelled sets")])
    ok = df.index[df.attack_success >= MIN_SUCCESS]
    df["judged"] = df.index == (ok[0] if len(ok) else len(df) - 1)
    return df


# ---------------------------------------------------------------- statistics and claims

def rms_stat(v: np.ndarray, axis=None) -> np.ndarray:
    """Root mean square along ``axis`` (the statistic compared with ``sqrt(k/n)``)."""
    return np.sqrt(np.mean(np.square(v), axis=axis))


def log_ratio(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per-sample ``log(a / b)`` where both are finite and positive."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    return np.log(a[ok] / b[ok])


def summary(cfg: SimpleNamespace, geo: dict[str, pd.DataFrame], n: int) -> pd.DataFrame:
    """Per training kind: RMS on-manifold fractions (tangent vs random) and median flip norms."""
    rows = []
    for kind, df in geo.items():
        row = {"training": kind, "baseline sqrt(k/n)": math.sqrt(cfg.latent_dim / n)}
        for col in ("normal_tangent", "normal_random", "pgd_tangent", "pgd_random"):
            row[f"RMS {col}"] = rms_stat(df[col].to_numpy())
        for name in RESTRICTIONS:
            row[f"median flip: {name}"] = float(np.median(df[name]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("training").T


def claims(cfg: SimpleNamespace, crit: pd.DataFrame, geo: dict[str, pd.DataFrame], n: int,
           nn_other: torch.Tensor, mis: pd.DataFrame, n_test: int, chance: float) -> tuple[list[Claim], dict]:
    """The claims table of the chapter, every verdict computed from this run; also the scalars to record."""
    std, adv = geo["standard"], geo["adversarial"]
    base = math.sqrt(cfg.latent_dim / n)
    out: list[Claim] = []
    seen = int(crit.seen.sum())
    out.append(Claim("Training shows a fast clinging phase, then a slow dimpling phase (synthetic manifolds)",
                     "settings meeting the stated criterion", f"{seen} of {len(crit)}",
                     by_test(seen == len(crit), seen == 0)))
    frac = std.pgd_tangent.to_numpy()
    f_val, f_ci = rms_stat(frac), bootstrap_ci(frac, rms_stat, rng=cfg.seed)
    out.append(Claim("Adversarial perturbations are mostly off-manifold (on-manifold share of the norm < 1/sqrt 2)",
                     "RMS on-manifold share of PGD perturbations", fmt(f_val, f_ci),
                     by_interval(*f_ci, 1 / math.sqrt(2), above=False)))
    out.append(Claim("... more off-manifold than a random direction (share < sqrt(k/n))",
                     f"same, vs sqrt(k/n) = {base:.3f} (random subspace: {rms_stat(std.pgd_random.to_numpy()):.3f})",
                     fmt(f_val, f_ci), by_interval(*f_ci, base, above=False)))
    ratio = std.unrestricted.to_numpy() / (nn_other.cpu().numpy() / 2)
    r_ci = bootstrap_ci(ratio, np.median, rng=cfg.seed)
    out.append(Claim("Adversarial perturbations are tiny (below half the distance to the nearest other-class image)",
                     "median flip norm / (nearest other-class distance / 2)", fmt(float(np.median(ratio)), r_ci),
                     by_interval(*r_ci, 1.0, above=False)))
    lr_on_off = log_ratio(std["on-manifold"], std["off-manifold"])
    ci = bootstrap_ci(lr_on_off, rng=cfg.seed)
    out.append(Claim("On-manifold perturbations need larger norms than off-manifold ones",
                     "geometric mean of on/off flip-norm ratios", fmt(math.exp(lr_on_off.mean()), tuple(map(math.exp, ci))),
                     by_interval(*ci, 0.0, above=True)))
    lr_on_rand = log_ratio(std["on-manifold"], std["random k-dim"])
    ci2 = bootstrap_ci(lr_on_rand, rng=cfg.seed)
    out.append(Claim("... more than in a random subspace of the same dimension (the manifold is special)",
                     "geometric mean of on-manifold / random k-dim flip-norm ratios",
                     fmt(math.exp(lr_on_rand.mean()), tuple(map(math.exp, ci2))), by_interval(*ci2, 0.0, above=True)))
    judged = mis[mis.judged].iloc[0]
    w = wilson(judged.clean_accuracy, n_test)
    out.append(Claim("A network trained only on mislabelled adversarial examples classifies most clean test images correctly",
                     f"clean test accuracy (eps = {judged.eps:g}, chance {chance:.2f})", fmt(judged.clean_accuracy, w),
                     by_interval(*w, 0.5, above=True)))
    cols = [np.asarray(d[c], float) for d in (adv, std) for c in ("off-manifold", "on-manifold")]
    ok = np.logical_and.reduce([np.isfinite(c) & (c > 0) for c in cols])
    grow_off, grow_on = np.log(cols[0][ok] / cols[2][ok]), np.log(cols[1][ok] / cols[3][ok])
    g_ci, d_ci = bootstrap_ci(grow_off, rng=cfg.seed), bootstrap_ci(grow_off - grow_on, rng=cfg.seed)
    out.append(Claim("Adversarial training mainly deepens the dimples (off-manifold distance grows more than on-manifold)",
                     "geometric-mean growth of the off- / on-manifold flip norm",
                     f"{math.exp(grow_off.mean()):.3g} / {math.exp(grow_on.mean()):.3g}",
                     by_test(g_ci[0] > 0 and d_ci[0] > 0, g_ci[1] < 0 or d_ci[1] < 0)))
    scalars = {"pgd_on_fraction_rms": f_val, "pgd_on_fraction_random_rms": rms_stat(std.pgd_random.to_numpy()),
               "normal_on_fraction_rms": rms_stat(std.normal_tangent.to_numpy()),
               "normal_on_fraction_random_rms": rms_stat(std.normal_random.to_numpy()),
               "baseline_sqrt_k_over_n": base, "on_off_flip_ratio": math.exp(lr_on_off.mean()),
               "on_random_flip_ratio": math.exp(lr_on_rand.mean()), "mislabelled_eps": float(judged.eps),
               "mislabelled_clean_accuracy": float(judged.clean_accuracy), "chance": chance,
               "at_off_growth": math.exp(grow_off.mean()), "at_on_growth": math.exp(grow_on.mean()), "clinging_dimpling_settings": seen}
    return out, scalars


# ---------------------------------------------------------------- figures

def plot_boundaries(cfg: SimpleNamespace, settings: dict[str, Setting], fields: dict, curves: pd.DataFrame):
    """Small multiples: the 2-D decision boundary (black) at each picture step, per 2-D setting."""


    names = [n for n, s in settings.items() if s.n == 2]
    steps = sorted(set(cfg.picture_steps))
    gx, gy, _ = grid_points()
    fig, axes = plots.subplots(len(names), len(steps), width=2.3, height=2.4, sharex=True, sharey=True)
    for r, name in enumerate(names):
        s = settings[name]
        c = torch.linspace(-1.2, 1.2, 300, device=s.x.device).view(-1, 1)
        with torch.no_grad():
            curve = s.phi(c).cpu()
        acc = curves[(curves.setting == name) & (curves.training == "standard")].set_index("step").accuracy
        for j, step in enumerate(steps):
            ax = axes[r, j]
            f = fields[(name, "standard")][step].reshape(gx.shape)
            ax.contourf(gx, gy, f, levels=[-1e9, 0, 1e9], colors=["#d6e4f0", "#f6dccb"])
            ax.contour(gx, gy, f, levels=[0], colors="k", linewidths=1.2)
            ax.plot(curve[:, 0], curve[:, 1], color="0.5", lw=0.8, ls=":")
            xs, ys = s.x.cpu(), s.y.cpu()
            for label, color, marker in ((0, "C0", "o"), (1, "C3", "s")):
                ax.scatter(xs[ys == label, 0], xs[ys == label, 1], s=12, c=color, marker=marker,
                           edgecolors="k", linewidths=0.3, zorder=3)
            ax.set_title(f"{name}, step {step}\n(accuracy {acc.get(step, math.nan):.2f})", fontsize=9)
            ax.set_aspect("equal")
            if r == len(names) - 1:
                ax.set_xlabel("$x_1$ (input units)")
            if j == 0:
                ax.set_ylabel("$x_2$ (input units)")
    handles = [Line2D([], [], color="k", label="decision boundary"),
               Line2D([], [], color="0.5", ls=":", label="data manifold"),
               Line2D([], [], ls="", marker="o", color="C0", label="class 0"),
               Line2D([], [], ls="", marker="s", color="C3", label="class 1")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    return fig


CURVE_PANELS = (("frac_tangent", "tangent share", "RMS tangent share\nof the boundary normal"),
                ("dist_full", "distance", "median L2 distance\nto the boundary"),
                ("angle", "angle", "median angle between\nnormal and manifold (deg)"),
                ("accuracy", "accuracy", "accuracy on fresh\nmanifold points"))


def plot_curves(curves: pd.DataFrame, settings: dict[str, Setting]):
    """The geometry over training: one row per dimension, one column per measure, one line per run."""


    groups = [[n for n, s in settings.items() if s.n == 2], [n for n, s in settings.items() if s.n > 2]]
    fig, axes = plots.subplots(2, len(CURVE_PANELS), width=3.1, height=2.9)
    for r, names in enumerate(groups):
        s0 = settings[names[0]]
        lo, hi = random_band(s0.n, s0.k, len(s0.x_eval))
        for ci, name in enumerate(names):
            for kind, ls in zip(TRAININGS, ("-", "--")):
                part = curves[(curves.setting == name) & (curves.training == kind)]
                if part.empty:
                    continue
                x = part.epoch.clip(lower=part.epoch[part.epoch > 0].min() / 2)
                for c, (col, _, _) in enumerate(CURVE_PANELS):
                    axes[r, c].plot(x, part[col], ls=ls, marker="o", ms=3, color=f"C{ci}")
                axes[r, 0].plot(x, part.frac_random, ls=ls, color=f"C{ci}", alpha=0.35, lw=1)
            axes[r, 1].axhline(float(settings[name].class_distance.median()), color=f"C{ci}", lw=0.8, ls=":")
        axes[r, 0].axhspan(lo, hi, color="0.8", alpha=0.6)
        axes[r, 2].axhline(math.degrees(math.acos(math.sqrt(s0.k / s0.n))), color="0.4", lw=1, ls="-.")
        for c, (_, short, label) in enumerate(CURVE_PANELS):
            ax = axes[r, c]
            ax.set_xscale("log")
            ax.set_xlabel("epoch (log scale)")
            ax.set_ylabel(label)
            ax.set_title(f"{short}, n = {s0.n}, k = {s0.k}", fontsize=9)
        axes[r, 1].set_yscale("log")
        axes[r, 1].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes[r, 1].yaxis.set_major_formatter(FormatStrFormatter("%g"))
        axes[r, 1].yaxis.set_minor_formatter(NullFormatter())
        kinds = curves[curves.setting.isin(names)].training.unique()
        handles = [Line2D([], [], color=f"C{i}", label=f"{n}") for i, n in enumerate(names)]
        handles += [Line2D([], [], color="k", ls=ls, label=f"{kind} training")
                    for kind, ls in zip(TRAININGS, ("-", "--")) if kind in kinds]
        handles += [Line2D([], [], color="0.5", alpha=0.5, label="random subspace, same k"),
                    Line2D([], [], color="0.8", lw=6, label="random-direction band"),
                    Line2D([], [], color="0.5", ls=":", label="distance to true label change"),
                    Line2D([], [], color="0.4", ls="-.", label="random-direction angle")]
        axes[r, -1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def plot_fractions(geo: dict[str, pd.DataFrame], k: int, n: int):
    """Histograms of the on-manifold share per test image: tangent space vs a random subspace."""

    fig, axes = plots.subplots(1, 2, width=4.4, height=3.2, sharey=True)
    bins = np.linspace(0, 1, 41)
    for ax, what, title in ((axes[0, 0], "normal", "boundary normal"), (axes[0, 1], "pgd", "PGD perturbation")):
        for kind, color in zip(TRAININGS, ("C0", "C1")):
            ax.hist(geo[kind][f"{what}_tangent"], bins=bins, alpha=0.55, color=color,
                    label=f"tangent space, {kind} net")
        ax.hist(geo["standard"][f"{what}_random"], bins=bins, histtype="step", color="k", lw=1.2,
                label="random k-dim subspace, standard net")
        ax.axvline(math.sqrt(k / n), color="k", ls="--", lw=1, label=f"$\\sqrt{{k/n}}$ = {math.sqrt(k / n):.2f}")
        ax.axvline(1 / math.sqrt(2), color="0.5", ls=":", lw=1, label="on = off ($1/\\sqrt{2}$)")
        ax.set(xlabel="on-subspace share of the L2 norm", title=f"{title} (k = {k}, n = {n})")
    axes[0, 0].set_ylabel("test images")
    axes[0, 1].legend(fontsize=7)
    return fig


def plot_flip_norms(geo: dict[str, pd.DataFrame], nn_other: torch.Tensor):
    """Box plots of the L2 norm needed to flip the prediction under each restricted PGD."""


    long = pd.concat([df[list(RESTRICTIONS)].assign(training=k) for k, df in geo.items()])
    long = long.melt(id_vars="training", var_name="PGD restricted to", value_name="flip norm")
    long = long[np.isfinite(long["flip norm"])]
    fig, axes = plots.subplots(1, 1, width=7.5, height=3.4)
    ax = axes[0, 0]
    sns.boxplot(long, x="PGD restricted to", y="flip norm", hue="training", ax=ax, fliersize=1.5)
    ax.axhline(float(nn_other.median()) / 2, color="k", ls=":", lw=1,
               label="half the median distance to\nthe nearest other-class image")
    ax.set(yscale="log", ylabel="L2 norm needed to flip (pixel units)",
           title="Smallest flipping perturbation, by subspace the attack is confined to")
    ax.legend(fontsize=8)
    return fig


def plot_perturbations(ds: data.Dataset, x: torch.Tensor, deltas: dict, count: int = 4):
    """Example test images and the smallest flipping perturbation under each restriction."""

    cols = ["image", *RESTRICTIONS]
    norms = {k: d.flatten(1).norm(dim=1) for k, d in deltas.items()}
    found = torch.stack([torch.isfinite(norms[k]) & (norms[k] > 0) for k in RESTRICTIONS]).all(0)
    idx = found.nonzero().squeeze(1)[:count].tolist()
    fig, axes = plots.subplots(len(idx), len(cols), width=1.6, height=1.7)
    for r, i in enumerate(idx):
        for c, name in enumerate(cols):
            ax = axes[r, c]
            if name == "image":
                ax.imshow(ds.images(x[i:i + 1])[0, 0].cpu(), cmap="gray_r", vmin=0, vmax=1)
            else:
                d = ds.images(deltas[name][i:i + 1])[0, 0].cpu()
                m = float(d.abs().max()) or 1.0
                ax.imshow(d, cmap="RdBu_r", vmin=-m, vmax=m)
                ax.set_xlabel(f"norm {float(norms[name][i]):.2f}", fontsize=8)
            if r == 0:
                ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Smallest flipping perturbations (red +, blue -, each scaled to its own maximum)", fontsize=9)
    return fig


def plot_mislabelled(mis: pd.DataFrame, chance: float):
    """Clean test accuracy of networks trained only on mislabelled adversarial examples, by budget."""

    fig, axes = plots.subplots(1, 1, width=5.5, height=3.4)
    ax = axes[0, 0]
    ax.plot(mis.eps, mis.clean_accuracy, marker="o", label="clean test accuracy (true labels)")
    ax.plot(mis.eps, mis.shifted_accuracy, marker="s", label="predicts y + 1 (the training rule)")
    ax.plot(mis.eps, mis.attack_success, marker="^", ls="--", label="targeted attack success")
    ax.axhline(chance, color="k", ls=":", lw=1, label="chance")
    j = mis[mis.judged].iloc[0]
    ax.axvline(j.eps, color="0.6", lw=6, alpha=0.3, label="budget the claim is judged at")
    ax.set(xlabel="L2 budget of the targeted attacks (pixel units)", ylabel="fraction",
           title="Training on mislabelled adversarial examples only", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return fig


def small_net_threads(cfg: SimpleNamespace) -> int:
    """Use one intra-op thread on CPU at the quick profile and return the thread count.

    The quick profile's networks are so small that splitting each operation across
    threads costs more than it saves (and much more on a busy machine).
    """
    if cfg.device.type == "cpu" and cfg.profile == "quick":
        torch.set_num_threads(1)
    return torch.get_num_threads()


def findings(claim_rows: list[Claim], scalars: dict, crit: pd.DataFrame) -> str:
    """A short Markdown reading of this run's claims table (sentences chosen by the computed numbers)."""
    high = crit[crit["baseline sqrt(k/n)"] < 0.5]
    tilt = ", ".join(f"{n}: {r['initial fraction']:.2f} to {r['final fraction']:.2f}" for n, r in high.iterrows())
    b, p, r = scalars["baseline_sqrt_k_over_n"], scalars["pgd_on_fraction_rms"], scalars["pgd_on_fraction_random_rms"]
    side = "more" if p > r else "less"
    on_r = scalars["on_random_flip_ratio"]
    lines = [
        f"- **Clinging then dimpling** is seen in {scalars['clinging_dimpling_settings']} of {len(crit)} synthetic "
        f"settings by the stated criterion. In the high-dimensional ones the boundary normal's RMS tangent share "
        f"went from {tilt} during training (random baseline {high['baseline sqrt(k/n)'].iloc[0]:.2f}).",
        f"- **Random baseline.** PGD perturbations of images keep an RMS share {p:.2f} of their norm in the tangent "
        f"space, against {b:.2f} for a random direction and {r:.2f} in a random subspace of the same dimension: "
        f"they are {side} aligned with the learned manifold than chance.",
        f"- **On against off.** Confined to the tangent space, PGD needs {scalars['on_off_flip_ratio']:.2f} times "
        f"the norm it needs off it, and {on_r:.2f} times the norm it needs in a random subspace of the same "
        f"dimension: the tangent space is {'harder' if on_r > 1 else 'easier'} to attack through than a random one.",
        f"- **Mislabelled training.** Trained only on targeted adversarial examples labelled with their target, a "
        f"fresh network reaches {scalars['mislabelled_clean_accuracy']:.2f} clean test accuracy "
        f"(budget {scalars['mislabelled_eps']:g}, chance {scalars['chance']:.2f}).",
        f"- **Adversarial training** multiplies the off-manifold flip norm by {scalars['at_off_growth']:.2f} and the "
        f"on-manifold one by {scalars['at_on_growth']:.2f}.",
    ]
    return "\n".join(lines)
