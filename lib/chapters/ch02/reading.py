"""Chapter 2's generated sentences: every sentence chosen and filled by the numbers of the run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd

from ...claims import FAILS, HOLDS, PAPER, Claim, reproduction_lines
from .claims import MAX_DOUBLINGS, MIN_EXPLAINED, MIN_SLOPE
from .images import flip_text
from .mislabelled import judged, size_slope
from .params import MIN_SUCCESS, MOST


def _verdict_word(row: Claim) -> str:
    return {HOLDS: "holds", FAILS: "does not hold"}.get(row.verdict, row.verdict)


def _why(row: Claim, sc: dict) -> str:
    """The numbers that show why a paper claim came out as it did (from the run's scalars)."""
    name = row.id.split(".", 1)[1]
    b = sc["baseline_sqrt_k_over_n"]
    if name == "clinging_dimpling":
        return f"the book's criterion is met in {row.value} synthetic settings"
    if name == "pgd_share_over_random":
        side = "more" if row.estimate > 1 else "less"
        return (
            f"PGD perturbations keep {row.estimate:.2f} times the tangent share of a random direction "
            f"({sc['pgd_on_fraction_rms']:.3f} against √(k/n) = {b:.3f}): {side} on-manifold than chance. The "
            f"boundary normal, which no pixel box clamps, gives {sc['normal_share_over_random']:.2f} times; against "
            f"a random subspace of the unsaturated pixels the PGD share is {sc['pgd_share_over_unsaturated']:.2f} "
            f"times that subspace's; in the PCA subspace of the same k it is {sc['pca_pgd_on_fraction_rms']:.3f}"
        )
    if name == "tiny_vs_same_class":
        return (
            f"the median smallest flip is {row.estimate:.2f} of the distance to the nearest same-class training "
            f"image ({sc['flip_over_image_norm']:.3f} of the image's norm, {sc['flip_over_median_same_class']:.3f} "
            f"of the median distance between images of its class)"
        )
    if name == "on_larger_than_random":
        easier = "harder" if row.estimate > 1 else "easier"
        return (
            f"confined to the tangent space, the smallest flipping perturbation is {row.estimate:.2f} times as "
            f"long as in a random subspace of the same dimension: the manifold is {easier} to attack through than "
            f"a random subspace (on- over off-manifold norms give {sc['on_off_flip_ratio']:.2f}, a random k-dim "
            f"over a random (n-k)-dim subspace {sc['random_k_over_nk_flip_ratio']:.2f}: that comparison measures "
            f"the dimensions)"
        )
    if name == "mislabelled_accuracy":
        return (
            f"clean accuracy {sc['mislabelled_clean_accuracy']:.2f} (chance {sc['chance']:.2f}) at RMS budget "
            f"{sc['mislabelled_rms']:g}, attack success {sc['mislabelled_attack_success']:.2f}"
        )
    if name == "at_deepens_dimples_beyond_random":
        return (
            f"adversarial training multiplies the off-manifold flip norm by {sc['at_off_growth']:.2f} and the "
            f"on-manifold one by {sc['at_on_growth']:.2f}; a random (n-k)-dim subspace's by "
            f"{sc['at_random_nk_growth']:.2f} and a random k-dim one's by {sc['at_random_k_growth']:.2f}: "
            f"{row.estimate:.2f} times the random split's ratio"
        )
    return row.value


def headline(rows: list[Claim], scalars: dict, dataset: str) -> str:
    """The paper's claims this run does not reproduce first, with the numbers that show why, then those it does."""
    paper = [c for c in rows if c.kind == PAPER]
    missed = [c for c in paper if c.verdict != HOLDS]
    held = [c for c in paper if c.verdict == HOLDS]
    lines = [f"**{len(held)} of the paper's {len(paper)} claims hold in this run ({dataset}).**"]
    by_name = {c.id.split(".", 1)[1]: c for c in paper}
    share, flip = by_name.get("pgd_share_over_random"), by_name.get("on_larger_than_random")
    opposite = []
    if share is not None and share.verdict == FAILS:
        opposite.append(
            f"adversarial perturbations are {share.estimate:.1f} times *more* on-manifold than a random direction"
        )
    if flip is not None and flip.verdict == FAILS:
        opposite.append(
            f"the tangent space is {1 / flip.estimate:.1f} times *easier* to attack through than a random subspace "
            f"of the same dimension"
        )
    if opposite:
        lines.append(
            "Against the random baseline the data say the **opposite** of the dimpled-manifold picture: "
            + " and ".join(opposite)
            + "."
        )
    lines += reproduction_lines(missed, held, lambda c: _why(c, scalars), verdict=_verdict_word)
    return "\n".join(lines)


DESCRIBED = (  # (scalar, what it is, its reference: an old threshold or a null, why it decides nothing)
    (
        "pgd_on_fraction_rms",
        "RMS tangent share of PGD perturbations",
        "1/√2 = 0.707 (on = off)",
        "any direction is below 1/√2 when k < n/2: a random one keeps √(k/n) = {baseline_sqrt_k_over_n:.3f}",
    ),
    (
        "on_off_flip_ratio",
        "on- / off-manifold flip norm (geometric mean)",
        "1",
        "a k vs n-k dimension effect: random k-dim / random (n-k)-dim gives {random_k_over_nk_flip_ratio:.3g}",
    ),
    (
        "flip_over_nearest_other_class",
        "flip norm / distance to the nearest other-class image (median)",
        "1/2",
        "at most 1 when the image and that neighbour are classified correctly: the boundary lies between them",
    ),
    (
        "flip_over_image_norm",
        "flip norm / image norm (median)",
        "",
        "a data scale shown beside the rule (median image norm {median_image_norm:.3g})",
    ),
    (
        "flip_over_median_same_class",
        "flip norm / median distance to same-class images (median)",
        "",
        "a data scale shown beside the rule (median {median_median_same_class:.3g})",
    ),
    (
        "pca_pgd_on_fraction_rms",
        "RMS share of PGD perturbations in the PCA subspace (same k)",
        "√(k/n) = {baseline_sqrt_k_over_n:.3f}",
        "another manifold model (explained variance {pca_explained_variance:.2f}), not a null",
    ),
    (
        "at_off_growth",
        "off-manifold flip-norm growth under adversarial training",
        "1",
        "every subspace's flip grows (random (n-k)-dim: {at_random_nk_growth:.3g}); the claim compares the growths",
    ),
)


def descriptives(scalars: dict) -> pd.DataFrame:
    """The run's numbers that decide nothing (old tests that any direction passes, data scales), with the
    reason each decides nothing."""
    return pd.DataFrame(
        [
            {
                "number": what,
                "value": f"{scalars[key]:.3g}",
                "reference": ref.format(**scalars),
                "why it decides nothing": why.format(**scalars),
            }
            for key, what, ref, why in DESCRIBED
        ]
    ).set_index("number")


def findings(
    cfg: SimpleNamespace,
    scalars: dict,
    crit: pd.DataFrame,
    quality: pd.DataFrame,
    geo: dict,
    mis: pd.DataFrame,
    sizes: pd.DataFrame,
    n: int,
) -> str:
    """A short Markdown reading of this run (every sentence chosen and filled by the computed numbers)."""
    high = crit[crit["baseline sqrt(k/n)"] < 0.5]
    tilt = ", ".join(f"{name}: {r['initial fraction']:.2f} to {r['final fraction']:.2f}" for name, r in high.iterrows())
    sc = scalars
    b, p, r = sc["baseline_sqrt_k_over_n"], sc["pgd_on_fraction_rms"], sc["pgd_on_fraction_random_rms"]
    ae = quality[quality.manifold != "PCA"].sort_values("epoch")
    pca = quality[quality.manifold == "PCA"].iloc[0]
    ev = sc["ae_explained_variance"]
    col = "RMS share: pgd"
    on_r, std = sc["on_random_flip_ratio"], geo["standard"]
    unsat = sc["pgd_share_over_unsaturated"]
    lines = [
        f"- **Data and manifold.** {cfg.dataset}, {n} pixels, k = {cfg.latent_dim} (√(k/n) = {b:.2f}). "
        f"The {cfg.ae_kind} autoencoder explains {ev:.2f} of the test images' pixel variance "
        f"({'most of it' if ev >= MIN_EXPLAINED else 'less than half: the on/off-manifold verdicts are inconclusive'}; "
        f"PCA with the same k explains {pca['explained variance']:.2f}).",
        f"- **Clinging then dimpling** is seen in {sc['clinging_dimpling_settings']} of {len(crit)} synthetic "
        f"settings by the stated criterion. In the high-dimensional ones the boundary normal's RMS tangent share "
        f"went from {tilt} during training (random baseline {high['baseline sqrt(k/n)'].iloc[0]:.2f}).",
        f"- **Random baseline.** PGD perturbations of images keep an RMS share {p:.2f} of their norm in the tangent "
        f"space, against {b:.2f} for a random direction and {r:.2f} in a random subspace of the same dimension: "
        f"they are {'more' if p > r else 'less'} aligned with the learned manifold than chance "
        f"({sc['pgd_share_over_random']:.2f} times). The boundary normal, unclamped, gives "
        f"{sc['normal_on_fraction_rms']:.2f} ({sc['normal_share_over_random']:.2f} times).",
        f"- **The pixel box.** PGD is clamped to the pixel range, which keeps only one sign of change on saturated "
        f"pixels. In a random k-dimensional subspace of each image's unsaturated pixels the same perturbations "
        f"keep {sc['pgd_on_fraction_unsaturated_rms']:.2f}, so the tangent space holds {unsat:.2f} times that: "
        + (
            "the clamp does not explain the excess."
            if unsat > 1 and p > r
            else "the clamp accounts for the excess."
            if p > r
            else "the comparison has no excess to explain."
        ),
        quality_reading(ae, pca, col),
        f"- **On against off.** Confined to the tangent space, the smallest flipping perturbation is "
        f"{sc['on_off_flip_ratio']:.2f} times as long as off it (medians "
        f"{flip_text(std['on-manifold'], cfg.flip_eps_max)} and "
        f"{flip_text(std['off-manifold'], cfg.flip_eps_max)}); a random k-dim subspace against its (n-k)-dim "
        f"complement gives {sc['random_k_over_nk_flip_ratio']:.2f}, the dimension effect. Against a random "
        f"subspace of the same dimension the tangent space needs {on_r:.2f} times the norm: it is "
        f"{'harder' if on_r > 1 else 'easier'} to attack through than a random one.",
        f"- **Size of the perturbations.** The median smallest flipping norm is {sc['median_flip_norm']:.3g}: "
        f"{sc['flip_over_nearest_same_class']:.2f} of the distance to the nearest same-class training image "
        f"(median {sc['median_nearest_same_class']:.3g}), {sc['flip_over_image_norm']:.3f} of the image's norm "
        f"(median {sc['median_image_norm']:.3g}).",
        mislabelled_reading(mis, sizes, sc["chance"]),
        f"- **Adversarial training** multiplies the off-manifold flip norm by {sc['at_off_growth']:.2f} and the "
        f"on-manifold one by {sc['at_on_growth']:.2f}; a random (n-k)-dim and k-dim subspace's by "
        f"{sc['at_random_nk_growth']:.2f} and {sc['at_random_k_growth']:.2f}. Per image, the off / on growth is "
        f"{sc['at_growth_beyond_random']:.2f} times the random split's.",
    ]
    return "\n".join(lines)


def quality_reading(ae: pd.DataFrame, pca: pd.Series, col: str) -> str:
    """The findings' sentence on how the share in column ``col`` follows the autoencoder's quality: the
    untrained decoder (epoch 0) apart, then the Spearman rank correlation of share and explained variance
    over the trained snapshots, with the PCA share beside it."""
    start, trained = ae.iloc[0], ae[ae.epoch > 0]
    first, last = trained.iloc[0], trained.iloc[-1]
    rho = trained["explained variance"].rank().corr(trained[col].rank()) if len(trained) > 1 else math.nan
    trend = (
        "rises with the explained variance"
        if rho >= 0.5
        else "falls as the explained variance rises"
        if rho <= -0.5
        else "does not follow the explained variance in one direction"
    )
    return (
        f"- **Manifold quality.** The untrained decoder (epoch {start.epoch:g}) gives a PGD share of "
        f"{start[col]:.2f}. Over the trained snapshots, epochs {first.epoch:g} to {last.epoch:g} (explained "
        f"variance {first['explained variance']:.2f} to {last['explained variance']:.2f}), the share goes from "
        f"{first[col]:.2f} to {last[col]:.2f}: it {trend} (rank correlation {rho:.2f}). In the PCA subspace of "
        f"the same dimension (explained variance {pca['explained variance']:.2f}) it is {pca[col]:.2f}."
    )


def mislabelled_reading(mis: pd.DataFrame, sizes: pd.DataFrame, chance: float) -> str:
    """The findings' sentence on the mislabelled experiment: the result, its dependence on attack success,
    and whether a low accuracy looks like a matter of scale (computed from the data-size check)."""
    j = judged(mis)
    reached = mis[mis.attack_success >= MIN_SUCCESS]
    verdicts = "; ".join(
        f"RMS {r.rms:g}: success {r.attack_success:.2f}, accuracy {r.clean_accuracy:.2f}, {r['verdict here']}"
        for _, r in mis.iterrows()
    )
    text = (
        f"- **Mislabelled training.** Trained only on targeted adversarial examples labelled with their target, a "
        f"fresh network reaches {j.clean_accuracy:.2f} clean test accuracy (chance {chance:.2f}) at RMS budget "
        f"{j.rms:g} (L2 {j.l2_budget:.3g}), where {j.attack_success:.0%} of the attacks reached their target"
        + ("" if len(reached) else f", short of the {MIN_SUCCESS:g} needed to judge the claim")
        + ". "
        f"By budget: {verdicts}. "
    )
    if j.clean_lo > MOST:
        return text + "Most clean test images are classified correctly, as the claim says."
    if j.clean_lo > chance:
        text += "The accuracy is above chance but short of most test images. "
    else:
        text += (
            f"The accuracy is not above chance; the fresh network predicts the training rule y + 1 on "
            f"{j.shifted_accuracy:.0%} of the clean test images"
            + (
                ", more often than the true class: it learned the images' own classes, shifted by one, rather "
                "than the features the perturbations added. "
                if j.shifted_accuracy > j.clean_accuracy
                else ". "
            )
        )
    slope = size_slope(sizes)
    if slope < MIN_SLOPE:
        return text + (
            f"Larger shares of the mislabelled set hardly raise it ({slope:+.3f} per doubling, under "
            f"{MIN_SLOPE:g}): at this network size more data of this kind would not close the gap."
        )
    doublings = (MOST - j.clean_accuracy) / slope
    need = f"{2**doublings:.3g}" if doublings < 30 else "over a billion"
    text += (
        f"Each doubling of the mislabelled set adds {slope:.3f} accuracy; at that rate {need} times as many "
        f"images would reach {MOST:g}"
    )
    if doublings <= MAX_DOUBLINGS:
        return text + (
            ": a low accuracy at this scale is consistent with the effect needing larger datasets, as "
            "in Ilyas et al., rather than contradicting it."
        )
    return text + (
        f", more than {2**MAX_DOUBLINGS:g} times this set: more data alone would not close the gap at "
        f"this network size."
    )
