"""Chapter 3's parameters: ``PARAMS`` (declared once), their cross-checks and the book's test of convergence."""

from __future__ import annotations

from types import SimpleNamespace

from ... import config
from ...config import DATASETS, Param, ParameterError

__all__ = ["CONVERGED_FALL", "FITTED_ACCURACY", "MODELS", "MODEL_TITLES", "PARAMS", "check"]

MODELS = ("mlp", "conv")
MODEL_TITLES = {"mlp": "MLP", "conv": "conv net"}

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images, a seeded subset (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images, a seeded subset (0 = all)"),
    "models": Param((list, str), ["mlp", "conv"], choices=MODELS, help="networks to analyse"),
    "widths": Param(
        (list, int),
        [128, 128, 128],
        [1000, 1000, 1000],
        check="positive",
        max=config.MAX_WIDTH,
        help="MLP hidden widths (the book's choice)",
    ),
    "channels": Param(
        (list, int),
        [16, 32],
        [32, 64],
        check="positive",
        max=config.MAX_WIDTH,
        help="conv net: channels of its two conv layers (exactly two)",
    ),
    "conv_hidden": Param(
        int, 64, 128, check="positive", max=config.MAX_WIDTH, help="conv net: width of its dense hidden layer"
    ),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs (all stages of the schedule)"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size"),
    "lr": Param(float, 3e-3, 3e-3, check="positive", max=1.0, help="Adam learning rate (first stage)"),
    "lr_schedule": Param(
        str,
        "step",
        "step",
        choices=("step", "constant"),
        help="'step': the rate is divided by 10 after each fraction in lr_drops",
    ),
    "lr_drops": Param(
        (list, float),
        [0.5, 0.75],
        [0.5, 0.75],
        check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
        help="fractions of the epochs after which the step schedule divides the rate by 10",
    ),
    "som_grid": Param(int, 10, 20, check="positive", help="map side: a som_grid x som_grid map per layer"),
    "som_sigma": Param(
        float, 3.0, 6.0, check="positive", help="initial neighbourhood radius (grid units); decays to 1/3 of it"
    ),
    "som_lr": Param(
        float,
        1.0,
        1.0,
        check="positive",
        max=1.0,
        help="batch-SOM learning rate (1 = pure Kohonen batch map), kept constant",
    ),
    "som_epochs": Param(int, 20, 20, check="positive", help="SOM iterations (passes over the activations)"),
    "epsilons": Param(
        (list, float),
        [0.02, 0.05, 0.1, 0.2],
        [0.02, 0.05, 0.1, 0.2],
        check="positive",
        help="L-inf budgets of FGSM and PGD (pixels in [0, 1])",
    ),
    "pgd_steps": Param(int, 10, 40, check="positive", max=10_000, help="PGD iterations"),
    "n_attack": Param(int, 450, 2000, check="positive", help="test inputs attacked (at most the test set)"),
    "flip_attack": Param(
        str, "pgd", "pgd", choices=("fgsm", "pgd"), help="attack whose smallest flipping budget is searched"
    ),
    "flip_eps_max": Param(float, 0.5, 0.5, check="positive", help="upper end of the budget search"),
    "bisection_steps": Param(int, 10, 12, check="positive", help="bisection steps per input"),
    "activation_budget_mb": Param(
        float,
        1024.0,
        1024.0,
        check="positive",
        help="activations of a data set held in memory at most (MB); above it "
        "every SOM pass recomputes them chunk by chunk",
    ),
    "n_boot": Param(int, 1000, 2000, min=100, help="bootstrap resamples for confidence intervals"),
}

# The book's test of convergence: over the last tenth of the epochs the training loss fell by less than
# this share of its value (a plateau), or the network classifies at least FITTED_ACCURACY of its
# training set correctly (the training set is fitted: nothing is left to learn from it).
CONVERGED_FALL = 0.01
FITTED_ACCURACY = 0.99


def check(cfg: SimpleNamespace) -> SimpleNamespace:
    """Constraints that span several parameters (run right after ``config.resolve``)."""
    if len(cfg.channels) != 2:
        raise ParameterError(f"parameter 'channels' needs exactly two entries, got {cfg.channels}")
    if len(set(cfg.models)) != len(cfg.models):
        raise ParameterError(f"parameter 'models' lists a model twice: {cfg.models}")
    if cfg.som_grid < 2:
        raise ParameterError(
            f"parameter 'som_grid' must be >= 2 (topographic error needs two units), got {cfg.som_grid}"
        )
    if max(cfg.epsilons) > cfg.flip_eps_max:
        raise ParameterError(
            f"parameter 'flip_eps_max' ({cfg.flip_eps_max}) must be >= the largest of 'epsilons' ({max(cfg.epsilons)})"
        )
    return cfg


config.register("ch03", PARAMS, check, min_per_class=10, within={"n_attack": "test"})  # run by resolve and lib.sweep
