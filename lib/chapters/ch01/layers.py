"""Every layer of every network: its eigen-spectrum's power law and its readout's accuracy under attack."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import attacks, config, data, spectrum
from ... import local_errors as le
from ...config import ParameterError
from ..common import one_thread
from .networks import Trained

MEASURES = {"clean": "clean accuracy", "gaussian": "accuracy, Gaussian noise (mean)", "fgsm": "accuracy, FGSM (mean)"}


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
                layer=depth,
                alpha=s.fit.alpha,
                r2=s.fit.r2,
                pr=s.participation_ratio,
                rank=s.rank,
                rms=float(np.sqrt(s.eigs.sum())),
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


def pairs(cfg: SimpleNamespace, long: pd.DataFrame) -> pd.DataFrame:
    """One row per (network, layer): alpha and the three accuracy summaries.

    ``clean`` is the accuracy at eps = 0; ``gaussian`` and ``fgsm`` are the mean
    accuracy over the non-zero strengths of the grid (the area under the
    accuracy-vs-strength curve, per unit of grid).
    """
    keys = ["method", "kind", "condition", "layer", "alpha", "r2", "pr", "rank", "rms", "top_accuracy"]
    clean = long[(long.eps == 0) & (long.attack == "fgsm")].set_index(keys).accuracy.rename("clean")
    if clean.empty:
        raise ParameterError("parameter 'epsilons' must contain 0 (the clean accuracy)")
    attacked = long[long.eps > 0].groupby(keys + ["attack"]).accuracy.mean().unstack("attack")
    if attacked.empty:
        raise ParameterError("parameter 'epsilons' needs at least one strength > 0")
    return pd.concat([clean, attacked[["gaussian", "fgsm"]]], axis=1).reset_index()


def base_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The base networks' per-layer measurements, one row per (method, layer)."""
    cols = ["alpha", "r2", "pr", "rank", "rms", "clean", "gaussian", "fgsm", "top_accuracy"]
    return table[table.kind == "base"].set_index(["method", "layer"])[cols]
