"""The nulls the chapter's claims are tested against: the input's own map, k-means cells, an untrained network.

- Decisions: a hidden layer read out linearly agrees with the output through *any* fine
  enough quantizer of it, so the share of inputs predicted as their code's majority
  prediction is judged against the same share at the input layer's map (what the
  pixels alone say about the decision); k-means with as many cells on the same layer
  shows what any quantizer reaches (descriptive).
- Depth: class separation grows with depth in any trained network; an untrained network
  of the same architecture (its initial weights) gives the trend the architecture and the
  maps make without training.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from sklearn.cluster import KMeans

from ... import data, som
from ...stats import bootstrap_ci
from .codes import agreement, fit_maps
from .networks import layer_batches
from .params import MODEL_TITLES

__all__ = ["beyond_untrained", "decisions_vs_input", "kmeans_agreement", "untrained_homogeneity"]


def _held(batches: som.Batches, k: int = 0) -> torch.Tensor:
    """The ``k``-th representation of a :data:`lib.som.Batches` source as one matrix."""
    return torch.cat([chunk[k] for chunk in batches()])


def kmeans_agreement(
    cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, res: SimpleNamespace, layer: int = -1
) -> float:
    """Share of test inputs predicted as the majority prediction of their k-means cell (as many cells as units).

    k-means (one seeded start, Lloyd's algorithm) on the training inputs' activations at
    ``layer`` (default: the last hidden layer), its cells labelled like the map's codes.
    """
    li = layer % len(res.layers)
    x_train = _held(layer_batches(net, ds.x_train, [li], budget_mb=cfg.activation_budget_mb))
    x_test = _held(layer_batches(net, ds.x_test, [li], budget_mb=cfg.activation_budget_mb))
    k = min(cfg.som_grid**2, len(x_train))
    km = KMeans(n_clusters=k, n_init=1, random_state=cfg.seed).fit(x_train.double().cpu().numpy())
    ctr = torch.as_tensor(km.labels_, dtype=torch.long)
    cte = torch.as_tensor(km.predict(x_test.double().cpu().numpy()), dtype=torch.long)
    p_train, p_test = (p.cpu() for p in res.predictions)
    return float(agreement(ctr, p_train, cte, p_test, k, ds.n_classes).mean())


def decisions_vs_input(cfg: SimpleNamespace, res: SimpleNamespace, kmeans: float = float("nan")) -> dict:
    """Decision agreement at the last hidden layer minus at the input layer, per test input, paired bootstrap CI.

    Both agreements use the same test inputs and the same predictions, so the difference
    is paired. ``kmeans`` (from :func:`kmeans_agreement`) is shown beside them.
    """
    deep, pixels = res.agreement[-1], res.agreement[0]
    lo, hi = bootstrap_ci(deep - pixels, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 4))
    return {
        "model": MODEL_TITLES[res.name],
        "layer": res.layers[-1],
        "agreement": float(deep.mean()),
        "input agreement": float(pixels.mean()),
        "k-means agreement": kmeans,
        "difference": float((deep - pixels).mean()),
        "lo": lo,
        "hi": hi,
    }


def untrained_homogeneity(
    cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, res: SimpleNamespace
) -> list[np.ndarray]:
    """Each test input's homogeneity at the first and the last hidden layer of an untrained network.

    ``net`` is the network of ``res`` at its initial weights; its maps are fitted exactly
    as the trained network's (PCA start, the same grid, sigma and passes).
    """
    chosen = [1, len(res.layers) - 1]
    src_train = layer_batches(net, ds.x_train, chosen, budget_mb=cfg.activation_budget_mb)
    src_test = layer_batches(net, ds.x_test, chosen, budget_mb=cfg.activation_budget_mb)
    title = MODEL_TITLES[res.name]
    planes = som.principal_planes(src_train, seed=cfg.seed, progress=True, desc=f"PCA planes {title} untrained")
    maps = fit_maps(cfg, src_train, planes, desc=f"{title} untrained")
    ctr, cte = (som.assign_layers(maps, src, k=1) for src in (src_train, src_test))
    k, c = cfg.som_grid**2, ds.n_classes
    return [som.test_homogeneity(a[0][:, 0], ds.y_train, b[0][:, 0], ds.y_test, k, c) for a, b in zip(ctr, cte)]


def beyond_untrained(cfg: SimpleNamespace, res: SimpleNamespace, untrained: list[np.ndarray]) -> dict:
    """The shallow-minus-deep homogeneity of the trained network minus the untrained one's, paired bootstrap CI.

    Per test input ``(eta_shallow - eta_deep)`` trained minus the same untrained; inputs
    whose code is unused at any of the four maps are left out.
    """
    trained = res.homogeneity[1] - res.homogeneity[-1]
    control = untrained[0] - untrained[1]
    d = trained - control
    lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 5))
    return {
        "model": MODEL_TITLES[res.name],
        "shallow": res.layers[1],
        "deep": res.layers[-1],
        "trained difference": float(np.nanmean(trained)),
        "untrained shallow homogeneity": float(np.nanmean(untrained[0])),
        "untrained deep homogeneity": float(np.nanmean(untrained[1])),
        "untrained difference": float(np.nanmean(control)),
        "difference": float(np.nanmean(d)),
        "lo": lo,
        "hi": hi,
    }
