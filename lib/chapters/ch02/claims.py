"""Chapter 2's claims: each declared once below, then its row computed from the run; and the run's scalars.

Claims read through the autoencoder's tangent spaces are inconclusive when it explains less
than :data:`MIN_EXPLAINED` of the test images' variance (:func:`manifold_gate`); the
mislabelled claim is inconclusive when its attacks missed their targets too often
(:func:`~.mislabelled.mislabelled_verdict`, thresholds in :mod:`.params`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ... import manifold
from ...claims import INCONCLUSIVE, PAPER, Claim, Declared, by_interval, by_test, declared, fmt
from ...stats import bootstrap_ci
from .images import Censored, flip_over_half_distance, flip_ratio, rms_stat, training_growth
from .mislabelled import judged
from .params import MOST

MIN_EXPLAINED = 0.5  # a manifold model explaining less than half the pixel variance cannot decide on/off claims
MIN_SLOPE = 0.01  # the book's threshold for "more data helps": a point of accuracy per doubling of the set
MAX_DOUBLINGS = 7  # "within reach": at most 2**7 = 128 times the set (8,000 Fashion-MNIST images -> 1 million)

EXPLAINED = "; autoencoder explains {explained:.2f} of the variance"  # ends the statistic of claims read through it
LEARNED = tuple(manifold.LEARNED_PARAMS)
FLIP = ("flip_eps_max", "flip_steps", "bisection_steps")
SYNTHETIC = (
    "synth_dim",
    "synth_manifold_dim",
    "synth_curvature",
    "synth_cells",
    "synth_widths",
    "synth_epochs",
    "synth_optimizer",
    "synth_lr",
    "picture_points",
    "picture_cells",
    "picture_curvature",
    "picture_steps",
)

DECLARED = declared(
    # decided by a test over the synthetic settings (seen in all: holds; in none: does not hold), not an interval
    Declared(
        "ch02.clinging_dimpling",
        PAPER,
        "Training shows a fast clinging phase, then a slow dimpling phase (synthetic manifolds)",
        "settings meeting the stated criterion",
        settings=SYNTHETIC,
    ),
    Declared(
        "ch02.pgd_mostly_off",
        PAPER,
        "Adversarial perturbations are mostly off-manifold (on-manifold share of the norm < 1/sqrt 2)",
        "RMS on-manifold share of PGD perturbations" + EXPLAINED,
        threshold=1 / math.sqrt(2),
        above=False,
        settings=(*LEARNED, "attack_eps", "attack_steps"),
    ),
    # threshold: sqrt(k/n) of the run's image size, set by claims()
    Declared(
        "ch02.pgd_below_random",
        PAPER,
        "... more off-manifold than a random direction (share < sqrt(k/n))",
        "same, vs sqrt(k/n) = {base:.3f} (random subspace: {random:.3f})",
        threshold=math.nan,
        above=False,
        settings=(*LEARNED, "attack_eps", "attack_steps"),
    ),
    Declared(
        "ch02.tiny_perturbations",
        PAPER,
        "Adversarial perturbations are tiny (below half the distance to the nearest other-class image)",
        "median flip norm / (nearest other-class distance / 2)",
        threshold=1.0,
        above=False,
        settings=FLIP,
    ),
    # the three ratios below are decided on the log scale, against log(threshold)
    Declared(
        "ch02.on_larger_than_off",
        PAPER,
        "On-manifold perturbations need larger norms than off-manifold ones",
        "geometric mean of on/off flip-norm ratios" + EXPLAINED,
        threshold=1.0,
        settings=(*LEARNED, *FLIP),
    ),
    Declared(
        "ch02.on_larger_than_random",
        PAPER,
        "... more than in a random subspace of the same dimension (the manifold is special)",
        "geometric mean of on-manifold / random k-dim flip-norm ratios" + EXPLAINED,
        threshold=1.0,
        settings=(*LEARNED, *FLIP),
    ),
    Declared(
        "ch02.mislabelled_accuracy",
        PAPER,
        "A network trained only on mislabelled adversarial examples classifies most clean test images correctly",
        "clean test accuracy (RMS budget {rms:g} = L2 {l2:.3g}, attack success {success:.3f}, chance {chance:.2f})",
        threshold=MOST,
        settings=("mislabel_rms", "mislabel_steps"),
    ),
    # holds when the off-manifold growth and its ratio to the on-manifold growth both lie above the threshold
    Declared(
        "ch02.at_deepens_dimples",
        PAPER,
        "Adversarial training mainly deepens the dimples (off-manifold distance grows more than on-manifold)",
        "off- / on-manifold flip-norm growth (geometric means) and their ratio" + EXPLAINED,
        threshold=1.0,
        settings=("at_eps", "at_steps", *LEARNED, *FLIP),
    ),
)


def manifold_gate(verdict: str, explained: float) -> str:
    """``verdict`` where the autoencoder explains at least :data:`MIN_EXPLAINED` of the test variance, else inconclusive."""
    return verdict if explained >= MIN_EXPLAINED else INCONCLUSIVE


def gated(row: Claim, explained: float) -> Claim:
    """``row`` with its verdict passed through :func:`manifold_gate`."""
    return replace(row, verdict=manifold_gate(row.verdict, explained))


def geo_mean(v: np.ndarray) -> float:
    """The geometric mean of ratios given as logs."""
    return math.exp(v.mean())


def ratio_row(cfg: SimpleNamespace, decl: Declared, c: Censored, explained: float) -> Claim:
    """The row of a geometric-mean flip-norm ratio: its bootstrap interval on the log scale against
    ``log(threshold)``, a verdict only where the dropped and capped readings of missed searches agree."""

    def decide(ci):
        return by_interval(*ci, math.log(decl.threshold), above=decl.above)

    ci = bootstrap_ci(c.dropped, rng=cfg.seed)
    estimate, lo, hi = geo_mean(c.dropped), math.exp(ci[0]), math.exp(ci[1])
    verdict = c.verdict(decide(ci), lambda v: decide(bootstrap_ci(v, rng=cfg.seed)))
    return decl.tested(
        manifold_gate(verdict, explained),
        fmt(estimate, (lo, hi)) + c.note(geo_mean),
        estimate,
        lo,
        hi,
        explained=explained,
    )


def deepening_row(cfg: SimpleNamespace, decl: Declared, growth: Censored, explained: float) -> Claim:
    """The row of "adversarial training mainly deepens the dimples" from the flip-norm growths
    (:func:`~.images.training_growth`): the off-manifold growth and its ratio to the on-manifold one."""
    zero = math.log(decl.threshold)

    def deepens(growths):  # off-manifold growth above the threshold and above the on-manifold growth
        g_ci = bootstrap_ci(growths[0], rng=cfg.seed)
        d_ci = bootstrap_ci(growths[0] - growths[1], rng=cfg.seed)
        return by_test(g_ci[0] > zero and d_ci[0] > zero, g_ci[1] < zero or d_ci[1] < zero)

    grow_off, grow_on = growth.dropped
    d_ci = bootstrap_ci(grow_off - grow_on, rng=cfg.seed)
    estimate, lo, hi = geo_mean(grow_off - grow_on), math.exp(d_ci[0]), math.exp(d_ci[1])
    value = (
        f"{geo_mean(grow_off):.3g} / {geo_mean(grow_on):.3g} = "
        + fmt(estimate, (lo, hi))
        + growth.note(lambda g: geo_mean(g[0] - g[1]))
    )
    verdict = growth.verdict(deepens(growth.dropped), deepens)
    return decl.tested(manifold_gate(verdict, explained), value, estimate, lo, hi, explained=explained)


def claims(
    cfg: SimpleNamespace,
    crit: pd.DataFrame,
    geo: dict[str, pd.DataFrame],
    n: int,
    nn_other: torch.Tensor,
    mis: pd.DataFrame,
    chance: float,
    explained: float,
) -> list[Claim]:
    """The claims table of the chapter, every verdict computed from this run (:data:`DECLARED`, in order)."""
    d, std, cap = DECLARED, geo["standard"], cfg.flip_eps_max
    base = math.sqrt(cfg.latent_dim / n)
    seen = int(crit.seen.sum())
    frac = std.pgd_tangent.to_numpy()
    f_val, f_ci = rms_stat(frac), bootstrap_ci(frac, rms_stat, rng=cfg.seed)
    ratio = flip_over_half_distance(std, nn_other)
    r_med, r_ci = float(np.median(ratio)), bootstrap_ci(ratio, np.median, rng=cfg.seed)
    j = judged(mis)
    return [
        d["clinging_dimpling"].tested(
            by_test(seen == len(crit), seen == 0), f"{seen} of {len(crit)}", seen / len(crit)
        ),
        gated(d["pgd_mostly_off"].interval(f_val, *f_ci, explained=explained), explained),
        gated(
            replace(d["pgd_below_random"], threshold=base).interval(
                f_val, *f_ci, base=base, random=rms_stat(std.pgd_random.to_numpy())
            ),
            explained,
        ),
        d["tiny_perturbations"].interval(r_med, *r_ci),
        ratio_row(cfg, d["on_larger_than_off"], flip_ratio(std, "on-manifold", "off-manifold", cap), explained),
        ratio_row(cfg, d["on_larger_than_random"], flip_ratio(std, "on-manifold", "random k-dim", cap), explained),
        d["mislabelled_accuracy"].tested(
            j["verdict here"],
            fmt(j.clean_accuracy, (j.clean_lo, j.clean_hi)),
            j.clean_accuracy,
            j.clean_lo,
            j.clean_hi,
            rms=j.rms,
            l2=j.l2_budget,
            success=j.attack_success,
            chance=chance,
        ),
        deepening_row(cfg, d["at_deepens_dimples"], training_growth(geo, cap), explained),
    ]


def scalars(
    cfg: SimpleNamespace,
    crit: pd.DataFrame,
    geo: dict[str, pd.DataFrame],
    n: int,
    mis: pd.DataFrame,
    chance: float,
    explained: float,
) -> dict:
    """The run's numbers recorded for sweeps and read by :func:`~.reading.findings`."""
    std, cap = geo["standard"], cfg.flip_eps_max
    on_off = flip_ratio(std, "on-manifold", "off-manifold", cap)
    growth = training_growth(geo, cap)
    grow_off, grow_on = growth.dropped
    j = judged(mis)
    return {
        "pgd_on_fraction_rms": rms_stat(std.pgd_tangent.to_numpy()),
        "pgd_on_fraction_random_rms": rms_stat(std.pgd_random.to_numpy()),
        "normal_on_fraction_rms": rms_stat(std.normal_tangent.to_numpy()),
        "normal_on_fraction_random_rms": rms_stat(std.normal_random.to_numpy()),
        "baseline_sqrt_k_over_n": math.sqrt(cfg.latent_dim / n),
        "ae_explained_variance": explained,
        "on_off_flip_ratio": geo_mean(on_off.dropped),
        "on_random_flip_ratio": geo_mean(flip_ratio(std, "on-manifold", "random k-dim", cap).dropped),
        "mislabelled_rms": float(j.rms),
        "mislabelled_l2_budget": float(j.l2_budget),
        "mislabelled_attack_success": float(j.attack_success),
        "mislabelled_clean_accuracy": float(j.clean_accuracy),
        "chance": chance,
        "at_off_growth": geo_mean(grow_off),
        "at_on_growth": geo_mean(grow_on),
        "on_off_censored_pairs": on_off.n_censored,
        "at_growth_censored_pairs": growth.n_censored,
        "clinging_dimpling_settings": int(crit.seen.sum()),
    }
