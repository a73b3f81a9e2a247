"""Which lens goes with robustness, over the population: rank correlations with cluster-bootstrap intervals.

The seeds of one configuration are resampled together (a cluster); partial correlations
take clean accuracy out, and correlations within training methods take out what only
separates the methods.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

from ...stats import row_pearson, row_spearman, spearman_with_ci
from .lenses import BASIS_LENSES, FIRST_ORDER, LENSES, NULL, ROBUSTNESS, ROBUSTNESS_LABEL

__all__ = [
    "cluster_resamples",
    "within_spearman_with_ci",
    "correlations",
    "robustness_row",
    "lens_matrix",
    "abs_rho_difference",
    "rho_difference",
    "comparisons",
    "training_shift",
]


def cluster_resamples(clusters, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap index matrix ``(n_boot, N)``: whole clusters (configurations, all their seeds) drawn with
    replacement."""
    labels = pd.Series(np.asarray(clusters))
    groups = [np.asarray(g) for g in labels.groupby(labels, sort=False).indices.values()]
    if len({len(g) for g in groups}) != 1:
        raise ValueError("every configuration must hold the same number of networks")
    members = np.stack(groups)  # (G, m)
    pick = rng.integers(0, len(members), size=(n_boot, len(members)))
    return members[pick].reshape(n_boot, -1)


def _centred_ranks(v: np.ndarray) -> np.ndarray:
    r = stats.rankdata(v, axis=-1)
    return r - r.mean(axis=-1, keepdims=True)


def within_spearman_with_ci(
    a, b, strata, clusters, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Spearman's rho within strata (methods): ranks taken inside each stratum, centred, pooled.

    The interval resamples whole clusters (configurations) inside each stratum, so every
    stratum keeps its size; a lens that only separates one method from the others scores 0.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    strata, clusters = np.asarray(strata), np.asarray(clusters)
    full_a, full_b, boot_a, boot_b = [], [], [], []
    for s in dict.fromkeys(strata):
        members = np.flatnonzero(strata == s)
        idx = members[cluster_resamples(clusters[members], n_boot, rng)]
        full_a.append(_centred_ranks(a[members]))
        full_b.append(_centred_ranks(b[members]))
        boot_a.append(_centred_ranks(a[idx]))
        boot_b.append(_centred_ranks(b[idx]))
    full = float(row_pearson(np.concatenate(full_a), np.concatenate(full_b)))
    boots = row_pearson(np.concatenate(boot_a, axis=1), np.concatenate(boot_b, axis=1))
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, float(lo), float(hi)


def correlations(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Per lens and robustness measure: Spearman rho, partial rho given clean accuracy, rho within
    training methods, each with a 95% cluster-bootstrap interval."""
    rng = np.random.default_rng(cfg.seed)
    idx = cluster_resamples(table.configuration, cfg.n_boot, rng)
    targets = {
        ROBUSTNESS: ROBUSTNESS_LABEL,
        **{f"pgd_{b:g}": f"PGD accuracy, L2 budget {b:g}" for b in cfg.pgd_budgets},
    }
    rows = []
    for lens, (chapter, label, sign) in {**LENSES, "clean_accuracy": (0, "clean accuracy (the control)", 0)}.items():
        for target, tlabel in targets.items():
            r = spearman_with_ci(table[lens], table[target], idx)
            p = (
                spearman_with_ci(table[lens], table[target], idx, control=table.clean_accuracy)
                if lens != "clean_accuracy"
                else (math.nan,) * 3
            )
            w = within_spearman_with_ci(table[lens], table[target], table.method, table.configuration, cfg.n_boot, rng)
            rows.append(
                {
                    "lens": lens,
                    "chapter": chapter,
                    "measure": label,
                    "robustness": tlabel,
                    "predicted sign": {1: "+", -1: "-", 0: "none"}[sign],
                    "rho": r[0],
                    "lo": r[1],
                    "hi": r[2],
                    "partial rho": p[0],
                    "partial lo": p[1],
                    "partial hi": p[2],
                    "within rho": w[0],
                    "within lo": w[1],
                    "within hi": w[2],
                }
            )
    return pd.DataFrame(rows)


def robustness_row(corr: pd.DataFrame, lens: str) -> pd.Series:
    """The row of :func:`correlations` for ``lens`` against the flip norm."""
    return corr[(corr.lens == lens) & (corr.robustness == ROBUSTNESS_LABEL)].iloc[0]


def lens_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlations across networks between the lenses, robustness and clean accuracy."""
    return table[[*LENSES, ROBUSTNESS, "clean_accuracy"]].corr(method="spearman")


def rho_difference(
    cfg: SimpleNamespace, table: pd.DataFrame, lens: str, other: str, *, absolute: bool = True, sign: int = 1
) -> tuple[float, tuple[float, float]]:
    """How much better ``lens`` goes with robustness than ``other``, with a paired cluster-bootstrap interval.

    ``absolute``: ``|rho(lens)| - |rho(other)|`` (which predicts robustness better, whatever the
    sign); else ``sign * (rho(lens) - rho(other))``, the gain in the direction ``sign`` a paper
    predicts (a lens against its permutation null). Both correlations are taken on the same
    resamples of whole configurations."""
    idx = cluster_resamples(table.configuration, cfg.n_boot, np.random.default_rng(cfg.seed + 1))
    y = table[ROBUSTNESS].to_numpy(float)
    a, b = (table[c].to_numpy(float) for c in (lens, other))
    ra, rb = float(row_spearman(a, y, None)), float(row_spearman(b, y, None))
    ba, bb = row_spearman(a[idx], y[idx], None), row_spearman(b[idx], y[idx], None)
    if absolute:
        full, boots = abs(ra) - abs(rb), np.abs(ba) - np.abs(bb)
    else:
        full, boots = sign * (ra - rb), sign * (ba - bb)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, (float(lo), float(hi))


def abs_rho_difference(cfg: SimpleNamespace, table: pd.DataFrame, lens: str, other: str = "alpha"):
    """``|rho(lens, robustness)| - |rho(other, robustness)|`` with a paired cluster-bootstrap interval."""
    return rho_difference(cfg, table, lens, other)


def comparisons(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Each lens measured in a basis beside its comparators: its permutation null (the gain is the signed
    difference of rho, times the predicted sign) and the first-order distance (the difference of |rho|)."""
    y = table[ROBUSTNESS].to_numpy(float)
    against = {
        "permutation null": (NULL, False),
        "first-order distance": (dict.fromkeys(BASIS_LENSES, FIRST_ORDER), True),
    }
    rows = []
    for lens in BASIS_LENSES:
        for name, (other, absolute) in against.items():
            d, (lo, hi) = rho_difference(cfg, table, lens, other[lens], absolute=absolute, sign=LENSES[lens][2])
            rows.append(
                {
                    "lens": lens,
                    "against": name,
                    "rho lens": float(row_spearman(table[lens].to_numpy(float), y, None)),
                    "rho against": float(row_spearman(table[other[lens]].to_numpy(float), y, None)),
                    "gain": d,
                    "lo": lo,
                    "hi": hi,
                }
            )
    return pd.DataFrame(rows)


def training_shift(
    cfg: SimpleNamespace, table: pd.DataFrame, method: str = "adversarial", reference: str = "backprop"
) -> pd.DataFrame:
    """Per lens (and robustness): mean change from ``reference`` to ``method`` networks of the same
    condition and seed, with a cluster-bootstrap interval over conditions (seeds together)."""
    keys = ["condition", "seed"]
    a = table[table.method == method].set_index(keys)
    b = table[table.method == reference].set_index(keys).loc[a.index]
    conds = a.index.get_level_values("condition")
    idx = cluster_resamples(conds, cfg.n_boot, np.random.default_rng(cfg.seed + 2))
    rows = []
    for col in (ROBUSTNESS, *LENSES):
        diff = a[col].to_numpy(float) - b[col].to_numpy(float)
        boots = diff[idx].mean(1)
        sign = LENSES[col][2] if col in LENSES else +1
        rows.append(
            {
                "measure": col,
                "predicted direction": {1: "up", -1: "down", 0: "none"}[sign],
                "mean change": float(diff.mean()),
                "lo": float(np.quantile(boots, 0.025)),
                "hi": float(np.quantile(boots, 0.975)),
            }
        )
    return pd.DataFrame(rows).set_index("measure")
