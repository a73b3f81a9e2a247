"""Chapter 1's parameters, their cross-parameter checks and the data they select."""

from __future__ import annotations

from types import SimpleNamespace

from ... import config, data
from ...config import DATASETS, Param, ParameterError
from .. import common

__all__ = ["PARAMS", "check", "load_data"]

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset, scaled to [-1, 1]"),
    "widths": Param(
        (list, int),
        [256, 256, 256],
        [1000, 1000, 1000],
        check="positive",
        max=config.MAX_WIDTH,
        help="hidden widths of the base networks (depth = number of entries)",
    ),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training points (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test points for spectra and attacks (0 = all)"),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs of the base networks"),
    "epoch_grid": Param(
        (list, float),
        [0.05, 1, 2, 5, 10],
        [0.05, 1, 2, 5, 10],
        check="nonnegative",
        help="condition 'epochs': snapshots of the base networks after this many epochs "
        "(fractions allowed; 0 = the initialisation)",
    ),
    "width_grid": Param(
        (list, int),
        [128, 384],
        [500, 2000],
        check="positive",
        max=config.MAX_WIDTH,
        help="condition 'width': every hidden layer this wide",
    ),
    "weight_decays": Param(
        (list, float),
        [1e-3, 1e-2],
        [1e-4, 1e-3],
        check="nonnegative",
        help="condition 'regularisation': Adam L2 weight decay",
    ),
    "batch_size": Param(int, 64, 64, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate"),
    "readout_scale": Param(
        float,
        0.3,
        0.3,
        check="positive",
        help="fixed local readouts drawn as readout_scale * N(0, 1) (the group's code: 0.01)",
    ),
    "anneal_epochs": Param(
        int, 5, 8, check="nonnegative", help="last epochs at lr/10, both methods (the group's code: 0, constant lr)"
    ),
    "logistic_l2": Param(
        (list, float),
        [1e-3, 1e-2, 1e-1],
        [1e-3, 1e-2, 1e-1],
        check="positive",
        help="L2 penalties tried (on held-out training data) by the logistic-regression baselines",
    ),
    "readout_epochs": Param(
        int, 10, 5, check="positive", help="epochs of the logistic-regression readouts of backprop layers"
    ),
    "epsilons": Param(
        (list, float),
        [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
        [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
        check="nonnegative",
        help="attack strengths: FGSM step and noise std are 2*eps on [-1, 1] inputs",
    ),
    "alpha_window": Param(
        (list, int),
        [11, 60],
        [11, 200],
        check="positive",
        help="rank window [first, last] of the power-law fit (1-based, inclusive)",
    ),
    "gap_tolerance": Param(float, 0.02, 0.02, check="unit", help="claim 1: local within this accuracy of backprop"),
    "n_boot": Param(int, 1000, 2000, min=100, help="bootstrap resamples for every interval"),
    "id_points": Param(int, 2000, 10000, min=10, help="training inputs used for the intrinsic dimension d"),
}


def check(cfg: SimpleNamespace, ds: data.Dataset | None = None) -> None:
    """Cross-parameter checks (with the data's sizes, loaded or not); fail before any training."""
    w = cfg.alpha_window
    if len(w) != 2 or w[1] - w[0] < 2:
        raise ParameterError(
            f"parameter 'alpha_window' must be two ranks [first, last] with last >= first + 2, got {w}"
        )
    if 0 not in cfg.epsilons or max(cfg.epsilons) == 0:
        raise ParameterError(f"parameter 'epsilons' must contain 0 (clean) and a strength > 0, got {cfg.epsilons}")
    if cfg.anneal_epochs >= cfg.epochs:
        raise ParameterError(
            f"parameter 'anneal_epochs' must stay below 'epochs' ({cfg.epochs}), got {cfg.anneal_epochs}"
        )
    if max(cfg.epoch_grid) >= cfg.epochs - cfg.anneal_epochs:
        raise ParameterError(
            f"parameter 'epoch_grid' must stay below 'epochs' - 'anneal_epochs' "
            f"({cfg.epochs - cfg.anneal_epochs}: snapshots precede the annealing), got {cfg.epoch_grid}"
        )
    last = cfg.alpha_window[1]
    narrowest = min([*cfg.widths, *cfg.width_grid])
    if last > narrowest:
        raise ParameterError(
            f"parameter 'alpha_window' ends at rank {last}, beyond the narrowest "
            f"layer ({narrowest} units); lower it or widen the layers"
        )
    n_test = config.dataset_sizes(cfg)[1] if ds is None else len(ds.x_test)
    if last >= n_test:
        raise ParameterError(
            f"parameter 'alpha_window' ends at rank {last} but the test set has only "
            f"{n_test} points (rank <= {n_test - 1})"
        )


config.register("ch01", PARAMS, check, min_per_class=10)  # resolve and lib.sweep run it before any compute


def load_data(cfg: SimpleNamespace) -> data.Dataset:
    """The chapter's data set, inputs in [-1, 1] as in the group's public code, checked against the parameters."""
    ds = common.load_data(cfg, value_range=(-1.0, 1.0))
    check(cfg, ds)
    return ds
