"""One self-organizing map per layer, and the code measures read from it (homogeneity, decisions, map sizes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from minisom import MiniSom

from ... import data, som, train
from ...stats import bootstrap_ci
from .networks import activations, layer_batches, layer_names
from .params import MODEL_TITLES

__all__ = ["agreement", "analyse_layers", "fit_maps", "grid_sensitivity", "minisom_check", "shallow_vs_deep"]


def fit_maps(
    cfg: SimpleNamespace, batches: som.Batches, planes: list[som.Plane], grid: int | None = None, desc: str = ""
) -> list[som.SOM]:
    """One batch SOM per representation of ``batches``, fitted in shared passes from the layers' PCA planes.

    ``grid`` (default ``som_grid``) sets the map side; sigma scales with it.
    """
    g = grid or cfg.som_grid
    return som.fit_layers(
        batches,
        g,
        g,
        epochs=cfg.som_epochs,
        sigma=cfg.som_sigma * g / cfg.som_grid,
        learning_rate=cfg.som_lr,
        lr_decay="constant",
        planes=planes,
        progress=True,
        desc=f"SOMs {desc} {g}x{g}",
    )


def _homogeneity(codes_train: torch.Tensor, codes_test: torch.Tensor, ds: data.Dataset, n_units: int) -> np.ndarray:
    """Each test input's :func:`lib.som.test_homogeneity` against the training inputs' codes."""
    return som.test_homogeneity(codes_train, ds.y_train, codes_test, ds.y_test, n_units, ds.n_classes)


def agreement(
    codes_train: torch.Tensor,
    p_train: torch.Tensor,
    codes_test: torch.Tensor,
    p_test: torch.Tensor,
    n_codes: int,
    c: int,
) -> np.ndarray:
    """Per test input: 1 when its prediction is the majority prediction of the training inputs sharing its code.

    Any quantizer's cells serve as codes (a SOM's units, k-means clusters); a code no
    training input uses owns no label and never agrees.
    """
    owner = som.code_labels(som.contingency(codes_train, p_train, n_codes, c).to(codes_test.device))[codes_test]
    return (owner == p_test.to(owner.device)).float().cpu().numpy()


def analyse_layers(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, name: str) -> SimpleNamespace:
    """Fit the maps of one model and measure its codes layer by layer.

    Every layer's PCA plane is computed once (randomized, :func:`lib.som.principal_planes`)
    and its map fitted from it, all layers in the same streamed passes
    (:func:`layer_batches`). Returns the planes, the maps, the train/test codes, each test
    input's per-layer homogeneity (:func:`lib.som.other_class_fraction` against the
    training codes) and a table with, per layer: quantization and topographic error (test
    inputs), the code measures of :func:`lib.som.code_measures` on the test codes,
    homogeneity with its bootstrap CI, and the agreement between each test input's
    prediction and its code's majority predicted label (training inputs' predictions;
    per input in ``agreement``, one array per layer; the predictions in ``predictions``).
    """
    rng = np.random.default_rng(cfg.seed)
    src_train = layer_batches(net, ds.x_train, budget_mb=cfg.activation_budget_mb)
    planes = som.principal_planes(src_train, seed=cfg.seed, progress=True, desc=f"PCA planes {MODEL_TITLES[name]}")
    maps = fit_maps(cfg, src_train, planes, desc=MODEL_TITLES[name])
    codes_train = [idx[:, 0] for idx, _ in som.assign_layers(maps, src_train, k=1)]
    test = som.assign_layers(maps, layer_batches(net, ds.x_test, budget_mb=cfg.activation_budget_mb), k=2)
    p_train, p_test = (train.predict(net, x).argmax(1) for x in (ds.x_train, ds.x_test))
    k, c = cfg.som_grid**2, ds.n_classes
    rows, codes_test, homog, agrees = [], [], [], []
    for layer, m, ctr, (idx, dist) in zip(layer_names(name, cfg), maps, codes_train, test):
        cte = idx[:, 0]
        h = _homogeneity(ctr, cte, ds, k)
        agree = agreement(ctr, p_train, cte, p_test, k, c)
        lo, hi = bootstrap_ci(h, n_boot=cfg.n_boot, rng=rng)
        alo, ahi = bootstrap_ci(agree, n_boot=cfg.n_boot, rng=rng)
        rows.append(
            {
                "model": MODEL_TITLES[name],
                "layer": layer,
                "dim": m.weights.shape[1],
                "quantization error": som.quantization_error(dist),
                "topographic error": som.topographic_error(idx, m.rows, m.cols),
                **som.code_measures(som.contingency(cte, ds.y_test, k, c)),
                "homogeneity": float(np.nanmean(h)),
                "homogeneity lo": lo,
                "homogeneity hi": hi,
                "decision agreement": float(agree.mean()),
                "agreement lo": alo,
                "agreement hi": ahi,
            }
        )
        codes_test.append(cte)
        homog.append(h)
        agrees.append(agree)
    return SimpleNamespace(
        name=name,
        planes=planes,
        maps=maps,
        codes_train=codes_train,
        codes_test=codes_test,
        homogeneity=homog,
        agreement=agrees,
        predictions=(p_train, p_test),
        table=pd.DataFrame(rows),
        layers=layer_names(name, cfg),
    )


def shallow_vs_deep(cfg: SimpleNamespace, res: SimpleNamespace) -> dict:
    """Homogeneity of the first minus the last hidden layer, per test input, with a paired bootstrap CI."""
    d = res.homogeneity[1] - res.homogeneity[-1]
    lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 1))
    return {
        "model": MODEL_TITLES[res.name],
        "shallow": res.layers[1],
        "deep": res.layers[-1],
        "difference": float(np.nanmean(d)),
        "lo": lo,
        "hi": hi,
    }


def minisom_check(
    cfg: SimpleNamespace,
    net: torch.nn.Module,
    ds: data.Dataset,
    res: SimpleNamespace,
    layer: int = 1,
    n_codes: int = 300,
    n_fit: int = 1000,
) -> dict:
    """Cross-check against MiniSom on one layer: the codes of ``n_codes`` inputs, and the quality of a fit.

    MiniSom's ``winner`` on the chapter's fitted weights must give the same codes as the
    batched assignment. Then both implementations fit a map to the same ``n_fit``
    training inputs (a seeded subset, so MiniSom's per-sample loop stays affordable)
    from a PCA start with the same sigma schedule and number of passes: MiniSom's online
    ``train`` (learning rate 0.5, its default; its own exact ``pca_weights_init``) and the
    chapter's batch map (randomized PCA plane); their quantization errors are compared.
    """
    g, fitted = cfg.som_grid, res.maps[layer]
    sub = np.sort(np.random.default_rng(cfg.seed).permutation(len(ds.x_train))[:n_fit])
    x = activations(net, ds.x_train[torch.as_tensor(sub, device=ds.x_train.device)])[layer]
    xs = x.double().cpu().numpy()
    ref = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, random_seed=cfg.seed)
    ref._weights = fitted.weights.double().cpu().numpy().reshape(g, g, -1)
    expected = np.array([np.ravel_multi_index(ref.winner(v), (g, g)) for v in xs[:n_codes]])
    equal = fitted.codes(x[:n_codes].double()).cpu().numpy() == expected
    online = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, learning_rate=0.5, random_seed=cfg.seed)
    online.pca_weights_init(xs)
    online.train(xs, cfg.som_epochs * len(xs), random_order=True)
    batch = fit_maps(
        cfg, som.tensor_batches(x), som.principal_planes(som.tensor_batches(x), seed=cfg.seed), desc="check"
    )[0]
    return {
        "codes equal MiniSom's winner": bool(equal.all()),
        "share of codes equal": float(equal.mean()),
        "inputs checked": len(expected),
        "inputs fitted": len(xs),
        "QE lib.som (batch)": batch.quantization_error(x),
        "QE MiniSom train (online)": float(online.quantization_error(xs)),
    }


def grid_sensitivity(cfg: SimpleNamespace, nets: dict, res: dict, ds: data.Dataset, grids: list[int]) -> pd.DataFrame:
    """The shallow-minus-deep homogeneity difference for other map sizes (sigma scaled with the side).

    The maps of other sizes start from the PCA planes of :func:`analyse_layers` (computed
    once per layer); the chapter's own size reuses its maps.
    """
    rows = []
    for name, net in nets.items():
        r = res[name]
        chosen = [1, len(r.layers) - 1]
        src_train = layer_batches(net, ds.x_train, chosen, budget_mb=cfg.activation_budget_mb)
        src_test = layer_batches(net, ds.x_test, chosen, budget_mb=cfg.activation_budget_mb)
        for g in grids:
            if g == cfg.som_grid:
                h = [r.homogeneity[i] for i in chosen]
            else:
                maps = fit_maps(cfg, src_train, [r.planes[i] for i in chosen], grid=g, desc=MODEL_TITLES[name])
                ctr, cte = (som.assign_layers(maps, src, k=1) for src in (src_train, src_test))
                h = [_homogeneity(a[0][:, 0], b[0][:, 0], ds, g * g) for a, b in zip(ctr, cte)]
            lo, hi = bootstrap_ci(h[0] - h[1], n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
            rows.append(
                {
                    "model": MODEL_TITLES[name],
                    "map": f"{g}x{g}",
                    "sigma": cfg.som_sigma * g / cfg.som_grid,
                    "shallow": r.layers[1],
                    "deep": r.layers[-1],
                    "shallow homogeneity": np.nanmean(h[0]),
                    "deep homogeneity": np.nanmean(h[1]),
                    "difference": np.nanmean(h[0] - h[1]),
                    "lo": lo,
                    "hi": hi,
                }
            )
    return pd.DataFrame(rows)
