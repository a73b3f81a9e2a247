"""Chapter 4: two-layer ReLU networks trained on data in a low-dimensional linear subspace.

Melamed, Yehudai & Vardi (NeurIPS 2023); notebook ``book/04_two_layer_subspace.ipynb``.
Every experiment trains a batched ensemble (:mod:`lib.ensemble`): one member per
(setting, seed), full-batch gradient descent on the logistic loss until the minimum
margin reaches ``margin`` or ``steps`` run out.

The book's own derivation (not the paper's theorem) that the measures are compared
with: for data in a subspace P and plain GD with L2 coefficient ``wd`` and step ``lr``,
the gradient of the loss with respect to each first-layer weight lies in P, so after
``T`` steps the P-perp part of the weights is ``c_T`` times its initial value,
``c_T = (1 - lr * wd)^T``. Everything the network does on P (its output weights,
biases and activation pattern) is independent of those frozen Gaussian components,
so at a point ``x`` of P the orthogonal input gradient is Gaussian with

    E ||grad_perp f(x)||^2 = c_T^2 * sigma_w^2 * (d - k) * S(x),
    S(x) = sum_j v_j^2 1[w_j . x + b_j > 0],

where ``sigma_w`` is the first-layer init standard deviation (``s / sqrt(d)`` with
fan-in scaling). To first order a label flips along that gradient at distance
``|f(x)| / ||grad_perp f(x)||``.

The package (imports run params <- costs <- experiments <- claims <- reading, figures):
``params`` (PARAMS, ``check``, the fixed settings), ``costs`` (stage timing and the cost
table), ``networks`` (data, training, measures), the experiments ``main_runs``,
``optimizers``, ``scaling`` and ``synthetic``, ``claims`` (declared once; ``scalars``),
``reading`` and ``figures``.
"""

from __future__ import annotations

from .claims import DECLARED, EQUIVALENCE, agreement_verdict, assert_mechanisms, claims, scalars, scale_rows
from .costs import STAGES, cost_report, expected_costs, format_duration, stages
from .figures import (
    plot_chessboard,
    plot_diagonal,
    plot_flips,
    plot_gradients,
    plot_optimizers,
    plot_radius_ratio,
    plot_scale,
    plot_sweeps,
)
from .main_runs import baseline, flip_summary
from .networks import law_ratio, make_batch, mean_ci, orthogonal_drift, per_seed_medians, point_ratios, ratio_ci
from .optimizers import optimizer_comparison
from .params import CHESSBOARD, DATA_SCALE, DIAGONAL, PARAMS, SWEEPS, check
from .reading import findings, headline, reach_sentences, scale_sentences
from .scaling import RATIOS, data_scale_sweep, exponents, ratio_slopes, sweep
from .synthetic import (
    AFFINE,
    affine_drift,
    affine_gain,
    chessboard_measures,
    diagonal_measures,
    figure_chessboard,
    figure_diagonal,
    reach_summary,
    robustness_gains,
)

__all__ = [
    "AFFINE",
    "CHESSBOARD",
    "DATA_SCALE",
    "DECLARED",
    "DIAGONAL",
    "EQUIVALENCE",
    "PARAMS",
    "RATIOS",
    "STAGES",
    "SWEEPS",
    "affine_drift",
    "affine_gain",
    "agreement_verdict",
    "baseline",
    "check",
    "chessboard_measures",
    "assert_mechanisms",
    "claims",
    "cost_report",
    "data_scale_sweep",
    "diagonal_measures",
    "expected_costs",
    "exponents",
    "figure_chessboard",
    "figure_diagonal",
    "flip_summary",
    "format_duration",
    "findings",
    "headline",
    "law_ratio",
    "make_batch",
    "mean_ci",
    "optimizer_comparison",
    "orthogonal_drift",
    "per_seed_medians",
    "plot_chessboard",
    "plot_diagonal",
    "plot_flips",
    "plot_gradients",
    "plot_optimizers",
    "plot_radius_ratio",
    "plot_scale",
    "plot_sweeps",
    "point_ratios",
    "ratio_ci",
    "ratio_slopes",
    "reach_sentences",
    "reach_summary",
    "robustness_gains",
    "scalars",
    "scale_rows",
    "scale_sentences",
    "stages",
    "sweep",
]
