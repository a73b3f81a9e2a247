"""The four lenses and robustness, measured on every network against one shared probe.

The probe holds what every network is measured against. The test set is split in two
halves once (seeded): every lens is measured on the *lens half* (gradients and flip
norms on ``n_eval`` of its images, spectra and SOM codes on all of it), robustness on the
*robustness half* (the median smallest flipping norm on ``n_eval`` of its images, PGD
accuracy on all of it), so no lens shares a measurement, nor an image, with the
robustness it is to predict. With them: the tangent spaces of chapter 2's learned
manifold (an autoencoder), chapter 4's principal subspace of the training images, and,
for every basis a lens uses, two independent random bases of the same dimension per lens
image: the *reference* a restricted measure is divided by (restricted versus random-k),
and the *null*, which replaces the lens's basis to give the lens's permutation null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import attacks, config, data, flip, manifold, models, som, spectrum, subspace, train
from ... import local_errors as le
from ...config import ParameterError
from ..common import one_thread
from .population import Network, population, train_configuration

__all__ = [
    "Probe",
    "make_probe",
    "split_test",
    "LENSES",
    "DIRECTED",
    "BASIS_LENSES",
    "NULL",
    "FIRST_ORDER",
    "ROBUSTNESS",
    "ROBUSTNESS_LABEL",
    "SHORT",
    "spectra",
    "homogeneity",
    "median_norm",
    "flip_ratio",
    "first_order_distance",
    "robustness_flips",
    "restricted_flips",
    "measure",
    "run_population",
    "configurations",
]


@dataclass
class Probe:
    """The measurement sets and the subspaces every network is measured against (shared by all)."""

    lens_index: torch.Tensor  # the test images of the lens half (sorted indices)
    robust_index: torch.Tensor  # the test images of the robustness half, disjoint from the lens half
    x: torch.Tensor  # (n_eval, n): the lens images, from the lens half
    x_robust: torch.Tensor  # (n_eval, n): the images whose flip norms measure robustness, from the other half
    tangent: torch.Tensor  # (n_eval, n, latent_dim): the autoencoder manifold's tangent spaces
    random: torch.Tensor  # (n_eval, n, latent_dim): random subspaces of the same dimension (the reference)
    random_null: torch.Tensor  # (n_eval, n, latent_dim): independent ones (the tangent spaces' permutation null)
    pca: torch.Tensor  # (n, k): the principal subspace of the training images
    pca_random: torch.Tensor  # (n, k): a random k-dim subspace (the reference), global as the principal one is
    pca_random_null: torch.Tensor  # (n, k): an independent one (the principal subspace's permutation null)
    pca_k: int
    pca_share: float
    ae_explained: float  # share of the test pixels' variance the autoencoder reconstructs
    ae_mse: float


def split_test(n_test: int, n_eval: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split of ``n_test`` test images into a lens half and a robustness half (sorted indices each).

    The first ``n_eval`` of the lens half's draw order are the lens images (the same images
    as a plain draw of ``n_eval`` test images from this generator).
    """
    if not 1 <= n_eval <= n_test // 2:
        raise ParameterError(f"parameter 'n_eval' must be in [1, {n_test // 2}] (half the test set), got {n_eval}")
    perm = torch.randperm(n_test, generator=generator)
    half = n_test // 2
    return perm[:half], perm[half:]


def make_probe(cfg: SimpleNamespace, ds: data.Dataset) -> Probe:
    """Train the autoencoder (chapter 2's manifold), take its tangent spaces, the PCA subspace (chapter 4) and
    the random bases of the same dimensions."""
    ae = manifold.autoencoder_for(cfg, ds.image_shape)
    hist = manifold.fit_autoencoder(
        ae,
        ds.x_train,
        epochs=cfg.ae_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.ae_lr,
        generator=config.generator(cfg.seed + 7),
        x_val=ds.x_test,
        progress=False,
    )
    lens, robust = split_test(len(ds.x_test), cfg.n_eval, config.generator(cfg.seed + 8))
    dev = ds.x_test.device
    x = ds.x_test[lens[: cfg.n_eval].sort().values.to(dev)]
    x_robust = ds.x_test[robust[: cfg.n_eval].sort().values.to(dev)]
    basis, k, share = subspace.principal_subspace(ds.x_train, cfg.pca_variance)
    g = config.generator(cfg.seed + 9)
    rand = [manifold.random_bases(len(x), ds.n_features, cfg.latent_dim, generator=g, device=cfg.device)]
    rand.append(manifold.random_bases(len(x), ds.n_features, cfg.latent_dim, generator=g, device=cfg.device))
    prand = [manifold.random_bases(1, ds.n_features, k, generator=g, device=cfg.device)[0] for _ in range(2)]
    return Probe(
        lens.sort().values.to(dev),
        robust.sort().values.to(dev),
        x,
        x_robust,
        manifold.autoencoder_bases(ae, x),
        rand[0],
        rand[1],
        basis,
        prand[0],
        prand[1],
        k,
        share,
        float(hist.val_explained.iloc[-1]),
        float(hist.val_mse.iloc[-1]),
    )


# ---------------------------------------------------------------- the four lenses and robustness

# name: (chapter, label, sign of the correlation with robustness the paper's explanation predicts; 0 = none).
# Chapter 0 is the book's baseline, the first-order distance to the boundary: no paper's lens, a comparator.
FIRST_ORDER = "first_order"
LENSES: dict[str, tuple[int, str, int]] = {
    "alpha": (1, "power-law exponent α (last hidden layer)", +1),
    "participation_ratio": (1, "participation ratio (last hidden layer)", 0),
    "tangent_share": (2, "on-manifold share of the boundary normal (relative to a random subspace)", +1),
    "on_random_flip": (2, "flip norm on the manifold / in a random subspace of its dimension", -1),
    "homogeneity_shallow": (3, "SOM code homogeneity, first hidden layer", -1),
    "homogeneity_deep": (3, "SOM code homogeneity, last hidden layer", 0),
    "perp_share": (4, "share of the boundary normal off the PCA subspace (relative to random)", -1),
    "par_random_flip": (4, "flip norm within the PCA subspace / in a random subspace of its dimension", -1),
    FIRST_ORDER: (0, "first-order distance |margin| / ||grad margin|| (the book's baseline)", +1),
}
DIRECTED = tuple(lens for lens, (ch, _, sign) in LENSES.items() if sign and ch)  # a paper predicts their sign
BASIS_LENSES = ("tangent_share", "on_random_flip", "perp_share", "par_random_flip")  # lenses measured in a basis
NULL = {lens: f"{lens}_null" for lens in BASIS_LENSES}  # each one's permutation null: its basis made random
ROBUSTNESS = "flip_norm"
ROBUSTNESS_LABEL = "median smallest flipping L2 norm"
# short names of the measures, for tables and the heat map (chapter in brackets)
SHORT = {
    "alpha": "alpha (1)",
    "participation_ratio": "PR (1)",
    "tangent_share": "on-manifold share (2)",
    "on_random_flip": "on/random flip (2)",
    "homogeneity_shallow": "homog. shallow (3)",
    "homogeneity_deep": "homog. deep (3)",
    "perp_share": "off-PCA share (4)",
    "par_random_flip": "in-PCA/random flip (4)",
    FIRST_ORDER: "first-order distance",
    ROBUSTNESS: "flip norm",
    "clean_accuracy": "clean accuracy",
}


def spectra(cfg: SimpleNamespace, net: models.MLP, x: torch.Tensor) -> dict[str, float]:
    """Lens 1: alpha and participation ratio of every hidden layer on ``x`` (lib.spectrum, as chapter 1)."""
    out = {}
    for depth, h in enumerate(le.hidden_features(net, x), start=1):
        try:
            s = spectrum.analyse(h, tuple(cfg.alpha_window))
        except spectrum.SpectrumError as exc:
            raise ParameterError(f"parameter 'alpha_window' does not fit hidden layer {depth}: {exc}") from exc
        out[f"alpha_{depth}"], out[f"pr_{depth}"] = s.fit.alpha, s.participation_ratio
    out["alpha"], out["participation_ratio"] = out[f"alpha_{depth}"], out[f"pr_{depth}"]
    return out


def homogeneity(
    cfg: SimpleNamespace,
    h_train: torch.Tensor,
    y_train: torch.Tensor,
    h_test: torch.Tensor,
    y_test: torch.Tensor,
    n_classes: int,
) -> float:
    """Lens 3: mean homogeneity of the test codes of one layer's SOM (chapter 3's map and measure)."""
    m = som.fit(
        h_train,
        cfg.som_grid,
        cfg.som_grid,
        epochs=cfg.som_epochs,
        sigma=cfg.som_sigma,
        learning_rate=1.0,
        lr_decay="constant",
        init="pca",
    )
    return float(
        np.nanmean(som.test_homogeneity(m.codes(h_train), y_train, m.codes(h_test), y_test, m.n_units, n_classes))
    )


def median_norm(norms: torch.Tensor, cap: float) -> float:
    """Median flip norm, inputs never flipped counted at the search's cap (they rank as the largest).

    Their norms exceed the cap, and every found norm is within it, so the ranks are right:
    the median is exact while fewer than half the inputs went unflipped, a lower bound otherwise."""
    return float(norms.clamp(max=cap).median())


def flip_ratio(restricted: torch.Tensor, reference: torch.Tensor, cap: float) -> float:
    """Median over images of the restricted search's flip norm over the reference search's, both capped.

    Restricted versus random-k: both searches are confined to a subspace of the same
    dimension (the lens's basis, a random one), on the same images; neither is the
    unrestricted search that measures robustness. An image flipped by neither counts 1.
    """
    return float((restricted.clamp(max=cap) / reference.clamp(max=cap)).median())


def first_order_distance(net: models.MLP, x: torch.Tensor) -> float:
    """The book's baseline lens: median over ``x`` of |margin| / ||grad margin||, the linearised distance to the
    decision boundary (the step along the boundary normal at which the margin's tangent plane reaches 0)."""
    with attacks.eval_mode(net), torch.no_grad():
        m = manifold.margin(net(x))
    g = manifold.boundary_normal(net, x).flatten(1).norm(dim=1)
    return float((m.abs() / g.clamp_min(1e-30)).median())


def _perp_share(normal: torch.Tensor, basis: torch.Tensor, d: int, k: int) -> float:
    """RMS share of the normal orthogonal to ``basis`` (global or per image) over a random direction's."""
    flat = normal.flatten(1)
    off = manifold.complement(flat, basis).norm(dim=1) / flat.norm(dim=1).clamp_min(1e-30)
    return manifold.rms(off) / math.sqrt((d - k) / d)


def robustness_flips(cfg: SimpleNamespace, net: models.MLP, probe: Probe) -> flip.FlipResult:
    """The smallest flipping perturbation of each robustness image (unrestricted; :func:`lib.flip.flip_norms`,
    the minimal-norm attack FMN; ``inf`` where none is found within ``flip_eps_max``)."""
    xr = probe.x_robust
    pred = train.predict(net, xr).argmax(1)
    return flip.flip_norms(net, xr, pred, {"full": (None, "on")}, eps_max=cfg.flip_eps_max, steps=cfg.fmn_steps)["full"]


def restricted_flips(cfg: SimpleNamespace, net: models.MLP, probe: Probe) -> dict[str, torch.Tensor]:
    """Per lens image, the smallest flipping norm confined to each basis a flip lens uses (the tangent spaces, the
    principal subspace) and to its random reference and null (``inf`` where none is found within ``flip_eps_max``),
    all in one run of :func:`lib.flip.flip_norms`."""
    restrictions = {
        "on": (probe.tangent, "on"),
        "random": (probe.random, "on"),
        "random_null": (probe.random_null, "on"),
        "par": (probe.pca, "on"),
        "pca_random": (probe.pca_random, "on"),
        "pca_random_null": (probe.pca_random_null, "on"),
    }
    pred = train.predict(net, probe.x).argmax(1)
    found = flip.flip_norms(net, probe.x, pred, restrictions, eps_max=cfg.flip_eps_max, steps=cfg.fmn_steps)
    return {name: r.norm for name, r in found.items()}


def measure(cfg: SimpleNamespace, ds: data.Dataset, probe: Probe, net: models.MLP, spec: Network) -> dict:
    """Every lens (on the lens half) and the robustness (on the robustness half) of one trained network,
    with each basis lens's permutation null (one row of the population table)."""
    row = {
        "method": spec.method,
        "condition": spec.condition,
        "configuration": spec.configuration,
        "seed": spec.seed,
        "clean_accuracy": train.accuracy(net, ds.x_test, ds.y_test),
    }
    # robustness, on the robustness half only
    pgd = attacks.accuracy_under(
        net,
        attacks.pgd,
        ds.x_test[probe.robust_index],
        ds.y_test[probe.robust_index],
        cfg.pgd_budgets,
        norm="l2",
        steps=cfg.pgd_steps,
        clamp=ds.value_range,
        generator=config.generator(spec.seed + 4),
    )
    row.update({f"pgd_{b:g}": a for b, a in zip(cfg.pgd_budgets, pgd)})
    cap = cfg.flip_eps_max
    robust = robustness_flips(cfg, net, probe)
    row["flip_norm"] = median_norm(robust.norm, cap)
    row["flipped_share"] = float(torch.isfinite(robust.norm).float().mean())
    # the lenses, on the lens half only
    x_lens, y_lens = ds.x_test[probe.lens_index], ds.y_test[probe.lens_index]
    row.update(spectra(cfg, net, x_lens))
    x = probe.x
    norm = restricted_flips(cfg, net, probe)
    normal = manifold.boundary_normal(net, x)
    d, k = ds.n_features, probe.pca_k
    random_share = manifold.rms(manifold.on_fraction(normal, probe.random))
    row.update(
        {
            "tangent_share": manifold.rms(manifold.on_fraction(normal, probe.tangent)) / random_share,
            "tangent_share_null": manifold.rms(manifold.on_fraction(normal, probe.random_null)) / random_share,
            "on_random_flip": flip_ratio(norm["on"], norm["random"], cap),
            "on_random_flip_null": flip_ratio(norm["random_null"], norm["random"], cap),
            "perp_share": _perp_share(normal, probe.pca, d, k),
            "perp_share_null": _perp_share(normal, probe.pca_random_null, d, k),
            "par_random_flip": flip_ratio(norm["par"], norm["pca_random"], cap),
            "par_random_flip_null": flip_ratio(norm["pca_random_null"], norm["pca_random"], cap),
            FIRST_ORDER: first_order_distance(net, x),
            "restricted_unflipped_share": float(torch.isinf(torch.stack(list(norm.values()))).float().mean()),
            **{f"flip_{name}": median_norm(v, cap) for name, v in norm.items()},
        }
    )
    feats_train, feats_test = le.hidden_features(net, ds.x_train), le.hidden_features(net, x_lens)
    row["homogeneity_shallow"] = homogeneity(cfg, feats_train[0], ds.y_train, feats_test[0], y_lens, ds.n_classes)
    row["homogeneity_deep"] = homogeneity(cfg, feats_train[-1], ds.y_train, feats_test[-1], y_lens, ds.n_classes)
    return row


def run_population(cfg: SimpleNamespace, ds: data.Dataset, probe: Probe) -> pd.DataFrame:
    """Train and measure every network of :func:`population`; one row per network."""
    rows = []
    specs = population(cfg)
    groups = [specs[i : i + cfg.n_seeds] for i in range(0, len(specs), cfg.n_seeds)]  # one configuration each
    with one_thread(cfg.device), tqdm(total=len(specs), desc="networks", leave=False) as bar:
        for group in groups:
            for spec, net in zip(group, train_configuration(cfg, ds, group)):
                rows.append(measure(cfg, ds, probe, net, spec))
                bar.update()
    return pd.DataFrame(rows)


def configurations(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of accuracy, robustness and every lens, one row per configuration."""
    cols = ["clean_accuracy", *[c for c in table if c.startswith("pgd_")], ROBUSTNESS, *LENSES]
    return table.groupby(["method", "condition"], sort=False)[cols].mean()
