"""Chapter 2's claims: each declared once below, then its row computed from the run; and the run's scalars.

Claims read through the autoencoder's tangent spaces are inconclusive when it explains less
than :data:`MIN_EXPLAINED` of the test images' variance (:func:`manifold_gate`); the
mislabelled claim is inconclusive when its attacks missed their targets too often
(:func:`~.mislabelled.mislabelled_verdict`, thresholds in :mod:`.params`).

Every verdict can fail: the shares are judged against a random direction (sqrt(k/n)), a random
subspace of the unsaturated pixels and the unclamped boundary normal; flip norms against a random
subspace of the same dimension and the data's own scale; the growth under adversarial training against
a random split of the same dimensions. The statistics that any direction passes (a share below
1/sqrt 2, on- over off-manifold flip norms, a k vs n-k dimension effect) are :func:`scalars` only,
shown by :func:`~.reading.descriptives`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ... import manifold
from ...claims import CHECK, CONTROL, INCONCLUSIVE, LOG, PAPER, Claim, Declared, by_interval, by_test, declared, fmt
from ...stats import bootstrap_ci
from .images import (
    RANDOM_PAIR,
    SCALES,
    SHARES,
    Censored,
    flip_over_scale,
    flip_ratio,
    growth_beyond_random,
    paired_rms_ratio_ci,
    rms_ratio,
    rms_stat,
    training_growth,
)
from .mislabelled import judged
from .params import MOST
from .synthetic import random_band

MIN_EXPLAINED = 0.5  # a manifold model explaining less than half the pixel variance cannot decide on/off claims
MIN_SLOPE = 0.01  # the book's threshold for "more data helps": a point of accuracy per doubling of the set
MAX_DOUBLINGS = 7  # "within reach": at most 2**7 = 128 times the set (8,000 Fashion-MNIST images -> 1 million)

EXPLAINED = "; autoencoder explains {explained:.2f} of the variance"  # ends the statistic of claims read through it
LEARNED = tuple(manifold.LEARNED_PARAMS)
FLIP = ("flip_eps_max", "fmn_steps")
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

SHARE = (*LEARNED, "attack_eps", "attack_steps")
RATIO = "; 1: a random direction (RMS share sqrt(k/n) = {base:.3f}); the paper's claim: below 1"

DECLARED = declared(
    # decided by a test over the synthetic settings (seen in all: holds; in none: does not hold), not an interval
    Declared(
        "ch02.clinging_dimpling",
        PAPER,
        "Training shows a fast clinging phase, then a slow dimpling phase (synthetic manifolds)",
        "settings meeting the stated criterion",
        settings=SYNTHETIC,
        sesoi=0.25,
        depends=False,
        why="0.25 of the settings: one of the four synthetic settings, the least a run can show",
        section="ch02-synthetic",
    ),
    # the shares' right null is a random direction, whose RMS share in any k-dim subspace of R^n is sqrt(k/n)
    Declared(
        "ch02.pgd_share_over_random",
        PAPER,
        "Adversarial perturbations are more off-manifold than a random direction (tangent share / sqrt(k/n) < 1)",
        "RMS tangent share of the (pixel-box clamped) PGD perturbations / sqrt(k/n)" + RATIO + EXPLAINED,
        threshold=1.0,
        above=False,
        settings=SHARE,
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a share 10% off a random direction's",
        section="ch02-images",
    ),
    Declared(
        "ch02.normal_share_over_random",
        CONTROL,
        "... also for the boundary normal, which no pixel box clamps (tangent share / sqrt(k/n) < 1)",
        "RMS tangent share of the boundary normal (input gradient of the top-two logit margin) / sqrt(k/n)"
        + RATIO
        + EXPLAINED,
        threshold=1.0,
        above=False,
        settings=LEARNED,
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a share 10% off a random direction's",
        section="ch02-images",
    ),
    # the clamping control: the pixel box pushes the PGD probe towards the unsaturated pixels, where the tangent lives
    Declared(
        "ch02.pgd_share_over_unsaturated",
        CONTROL,
        "... also against a random subspace of the image's unsaturated pixels (the pixel-box control)",
        "RMS tangent share / RMS share in a random k-dim subspace of the image's unsaturated pixels, same PGD "
        "perturbations (paired bootstrap); 1: no more on-manifold than the box alone makes them" + EXPLAINED,
        threshold=1.0,
        above=False,
        settings=SHARE,
        sesoi=1.1,
        scale=LOG,
        depends=True,
        why="a ratio of 1.1: a share 10% off the unsaturated pixels' (depends: the box clamps more of some data)",
        section="ch02-images",
    ),
    # the rule of "tiny": shorter than the closest natural variation of the image's own class in the data
    Declared(
        "ch02.tiny_vs_same_class",
        PAPER,
        "Adversarial perturbations are tiny on the data's scale (shorter than the distance to the nearest "
        "same-class image)",
        "median over test images of the smallest flipping L2 norm (minimal-norm attack, unrestricted) / distance to "
        "the nearest training image of the same class ({n_train} training images); below 1: shorter than the "
        "closest natural variation of the class",
        threshold=1.0,
        above=False,
        settings=("n_train", *FLIP),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip norm, the tolerance within which the book's minimal-norm attack "
        "matches the field's best per point",
        section="ch02-images",
    ),
    # decided on the log scale, against log(threshold)
    Declared(
        "ch02.on_larger_than_random",
        PAPER,
        "On-manifold perturbations need larger norms than those in a random subspace of the same dimension "
        "(the manifold is special)",
        "geometric mean of on-manifold / random k-dim flip-norm ratios" + EXPLAINED,
        threshold=1.0,
        settings=(*LEARNED, *FLIP),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip norm, the tolerance within which the book's minimal-norm attack "
        "matches the field's best per point",
        section="ch02-images",
    ),
    Declared(
        "ch02.mislabelled_accuracy",
        PAPER,
        "A network trained only on mislabelled adversarial examples classifies most clean test images correctly",
        "clean test accuracy (RMS budget {rms:g} = L2 {l2:.3g}, attack success {success:.3f}, chance {chance:.2f})",
        threshold=MOST,
        settings=("mislabel_rms", "mislabel_steps"),
        sesoi=0.01,
        depends=False,
        why="0.01 of accuracy: a point of accuracy is the smallest gap the book reports",
        section="ch02-mislabelled",
    ),
    # decided on the log scale, against log(threshold); the random split takes out what any k vs n-k split shows
    Declared(
        "ch02.at_deepens_dimples_beyond_random",
        PAPER,
        "Adversarial training mainly deepens the dimples (the off-manifold flip norm grows more than the "
        "on-manifold one, beyond a random split of the same dimensions)",
        "geometric mean over test images of (off- / on-manifold flip-norm growth) / (random (n-k)-dim / random "
        "k-dim growth), growth = adversarially / standard-trained flip norm" + EXPLAINED,
        threshold=1.0,
        settings=("at_eps", "at_steps", *LEARNED, *FLIP),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip-norm growth, as for the flip norms",
        section="ch02-adversarial-training",
    ),
    # the null of every share above: a random subspace must keep sqrt(k/n) of any fixed direction (RMS)
    Declared(
        "ch02.random_subspace_baseline",
        CHECK,
        "A random k-dim subspace keeps sqrt(k/n) of the probes' norm (RMS)",
        "RMS share of PGD perturbations and boundary normals (both networks) in random k-dim subspaces / sqrt(k/n); "
        "holds when every share lies within {width:g} standard errors of sqrt(k/n)",
        section="ch02-images",
    ),
)

BAND_WIDTH = 4.0  # standard errors: the mechanism check's band around sqrt(k/n)


def manifold_gate(verdict: str, explained: float) -> str:
    """``verdict`` where the autoencoder explains at least :data:`MIN_EXPLAINED` of the test variance, else inconclusive."""
    return verdict if explained >= MIN_EXPLAINED else INCONCLUSIVE


def gated(row: Claim, explained: float) -> Claim:
    """``row`` with its verdict passed through :func:`manifold_gate`."""
    return replace(row, verdict=manifold_gate(row.verdict, explained))


def geo_mean(v: np.ndarray) -> float:
    """The geometric mean of ratios given as logs."""
    return math.exp(v.mean())


def ratio_row(cfg: SimpleNamespace, decl: Declared, c: Censored, explained: float, prefix: str = "") -> Claim:
    """The row of a geometric-mean flip-norm ratio: its bootstrap interval on the log scale against
    ``log(threshold)``, a verdict only where the dropped and capped readings of missed searches agree;
    ``prefix`` leads the value column."""

    def decide(ci):
        return by_interval(*ci, math.log(decl.threshold), above=decl.above)

    ci = bootstrap_ci(c.dropped, rng=cfg.seed)
    estimate, lo, hi = geo_mean(c.dropped), math.exp(ci[0]), math.exp(ci[1])
    verdict = c.verdict(decide(ci), lambda v: decide(bootstrap_ci(v, rng=cfg.seed)))
    return decl.tested(
        manifold_gate(verdict, explained),
        prefix + fmt(estimate, (lo, hi)) + c.note(geo_mean),
        estimate,
        lo,
        hi,
        explained=explained,
    )


def share_over_random_row(cfg: SimpleNamespace, decl: Declared, share: np.ndarray, n: int, explained: float) -> Claim:
    """The row of an RMS tangent share over its random-direction value sqrt(k/n), with its bootstrap interval."""
    base = math.sqrt(cfg.latent_dim / n)
    val, (lo, hi) = rms_stat(share), bootstrap_ci(share, rms_stat, rng=cfg.seed)
    row = decl.interval(
        val / base,
        lo / base,
        hi / base,
        value=fmt(val / base, (lo / base, hi / base)) + f" (share {val:.3f})",
        base=base,
        explained=explained,
    )
    return gated(row, explained)


def baseline_check(geo: dict[str, pd.DataFrame], k: int, n: int) -> Claim:
    """The mechanism check of the shares' null: every probe's RMS share in random k-dim subspaces lies within
    :data:`BAND_WIDTH` standard errors of sqrt(k/n)."""
    shares = {(kind, p): rms_stat(df[f"{p}_random"].to_numpy()) for kind, df in geo.items() for p in ("pgd", "normal")}
    count = min(len(df) for df in geo.values())
    lo, hi = random_band(n, k, count, width=BAND_WIDTH)
    inside = all(lo <= v <= hi for v in shares.values())
    value = ", ".join(f"{p} {v:.3f} ({kind})" for (kind, p), v in shares.items()) + f"; band [{lo:.3f}, {hi:.3f}]"
    base = math.sqrt(k / n)
    return DECLARED["random_subspace_baseline"].tested(
        by_test(inside, not inside), value, shares["standard", "pgd"] / base, lo / base, hi / base, width=BAND_WIDTH
    )


def claims(
    cfg: SimpleNamespace,
    crit: pd.DataFrame,
    geo: dict[str, pd.DataFrame],
    n: int,
    scales: pd.DataFrame,
    mis: pd.DataFrame,
    chance: float,
    explained: float,
) -> list[Claim]:
    """The claims table of the chapter, every verdict computed from this run (:data:`DECLARED`, in order).

    ``geo``: :func:`~.images.image_geometry` per training kind; ``n``: pixels; ``scales``:
    :func:`~.images.data_scales` of the measured test images; ``explained``: the autoencoder's.
    """
    d, std, cap = DECLARED, geo["standard"], cfg.flip_eps_max
    seen = int(crit.seen.sum())
    tangent, free = std.pgd_tangent.to_numpy(), std.pgd_unsaturated.to_numpy()
    u_val, u_ci = rms_ratio(tangent, free), paired_rms_ratio_ci(tangent, free, cfg.seed)
    ratio = flip_over_scale(std, scales, "nearest same class")
    r_med, r_ci = float(np.median(ratio)), bootstrap_ci(ratio, np.median, rng=cfg.seed)
    scale_note = ", ".join(
        f"/ {name} {np.median(flip_over_scale(std, scales, name)):.3g}" for name in ("image norm", "median same class")
    )
    growth = growth_beyond_random(geo, cap)
    off, on = (geo_mean(g) for g in training_growth(geo, cap).dropped)
    rnk, rk = (geo_mean(g) for g in training_growth(geo, cap, RANDOM_PAIR).dropped)
    j = judged(mis)
    return [
        d["clinging_dimpling"].tested(
            by_test(seen == len(crit), seen == 0), f"{seen} of {len(crit)}", seen / len(crit)
        ),
        share_over_random_row(cfg, d["pgd_share_over_random"], tangent, n, explained),
        share_over_random_row(cfg, d["normal_share_over_random"], std.normal_tangent.to_numpy(), n, explained),
        gated(
            d["pgd_share_over_unsaturated"].interval(
                u_val,
                *u_ci,
                value=fmt(u_val, u_ci) + f" ({rms_stat(tangent):.3f} / {rms_stat(free):.3f})",
                explained=explained,
            ),
            explained,
        ),
        d["tiny_vs_same_class"].interval(
            r_med,
            *r_ci,
            value=fmt(r_med, r_ci) + f" (flip norm {scale_note})",
            n_train=scales.attrs.get("n_train", "?"),
        ),
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
        ratio_row(
            cfg,
            d["at_deepens_dimples_beyond_random"],
            growth,
            explained,
            prefix=f"({off:.3g} / {on:.3g}) / ({rnk:.3g} / {rk:.3g}) = ",
        ),
        baseline_check(geo, cfg.latent_dim, n),
    ]


def scalars(
    cfg: SimpleNamespace,
    crit: pd.DataFrame,
    geo: dict[str, pd.DataFrame],
    n: int,
    scales: pd.DataFrame,
    quality: pd.DataFrame,
    mis: pd.DataFrame,
    chance: float,
    explained: float,
) -> dict:
    """The run's numbers recorded for sweeps and read by :func:`~.reading.findings` and
    :func:`~.reading.descriptives` (among them the statistics that decide nothing)."""
    std, cap = geo["standard"], cfg.flip_eps_max
    base = math.sqrt(cfg.latent_dim / n)
    on_off = flip_ratio(std, "on-manifold", "off-manifold", cap)
    growth = training_growth(geo, cap)
    grow_off, grow_on = growth.dropped
    grow_rnk, grow_rk = training_growth(geo, cap, RANDOM_PAIR).dropped
    share = {c: rms_stat(std[c].to_numpy()) for c in SHARES}
    pca = quality[quality.manifold == "PCA"].iloc[0]
    j = judged(mis)
    return {
        "pgd_on_fraction_rms": share["pgd_tangent"],
        "pgd_on_fraction_random_rms": share["pgd_random"],
        "pgd_on_fraction_unsaturated_rms": share["pgd_unsaturated"],
        "normal_on_fraction_rms": share["normal_tangent"],
        "normal_on_fraction_random_rms": share["normal_random"],
        "normal_on_fraction_unsaturated_rms": share["normal_unsaturated"],
        "pca_pgd_on_fraction_rms": float(pca["RMS share: pgd"]),
        "pca_explained_variance": float(pca["explained variance"]),
        "baseline_sqrt_k_over_n": base,
        "pgd_share_over_random": share["pgd_tangent"] / base,
        "normal_share_over_random": share["normal_tangent"] / base,
        "pgd_share_over_unsaturated": share["pgd_tangent"] / share["pgd_unsaturated"],
        "ae_explained_variance": explained,
        "on_off_flip_ratio": geo_mean(on_off.dropped),
        "random_k_over_nk_flip_ratio": geo_mean(flip_ratio(std, "random k-dim", "random (n-k)-dim", cap).dropped),
        "on_random_flip_ratio": geo_mean(flip_ratio(std, "on-manifold", "random k-dim", cap).dropped),
        **{
            f"flip_over_{key}": float(np.median(flip_over_scale(std, scales, name)))
            for key, name in (
                ("image_norm", "image norm"),
                ("nearest_same_class", "nearest same class"),
                ("median_same_class", "median same class"),
                ("nearest_other_class", "nearest other class"),
            )
        },
        "median_flip_norm": float(np.median(std.unrestricted.to_numpy(float))),
        **{f"median_{name.replace(' ', '_')}": float(scales[name].median()) for name in SCALES},
        "mislabelled_rms": float(j.rms),
        "mislabelled_l2_budget": float(j.l2_budget),
        "mislabelled_attack_success": float(j.attack_success),
        "mislabelled_clean_accuracy": float(j.clean_accuracy),
        "chance": chance,
        "at_off_growth": geo_mean(grow_off),
        "at_on_growth": geo_mean(grow_on),
        "at_random_nk_growth": geo_mean(grow_rnk),
        "at_random_k_growth": geo_mean(grow_rk),
        "at_growth_beyond_random": geo_mean(growth_beyond_random(geo, cap).dropped),
        "on_off_censored_pairs": on_off.n_censored,
        "at_growth_censored_pairs": growth.n_censored,
        "at_beyond_random_censored_pairs": growth_beyond_random(geo, cap).n_censored,
        "clinging_dimpling_settings": int(crit.seen.sum()),
    }
