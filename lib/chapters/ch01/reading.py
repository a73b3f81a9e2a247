"""The sentences and small summaries the notebook shows, generated from the run's numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ...monotonicity import Trend
from .alpha_trends import POPULATIONS
from .baselines import Fidelity
from .layers import MEASURES, base_layers
from .networks import METHODS


def fidelity_text(cfg: SimpleNamespace, fid: Fidelity) -> str:
    """One paragraph stating, from the numbers, how the networks compare with the linear baseline."""
    lm, lm_ci = fid.local_minus_logistic
    bl, _ = fid.backprop_minus_local
    if lm_ci[0] > 0:
        vs_lin = f"beats the raw-pixel logistic regression ({fid.logistic:.3f}) by {lm:.3f}, an interval above zero"
    elif lm_ci[1] < 0:
        vs_lin = f"is below the raw-pixel logistic regression ({fid.logistic:.3f}) by {-lm:.3f}"
    else:
        vs_lin = (
            f"cannot be told apart from the raw-pixel logistic regression ({fid.logistic:.3f}; difference "
            f"{lm:+.3f}, interval containing zero)"
        )
    gap = "within" if bl <= cfg.gap_tolerance else "further than"
    bp_lin = fid.backprop_top - fid.logistic
    tail = (
        f" The backprop network itself is only {bp_lin:+.3f} from the linear model, so on this data a "
        "linear model on pixels is nearly as good as either network."
        if bp_lin < 0.01
        else ""
    )
    return (
        f"The local-error network's top classifier ({fid.local_top:.3f}) {vs_lin}, and is {gap} "
        f"{cfg.gap_tolerance:g} of backprop ({fid.backprop_top:.3f}).{tail}"
    )


def scale_text(table: pd.DataFrame) -> str:
    """How the activation size (rms) changes with depth in each base network, and what the top classifier reaches."""
    base = base_layers(table)
    parts = []
    for m in METHODS:
        rms = base.loc[m].rms
        parts.append(
            f"{m}: rms {' -> '.join(f'{v:.3g}' for v in rms)} over layers 1..{len(rms)}, deepest readout "
            f"{base.loc[m].clean.iloc[-1]:.3f}, top classifier {base.loc[m].top_accuracy.iloc[0]:.3f}"
        )
    return "; ".join(parts) + "."


def bound_text(table: pd.DataFrame, bound: float, input_alpha: float) -> str:
    """Where the layers lie relative to the smoothness bound, stated from the numbers."""
    below = table[table.alpha <= bound]
    lo, hi = table.alpha.min(), table.alpha.max()
    if below.empty:
        return (
            f"No layer of any condition lies below the bound: alpha ranges over [{lo:.2f}, {hi:.2f}], all above "
            f"1 + 2/d = {bound:.3f}, and the inputs themselves decay with alpha = {input_alpha:.2f} (same window, "
            "clipped to their rank). Even the earliest snapshots stay above it, so the smoothness claim is "
            "untestable on this data: the bound cannot separate robust from fragile layers here."
        )
    conds = ", ".join(sorted(set(below.method + " / " + below.condition)))
    return (
        f"{len(below)} of the {len(table)} (network, layer) points lie below 1 + 2/d = {bound:.3f} (alpha "
        f"ranges over [{lo:.2f}, {hi:.2f}]; the inputs themselves have alpha = {input_alpha:.2f} over the same "
        f"window, clipped to their rank); they come from: {conds}. The comparison across the bound is "
        "therefore between these networks and the rest, and differences in training, not only in smoothness, "
        "enter it."
    )


def summary(trs: dict[str, dict[str, Trend]]) -> pd.DataFrame:
    """Shape of each accuracy measure against alpha, per population, as one small table."""
    return pd.DataFrame({POPULATIONS[p]: {MEASURES[m]: t.shape for m, t in ts.items()} for p, ts in trs.items()})
