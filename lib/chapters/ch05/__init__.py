"""Chapter 5 (book/05_four_lenses.ipynb): the four papers' measures on one population of networks.

Each of chapters 1-4 tests one geometric explanation of adversarial vulnerability on
its own networks. This package trains one population of MLPs on one image dataset,
varied along the axes the papers say matter (training method: backprop, local errors,
PGD adversarial training; init scale; weight decay; width; epochs; several seeds),
measures every network through the four lenses with the same ``lib`` code the
chapters use on one half of the test set, measures its robustness on the other half,
and asks which lens predicts robustness, against each lens's permutation null (its
basis made random) and the first-order distance to the boundary as baseline:
rank correlations across networks with cluster-bootstrap intervals (the seeds of one
configuration are resampled together), partial correlations given clean accuracy,
and the correlations of the lenses with each other.

Modules: ``params`` (PARAMS, check), ``population`` (the networks and their training),
``lenses`` (the probe, every lens and robustness of one network), ``association``
(the statistics over networks), ``claims`` (declared once; rows and scalars),
``reading`` (the generated sentences), ``figures``.
"""

from ..common import load_data
from .association import (
    cluster_resamples,
    comparisons,
    correlations,
    lens_matrix,
    rho_difference,
    training_shift,
    within_spearman_with_ci,
)
from .claims import claims, scalars
from .figures import plot_lenses, plot_matrix
from .lenses import (
    BASIS_LENSES,
    DIRECTED,
    FIRST_ORDER,
    LENSES,
    NULL,
    configurations,
    first_order_distance,
    flip_ratio,
    make_probe,
    measure,
    restricted_flips,
    robustness_flips,
    run_population,
    split_test,
)
from .params import PARAMS, check
from .population import METHOD_TITLES, METHODS, anneal_epochs, build, population, train_configuration, train_network
from .reading import accuracy_note, findings, headline

__all__ = [
    "PARAMS",
    "check",
    "load_data",
    # the experiment steps
    "population",
    "build",
    "train_network",
    "train_configuration",
    "anneal_epochs",
    "make_probe",
    "split_test",
    "measure",
    "robustness_flips",
    "restricted_flips",
    "flip_ratio",
    "first_order_distance",
    "run_population",
    "configurations",
    "cluster_resamples",
    "within_spearman_with_ci",
    "correlations",
    "rho_difference",
    "comparisons",
    "lens_matrix",
    "training_shift",
    "METHODS",
    "METHOD_TITLES",
    "LENSES",
    "DIRECTED",
    "BASIS_LENSES",
    "NULL",
    "FIRST_ORDER",
    "claims",
    "scalars",
    "headline",
    "findings",
    "accuracy_note",
    "plot_lenses",
    "plot_matrix",
]
