"""Is each network as good as its kind? The base networks against a raw-pixel logistic regression
and against logistic readouts refitted on their own layers."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ... import config, data, stats, train
from ... import local_errors as le
from ...claims import fmt
from .networks import Trained

REFIT_TOLERANCE = 0.01  # the backprop head may trail the best logistic readout refitted on its layers by this much


def correct(model, ds: data.Dataset) -> np.ndarray:
    """1 where ``model`` classifies a test point correctly, else 0."""
    return (train.predict(model, ds.x_test).argmax(1) == ds.y_test).float().cpu().numpy()


def paired(cfg: SimpleNamespace, a: np.ndarray, b: np.ndarray, offset: int) -> tuple[float, tuple[float, float]]:
    """Accuracy of ``a`` minus that of ``b`` on the same test points, with a paired bootstrap CI."""
    diff = a - b
    return float(diff.mean()), stats.bootstrap_ci(diff, n_boot=cfg.n_boot, rng=cfg.seed + offset)


@dataclass
class Fidelity:
    """Is each network as good as its kind? Test accuracies of the base networks and the linear baselines."""

    logistic: float
    logistic_l2: float
    local_top: float
    backprop_top: float
    backprop_refit: list[float]
    local_minus_logistic: tuple[float, tuple[float, float]]
    backprop_minus_local: tuple[float, tuple[float, float]]
    group_local_top: float = float("nan")  # the local-error network trained with the authors' group's settings
    group_minus_logistic: tuple[float, tuple[float, float]] = (float("nan"), (float("nan"), float("nan")))

    @property
    def refit_gap(self) -> float:
        """Best refitted readout of the backprop layers minus the backprop head."""
        return max(self.backprop_refit) - self.backprop_top


def fidelity(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> Fidelity:
    """Raw-pixel logistic regression, the base networks' top classifiers and logistic readouts refitted on their layers."""
    base = {r.cond.method: r for r in runs if r.cond.kind == "base"}
    group = next(r for r in runs if r.cond.kind == "group" and r.cond.method == "local")
    lin, l2 = le.tuned_logistic(
        ds.x_train, ds.y_train, ds.n_classes, l2_grid=cfg.logistic_l2, generator=config.generator(cfg.seed + 6)
    )
    net = base["backprop"].net  # is its head as good as a tuned logistic regression on any of its layers?
    fits = [
        le.tuned_logistic(
            h, ds.y_train, ds.n_classes, l2_grid=cfg.logistic_l2, generator=config.generator(cfg.seed + 7 + i)
        )[0]
        for i, h in enumerate(le.hidden_features(net, ds.x_train))
    ]
    refit = [train.accuracy(le.LayerReadout(net, i + 1, f), ds.x_test, ds.y_test) for i, f in enumerate(fits)]
    c_lin, c_loc, c_bp = correct(lin, ds), correct(base["local"].net, ds), correct(base["backprop"].net, ds)
    return Fidelity(
        float(c_lin.mean()),
        l2,
        base["local"].top_accuracy,
        base["backprop"].top_accuracy,
        refit,
        paired(cfg, c_loc, c_lin, 7),
        paired(cfg, c_bp, c_loc, 8),
        group.top_accuracy,
        paired(cfg, correct(group.net, ds), c_lin, 9),
    )


def fidelity_table(cfg: SimpleNamespace, fid: Fidelity) -> pd.DataFrame:
    """The checks a working reproduction must pass before its geometry is read, each computed."""
    lm, lm_ci = fid.local_minus_logistic
    bl, bl_ci = fid.backprop_minus_local
    rows = [
        (
            "local-error top classifier beats a raw-pixel logistic regression (95% CI above 0)",
            f"{fid.local_top:.3f} vs {fid.logistic:.3f} (l2 {fid.logistic_l2:g}); difference {fmt(lm, lm_ci)}",
            lm_ci[0] > 0,
        ),
        (
            f"local-error top classifier within {cfg.gap_tolerance:g} of backprop",
            f"{fid.local_top:.3f} vs {fid.backprop_top:.3f}; backprop minus local {fmt(bl, bl_ci)}",
            bl <= cfg.gap_tolerance,
        ),
        (
            f"backprop head within {REFIT_TOLERANCE:g} of the best logistic readout refitted on its layers",
            f"head {fid.backprop_top:.3f}; refitted layers " + ", ".join(f"{a:.3f}" for a in fid.backprop_refit),
            fid.refit_gap <= REFIT_TOLERANCE,
        ),
    ]
    return pd.DataFrame(rows, columns=["check", "measured (test accuracy)", "passes"], index=range(1, 4))
