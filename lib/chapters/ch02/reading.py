"""Chapter 2's generated sentences: every sentence chosen and filled by the numbers of the run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd

from .claims import MAX_DOUBLINGS, MIN_EXPLAINED, MIN_SLOPE
from .images import flip_text
from .mislabelled import judged, size_slope
from .params import MIN_SUCCESS, MOST


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
    b, p, r = scalars["baseline_sqrt_k_over_n"], scalars["pgd_on_fraction_rms"], scalars["pgd_on_fraction_random_rms"]
    ae = quality[quality.manifold != "PCA"].sort_values("epoch")
    pca = quality[quality.manifold == "PCA"].iloc[0]
    ev = scalars["ae_explained_variance"]
    col = "RMS share: pgd"
    on_r, std = scalars["on_random_flip_ratio"], geo["standard"]
    lines = [
        f"- **Data and manifold.** {cfg.dataset}, {n} pixels, k = {cfg.latent_dim} (√(k/n) = {b:.2f}). "
        f"The {cfg.ae_kind} autoencoder explains {ev:.2f} of the test images' pixel variance "
        f"({'most of it' if ev >= MIN_EXPLAINED else 'less than half: the on/off-manifold verdicts are inconclusive'}; "
        f"PCA with the same k explains {pca['explained variance']:.2f}).",
        f"- **Clinging then dimpling** is seen in {scalars['clinging_dimpling_settings']} of {len(crit)} synthetic "
        f"settings by the stated criterion. In the high-dimensional ones the boundary normal's RMS tangent share "
        f"went from {tilt} during training (random baseline {high['baseline sqrt(k/n)'].iloc[0]:.2f}).",
        f"- **Random baseline.** PGD perturbations of images keep an RMS share {p:.2f} of their norm in the tangent "
        f"space, against {b:.2f} for a random direction and {r:.2f} in a random subspace of the same dimension: "
        f"they are {'more' if p > r else 'less'} aligned with the learned manifold than chance.",
        quality_reading(ae, pca, col),
        f"- **On against off.** Confined to the tangent space, PGD needs {scalars['on_off_flip_ratio']:.2f} times "
        f"the norm it needs off it (medians {flip_text(std['on-manifold'], cfg.flip_eps_max)} and "
        f"{flip_text(std['off-manifold'], cfg.flip_eps_max)}), and {on_r:.2f} times the norm it needs in a random "
        f"subspace of the same dimension: the tangent space is {'harder' if on_r > 1 else 'easier'} to attack "
        f"through than a random one.",
        mislabelled_reading(mis, sizes, scalars["chance"]),
        f"- **Adversarial training** multiplies the off-manifold flip norm by {scalars['at_off_growth']:.2f} and the "
        f"on-manifold one by {scalars['at_on_growth']:.2f}.",
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
