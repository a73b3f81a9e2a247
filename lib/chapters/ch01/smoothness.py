"""The smoothness bound alpha > 1 + 2/d: the inputs' intrinsic dimension d and FGSM accuracy on either side."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ... import config, data, intrinsic_dim, spectrum


def intrinsic_dimension(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """TwoNN intrinsic dimension of (a seeded subset of) the training inputs."""
    g = config.generator(cfg.seed + 5)
    idx = torch.randperm(len(ds.x_train), generator=g)[: cfg.id_points].to(ds.x_train.device)
    return intrinsic_dim.twonn(ds.x_train[idx])


def bound_split(cfg: SimpleNamespace, table: pd.DataFrame, bound: float, measure: str = "fgsm"):
    """Mean ``measure`` above minus below ``alpha = bound``, with a bootstrap CI (NaN if one side is empty)."""
    above = table[table.alpha > bound][measure].to_numpy()
    below = table[table.alpha <= bound][measure].to_numpy()
    if len(above) == 0 or len(below) == 0:
        return float("nan"), (float("nan"), float("nan")), len(above), len(below)
    rng = np.random.default_rng(cfg.seed + 3)
    boot = above[rng.integers(0, len(above), (cfg.n_boot, len(above)))].mean(1) - below[
        rng.integers(0, len(below), (cfg.n_boot, len(below)))
    ].mean(1)
    return (
        float(above.mean() - below.mean()),
        (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))),
        len(above),
        len(below),
    )


def input_alpha(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """Power-law exponent of the test inputs' own spectrum over ``alpha_window`` (clipped to their rank)."""
    eigs = spectrum.eigenspectrum(ds.x_test.flatten(1))
    lo, hi = cfg.alpha_window
    hi = min(hi, spectrum.numerical_rank(eigs))
    return spectrum.fit_power_law(eigs, (lo, hi)).alpha if hi - lo >= 2 else float("nan")
