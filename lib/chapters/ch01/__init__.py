"""Chapter 1 (book/01_local_errors.ipynb): spectra, robustness and alpha in local-error networks.

Jiang, Zhou & Huang (2021) train an MLP by local errors, measure the power-law
exponent alpha of each hidden layer's eigen-spectrum and relate it to accuracy
under Gaussian noise and FGSM. This package trains the local-error networks and
their backprop baselines under several conditions that move alpha (training
width, weight decay, the authors' group's settings; snapshots along the training)
(``networks``), checks them against linear baselines (``baselines``), measures every
layer with one readout kind (``layers``), tests the shape of accuracy, relative to
clean accuracy, against alpha over trained networks (``alpha_trends``) and the
smoothness bound (``smoothness``), and tests the claims (``claims``).
"""

from .alpha_trends import POPULATIONS, Cloud, trained, trajectory, trends, trends_by_population, trends_per_strength
from .baselines import Fidelity, fidelity, fidelity_table
from .claims import DECLARED, UNTESTABLE, claims, mechanism_checks, scalars
from .figures import plot_accuracy_vs_alpha, plot_spectra, plot_strength_curves
from .layers import MEASURES, base_layers, class_share, measure, pairs
from .networks import METHODS, TRAINED, conditions, epoch_movement, readouts_unchanged, train_all, training_summary
from .params import PARAMS, check, load_data
from .reading import (
    bound_text,
    class_text,
    fidelity_text,
    findings,
    headline,
    movement_text,
    scale_text,
    summary,
    trajectory_text,
)
from .smoothness import bound_split, input_alpha, intrinsic_dimension

__all__ = [
    "PARAMS",
    "check",
    "load_data",
    "METHODS",
    "TRAINED",
    "conditions",
    "epoch_movement",
    "train_all",
    "training_summary",
    "readouts_unchanged",
    "Fidelity",
    "fidelity",
    "fidelity_table",
    "MEASURES",
    "class_share",
    "measure",
    "pairs",
    "base_layers",
    "POPULATIONS",
    "Cloud",
    "trained",
    "trajectory",
    "trends",
    "trends_by_population",
    "trends_per_strength",
    "bound_split",
    "input_alpha",
    "intrinsic_dimension",
    "DECLARED",
    "UNTESTABLE",
    "claims",
    "mechanism_checks",
    "scalars",
    "fidelity_text",
    "movement_text",
    "scale_text",
    "class_text",
    "bound_text",
    "trajectory_text",
    "headline",
    "findings",
    "summary",
    "plot_spectra",
    "plot_strength_curves",
    "plot_accuracy_vs_alpha",
]
