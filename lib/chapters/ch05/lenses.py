"""The four lenses and robustness, measured on every network against one shared probe.

The probe holds what every network is measured against: test images, the tangent spaces
of chapter 2's learned manifold (an autoencoder) with random subspaces of the same
dimension, and chapter 4's principal subspace of the training images.
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
    "LENSES",
    "ROBUSTNESS",
    "ROBUSTNESS_LABEL",
    "SHORT",
    "spectra",
    "homogeneity",
    "median_norm",
    "measure",
    "run_population",
    "configurations",
]


@dataclass
class Probe:
    """The measurement set and the subspaces every network is measured against (shared by all)."""

    x: torch.Tensor  # (n_eval, n) test images
    tangent: torch.Tensor  # (n_eval, n, latent_dim): the autoencoder manifold's tangent spaces
    random: torch.Tensor  # (n_eval, n, latent_dim): random subspaces of the same dimension
    pca: torch.Tensor  # (n, k): the principal subspace of the training images
    pca_k: int
    pca_share: float
    ae_explained: float  # share of the test pixels' variance the autoencoder reconstructs
    ae_mse: float


def make_probe(cfg: SimpleNamespace, ds: data.Dataset) -> Probe:
    """Train the autoencoder (chapter 2's manifold), take its tangent spaces and the PCA subspace (chapter 4)."""
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
    idx = torch.randperm(len(ds.x_test), generator=config.generator(cfg.seed + 8))[: cfg.n_eval]
    x = ds.x_test[idx.sort().values.to(ds.x_test.device)]
    basis, k, share = subspace.principal_subspace(ds.x_train, cfg.pca_variance)
    rand = manifold.random_bases(
        len(x), ds.n_features, cfg.latent_dim, generator=config.generator(cfg.seed + 9), device=cfg.device
    )
    return Probe(
        x,
        manifold.autoencoder_bases(ae, x),
        rand,
        basis,
        k,
        share,
        float(hist.val_explained.iloc[-1]),
        float(hist.val_mse.iloc[-1]),
    )


# ---------------------------------------------------------------- the four lenses and robustness

# name: (chapter, label, sign of the correlation with robustness the paper's explanation predicts; 0 = none)
LENSES: dict[str, tuple[int, str, int]] = {
    "alpha": (1, "power-law exponent α (last hidden layer)", +1),
    "participation_ratio": (1, "participation ratio (last hidden layer)", 0),
    "tangent_share": (2, "on-manifold share of the boundary normal (relative to a random subspace)", +1),
    "on_off_ratio": (2, "ratio of the flip norms on / off the manifold", -1),
    "homogeneity_shallow": (3, "SOM code homogeneity, first hidden layer", -1),
    "homogeneity_deep": (3, "SOM code homogeneity, last hidden layer", 0),
    "perp_share": (4, "share of the boundary normal off the PCA subspace (relative to random)", -1),
    "perp_par_ratio": (4, "ratio of the flip norms off / within the PCA subspace", +1),
}
ROBUSTNESS = "flip_norm"
ROBUSTNESS_LABEL = "median smallest flipping L2 norm"
# short names of the measures, for tables and the heat map (chapter in brackets)
SHORT = {
    "alpha": "alpha (1)",
    "participation_ratio": "PR (1)",
    "tangent_share": "on-manifold share (2)",
    "on_off_ratio": "on/off flip (2)",
    "homogeneity_shallow": "homog. shallow (3)",
    "homogeneity_deep": "homog. deep (3)",
    "perp_share": "off-PCA share (4)",
    "perp_par_ratio": "off/in flip (4)",
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


def homogeneity(cfg: SimpleNamespace, h_train: torch.Tensor, h_test: torch.Tensor, ds: data.Dataset) -> float:
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
        np.nanmean(
            som.test_homogeneity(m.codes(h_train), ds.y_train, m.codes(h_test), ds.y_test, m.n_units, ds.n_classes)
        )
    )


def median_norm(norms: torch.Tensor, cap: float) -> float:
    """Median flip norm, inputs never flipped counted at the search's cap (they rank as the largest).

    Their norms exceed the cap, and every found norm is within it, so the ranks are right:
    the median is exact while fewer than half the inputs went unflipped, a lower bound otherwise."""
    return float(norms.clamp(max=cap).median())


def measure(cfg: SimpleNamespace, ds: data.Dataset, probe: Probe, net: models.MLP, spec: Network) -> dict:
    """Every lens and the robustness of one trained network (one row of the population table)."""
    row = {
        "method": spec.method,
        "condition": spec.condition,
        "configuration": spec.configuration,
        "seed": spec.seed,
        "clean_accuracy": train.accuracy(net, ds.x_test, ds.y_test),
    }
    pgd = attacks.accuracy_under(
        net,
        attacks.pgd,
        ds.x_test,
        ds.y_test,
        cfg.pgd_budgets,
        norm="l2",
        steps=cfg.pgd_steps,
        clamp=ds.value_range,
        generator=config.generator(spec.seed + 4),
    )
    row.update({f"pgd_{b:g}": a for b, a in zip(cfg.pgd_budgets, pgd)})
    row.update(spectra(cfg, net, ds.x_test))
    x, cap = probe.x, cfg.flip_eps_max
    pred = train.predict(net, x).argmax(1)
    search = dict(eps_max=cap, steps=cfg.flip_steps, bisection_steps=cfg.bisection_steps)
    restrictions = {
        "full": (None, "on"),
        "on": (probe.tangent, "on"),
        "off": (probe.tangent, "off"),
        "par": (probe.pca, "on"),
        "perp": (probe.pca, "off"),
    }
    norm = {k: r.norm for k, r in flip.min_flip_norms(net, x, pred, restrictions, **search).items()}
    med = {k: median_norm(v, cap) for k, v in norm.items()}
    normal = manifold.boundary_normal(net, x)
    par, perp = subspace.norms(normal.flatten(1), probe.pca)
    d, k = ds.n_features, probe.pca_k
    row.update(
        {
            "flip_norm": med["full"],
            "flipped_share": float(torch.isfinite(norm["full"]).float().mean()),
            "tangent_share": manifold.rms(manifold.on_fraction(normal, probe.tangent))
            / manifold.rms(manifold.on_fraction(normal, probe.random)),
            "on_off_ratio": med["on"] / med["off"],
            "perp_share": manifold.rms(perp / normal.flatten(1).norm(dim=1)) / math.sqrt((d - k) / d),
            "perp_par_ratio": med["perp"] / med["par"],
            **{f"flip_{k}": v for k, v in med.items() if k != "full"},
        }
    )
    feats_train, feats_test = le.hidden_features(net, ds.x_train), le.hidden_features(net, ds.x_test)
    row["homogeneity_shallow"] = homogeneity(cfg, feats_train[0], feats_test[0], ds)
    row["homogeneity_deep"] = homogeneity(cfg, feats_train[-1], feats_test[-1], ds)
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
