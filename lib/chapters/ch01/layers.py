"""Every layer of every network: its eigen-spectrum's power law and its readout's accuracy under attack."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import attacks, config, data, spectrum
from ... import local_errors as le
from ...config import ParameterError
from ..common import one_thread
from .networks import Trained

MEASURES = {
    "clean": "clean accuracy",
    "gaussian_rel": "accuracy under Gaussian noise / clean accuracy (mean)",
    "fgsm_rel": "accuracy under FGSM / clean accuracy (mean)",
}
KEYS = [
    "method",
    "kind",
    "condition",
    "network",
    "layer",
    "alpha",
    "r2",
    "pr",
    "rank",
    "rms",
    "class_top",
    "top_accuracy",
]


def class_share(h: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Share of the between-class variance (of the class means) that lies in the first ``k`` principal components."""
    h = h.double() - h.double().mean(0)
    _, vecs = torch.linalg.eigh(h.T @ h)
    top = vecs[:, -k:]  # eigh sorts ascending
    means = torch.stack([h[y == c].mean(0) for c in torch.unique(y)])
    counts = torch.stack([(y == c).sum() for c in torch.unique(y)]).double()
    between = (counts[:, None] * means**2).sum()
    return float((counts[:, None] * (means @ top) ** 2).sum() / between) if between > 0 else float("nan")


def measure(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> tuple[pd.DataFrame, dict]:
    """Per network and layer: spectrum fit, participation ratio, accuracy at every strength.

    Returns a long table (one row per network, layer, attack and eps) and the
    spectra, keyed by (method, condition label, layer).
    """
    with one_thread(cfg.device):
        return _measure(cfg, ds, runs)


def _measure(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> tuple[pd.DataFrame, dict]:
    strengths = [2 * e for e in cfg.epsilons]
    rows, spectra = [], {}
    for run in tqdm(runs, desc="measuring", leave=False):
        feats = le.hidden_features(run.net, ds.x_test)
        for depth, (h, layer) in enumerate(zip(feats, run.layers), start=1):
            try:
                s = spectrum.analyse(h, tuple(cfg.alpha_window))
            except spectrum.SpectrumError as exc:
                raise ParameterError(
                    f"parameter 'alpha_window' does not fit layer {depth} of the {run.cond.method} "
                    f"network ({run.cond.label}): {exc}"
                ) from exc
            spectra[(run.cond.method, run.cond.label, depth)] = s
            base = dict(
                method=run.cond.method,
                kind=run.cond.kind,
                condition=run.cond.label,
                network=f"{run.cond.method} / {run.cond.label}",
                layer=depth,
                alpha=s.fit.alpha,
                r2=s.fit.r2,
                pr=s.participation_ratio,
                rank=s.rank,
                rms=float(np.sqrt(s.eigs.sum())),
                class_top=class_share(h, ds.y_test, cfg.alpha_window[0] - 1) if run.cond.kind == "base" else np.nan,
                top_accuracy=run.top_accuracy,
            )
            noise = attacks.accuracy_under(
                layer,
                attacks.noise_attack,
                ds.x_test,
                ds.y_test,
                strengths,
                clamp=ds.value_range,
                generator=config.generator(cfg.seed + 4),
            )
            fgsm = attacks.accuracy_under(layer, attacks.fgsm, ds.x_test, ds.y_test, strengths, clamp=ds.value_range)
            for eps, a_n, a_f in zip(cfg.epsilons, noise, fgsm):
                rows.append({**base, "attack": "gaussian", "eps": eps, "accuracy": a_n})
                rows.append({**base, "attack": "fgsm", "eps": eps, "accuracy": a_f})
    return pd.DataFrame(rows), spectra


def with_relative(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` with ``relative``: each accuracy divided by the same readout's clean accuracy (eps = 0)."""
    clean = long[long.eps == 0].groupby(["network", "layer", "attack"]).accuracy.first().rename("clean_accuracy")
    out = long.join(clean, on=["network", "layer", "attack"])
    return out.assign(relative=out.accuracy / out.clean_accuracy).drop(columns="clean_accuracy")


def pairs(cfg: SimpleNamespace, long: pd.DataFrame) -> pd.DataFrame:
    """One row per (network, layer): alpha and the accuracy summaries.

    ``clean`` is the accuracy at eps = 0; ``gaussian`` and ``fgsm`` are the mean
    accuracy over the non-zero strengths of the grid, ``gaussian_rel`` and ``fgsm_rel``
    the mean of accuracy / clean accuracy over them: how much of its clean accuracy a
    readout keeps under attack, the robustness without the clean accuracy in it.
    """
    by = ["network", "layer"]
    clean = long[(long.eps == 0) & (long.attack == "fgsm")].set_index(by)
    if clean.empty:
        raise ParameterError("parameter 'epsilons' must contain 0 (the clean accuracy)")
    attacked = with_relative(long)
    attacked = attacked[attacked.eps > 0].groupby(by + ["attack"])[["accuracy", "relative"]].mean()
    if attacked.empty:
        raise ParameterError("parameter 'epsilons' needs at least one strength > 0")
    raw, rel = attacked.accuracy.unstack("attack"), attacked.relative.unstack("attack").add_suffix("_rel")
    out = clean[[k for k in KEYS if k not in by]].assign(clean=clean.accuracy)
    out = out.join(raw[["gaussian", "fgsm"]]).join(rel[["gaussian_rel", "fgsm_rel"]]).reset_index()
    return out[[*KEYS, "clean", "gaussian", "fgsm", "gaussian_rel", "fgsm_rel"]]


def base_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The base networks' per-layer measurements, one row per (method, layer)."""
    cols = ["alpha", "r2", "pr", "rank", "rms", "class_top", "clean", "gaussian_rel", "fgsm_rel", "top_accuracy"]
    return table[table.kind == "base"].set_index(["method", "layer"])[cols]
