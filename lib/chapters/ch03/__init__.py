"""Chapter 3 (book/03_som_codes.ipynb): internal codes seen through self-organizing maps.

Lee & Vijayan (2022) fit self-organizing maps to hidden activations and read the
best-matching unit of an input as its *code*. This package trains the chapter's
networks (:mod:`.networks`), fits one map per layer with :mod:`lib.som` and measures
the codes layer by layer (:mod:`.codes`), follows adversarial inputs through the maps
(:mod:`.adversarial`) and links each input's smallest label-flipping budget to the
homogeneity of its shallow codes (:mod:`.vulnerability`). :mod:`.controls` computes the
nulls the claims are tested against (the input layer's map, k-means cells, the untrained
network). :mod:`.claims` declares the chapter's claims, :mod:`.reading` writes the
sentences, :mod:`.figures` draws.
"""

from ..common import load_data
from .adversarial import adversarial_codes, budget_to_show
from .claims import DECLARED, claims, scalars
from .codes import agreement, analyse_layers, fit_maps, grid_sensitivity, minisom_check, shallow_vs_deep
from .controls import beyond_untrained, decisions_vs_input, kmeans_agreement, untrained_homogeneity
from .figures import plot_code_changes, plot_landing, plot_layer_measures, plot_maps, plot_training, plot_vulnerability
from .networks import activations, build, convergence, layer_batches, lr_stages, train_model, train_models
from .params import MODEL_TITLES, PARAMS, check
from .reading import findings, headline, summary_text, training_text
from .vulnerability import bootstrap_spearman, flips_at, vulnerability

__all__ = [
    # parameters
    "MODEL_TITLES",
    "PARAMS",
    "check",
    # the experiment steps
    "load_data",
    "train_models",
    "build",
    "train_model",
    "lr_stages",
    "convergence",
    "activations",
    "layer_batches",
    "analyse_layers",
    "fit_maps",
    "minisom_check",
    "shallow_vs_deep",
    "grid_sensitivity",
    "agreement",
    "kmeans_agreement",
    "decisions_vs_input",
    "untrained_homogeneity",
    "beyond_untrained",
    "adversarial_codes",
    "budget_to_show",
    "vulnerability",
    "bootstrap_spearman",
    "flips_at",
    # claims, numbers, sentences, figures
    "DECLARED",
    "claims",
    "scalars",
    "findings",
    "headline",
    "summary_text",
    "training_text",
    "plot_training",
    "plot_layer_measures",
    "plot_maps",
    "plot_code_changes",
    "plot_landing",
    "plot_vulnerability",
]
