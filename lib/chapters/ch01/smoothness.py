"""The smoothness bound alpha > 1 + 2/d: the inputs' intrinsic dimension d and FGSM robustness on either side."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ... import config, data, intrinsic_dim, spectrum
from .networks import TRAINED


def intrinsic_dimension(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """TwoNN intrinsic dimension of (a seeded subset of) the training inputs."""
    g = config.generator(cfg.seed + 5)
    idx = torch.randperm(len(ds.x_train), generator=g)[: cfg.id_points].to(ds.x_train.device)
    return intrinsic_dim.twonn(ds.x_train[idx])


def bound_split(cfg: SimpleNamespace, table: pd.DataFrame, bound: float, measure: str = "fgsm_rel"):
    """Mean ``measure`` of the trained networks' layers above minus below ``alpha = bound``.

    The interval resamples whole networks (their layers together); resamples with an
    empty side are dropped. Returns (difference, (lo, hi), n above, n below); NaN when
    a side is empty.
    """
    part = table[table.kind.isin(TRAINED)]
    above = (part.alpha > bound).to_numpy()
    y = part[measure].to_numpy(float)
    n_above, n_below = int(above.sum()), int((~above).sum())
    if n_above == 0 or n_below == 0:
        return float("nan"), (float("nan"), float("nan")), n_above, n_below
    codes, _ = pd.factorize(part.network)
    rng = np.random.default_rng(cfg.seed + 3)
    n_nets = codes.max() + 1
    draws = rng.integers(0, n_nets, (cfg.n_boot, n_nets))
    w = np.stack([np.bincount(row, minlength=n_nets) for row in draws])[:, codes]  # times each point is drawn
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (w * y * above).sum(1) / (w * above).sum(1) - (w * y * ~above).sum(1) / (w * ~above).sum(1)
    boot = boot[np.isfinite(boot)]
    diff = float(y[above].mean() - y[~above].mean())
    if boot.size == 0:
        return diff, (float("nan"), float("nan")), n_above, n_below
    return diff, (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))), n_above, n_below


def input_alpha(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """Power-law exponent of the test inputs' own spectrum over ``alpha_window`` (clipped to their rank)."""
    eigs = spectrum.eigenspectrum(ds.x_test.flatten(1))
    lo, hi = cfg.alpha_window
    hi = min(hi, spectrum.numerical_rank(eigs))
    return spectrum.fit_power_law(eigs, (lo, hi)).alpha if hi - lo >= 2 else float("nan")
