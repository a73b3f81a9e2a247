"""Chapter 5's parameters (``PARAMS``) and the checks between them (``check``)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from ... import config, flip, manifold
from ...config import DATASETS, MAX_WIDTH, Param, ParameterError

__all__ = ["PARAMS", "check"]


def _unit_open(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


def _unit_half_open(v):
    return None if 0 <= v < 1 else "must be in [0, 1)"


PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset, pixels in [0, 1]"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images (seeded subset; 0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images (seeded subset; 0 = all)"),
    "widths": Param(
        (list, int),
        [128, 128],
        [1000, 1000],
        check="positive",
        max=MAX_WIDTH,
        help="hidden widths of the base networks (first and last hidden layer are read)",
    ),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs of the base networks"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size (networks and autoencoder)"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", help="Adam learning rate"),
    "epoch_grid": Param((list, int), [5], [5], check="positive", help="condition 'epochs': shorter trainings"),
    "width_grid": Param(
        (list, int),
        [256],
        [2000],
        check="positive",
        max=MAX_WIDTH,
        help="condition 'width': every hidden layer this wide",
    ),
    "init_scales": Param(
        (list, float),
        [0.5, 2.0],
        [0.5, 2.0],
        check="positive",
        help="condition 'init': PyTorch's default initial weights times this factor",
    ),
    "weight_decays": Param(
        (list, float), [0.01], [0.001], check="nonnegative", help="condition 'weight decay': Adam's L2 coefficient"
    ),
    "n_seeds": Param(int, 3, 3, min=2, help="networks (seeds) per configuration"),
    "readout_scale": Param(
        float,
        0.3,
        0.3,
        check="positive",
        help="local errors: fixed readouts drawn as readout_scale * N(0, 1) (chapter 1's "
        "default; the group's code: 0.01)",
    ),
    "anneal_share": Param(
        float,
        0.25,
        0.25,
        check=_unit_half_open,
        help="every network's last share of epochs at lr/10, all methods (chapter 1's annealing; 0 = constant rate)",
    ),
    "at_eps": Param(float, 0.5, 1.5, check="positive", help="L2 budget of PGD adversarial training"),
    "at_steps": Param(int, 3, 7, check="positive", help="PGD steps of adversarial training"),
    "pgd_budgets": Param(
        (list, float),
        [0.5, 1.0],
        [1.0, 2.0],
        check="positive",
        help="L2 budgets at which PGD accuracy is reported (robustness)",
    ),
    "pgd_steps": Param(int, 10, 20, check="positive", help="steps of the robustness PGD"),
    "n_eval": Param(
        int,
        100,
        1000,
        check="positive",
        help="test images on which gradients, flip norms and tangent spaces are measured (lens half of the test "
        "set), and as many of the other half on which robustness's flip norms are",
    ),
    **flip.FLIP_PARAMS,  # flip_eps_max, fmn_steps
    "alpha_window": Param(
        (list, int),
        [11, 60],
        [11, 200],
        check="positive",
        help="lens 1: rank window [first, last] of the power-law fit",
    ),
    # lens 2 is chapter 2's learned manifold, with chapter 2's parameters and defaults
    **{name: replace(p, help="lens 2: " + p.help) for name, p in manifold.LEARNED_PARAMS.items()},
    "som_grid": Param(int, 10, 20, min=2, help="lens 3: a som_grid x som_grid map per layer"),
    "som_sigma": Param(float, 3.0, 6.0, check="positive", help="lens 3: initial neighbourhood radius (grid units)"),
    "som_epochs": Param(int, 20, 20, check="positive", help="lens 3: batch-SOM passes over the activations"),
    "pca_variance": Param(
        float, 0.9, 0.9, check=_unit_open, help="lens 4: the principal subspace keeps this share of the pixel variance"
    ),
    "n_boot": Param(int, 1000, 2000, min=100, help="bootstrap resamples of every interval"),
}


def check(cfg: SimpleNamespace) -> None:
    """Constraints between parameters and the data's size, checked before any data are loaded."""
    lo, hi = cfg.alpha_window if len(cfg.alpha_window) == 2 else (0, 0)
    if len(cfg.alpha_window) != 2 or hi - lo < 2:
        raise ParameterError(
            f"parameter 'alpha_window' must be [first, last] with last >= first + 2, got {cfg.alpha_window}"
        )
    narrowest = min([*cfg.widths, *cfg.width_grid])
    if hi > narrowest:
        raise ParameterError(
            f"parameter 'alpha_window' ends at rank {hi}, beyond the narrowest layer ({narrowest} units)"
        )
    half = config.dataset_sizes(cfg)[1] // 2  # the lenses see one half of the test set, robustness the other
    if hi >= half:
        raise ParameterError(
            f"parameter 'alpha_window' ends at rank {hi} but the lens half of the test set has only {half} images"
        )
    if cfg.n_eval > half:
        raise ParameterError(
            f"parameter 'n_eval' is {cfg.n_eval} but each half of the test set has {half} images; use at most {half}"
        )
    manifold.check_learned(cfg)
    if max(cfg.epoch_grid) >= cfg.epochs:
        raise ParameterError(f"parameter 'epoch_grid' must stay below 'epochs' ({cfg.epochs}), got {cfg.epoch_grid}")
    if max(cfg.pgd_budgets) > cfg.flip_eps_max:
        raise ParameterError(
            f"parameter 'flip_eps_max' ({cfg.flip_eps_max}) must be >= the largest of "
            f"'pgd_budgets' ({max(cfg.pgd_budgets)})"
        )
    if 1.0 in cfg.init_scales:
        raise ParameterError("parameter 'init_scales' lists 1.0, which is the base networks' scale")


config.register("ch05", PARAMS, check, min_per_class=10, within={"n_eval": "test"})  # resolve, lib.sweep run it first
