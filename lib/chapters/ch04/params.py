"""Chapter 4's parameters: ``PARAMS`` (declared once), their cross-checks, and the book's fixed settings.

The authors' settings of the two synthetic figures (``DIAGONAL``, ``CHESSBOARD``), the
optimizer comparison's step size and length, and the seven sweeps (their names and the
parameter each reads) live here too: the cross-checks, the experiments and the cost
table all read them.
"""

from __future__ import annotations

from types import SimpleNamespace

from ... import config, data, ensemble
from ...config import Param, ParameterError

__all__ = [
    "ADAM_LR",
    "CHESSBOARD",
    "DATA_SCALE",
    "DIAGONAL",
    "OPTIMIZER_STEPS",
    "PARAMS",
    "SWEEPS",
    "check",
    "sweep_values",
]

PARAMS: dict[str, Param] = {
    "d": Param(int, 64, 1024, check="positive", help="ambient input dimension"),
    "k": Param(int, 2, 8, check="positive", help="dimension of the data subspace P"),
    "n_points": Param(int, 16, 64, min=4, help="training points per network"),
    "rule": Param(
        str,
        "xor",
        "xor",
        choices=data.LABEL_RULES,
        help="labels: sign / xor of the first (two) subspace coordinates, or random",
    ),
    "radius": Param(
        float, 8.0, 32.0, check="positive", help="norm of every data point (the book chooses about sqrt(d))"
    ),
    "width": Param(int, 64, 512, check="positive", max=config.MAX_WIDTH, help="hidden units"),
    "init_scale": Param(float, 1.0, 1.0, check="positive", help="s: w, b ~ N(0, s^2/d), v ~ N(0, s^2/width)"),
    "weight_decay": Param(float, 0.0, 0.0, check="nonnegative", help="L2 coefficient of the main runs"),
    "lr": Param(float, 0.02, 0.00125, check="positive", max=10.0, help="gradient-descent step size"),
    "steps": Param(int, 3000, 40000, check="positive", help="step budget per network"),
    "margin": Param(float, 0.3, 0.3, check="positive", help="stop once min_i y_i f(x_i) reaches this"),
    "n_seeds": Param(int, 6, 16, min=2, help="networks (and data sets) per setting"),
    "sweep_d": Param(
        (list, int),
        [16, 32, 64, 128, 256],
        [128, 256, 512, 1024, 2048],
        check="positive",
        help="ambient dimensions of the d sweep (k fixed)",
    ),
    "sweep_k": Param(
        (list, int),
        [2, 4, 8, 16, 32],
        [2, 8, 32, 128, 512],
        check="positive",
        help="subspace dimensions of the k sweep (d fixed)",
    ),
    "sweep_width": Param(
        (list, int),
        [16, 32, 64, 128, 256],
        [64, 128, 256, 512, 1024],
        check="positive",
        max=config.MAX_WIDTH,
        help="widths of the width sweep",
    ),
    "sweep_init_scale": Param(
        (list, float),
        [0.125, 0.25, 0.5, 1.0, 2.0],
        [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0],
        check="positive",
        help="init scales of the init sweep",
    ),
    "sweep_weight_decay": Param(
        (list, float),
        [0.0, 0.003, 0.01, 0.02, 0.03],
        [0.0, 0.003, 0.01, 0.02, 0.03],
        check="nonnegative",
        help="L2 coefficients of the weight-decay sweep",
    ),
    "sweep_radius": Param(
        (list, float),
        [1.0, 2.0, 4.0, 8.0, 16.0],
        [2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
        check="positive",
        help="data radii of the radius sweep (lr scaled by (radius/r)^2)",
    ),
    "universal_fraction": Param(
        float,
        0.5,
        0.5,
        check="positive",
        help="norm of the universal perturbation, as a fraction of the median "
        "distance to the nearest differently labelled point",
    ),
    "figure_seeds": Param(int, 4, 16, min=2, help="networks per variant (and plane) of the two synthetic figures"),
    "diagonal_init": Param(
        str,
        "gaussian-weights",
        "gaussian-weights",
        choices=ensemble.INIT_SCHEMES,
        help="initialisation of the diagonal figure (the authors': gaussian-weights)",
    ),
    "diagonal_small_init_factor": Param(
        float,
        3.0,
        3.0,
        check="positive",
        help="weights divided by this in the diagonal's small-init runs (book's choice)",
    ),
    "diagonal_weight_decay": Param(
        float,
        0.005,
        0.005,
        check="nonnegative",
        help="L2 coefficient of the diagonal's weight-decay runs (book's choice)",
    ),
    "diagonal_steps": Param(
        int,
        40000,
        40000,
        check="positive",
        help="step (epoch) budget of the diagonal figure (the authors': 40,000)",
    ),
    "chessboard_init": Param(
        str,
        "pytorch-uniform",
        "pytorch-uniform",
        choices=ensemble.INIT_SCHEMES,
        help="initialisation of the chessboard figure (the authors': pytorch-uniform)",
    ),
    "chessboard_small_init_factor": Param(
        float,
        3.0,
        3.0,
        check="positive",
        help="weights divided by this in the chessboard's small-init runs (the authors': 3)",
    ),
    "chessboard_weight_decay": Param(
        float,
        0.003,
        0.003,
        check="nonnegative",
        help="L2 coefficient of the chessboard's weight-decay runs (the authors': 0.003)",
    ),
    "chessboard_steps": Param(
        int,
        100000,
        100000,
        check="positive",
        help="step (epoch) budget of the chessboard figure (the authors': 100,000)",
    ),
}

# The authors' settings for the two synthetic figures, from their public code
# (odeliamel/off-manifold-robustness: diagonal/train.py, chess/train.py): width, SGD step
# on the full batch, and the minimum margin at which training stops.
DIAGONAL = dict(width=100, lr=0.02, margin=0.3)
CHESSBOARD = dict(width=400, lr=0.05, margin=0.01, z=0.5)
ADAM_LR = 0.003  # the book's choice for the Adam comparison
OPTIMIZER_STEPS = 300  # fixed training length of the GD/Adam comparison (the book's choice)

DATA_SCALE = "d (radius sqrt d)"  # the data-scale sweep: d over sweep_d at radius ~ sqrt(d); not one of SWEEPS
SWEEPS = ("d (fan-in init)", "d (fixed init std)", "k", "width", "init scale", "weight decay", "data radius")
_SWEPT = {
    "d (fan-in init)": "sweep_d",
    "d (fixed init std)": "sweep_d",
    "k": "sweep_k",
    "width": "sweep_width",
    "init scale": "sweep_init_scale",
    "weight decay": "sweep_weight_decay",
    "data radius": "sweep_radius",
}


def sweep_values(cfg: SimpleNamespace, name: str) -> list:
    """The values of sweep ``name``."""
    return getattr(cfg, _SWEPT[name])


def check(cfg: SimpleNamespace) -> None:
    """Cross-parameter checks, before any compute; raises ParameterError naming the parameter."""
    if cfg.k >= cfg.d:
        raise ParameterError(f"parameter 'k' must be < d (P-perp must exist), got k={cfg.k}, d={cfg.d}")
    min_k = 2 if cfg.rule == "xor" else 1
    if cfg.k < min_k:
        raise ParameterError(f"parameter 'k' must be >= {min_k} for rule {cfg.rule!r}, got {cfg.k}")
    for name in dict.fromkeys(_SWEPT.values()):  # each swept parameter once, in PARAMS order
        vals = getattr(cfg, name)
        if len(set(vals)) < 2:
            raise ParameterError(f"parameter {name!r} needs at least two distinct values, got {vals}")
    if min(cfg.sweep_d) <= cfg.k:
        raise ParameterError(f"parameter 'sweep_d' values must all exceed k={cfg.k}, got {cfg.sweep_d}")
    if max(cfg.sweep_k) >= cfg.d or min(cfg.sweep_k) < min_k:
        raise ParameterError(f"parameter 'sweep_k' values must lie in [{min_k}, d-1={cfg.d - 1}], got {cfg.sweep_k}")
    if max(cfg.sweep_weight_decay) * cfg.lr >= 1:
        raise ParameterError(
            f"parameter 'lr' ({cfg.lr}) times the largest 'sweep_weight_decay' "
            f"({max(cfg.sweep_weight_decay)}) must stay below 1"
        )
    for fig, spec in (("diagonal", DIAGONAL), ("chessboard", CHESSBOARD)):
        if getattr(cfg, f"{fig}_weight_decay") * spec["lr"] >= 1:
            raise ParameterError(f"parameter '{fig}_weight_decay' times the figure's step must stay below 1")
    if cfg.weight_decay * cfg.lr >= 1:
        raise ParameterError(f"parameter 'lr' ({cfg.lr}) times 'weight_decay' ({cfg.weight_decay}) must stay below 1")


config.register("ch04", PARAMS, check)  # resolve and lib.sweep run it before any compute
