"""The main runs: ``n_seeds`` networks at the chapter's setting, their gradients and flip distances."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from .costs import STAGES
from .networks import Run, make_batch, mean_ci, measure, point_ratios, ratio_ci, train

__all__ = ["baseline", "flip_summary", "seed_stat"]


@STAGES.timed("main runs")
def baseline(cfg: SimpleNamespace) -> tuple[Run, pd.DataFrame]:
    """``n_seeds`` networks at the chapter's main setting, each on its own data set and subspace."""
    E = cfg.n_seeds
    batch = make_batch(
        cfg.n_points,
        [cfg.d] * E,
        [cfg.k] * E,
        rule=cfg.rule,
        radius=cfg.radius,
        generator=cfg.generator,
        device=cfg.device,
    )
    run = train(cfg, batch, desc="main runs")
    return run, measure(run)


def seed_stat(df: pd.DataFrame, fn, n_seeds: int) -> tuple[float, float, float]:
    """Mean and CI over seeds of ``fn(rows of one seed)`` (members are seeds in the main runs)."""
    return mean_ci([fn(g) for _, g in df.groupby(df.member % n_seeds)])


def flip_summary(df: pd.DataFrame, n_seeds: int, fraction: float) -> dict:
    """The flip statistics of the main runs: ratios, the universal norm and the fractions it flips, and
    (:func:`~.networks.point_ratios`) the flip distances over the data scale and the trained network
    over its untrained initialisation, geometric means over seeds."""
    t_u = fraction * float(df.dist_other.median())
    out = {"universal_norm": t_u}
    stats_ = {
        "grad_ratio": lambda g: float((g.g_perp / g.g_par).median()),
        "delta_ratio": lambda g: float((g.delta_perp / g.delta_par).median()),
        "delta_vs_other": lambda g: float((g.delta_perp / g.dist_other).median()),
        "univ_flipped": lambda g: float((g.delta_univ <= t_u).mean()),
        "rand_flipped": lambda g: float((g.delta_rand <= t_u).mean()),
        "perp_flipped": lambda g: float((g.delta_perp <= t_u).mean()),
        "univ_over_perp": lambda g: float((g.delta_univ / g.delta_perp).median()),
    }
    for name, fn in stats_.items():
        out[name] = seed_stat(df, fn, n_seeds)
    for name, ratio in point_ratios(df).items():  # positive ratios: geometric mean over seeds, on the log scale
        out[name] = ratio_ci(ratio.groupby(df.member % n_seeds).median())
    return out
