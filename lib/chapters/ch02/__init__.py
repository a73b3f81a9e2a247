"""Chapter 2 (book/02_dimpled_manifold.ipynb): the dimpled manifold model of Shamir, Melamed & BenShmuel.

Three experiments. (1) Synthetic manifolds, flat and curved, in a 2-D picture and in a
higher-dimensional space: the decision boundary's geometry relative to the manifold is
measured along training (:mod:`.synthetic`). (2) Natural images: an autoencoder's tangent
spaces split adversarial perturbations into on- and off-manifold parts, against a random
subspace of the same dimension, and for the pixel-box clamped attack with a random subspace of the
unsaturated pixels (:mod:`.images`). (3) The mislabelled-training experiment of
Ilyas et al. (2019) (:mod:`.mislabelled`). Standard and PGD adversarial training are
compared on the measures of (1) and (2). Parameters in :mod:`.params`, claims in
:mod:`.claims`, sentences in :mod:`.reading`, figures in :mod:`.figures`.
"""

from __future__ import annotations

from .claims import DECLARED, claims, manifold_gate, scalars
from .figures import (
    plot_boundaries,
    plot_curves,
    plot_flip_norms,
    plot_fractions,
    plot_manifold_quality,
    plot_mislabelled,
    plot_perturbations,
)
from .images import (
    RESTRICTIONS,
    censored_log_growth,
    data_scales,
    flip_text,
    growth_beyond_random,
    image_geometry,
    probes,
    summary,
    train_autoencoder,
    train_classifier,
    unsaturated_random_bases,
)
from .mislabelled import mislabel_budget, mislabelled_sweep, mislabelled_verdict, size_slope
from .params import PARAMS, check
from .reading import descriptives, findings, headline, mislabelled_reading, quality_reading
from .synthetic import clinging_dimpling, make_setting, random_band, run_synthetic, synthetic_settings

__all__ = [
    "PARAMS",
    "check",
    "synthetic_settings",
    "run_synthetic",
    "clinging_dimpling",
    "random_band",
    "make_setting",
    "RESTRICTIONS",
    "train_classifier",
    "probes",
    "train_autoencoder",
    "image_geometry",
    "data_scales",
    "unsaturated_random_bases",
    "growth_beyond_random",
    "summary",
    "flip_text",
    "censored_log_growth",
    "mislabelled_sweep",
    "mislabel_budget",
    "mislabelled_verdict",
    "size_slope",
    "DECLARED",
    "claims",
    "scalars",
    "manifold_gate",
    "findings",
    "headline",
    "descriptives",
    "quality_reading",
    "mislabelled_reading",
    "plot_boundaries",
    "plot_curves",
    "plot_fractions",
    "plot_flip_norms",
    "plot_manifold_quality",
    "plot_perturbations",
    "plot_mislabelled",
]
