"""Chapter 2, experiment 2: natural images, with an autoencoder's tangent spaces as the manifold.

Adversarial directions are split into on- and off-manifold parts and compared with a random
subspace of the same dimension (and, for the box-clamped PGD probe, with a random subspace of the
image's unsaturated pixels); the smallest flipping norm is found by the minimal-norm attack FMN
confined to each subspace and compared with the data's own scales. Also the statistics read from
these measures (RMS shares and their ratios, censored flip-norm ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ... import attacks, data, flip, manifold, models, train
from ...claims import INCONCLUSIVE
from ...stats import bootstrap_ci
from .synthetic import log_checkpoints


def train_classifier(
    cfg: SimpleNamespace,
    ds: data.Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    adversarial: bool = False,
    desc: str = "classifier",
) -> tuple[models.MLP, pd.DataFrame]:
    """A fresh MLP trained with Adam on (x, y); with ``adversarial``, on L2 PGD examples (Madry et al.)."""
    net = models.MLP(ds.n_features, cfg.widths, ds.n_classes).to(cfg.device)
    transform = (
        attacks.pgd_training(cfg.at_eps, norm="l2", steps=cfg.at_steps, generator=cfg.generator, clamp=ds.value_range)
        if adversarial
        else None
    )
    hist = train.fit(
        net,
        x,
        y,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        generator=cfg.generator,
        transform=transform,
        x_val=ds.x_test,
        y_val=ds.y_test,
        desc=desc,
    )
    return net, hist


def probes(cfg: SimpleNamespace, model: torch.nn.Module, ds: data.Dataset, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The directions whose on-manifold share is measured at ``x``: the boundary normal and an L2 PGD
    perturbation of budget ``attack_eps`` (away from the current prediction); also its flips."""
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    pred = train.predict(model, x).argmax(1)
    adv = attacks.pgd(
        model, x, pred, cfg.attack_eps, norm="l2", steps=cfg.attack_steps, generator=gen, clamp=ds.value_range
    )
    return {
        "normal": manifold.boundary_normal(model, x),
        "pgd": adv - x,
        "pgd_flipped": train.predict(model, adv).argmax(1) != pred,
    }


def train_autoencoder(
    cfg: SimpleNamespace,
    ds: data.Dataset,
    x: torch.Tensor,
    directions: dict[str, torch.Tensor],
) -> tuple[torch.nn.Module, pd.DataFrame, pd.DataFrame]:
    """The autoencoder whose decoder defines the image manifold, and how its quality shapes the shares.

    At ``ae_snapshots`` log-spaced epochs (epoch 0: the untrained decoder) the snapshot's
    test explained variance and the RMS share of each of ``directions`` (e.g. :func:`probes`)
    in its tangent spaces at ``x`` are measured. A last row does the same for PCA with the
    same k (the best linear manifold: one shared tangent space). Returns the trained
    autoencoder, its per-epoch history and the quality table.
    """
    ae = manifold.autoencoder_for(cfg, ds.image_shape)
    marks = set(log_checkpoints(cfg.ae_epochs, cfg.ae_snapshots))
    rows = []

    def measure(epoch: int, model: torch.nn.Module) -> None:
        if epoch in marks:
            with torch.no_grad():
                ev = manifold.explained_variance(ds.x_test, train.predict(model, ds.x_test))
            rows.append(
                quality_row(f"{cfg.ae_kind} autoencoder", epoch, ev, manifold.autoencoder_bases(model, x), directions)
            )

    hist = manifold.fit_autoencoder(
        ae,
        ds.x_train,
        epochs=cfg.ae_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.ae_lr,
        generator=cfg.generator,
        x_val=ds.x_test,
        callback=measure,
    )
    mean, basis = manifold.pca_basis(ds.x_train, cfg.latent_dim)
    recon = (ds.x_test - mean) @ basis @ basis.T + mean
    rows.append(quality_row("PCA", math.nan, manifold.explained_variance(ds.x_test, recon), basis, directions))
    return ae, hist, pd.DataFrame(rows)


def quality_row(
    model: str, epoch: float, explained: float, bases: torch.Tensor, directions: dict[str, torch.Tensor]
) -> dict:
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


def unsaturated_random_bases(
    x: torch.Tensor, k: int, value_range: tuple[float, float], *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per image, a uniformly random k-dim subspace of the span of its *unsaturated* pixels, as bases ``(N, n, k)``.

    A pixel is unsaturated where it lies strictly inside ``value_range``: there the pixel box
    lets a perturbation move both ways. This is the null of the clamped PGD probe: clamping
    removes one sign of change on saturated pixels, which pushes the perturbation towards the
    unsaturated ones. An image with fewer than k unsaturated pixels gets all of them,
    completed by random directions among the saturated ones (orthogonal to them).
    """
    flat = x.detach().flatten(1)
    n = flat.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    lo, hi = value_range
    free = (flat > lo) & (flat < hi)
    count = free.sum(1)
    g = torch.randn(len(flat), n, k, generator=generator, dtype=torch.float64).to(flat.device)
    # column j draws inside the unsaturated pixels while j < their count; QR then spans them first
    keep = free[:, :, None] | (torch.arange(k, device=flat.device)[None, None, :] >= count[:, None, None])
    q, _ = torch.linalg.qr(g * keep)
    return q.to(flat.dtype)


def image_geometry(
    cfg: SimpleNamespace,
    model: torch.nn.Module,
    x: torch.Tensor,
    probe: dict[str, torch.Tensor],
    bases: torch.Tensor,
    random_bases: torch.Tensor,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[pd.DataFrame, dict]:
    """Per test image: on-manifold fractions of the :func:`probes` directions (tangent space, a
    random subspace of the same dimension, and a random one of the image's unsaturated pixels,
    :func:`unsaturated_random_bases`, drawn from its own seed so that both networks meet the same
    subspaces), and the smallest L2 norm that flips the prediction, found by the minimal-norm attack
    restricted to each of :data:`RESTRICTIONS` (``inf`` where none flips within ``flip_eps_max``). Also returns the
    perturbations found.
    """
    free = unsaturated_random_bases(
        x, bases.shape[-1], value_range, generator=torch.Generator().manual_seed(cfg.seed + 4)
    ).to(x.device)
    pred = train.predict(model, x).argmax(1)
    df = pd.DataFrame(
        {
            f"{name}_{where}": manifold.on_fraction(probe[name], b).cpu()
            for name in ("normal", "pgd")
            for where, b in (("tangent", bases), ("random", random_bases), ("unsaturated", free))
        }
    )
    df["pgd_flipped"] = probe["pgd_flipped"].cpu()
    deltas = {"pgd": probe["pgd"]}
    restrictions = {
        name: ({"tangent": bases, "random": random_bases}.get(which), part)
        for name, (which, part) in RESTRICTIONS.items()
    }
    found = flip.flip_norms(model, x, pred, restrictions, eps_max=cfg.flip_eps_max, steps=cfg.fmn_steps)
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


SCALES = ("image norm", "nearest same class", "median same class", "nearest other class")


def data_scales(x: torch.Tensor, y: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor) -> pd.DataFrame:
    """Per test image, the data's own L2 scales (columns :data:`SCALES`): its norm, the distance to the
    nearest and the median distance to the training images of its class, and to the nearest of another
    (``attrs["n_train"]``: the training images searched)."""
    d = torch.cdist(x.flatten(1), x_train.flatten(1))
    same = y[:, None] == y_train[None, :]
    median_same = torch.stack([row[m].median() for row, m in zip(d, same)])
    out = pd.DataFrame(
        {
            "image norm": x.flatten(1).norm(dim=1).cpu(),
            "nearest same class": d.masked_fill(~same, math.inf).amin(dim=1).cpu(),
            "median same class": median_same.cpu(),
            "nearest other class": d.masked_fill(same, math.inf).amin(dim=1).cpu(),
        }
    )
    out.attrs["n_train"] = len(x_train)
    return out


def flip_over_scale(df: pd.DataFrame, scales: pd.DataFrame, scale: str) -> np.ndarray:
    """Per test image: the unrestricted flip norm over one of the data's scales (:func:`data_scales`).

    A search that found no flip within the cap reads as the largest float, so that medians
    and their bootstrap count it as large (the bootstrap drops infinities)."""
    ratio = df.unrestricted.to_numpy(float) / scales[scale].to_numpy(float)
    return np.where(np.isnan(ratio), np.nan, np.minimum(ratio, np.finfo(float).max))


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
        return (
            f"; {self.n_censored} of {self.n} pairs had a search that did not flip within L2 <= {self.cap:g} "
            f"(dropped; counted at the cap: {estimate(self.capped):.3g})"
        )

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


def flip_ratio(df: pd.DataFrame, num: str, den: str, cap: float) -> Censored:
    """Per test image: the log ratio of two restricted flip norms (columns ``num`` / ``den`` of
    :func:`image_geometry`), read with missed searches dropped and counted at ``cap``."""
    return censored_log_growth([df[num], df[den]], cap, np.subtract)


def _growths(adv_off, adv_on, std_off, std_on):  # per pair: off-manifold growth, on-manifold growth
    return np.stack([adv_off - std_off, adv_on - std_on])


def training_growth(
    geo: dict[str, pd.DataFrame], cap: float, pair: tuple[str, str] = ("off-manifold", "on-manifold")
) -> Censored:
    """Per test image: log growth of the flip norms of ``pair`` (row 0: the first, row 1: the second;
    by default off- and on-manifold) from standard to adversarial training, read both ways
    (:func:`censored_log_growth`)."""
    cols = [geo[kind][c] for kind in ("adversarial", "standard") for c in pair]
    return censored_log_growth(cols, cap, _growths)


RANDOM_PAIR = ("random (n-k)-dim", "random k-dim")  # the control split: same dimensions, random subspaces


def _growth_beyond_random(a_off, a_on, a_rnk, a_rk, s_off, s_on, s_rnk, s_rk):
    return (a_off - s_off) - (a_on - s_on) - ((a_rnk - s_rnk) - (a_rk - s_rk))


def growth_beyond_random(geo: dict[str, pd.DataFrame], cap: float) -> Censored:
    """Per test image: the log of (off- / on-manifold flip-norm growth) / (random (n-k)-dim / random
    k-dim growth), growth = adversarial / standard training: how much more adversarial training
    lengthens the off-manifold flip than the on-manifold one, beyond what a random split into subspaces
    of the same dimensions shows. Read both ways (:func:`censored_log_growth`)."""
    pairs = ("off-manifold", "on-manifold", *RANDOM_PAIR)
    cols = [geo[kind][c] for kind in ("adversarial", "standard") for c in pairs]
    return censored_log_growth(cols, cap, _growth_beyond_random)


def rms_ratio(num: np.ndarray, den: np.ndarray, axis=None) -> np.ndarray:
    """``rms(num) / rms(den)`` along ``axis``: the RMS share of one subspace over another's, same directions."""
    return rms_stat(num, axis) / rms_stat(den, axis)


def paired_rms_ratio_ci(num: np.ndarray, den: np.ndarray, rng: int) -> tuple[float, float]:
    """Bootstrap interval of :func:`rms_ratio`, resampling images (the pairs) together."""
    num, den = np.asarray(num, float), np.asarray(den, float)

    def stat(idx, axis):
        i = idx.astype(int)
        return rms_ratio(num[i], den[i], axis)

    return bootstrap_ci(np.arange(len(num), dtype=float), stat, rng=rng)


SHARES = tuple(f"{p}_{w}" for p in ("normal", "pgd") for w in ("tangent", "random", "unsaturated"))


def summary(cfg: SimpleNamespace, geo: dict[str, pd.DataFrame], n: int) -> pd.DataFrame:
    """Per training kind: RMS on-subspace fractions (tangent, random, random unsaturated) and median flip norms, as text
    (a median no search reached reads "no flip within L2 <= x", with the share of such points)."""
    rows = []
    for kind, df in geo.items():
        row = {"training": kind, "baseline sqrt(k/n)": f"{math.sqrt(cfg.latent_dim / n):.3f}"}
        for col in SHARES:
            row[f"RMS {col}"] = f"{rms_stat(df[col].to_numpy()):.3f}"
        for name in RESTRICTIONS:
            row[f"median flip: {name}"] = flip_text(df[name], cfg.flip_eps_max)
        rows.append(row)
    return pd.DataFrame(rows).set_index("training").T
