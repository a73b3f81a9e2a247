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
from ..claims import INCONCLUSIVE, Claim, by_interval, by_test, fmt
from ..stats import bootstrap_ci, wilson
from ..config import DATASETS, Param, ParameterError
from ..train import OPTIMIZERS

PARAMS: dict[str, Param] = {
    # natural images
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images, a seeded subset (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images, a seeded subset (0 = all)"),
    "widths": Param((list, int), [128, 128], [512, 512], check="positive", help="classifier MLP hidden widths"),
    "epochs": Param(int, 30, 30, check="positive", help="classifier training epochs"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size (images)"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate (images)"),
    "latent_dim": Param(int, 0, 0, check="nonnegative",
                        help="autoencoder latent (manifold) dimension k; 0 = 8 for 8x8 images, 16 for 28x28"),
    "ae_kind": Param(str, "conv", "conv", choices=manifold.AE_KINDS, help="autoencoder: convolutional or MLP"),
    "ae_channels": Param((list, int), [16, 32], [32, 64], check="positive", help="conv autoencoder channels (two stages)"),
    "ae_widths": Param((list, int), [128], [512, 256], check="positive", help="MLP autoencoder hidden widths"),
    "ae_epochs": Param(int, 30, 40, check="positive", help="autoencoder training epochs"),
    "ae_lr": Param(float, 3e-3, 1e-3, check="positive", help="Adam learning rate of the autoencoder"),
    "ae_snapshots": Param(int, 5, 8, check=lambda v: None if v >= 2 else "must be >= 2",
                          help="log-spaced autoencoder epochs (from 0) at which manifold quality and shares are measured"),
    "n_attacked": Param(int, 200, 1000, check="positive", help="test images whose geometry is measured"),
    "attack_eps": Param(float, 1.0, 2.0, check="positive", help="L2 budget of the PGD attack that is decomposed"),
    "attack_steps": Param(int, 20, 50, check="positive", help="steps of that PGD attack"),
    "flip_eps_max": Param(float, 8.0, 20.0, check="positive", help="largest L2 budget tried when searching the flip norm"),
    "flip_steps": Param(int, 10, 20, check="positive", help="PGD steps per trial budget of the flip-norm search"),
    "bisection_steps": Param(int, 4, 5, check="nonnegative", help="geometric bisection rounds of the flip-norm search"),
    "at_eps": Param(float, 0.5, 1.5, check="positive", help="L2 budget of PGD adversarial training (images)"),
    "at_steps": Param(int, 5, 10, check="positive", help="PGD steps of adversarial training"),
    "mislabel_rms": Param((list, float), [0.05, 0.1, 0.2, 0.3, 0.4], [0.05, 0.1, 0.2, 0.3, 0.4], check="positive",
                          help="budgets of the targeted attacks that build the mislabelled sets, as RMS change per "
                               "pixel: L2 budget = value * sqrt(pixels)"),
    "mislabel_steps": Param(int, 30, 100, check="positive", help="PGD steps of those targeted attacks"),
    "mislabel_fractions": Param((list, float), [0.25, 0.5], [0.1, 0.3], check="unit",
                                help="shares of the mislabelled set a fresh network is also trained on, at the judged budget"),
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


DEFAULT_LATENT = {64: 8, 784: 16}  # the book's k for 8x8 images; k = 16 as the reproductions used for 28x28


# The learned manifold's parameters; chapter 5's lens 2 is this manifold, with these parameters.
MANIFOLD_PARAMS = ("latent_dim", "ae_kind", "ae_channels", "ae_widths", "ae_epochs", "ae_lr")


def check_manifold(cfg: SimpleNamespace) -> None:
    """Checks of the manifold's parameters against the image size; fills ``latent_dim`` 0 by it."""
    n_pixels = math.prod(config.IMAGE_SHAPES[cfg.dataset])
    if cfg.latent_dim == 0:
        cfg.latent_dim = DEFAULT_LATENT[n_pixels]
    if cfg.latent_dim >= n_pixels:
        raise ParameterError(f"parameter 'latent_dim' must be < {n_pixels} (pixels of {cfg.dataset}), got {cfg.latent_dim}")
    if len(cfg.ae_channels) != 2:
        raise ParameterError(f"parameter 'ae_channels' needs exactly two entries, got {cfg.ae_channels}")


def make_autoencoder(cfg: SimpleNamespace, image_shape: tuple[int, int]) -> torch.nn.Module:
    """The untrained autoencoder of ``cfg``'s manifold parameters for images of ``image_shape``, on ``cfg.device``."""
    return manifold.make_autoencoder(cfg.ae_kind, image_shape, cfg.latent_dim, widths=cfg.ae_widths,
                                     channels=cfg.ae_channels).to(cfg.device)


def check(cfg: SimpleNamespace) -> None:
    """Constraints between parameters, checked before any compute; fills ``latent_dim`` 0 by the image size."""
    if cfg.synth_manifold_dim >= cfg.synth_dim:
        raise ParameterError(f"parameter 'synth_manifold_dim' must be < synth_dim ({cfg.synth_dim}), "
                             f"got {cfg.synth_manifold_dim}")
    check_manifold(cfg)
    for name in ("mislabel_rms", "mislabel_fractions"):
        values = getattr(cfg, name)
        if sorted(set(values)) != values:
            raise ParameterError(f"parameter {name!r} must be increasing without repeats, got {values}")
    if not all(0 < f < 1 for f in cfg.mislabel_fractions):
        raise ParameterError(f"parameter 'mislabel_fractions' must lie strictly between 0 and 1, got {cfg.mislabel_fractions}")
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
    restrictions = {"full": (None, "on"), **({part: (s.bases, part) for part in manifold.PARTS} if restricted else {})}
    searches = flip.min_flip_norms(model, s.x_eval, pred, restrictions, **search)
    full = searches["full"]
    found = torch.isfinite(full.norm)
    angle = angle_to_manifold(manifold.boundary_normal(model, s.x_eval + full.delta)[found], s.bases[found])
    out = {"accuracy": (pred == s.y_eval).float().mean().item(),
           "frac_tangent": manifold.rms(manifold.on_fraction(normal, s.bases)),
           "frac_random": manifold.rms(manifold.on_fraction(normal, s.random_bases)),
           "dist_full": full.norm.median().item(),
           "angle": angle.median().item() if found.any() else math.nan}
    if restricted:
        for part in manifold.PARTS:
            out[f"dist_{part}"] = searches[part].norm.median().item()
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
    """The image dataset on the device, in [0, 1]: seeded subsets of ``n_train``/``n_test`` images (0 = all)."""
    return data.load(cfg.dataset, device=cfg.device, n_train=cfg.n_train or None, n_test=cfg.n_test or None,
                     seed=cfg.seed)


def train_classifier(cfg: SimpleNamespace, ds: data.Dataset, x: torch.Tensor, y: torch.Tensor, *,
                     adversarial: bool = False, desc: str = "classifier") -> tuple[models.MLP, pd.DataFrame]:
    """A fresh MLP trained with Adam on (x, y); with ``adversarial``, on L2 PGD examples (Madry et al.)."""
    net = models.MLP(ds.n_features, cfg.widths, ds.n_classes).to(cfg.device)
    transform = (attacks.pgd_training(cfg.at_eps, norm="l2", steps=cfg.at_steps, generator=cfg.generator,
                                      clamp=ds.value_range) if adversarial else None)
    hist = train.fit(net, x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, generator=cfg.generator,
                     transform=transform, x_val=ds.x_test, y_val=ds.y_test, desc=desc)
    return net, hist


def probes(cfg: SimpleNamespace, model: torch.nn.Module, ds: data.Dataset, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The directions whose on-manifold share is measured at ``x``: the boundary normal and an L2 PGD
    perturbation of budget ``attack_eps`` (away from the current prediction); also its flips."""
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    pred = train.predict(model, x).argmax(1)
    adv = attacks.pgd(model, x, pred, cfg.attack_eps, norm="l2", steps=cfg.attack_steps, generator=gen,
                      clamp=ds.value_range)
    return {"normal": manifold.boundary_normal(model, x), "pgd": adv - x,
            "pgd_flipped": train.predict(model, adv).argmax(1) != pred}


def train_autoencoder(cfg: SimpleNamespace, ds: data.Dataset, x: torch.Tensor, directions: dict[str, torch.Tensor],
                      ) -> tuple[torch.nn.Module, pd.DataFrame, pd.DataFrame]:
    """The autoencoder whose decoder defines the image manifold, and how its quality shapes the shares.

    At ``ae_snapshots`` log-spaced epochs (epoch 0: the untrained decoder) the snapshot's
    test explained variance and the RMS share of each of ``directions`` (e.g. :func:`probes`)
    in its tangent spaces at ``x`` are measured. A last row does the same for PCA with the
    same k (the best linear manifold: one shared tangent space). Returns the trained
    autoencoder, its per-epoch history and the quality table.
    """
    ae = make_autoencoder(cfg, ds.image_shape)
    marks = set(log_checkpoints(cfg.ae_epochs, cfg.ae_snapshots))
    rows = []

    def measure(epoch: int, model: torch.nn.Module) -> None:
        if epoch in marks:
            with torch.no_grad():
                ev = manifold.explained_variance(ds.x_test, train.predict(model, ds.x_test))
            rows.append(quality_row(f"{cfg.ae_kind} autoencoder", epoch, ev,
                                    manifold.autoencoder_bases(model, x), directions))

    hist = manifold.fit_autoencoder(ae, ds.x_train, epochs=cfg.ae_epochs, batch_size=cfg.batch_size, lr=cfg.ae_lr,
                                   generator=cfg.generator, x_val=ds.x_test, callback=measure)
    mean, basis = manifold.pca_basis(ds.x_train, cfg.latent_dim)
    recon = (ds.x_test - mean) @ basis @ basis.T + mean
    rows.append(quality_row("PCA", math.nan, manifold.explained_variance(ds.x_test, recon), basis, directions))
    return ae, hist, pd.DataFrame(rows)


def quality_row(model: str, epoch: float, explained: float, bases: torch.Tensor,
                directions: dict[str, torch.Tensor]) -> dict:
    """One row of the manifold-quality table: explained variance and the RMS share of each direction."""
    row = {"manifold": model, "epoch": epoch, "explained variance": explained}
    for name, v in directions.items():
        row[f"RMS share: {name}"] = manifold.rms(manifold.on_fraction(v, bases))
    return row


RESTRICTIONS = {  # name: (which bases, part)
    "unrestricted": (None, "on"),
    "on-manifold": ("tangent", "on"),
    "off-manifold": ("tangent", "off"),
    "random k-dim": ("random", "on"),
    "random (n-k)-dim": ("random", "off"),
}


def image_geometry(cfg: SimpleNamespace, model: torch.nn.Module, x: torch.Tensor, probe: dict[str, torch.Tensor],
                   bases: torch.Tensor, random_bases: torch.Tensor) -> tuple[pd.DataFrame, dict]:
    """Per test image: on-manifold fractions of the :func:`probes` directions (tangent space vs
    random subspace), and the L2 norm needed to flip the prediction under PGD restricted to
    each of :data:`RESTRICTIONS` (``inf`` where none flips within ``flip_eps_max``). Also
    returns the perturbations found.
    """
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    pred = train.predict(model, x).argmax(1)
    df = pd.DataFrame({
        "normal_tangent": manifold.on_fraction(probe["normal"], bases).cpu(),
        "normal_random": manifold.on_fraction(probe["normal"], random_bases).cpu(),
        "pgd_tangent": manifold.on_fraction(probe["pgd"], bases).cpu(),
        "pgd_random": manifold.on_fraction(probe["pgd"], random_bases).cpu(),
        "pgd_flipped": probe["pgd_flipped"].cpu(),
    })
    deltas = {"pgd": probe["pgd"]}
    restrictions = {name: ({"tangent": bases, "random": random_bases}.get(which), part)
                    for name, (which, part) in RESTRICTIONS.items()}
    found = flip.min_flip_norms(model, x, pred, restrictions, eps_max=cfg.flip_eps_max, steps=cfg.flip_steps,
                                bisection_steps=cfg.bisection_steps, generator=gen)
    for name, res in found.items():
        df[name] = res.norm.cpu()
        deltas[name] = res.delta
    return df, deltas


def flip_text(norms, eps_max: float, digits: int = 3) -> str:
    """A median flip norm for display, honest about searches that found no flip within ``eps_max``.

    ``"0.812"`` when every point flipped; ``"0.812 (4% not flipped within L2 <= 8)"`` when some
    did not; ``"no flip within L2 <= 8 (62% of points)"`` when the median itself is not
    reached (never a bare ``inf``).
    """
    v = np.asarray(norms, dtype=float)
    if v.size == 0:
        return "no points"
    missed = float(np.mean(~np.isfinite(v)))
    median = float(np.median(v))
    if not math.isfinite(median):
        return f"no flip within L2 <= {eps_max:g} ({missed:.0%} of points)"
    text = f"{median:.{digits}g}"
    return text if missed == 0 else f"{text} ({missed:.0%} not flipped within L2 <= {eps_max:g})"


def nearest_other_class(ds: data.Dataset, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L2 distance from each x to the nearest training image of another class."""
    d = torch.cdist(x, ds.x_train)
    return d.masked_fill(y[:, None] == ds.y_train[None, :], math.inf).amin(dim=1)


def mislabelled_set(cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module,
                    rms: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Ilyas et al. (2019), deterministic variant: every training image attacked (targeted L2 PGD on
    ``source``) towards class ``y + 1 mod C`` and labelled with that target.

    The L2 budget is ``rms * sqrt(pixels)`` (the book's rule: the same typical change per pixel
    whatever the image size). Returns the images, their target labels and the attack success.
    """
    target = (ds.y_train + 1) % ds.n_classes
    x_adv = attacks.pgd(source, ds.x_train, target, mislabel_budget(rms, ds.n_features), norm="l2",
                        steps=cfg.mislabel_steps, targeted=True, generator=cfg.generator, clamp=ds.value_range)
    success = (train.predict(source, x_adv).argmax(1) == target).float().mean().item()
    return x_adv, target, success


def mislabel_budget(rms: float, n_pixels: int) -> float:
    """The L2 budget of a per-pixel RMS budget on ``n_pixels``-pixel images: ``rms * sqrt(n_pixels)``."""
    return rms * math.sqrt(n_pixels)


def clean_scores(net: torch.nn.Module, ds: data.Dataset) -> dict[str, float]:
    """Clean test accuracy (true labels) and the share predicting ``y + 1`` (the mislabelled rule)."""
    pred = train.predict(net, ds.x_test).argmax(1)
    return {"clean_accuracy": (pred == ds.y_test).float().mean().item(),
            "shifted_accuracy": (pred == (ds.y_test + 1) % ds.n_classes).float().mean().item()}


MIN_SUCCESS = 0.95  # the mislabelled claim is judged at the smallest budget whose attacks nearly all succeed
MOST = 0.5  # "most clean test images"


def mislabelled_sweep(cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fresh network trained on each mislabelled set of ``cfg.mislabel_rms``; and a data-size check.

    The first table has one row per budget: attack success, clean and shifted accuracy, the
    Wilson interval of the clean accuracy and the verdict the claim would get if judged at
    that budget (inconclusive where fewer than :data:`MIN_SUCCESS` of the attacks reached
    their target). ``judged`` marks the smallest budget whose attacks reach ``MIN_SUCCESS``
    (the largest budget if none does). The second table retrains on seeded random shares
    ``mislabel_fractions`` (and all) of the judged set: clean accuracy against its size.
    """
    rows, sets = [], {}
    n_test = len(ds.y_test)
    for rms in tqdm(cfg.mislabel_rms, leave=False, desc="mislabelled sets"):
        x_adv, target, success = mislabelled_set(cfg, ds, source, rms)
        net, _ = train_classifier(cfg, ds, x_adv, target, desc=f"mislabelled, rms={rms:g}")
        scores = clean_scores(net, ds)
        lo, hi = wilson(scores["clean_accuracy"], n_test)
        rows.append({"rms": rms, "l2_budget": mislabel_budget(rms, ds.n_features), "attack_success": success,
                     **scores, "clean_lo": lo, "clean_hi": hi,
                     "mean_norm": (x_adv - ds.x_train).norm(dim=1).mean().item(),
                     "verdict here": mislabelled_verdict(success, lo, hi)})
        sets[rms] = (x_adv, target)
    df = pd.DataFrame(rows)
    ok = df.index[df.attack_success >= MIN_SUCCESS]
    j = ok[0] if len(ok) else len(df) - 1
    df["judged"] = df.index == j
    x_adv, target = sets[df.rms[j]]
    sizes = []
    gen = torch.Generator().manual_seed(cfg.seed + 4)
    for frac in cfg.mislabel_fractions:
        keep = torch.randperm(len(x_adv), generator=gen)[:max(ds.n_classes, round(frac * len(x_adv)))].to(x_adv.device)
        net, _ = train_classifier(cfg, ds, x_adv[keep], target[keep], desc=f"mislabelled, {frac:.0%} of the set")
        sizes.append({"share of the set": frac, "images": len(keep), **clean_scores(net, ds)})
    sizes.append({"share of the set": 1.0, "images": len(x_adv), "clean_accuracy": df.clean_accuracy[j],
                  "shifted_accuracy": df.shifted_accuracy[j]})
    return df, pd.DataFrame(sizes)


def mislabelled_verdict(success: float, lo: float, hi: float) -> str:
    """The mislabelled claim's verdict from one budget: clean accuracy's interval against :data:`MOST`,
    inconclusive when the attacks reached their target on fewer than :data:`MIN_SUCCESS` of the images."""
    return by_interval(lo, hi, MOST, above=True) if success >= MIN_SUCCESS else INCONCLUSIVE


MIN_SLOPE = 0.01  # the book's threshold for "more data helps": a point of accuracy per doubling of the set
MAX_DOUBLINGS = 7  # "within reach": at most 2**7 = 128 times the set (8,000 Fashion-MNIST images -> 1 million)


def size_slope(sizes: pd.DataFrame) -> float:
    """Least-squares slope of clean accuracy against log2 of the training-set size (gain per doubling)."""
    return float(np.polyfit(np.log2(sizes.images.to_numpy(float)), sizes.clean_accuracy.to_numpy(float), 1)[0])


# ---------------------------------------------------------------- statistics and claims

def rms_stat(v: np.ndarray, axis=None) -> np.ndarray:
    """Root mean square along ``axis`` (the statistic compared with ``sqrt(k/n)``)."""
    return np.sqrt(np.mean(np.square(v), axis=axis))


@dataclass
class Censored:
    """A flip-norm statistic two ways, when some searches found no flip within the cap.

    A missed search only says its norm exceeds ``cap``. Dropping its pair and counting it
    at the cap bias a ratio in opposite directions depending on which side missed, so
    neither is a bound; a verdict stands only when both readings give it.
    """

    dropped: np.ndarray  # per-pair statistic over the pairs where every search flipped
    capped: np.ndarray  # the same over every pair, missed searches counted at the cap
    n_censored: int  # pairs with at least one missed search
    n: int
    cap: float

    def note(self, estimate) -> str:
        """``""``, or the share of censored pairs and the statistic with them counted at the cap."""
        if not self.n_censored:
            return ""
        return (f"; {self.n_censored} of {self.n} pairs had a search that did not flip within L2 <= {self.cap:g} "
                f"(dropped; counted at the cap: {estimate(self.capped):.3g})")

    def verdict(self, dropped: str, decide) -> str:
        """``dropped`` (the verdict of the dropped pairs, already computed), or inconclusive when
        ``decide(values)`` on the capped pairs gives another; ``decide`` runs only when a pair is censored."""
        return dropped if not self.n_censored or decide(self.capped) == dropped else INCONCLUSIVE


def censored_log_growth(cols: list, cap: float, combine) -> Censored:
    """``combine(*log(columns))`` per pair (e.g. a log ratio), over the pairs whose columns are all
    finite and positive, and over every pair with the infinite (missed) entries set to ``cap``."""
    cols = [np.asarray(c, float) for c in cols]
    positive = np.logical_and.reduce([~(c <= 0) for c in cols])  # nan and inf pass; zero norms are dropped
    finite = np.logical_and.reduce([np.isfinite(c) for c in cols])
    dropped = combine(*[np.log(c[finite & positive]) for c in cols])
    capped = combine(*[np.log(np.where(np.isfinite(c), c, cap)[positive]) for c in cols])
    return Censored(dropped, capped, int((positive & ~finite).sum()), int(positive.sum()), cap)


def summary(cfg: SimpleNamespace, geo: dict[str, pd.DataFrame], n: int) -> pd.DataFrame:
    """Per training kind: RMS on-manifold fractions (tangent vs random) and median flip norms, as text
    (a median no search reached reads "no flip within L2 <= x", with the share of such points)."""
    rows = []
    for kind, df in geo.items():
        row = {"training": kind, "baseline sqrt(k/n)": f"{math.sqrt(cfg.latent_dim / n):.3f}"}
        for col in ("normal_tangent", "normal_random", "pgd_tangent", "pgd_random"):
            row[f"RMS {col}"] = f"{rms_stat(df[col].to_numpy()):.3f}"
        for name in RESTRICTIONS:
            row[f"median flip: {name}"] = flip_text(df[name], cfg.flip_eps_max)
        rows.append(row)
    return pd.DataFrame(rows).set_index("training").T


MIN_EXPLAINED = 0.5  # a manifold model explaining less than half the pixel variance cannot decide on/off claims


def manifold_gate(verdict: str, explained: float) -> str:
    """``verdict`` where the autoencoder explains at least :data:`MIN_EXPLAINED` of the test variance, else inconclusive."""
    return verdict if explained >= MIN_EXPLAINED else INCONCLUSIVE


def claims(cfg: SimpleNamespace, crit: pd.DataFrame, geo: dict[str, pd.DataFrame], n: int,
           nn_other: torch.Tensor, mis: pd.DataFrame, chance: float, explained: float) -> tuple[list[Claim], dict]:
    """The claims table of the chapter, every verdict computed from this run; also the scalars to record.

    Claims read through the autoencoder's tangent spaces are inconclusive when it explains
    less than :data:`MIN_EXPLAINED` of the test images' variance (:func:`manifold_gate`); the
    mislabelled claim is inconclusive when its attacks missed their targets too often
    (:func:`mislabelled_verdict`).
    """
    std, adv = geo["standard"], geo["adversarial"]
    base = math.sqrt(cfg.latent_dim / n)
    ev = f"; autoencoder explains {explained:.2f} of the variance"
    out: list[Claim] = []
    seen = int(crit.seen.sum())
    out.append(Claim("Training shows a fast clinging phase, then a slow dimpling phase (synthetic manifolds)",
                     "settings meeting the stated criterion", f"{seen} of {len(crit)}",
                     by_test(seen == len(crit), seen == 0), id="ch02.clinging_dimpling",
                     estimate=seen / len(crit)))
    frac = std.pgd_tangent.to_numpy()
    f_val, f_ci = rms_stat(frac), bootstrap_ci(frac, rms_stat, rng=cfg.seed)
    out.append(Claim("Adversarial perturbations are mostly off-manifold (on-manifold share of the norm < 1/sqrt 2)",
                     "RMS on-manifold share of PGD perturbations" + ev, fmt(f_val, f_ci),
                     manifold_gate(by_interval(*f_ci, 1 / math.sqrt(2), above=False), explained),
                     id="ch02.pgd_mostly_off", estimate=f_val, lo=f_ci[0], hi=f_ci[1]))
    out.append(Claim("... more off-manifold than a random direction (share < sqrt(k/n))",
                     f"same, vs sqrt(k/n) = {base:.3f} (random subspace: {rms_stat(std.pgd_random.to_numpy()):.3f})",
                     fmt(f_val, f_ci), manifold_gate(by_interval(*f_ci, base, above=False), explained),
                     id="ch02.pgd_below_random", estimate=f_val, lo=f_ci[0], hi=f_ci[1]))
    ratio = std.unrestricted.to_numpy() / (nn_other.cpu().numpy() / 2)
    r_med, r_ci = float(np.median(ratio)), bootstrap_ci(ratio, np.median, rng=cfg.seed)
    out.append(Claim("Adversarial perturbations are tiny (below half the distance to the nearest other-class image)",
                     "median flip norm / (nearest other-class distance / 2)", fmt(r_med, r_ci),
                     by_interval(*r_ci, 1.0, above=False), id="ch02.tiny_perturbations",
                     estimate=r_med, lo=r_ci[0], hi=r_ci[1]))
    cap = cfg.flip_eps_max

    def geo_mean(v):
        return math.exp(v.mean())

    def above_one(ci):  # a log ratio's interval above 0
        return by_interval(*ci, 0.0, above=True)

    def above_one_capped(v):  # the same verdict for a reading with capped norms
        return above_one(bootstrap_ci(v, rng=cfg.seed))

    on_off_c = censored_log_growth([std["on-manifold"], std["off-manifold"]], cap, np.subtract)
    lr_on_off = on_off_c.dropped
    ci = bootstrap_ci(lr_on_off, rng=cfg.seed)
    on_off = math.exp(lr_on_off.mean())
    out.append(Claim("On-manifold perturbations need larger norms than off-manifold ones",
                     "geometric mean of on/off flip-norm ratios" + ev,
                     fmt(on_off, tuple(map(math.exp, ci))) + on_off_c.note(geo_mean),
                     manifold_gate(on_off_c.verdict(above_one(ci), above_one_capped),
                                   explained), id="ch02.on_larger_than_off",
                     estimate=on_off, lo=math.exp(ci[0]), hi=math.exp(ci[1])))
    on_rand_c = censored_log_growth([std["on-manifold"], std["random k-dim"]], cap, np.subtract)
    lr_on_rand = on_rand_c.dropped
    ci2 = bootstrap_ci(lr_on_rand, rng=cfg.seed)
    on_rand = math.exp(lr_on_rand.mean())
    out.append(Claim("... more than in a random subspace of the same dimension (the manifold is special)",
                     "geometric mean of on-manifold / random k-dim flip-norm ratios" + ev,
                     fmt(on_rand, tuple(map(math.exp, ci2))) + on_rand_c.note(geo_mean),
                     manifold_gate(on_rand_c.verdict(above_one(ci2), above_one_capped),
                                   explained), id="ch02.on_larger_than_random",
                     estimate=on_rand, lo=math.exp(ci2[0]), hi=math.exp(ci2[1])))
    judged = mis[mis.judged].iloc[0]
    out.append(Claim("A network trained only on mislabelled adversarial examples classifies most clean test images correctly",
                     f"clean test accuracy (RMS budget {judged.rms:g} = L2 {judged.l2_budget:.3g}, "
                     f"attack success {judged.attack_success:.3f}, chance {chance:.2f})",
                     fmt(judged.clean_accuracy, (judged.clean_lo, judged.clean_hi)), judged["verdict here"],
                     id="ch02.mislabelled_accuracy", estimate=judged.clean_accuracy, lo=judged.clean_lo,
                     hi=judged.clean_hi))
    cols = [d[c] for d in (adv, std) for c in ("off-manifold", "on-manifold")]

    def growths(adv_off, adv_on, std_off, std_on):  # per pair: off-manifold growth, on-manifold growth
        return np.stack([adv_off - std_off, adv_on - std_on])

    grow_c = censored_log_growth(cols, cap, growths)
    grow_off, grow_on = grow_c.dropped

    def deepens(g_ci, d_ci):  # off-manifold growth above 1 and above the on-manifold growth
        return by_test(g_ci[0] > 0 and d_ci[0] > 0, g_ci[1] < 0 or d_ci[1] < 0)

    def deepens_capped(g):
        return deepens(bootstrap_ci(g[0], rng=cfg.seed), bootstrap_ci(g[0] - g[1], rng=cfg.seed))

    d_ci = bootstrap_ci(grow_off - grow_on, rng=cfg.seed)
    dropped_deepens = deepens(bootstrap_ci(grow_off, rng=cfg.seed), d_ci)
    out.append(Claim("Adversarial training mainly deepens the dimples (off-manifold distance grows more than on-manifold)",
                     "off- / on-manifold flip-norm growth (geometric means) and their ratio" + ev,
                     f"{math.exp(grow_off.mean()):.3g} / {math.exp(grow_on.mean()):.3g} = "
                     + fmt(math.exp((grow_off - grow_on).mean()), tuple(map(math.exp, d_ci)))
                     + grow_c.note(lambda g: math.exp((g[0] - g[1]).mean())),
                     manifold_gate(grow_c.verdict(dropped_deepens, deepens_capped), explained),
                     id="ch02.at_deepens_dimples", estimate=math.exp((grow_off - grow_on).mean()),
                     lo=math.exp(d_ci[0]), hi=math.exp(d_ci[1])))
    scalars = {"pgd_on_fraction_rms": f_val, "pgd_on_fraction_random_rms": rms_stat(std.pgd_random.to_numpy()),
               "normal_on_fraction_rms": rms_stat(std.normal_tangent.to_numpy()),
               "normal_on_fraction_random_rms": rms_stat(std.normal_random.to_numpy()),
               "baseline_sqrt_k_over_n": base, "ae_explained_variance": explained,
               "on_off_flip_ratio": on_off, "on_random_flip_ratio": on_rand,
               "mislabelled_rms": float(judged.rms), "mislabelled_l2_budget": float(judged.l2_budget),
               "mislabelled_attack_success": float(judged.attack_success),
               "mislabelled_clean_accuracy": float(judged.clean_accuracy), "chance": chance,
               "at_off_growth": math.exp(grow_off.mean()), "at_on_growth": math.exp(grow_on.mean()),
               "on_off_censored_pairs": on_off_c.n_censored, "at_growth_censored_pairs": grow_c.n_censored,
               "clinging_dimpling_settings": seen}
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


def plot_flip_norms(geo: dict[str, pd.DataFrame], nn_other: torch.Tensor, eps_max: float):
    """Box plots of the L2 norm needed to flip the prediction under each restricted PGD.

    Points with no flip within ``eps_max`` cannot be drawn; each box's label gives their share.
    """
    long = pd.concat([df[list(RESTRICTIONS)].assign(training=k) for k, df in geo.items()])
    long = long.melt(id_vars="training", var_name="PGD restricted to", value_name="flip norm")
    missed = (~np.isfinite(long["flip norm"])).groupby(long["PGD restricted to"], sort=False).mean()
    labels = {name: name if missed[name] == 0 else f"{name}\n({missed[name]:.0%} no flip\nwithin {eps_max:g})"
              for name in RESTRICTIONS}
    long["PGD restricted to"] = long["PGD restricted to"].map(labels)
    long = long[np.isfinite(long["flip norm"])]
    fig, axes = plots.subplots(1, 1, width=7.5, height=3.6)
    ax = axes[0, 0]
    sns.boxplot(long, x="PGD restricted to", y="flip norm", hue="training", ax=ax, fliersize=1.5,
                order=list(labels.values()))
    ax.axhline(float(nn_other.median()) / 2, color="k", ls=":", lw=1,
               label="half the median distance to\nthe nearest other-class image")
    ax.set(yscale="log", ylabel="L2 norm needed to flip (pixel units)",
           title="Smallest flipping perturbation, by subspace the attack is confined to")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
    return fig


def plot_manifold_quality(quality: pd.DataFrame, k: int, n: int):
    """RMS tangent share of the probe directions against the manifold model's explained variance."""
    fig, axes = plots.subplots(1, 1, width=5.8, height=3.6)
    ax = axes[0, 0]
    ae = quality[quality.manifold != "PCA"]
    pca = quality[quality.manifold == "PCA"]
    for i, col in enumerate(c for c in quality.columns if c.startswith("RMS share: ")):
        name = col.removeprefix("RMS share: ")
        ax.plot(ae["explained variance"], ae[col], marker="o", color=f"C{i}", label=f"{name}, autoencoder epochs")
        for _, r in ae.iterrows():
            ax.annotate(f"{r.epoch:g}", (r["explained variance"], r[col]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.scatter(pca["explained variance"], pca[col], marker="s", s=50, color=f"C{i}", edgecolors="k",
                   label=f"{name}, PCA (same k)", zorder=3)
    ax.axhline(math.sqrt(k / n), color="k", ls="--", lw=1, label=f"random direction $\\sqrt{{k/n}}$ = {math.sqrt(k / n):.2f}")
    ax.axvline(MIN_EXPLAINED, color="0.5", ls=":", lw=1, label="half the variance explained")
    ax.set(xlabel="explained variance of the test images (1 - MSE / pixel variance)",
           ylabel="RMS share in the tangent space", title=f"On-manifold share against manifold quality (k = {k})")
    ax.legend(fontsize=7)
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
    fig, axes = plots.subplots(1, 1, width=5.8, height=3.6)
    ax = axes[0, 0]
    ax.plot(mis.rms, mis.clean_accuracy, marker="o", label="clean test accuracy (true labels)")
    ax.fill_between(mis.rms, mis.clean_lo, mis.clean_hi, alpha=0.2, color="C0")
    ax.plot(mis.rms, mis.shifted_accuracy, marker="s", label="predicts y + 1 (the training rule)")
    ax.plot(mis.rms, mis.attack_success, marker="^", ls="--", label="targeted attack success")
    ax.axhline(chance, color="k", ls=":", lw=1, label="chance")
    ax.axhline(MIN_SUCCESS, color="C2", ls=":", lw=1, label=f"success needed to judge ({MIN_SUCCESS:g})")
    j = mis[mis.judged].iloc[0]
    ax.axvline(j.rms, color="0.6", lw=6, alpha=0.3, label="budget the claim is judged at")
    ax.set(xlabel="budget: RMS change per pixel (L2 budget / sqrt(pixels))", ylabel="fraction",
           title="Training on mislabelled adversarial examples only", ylim=(0, 1.02))
    ax.legend(fontsize=7)
    return fig


def small_net_threads(cfg: SimpleNamespace) -> int:
    """Use one intra-op thread on CPU at the quick profile and return the thread count.

    The quick profile's networks on 8x8 digits are so small that splitting each operation
    across threads costs more than it saves (and much more on a busy machine).
    """
    if cfg.device.type == "cpu" and cfg.profile == "quick" and cfg.dataset == "digits":
        torch.set_num_threads(1)
    return torch.get_num_threads()


def findings(cfg: SimpleNamespace, scalars: dict, crit: pd.DataFrame, quality: pd.DataFrame, geo: dict,
             mis: pd.DataFrame, sizes: pd.DataFrame, n: int) -> str:
    """A short Markdown reading of this run (every sentence chosen and filled by the computed numbers)."""
    high = crit[crit["baseline sqrt(k/n)"] < 0.5]
    tilt = ", ".join(f"{name}: {r['initial fraction']:.2f} to {r['final fraction']:.2f}" for name, r in high.iterrows())
    b, p, r = scalars["baseline_sqrt_k_over_n"], scalars["pgd_on_fraction_rms"], scalars["pgd_on_fraction_random_rms"]
    ae = quality[quality.manifold != "PCA"].sort_values("epoch")
    pca = quality[quality.manifold == "PCA"].iloc[0]
    first, last = ae.iloc[0], ae.iloc[-1]
    ev = scalars["ae_explained_variance"]
    col = "RMS share: pgd"
    on_r, std = scalars["on_random_flip_ratio"], geo["standard"]
    lines = [
        f"- **Data and manifold.** {cfg.dataset}, {n} pixels, k = {cfg.latent_dim} (√(k/n) = {b:.2f}). "
        f"The {cfg.ae_kind} autoencoder explains {ev:.2f} of the test images' pixel variance "
        f"({'most of it' if ev >= MIN_EXPLAINED else 'less than half: the on/off-manifold verdicts are inconclusive'}; "
        f"PCA with the same k explains {pca['explained variance']:.2f}).",
        f"- **Clinging then dimpling** is seen in {scalars['clinging_dimpling_settings']} of {len(crit)} synthetic "
        f"settings by the stated criterion. In the high-dimensional ones the boundary normal's RMS tangent share "
        f"went from {tilt} during training (random baseline {high['baseline sqrt(k/n)'].iloc[0]:.2f}).",
        f"- **Random baseline.** PGD perturbations of images keep an RMS share {p:.2f} of their norm in the tangent "
        f"space, against {b:.2f} for a random direction and {r:.2f} in a random subspace of the same dimension: "
        f"they are {'more' if p > r else 'less'} aligned with the learned manifold than chance.",
        quality_reading(ae, pca, col),
        f"- **On against off.** Confined to the tangent space, PGD needs {scalars['on_off_flip_ratio']:.2f} times "
        f"the norm it needs off it (medians {flip_text(std['on-manifold'], cfg.flip_eps_max)} and "
        f"{flip_text(std['off-manifold'], cfg.flip_eps_max)}), and {on_r:.2f} times the norm it needs in a random "
        f"subspace of the same dimension: the tangent space is {'harder' if on_r > 1 else 'easier'} to attack "
        f"through than a random one.",
        mislabelled_reading(mis, sizes, scalars["chance"]),
        f"- **Adversarial training** multiplies the off-manifold flip norm by {scalars['at_off_growth']:.2f} and the "
        f"on-manifold one by {scalars['at_on_growth']:.2f}.",
    ]
    return "\n".join(lines)


def quality_reading(ae: pd.DataFrame, pca: pd.Series, col: str) -> str:
    """The findings' sentence on how the share in column ``col`` follows the autoencoder's quality: the
    untrained decoder (epoch 0) apart, then the Spearman rank correlation of share and explained variance
    over the trained snapshots, with the PCA share beside it."""
    start, trained = ae.iloc[0], ae[ae.epoch > 0]
    first, last = trained.iloc[0], trained.iloc[-1]
    rho = trained["explained variance"].rank().corr(trained[col].rank()) if len(trained) > 1 else math.nan
    trend = ("rises with the explained variance" if rho >= 0.5 else "falls as the explained variance rises"
             if rho <= -0.5 else "does not follow the explained variance in one direction")
    return (f"- **Manifold quality.** The untrained decoder (epoch {start.epoch:g}) gives a PGD share of "
            f"{start[col]:.2f}. Over the trained snapshots, epochs {first.epoch:g} to {last.epoch:g} (explained "
            f"variance {first['explained variance']:.2f} to {last['explained variance']:.2f}), the share goes from "
            f"{first[col]:.2f} to {last[col]:.2f}: it {trend} (rank correlation {rho:.2f}). In the PCA subspace of "
            f"the same dimension (explained variance {pca['explained variance']:.2f}) it is {pca[col]:.2f}.")


def mislabelled_reading(mis: pd.DataFrame, sizes: pd.DataFrame, chance: float) -> str:
    """The findings' sentence on the mislabelled experiment: the result, its dependence on attack success,
    and whether a low accuracy looks like a matter of scale (computed from the data-size check)."""
    j = mis[mis.judged].iloc[0]
    reached = mis[mis.attack_success >= MIN_SUCCESS]
    verdicts = "; ".join(f"RMS {r.rms:g}: success {r.attack_success:.2f}, accuracy {r.clean_accuracy:.2f}, "
                         f"{r['verdict here']}" for _, r in mis.iterrows())
    text = (f"- **Mislabelled training.** Trained only on targeted adversarial examples labelled with their target, a "
            f"fresh network reaches {j.clean_accuracy:.2f} clean test accuracy (chance {chance:.2f}) at RMS budget "
            f"{j.rms:g} (L2 {j.l2_budget:.3g}), where {j.attack_success:.0%} of the attacks reached their target"
            + ("" if len(reached) else f", short of the {MIN_SUCCESS:g} needed to judge the claim") + ". "
            f"By budget: {verdicts}. ")
    if j.clean_lo > MOST:
        return text + "Most clean test images are classified correctly, as the claim says."
    if j.clean_lo > chance:
        text += "The accuracy is above chance but short of most test images. "
    else:
        text += (f"The accuracy is not above chance; the fresh network predicts the training rule y + 1 on "
                 f"{j.shifted_accuracy:.0%} of the clean test images"
                 + (", more often than the true class: it learned the images' own classes, shifted by one, rather "
                    "than the features the perturbations added. " if j.shifted_accuracy > j.clean_accuracy else ". "))
    slope = size_slope(sizes)
    if slope < MIN_SLOPE:
        return text + (f"Larger shares of the mislabelled set hardly raise it ({slope:+.3f} per doubling, under "
                       f"{MIN_SLOPE:g}): at this network size more data of this kind would not close the gap.")
    doublings = (MOST - j.clean_accuracy) / slope
    need = f"{2 ** doublings:.3g}" if doublings < 30 else "over a billion"
    text += (f"Each doubling of the mislabelled set adds {slope:.3f} accuracy; at that rate {need} times as many "
             f"images would reach {MOST:g}")
    if doublings <= MAX_DOUBLINGS:
        return text + (": a low accuracy at this scale is consistent with the effect needing larger datasets, as "
                       "in Ilyas et al., rather than contradicting it.")
    return text + (f", more than {2 ** MAX_DOUBLINGS:g} times this set: more data alone would not close the gap at "
                   f"this network size.")
