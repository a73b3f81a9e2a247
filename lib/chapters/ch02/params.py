"""Chapter 2's parameters, their cross-checks, and the thresholds its mislabelled experiment shares with its claims."""

from __future__ import annotations

from types import SimpleNamespace

from ... import config, flip, manifold
from ...config import DATASETS, MAX_WIDTH, Param, ParameterError
from ...train import OPTIMIZERS

PARAMS: dict[str, Param] = {
    # natural images
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images, a seeded subset (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images, a seeded subset (0 = all)"),
    "widths": Param(
        (list, int), [128, 128], [512, 512], check="positive", max=MAX_WIDTH, help="classifier MLP hidden widths"
    ),
    "epochs": Param(int, 30, 30, check="positive", help="classifier training epochs"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size (images)"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate (images)"),
    **manifold.LEARNED_PARAMS,  # latent_dim, ae_kind, ae_channels, ae_widths, ae_epochs, ae_lr
    "ae_snapshots": Param(
        int,
        5,
        8,
        min=2,
        help="log-spaced autoencoder epochs (from 0) at which manifold quality and shares are measured",
    ),
    "n_attacked": Param(int, 200, 1000, check="positive", help="test images whose geometry is measured"),
    "attack_eps": Param(float, 1.0, 2.0, check="positive", help="L2 budget of the PGD attack that is decomposed"),
    "attack_steps": Param(int, 20, 50, check="positive", help="steps of that PGD attack"),
    **flip.FLIP_PARAMS,  # flip_eps_max, fmn_steps
    "at_eps": Param(float, 0.5, 1.5, check="positive", help="L2 budget of PGD adversarial training (images)"),
    "at_steps": Param(int, 5, 10, check="positive", help="PGD steps of adversarial training"),
    "mislabel_rms": Param(
        (list, float),
        [0.05, 0.1, 0.2, 0.3, 0.4],
        [0.05, 0.1, 0.2, 0.3, 0.4],
        check="positive",
        help="budgets of the targeted attacks that build the mislabelled sets, as RMS change per "
        "pixel: L2 budget = value * sqrt(pixels)",
    ),
    "mislabel_steps": Param(int, 30, 100, check="positive", help="PGD steps of those targeted attacks"),
    "mislabel_fractions": Param(
        (list, float),
        [0.25, 0.5],
        [0.1, 0.3],
        check="unit",
        help="shares of the mislabelled set a fresh network is also trained on, at the judged budget",
    ),
    # synthetic manifolds
    "synth_dim": Param(int, 50, 200, min=3, help="ambient dimension n"),
    "synth_manifold_dim": Param(int, 2, 2, check="positive", help="manifold dimension k (< n)"),
    "synth_curvature": Param(float, 0.5, 0.5, check="nonnegative", help="amplitude of the curved manifold's sine bend"),
    "synth_cells": Param(int, 3, 3, min=2, help="checkerboard cells per manifold axis"),
    "synth_n_train": Param(int, 1000, 4000, check="positive", help="training points on the manifold"),
    "synth_n_eval": Param(int, 200, 500, check="positive", help="fresh manifold points where the geometry is measured"),
    "synth_widths": Param(
        (list, int), [128, 128], [512, 512], check="positive", max=MAX_WIDTH, help="synthetic classifier widths"
    ),
    "synth_epochs": Param(int, 50, 200, check="positive", help="synthetic training epochs"),
    "synth_batch_size": Param(int, 64, 64, check="positive", help="synthetic mini-batch size"),
    "synth_lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="synthetic learning rate"),
    "synth_optimizer": Param(str, "adam", "adam", choices=OPTIMIZERS, help="synthetic optimizer"),
    "synth_checkpoints": Param(int, 10, 20, min=3, help="log-spaced measurement points"),
    "synth_at_eps": Param(float, 0.1, 0.1, check="positive", help="L2 budget of adversarial training (synthetic)"),
    "synth_at_steps": Param(int, 3, 7, check="positive", help="PGD steps of adversarial training (synthetic)"),
    "picture_points": Param(int, 40, 60, min=4, help="points on the 2-D picture's curve"),
    "picture_cells": Param(int, 6, 6, min=2, help="label segments along the 2-D picture's curve"),
    "picture_curvature": Param(float, 0.3, 0.3, check="nonnegative", help="amplitude of the curved 2-D picture's sine"),
    "picture_steps": Param(
        (list, int),
        [0, 10, 30, 100, 300, 1500],
        check="nonnegative",
        help="full-batch steps at which the 2-D boundary is drawn (the last ends training)",
    ),
}

# The mislabelled experiment picks its budget and marks each budget's verdict by these; its claim and reading use them too.
MIN_SUCCESS = 0.95  # the mislabelled claim is judged at the smallest budget whose attacks nearly all succeed
MOST = 0.5  # "most clean test images"


def check(cfg: SimpleNamespace) -> None:
    """Constraints between parameters, checked before any compute; fills ``latent_dim`` 0 by the image size."""
    if cfg.synth_manifold_dim >= cfg.synth_dim:
        raise ParameterError(
            f"parameter 'synth_manifold_dim' must be < synth_dim ({cfg.synth_dim}), got {cfg.synth_manifold_dim}"
        )
    manifold.check_learned(cfg)
    for name in ("mislabel_rms", "mislabel_fractions"):
        values = getattr(cfg, name)
        if sorted(set(values)) != values:
            raise ParameterError(f"parameter {name!r} must be increasing without repeats, got {values}")
    if not all(0 < f < 1 for f in cfg.mislabel_fractions):
        raise ParameterError(
            f"parameter 'mislabel_fractions' must lie strictly between 0 and 1, got {cfg.mislabel_fractions}"
        )
    if cfg.attack_eps > cfg.flip_eps_max:
        raise ParameterError(
            f"parameter 'flip_eps_max' must be >= attack_eps ({cfg.attack_eps}), got {cfg.flip_eps_max}"
        )


config.register("ch02", PARAMS, check, min_per_class=10, within={"n_attacked": "test"})  # run by resolve and lib.sweep
