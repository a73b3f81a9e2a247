"""The sentences and small summaries the notebook shows, generated from the run's numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ...claims import FAILS, HOLDS, PAPER, Claim, reproduction_lines
from ...monotonicity import side_shape
from .alpha_trends import POPULATIONS, Cloud, trained
from .baselines import Fidelity
from .layers import MEASURES
from .networks import METHODS


def versus_linear(diff: float, ci: tuple[float, float], logistic: float) -> str:
    """How a top classifier compares with the raw-pixel logistic regression, from the paired difference."""
    if ci[0] > 0:
        return f"beats the raw-pixel logistic regression ({logistic:.3f}) by {diff:.3f}, an interval above zero"
    if ci[1] < 0:
        return f"is below the raw-pixel logistic regression ({logistic:.3f}) by {-diff:.3f}"
    return (
        f"cannot be told apart from the raw-pixel logistic regression ({logistic:.3f}; difference "
        f"{diff:+.3f}, interval containing zero)"
    )


def fidelity_text(cfg: SimpleNamespace, fid: Fidelity) -> str:
    """One paragraph stating, from the numbers, how the networks compare with the linear baseline."""
    lm, lm_ci = fid.local_minus_logistic
    bl, _ = fid.backprop_minus_local
    gap = "within" if bl <= cfg.gap_tolerance else "further than"
    bp_lin = fid.backprop_top - fid.logistic
    tail = (
        f" The backprop network itself is only {bp_lin:+.3f} from the linear model, so on this data a "
        "linear model on pixels is nearly as good as either network."
        if bp_lin < 0.01
        else ""
    )
    gm, gm_ci = fid.group_minus_logistic
    group = (
        f" Trained with the authors' group's settings instead (readouts 0.01 N(0, 1), constant learning rate), "
        f"the local-error top classifier ({fid.group_local_top:.3f}) {versus_linear(gm, gm_ci, fid.logistic)}."
    )
    return (
        f"The local-error network's top classifier ({fid.local_top:.3f}) "
        f"{versus_linear(lm, lm_ci, fid.logistic)}, and is {gap} {cfg.gap_tolerance:g} of backprop "
        f"({fid.backprop_top:.3f}).{tail}{group}"
    )


def movement_text(movement: pd.DataFrame) -> str:
    """How much the top classifier's test accuracy moves per epoch at the constant rate and once annealed."""
    parts = []
    for m, row in movement.iterrows():
        bits = []
        if pd.notna(row.get("base_constant")):
            bits.append(
                f"{row.base_constant:.3f} at the constant rate before annealing and {row.base_annealed:.3f} "
                "during the annealed epochs"
            )
        if pd.notna(row.get("group_constant")):
            bits.append(f"{row.group_constant:.3f} over the last epochs of the constant-rate (group's settings) run")
        parts.append(f"{m}: " + "; ".join(bits))
    return "Mean change of the top classifier's test accuracy from one epoch to the next, " + "; ".join(parts) + "."


def scale_text(table: pd.DataFrame) -> str:
    """How the activation size (rms) changes with depth in each base network and in the local-error network with
    the group's settings, and what its deepest fitted readout and its top classifier reach."""
    nets = [(m, table[(table.kind == "base") & (table.method == m)]) for m in METHODS]
    nets.append(("local, group's settings", table[(table.kind == "group") & (table.method == "local")]))
    parts = []
    for name, net in nets:
        net = net.sort_values("layer")
        if net.empty:
            continue
        parts.append(
            f"{name}: rms {' -> '.join(f'{v:.3g}' for v in net.rms)} over layers 1..{len(net)}, deepest readout "
            f"{net.clean.iloc[-1]:.3f}, top classifier {net.top_accuracy.iloc[0]:.3f}"
        )
    return "; ".join(parts) + "."


def class_text(table: pd.DataFrame, first: int) -> str:
    """How much of the between-class variance the components before the fit window hold (base networks)."""
    share = table[table.kind == "base"].class_top
    return (
        f"The first {first} principal components, which the fit window skips, hold {share.min():.0%} to "
        f"{share.max():.0%} of the between-class variance (of the class means) of the base networks' layers."
    )


def bound_text(table: pd.DataFrame, bound: float, input_alpha: float) -> str:
    """Where the trained networks' layers lie relative to the smoothness bound, stated from the numbers."""
    done = trained(table)
    below = done[done.alpha <= bound]
    lo, hi = done.alpha.min(), done.alpha.max()
    if below.empty:
        return (
            f"No layer of a trained network lies below the bound: alpha ranges over [{lo:.2f}, {hi:.2f}], all above "
            f"1 + 2/d = {bound:.3f}, and the inputs themselves decay with alpha = {input_alpha:.2f} (same window, "
            f"clipped to their rank); over every network, snapshots included, the lowest alpha is "
            f"{table.alpha.min():.2f}. The smoothness claim is untestable on this data: the bound cannot separate "
            "robust from fragile layers here."
        )
    conds = ", ".join(sorted(set(below.network)))
    return (
        f"{len(below)} of the {len(done)} trained (network, layer) points lie below 1 + 2/d = {bound:.3f} (alpha "
        f"ranges over [{lo:.2f}, {hi:.2f}]; the inputs themselves have alpha = {input_alpha:.2f} over the same "
        f"window, clipped to their rank); they come from: {conds}. The comparison across the bound is "
        "therefore between these networks and the rest, and differences in training, not only in smoothness, "
        "enter it."
    )


def trajectory_text(traj: pd.DataFrame) -> str:
    """The descriptive trajectory correlation beside the one across trained networks."""
    parts = [
        f"{m}: {row['Spearman along the trajectory']:+.2f} along the base training (clean accuracy "
        f"{row['trajectory clean accuracy']}) against {row['Spearman across trained networks']:+.2f} across the "
        f"trained networks (clean accuracy {row['trained clean accuracy']})"
        for m, row in traj.iterrows()
    ]
    return "Spearman(alpha, clean accuracy), " + "; ".join(parts) + "."


def headline(rows: list[Claim]) -> str:
    """The paper's claims this run does not reproduce first (refuted before undecided), with the value that shows
    why, then those it does; the tally first."""
    paper = [r for r in rows if r.kind == PAPER]
    failed = [r for r in paper if r.verdict == FAILS]
    held = [r for r in paper if r.verdict == HOLDS]
    open_ = [r for r in paper if r.verdict not in (FAILS, HOLDS)]
    one = {True: ("holds", "does not hold", "is"), False: ("hold", "do not hold", "are")}
    lines = [
        f"Of the paper's {len(paper)} claims tested here, {len(held)} {one[len(held) == 1][0]}, "
        f"{len(failed)} {one[len(failed) == 1][1]} and {len(open_)} {one[len(open_) == 1][2]} inconclusive at "
        "this scale."
    ]
    return "\n".join(lines + reproduction_lines(failed + open_, held, lambda r: r.value))


def findings(clouds: dict[str, Cloud]) -> str:
    """What each population's alpha verdicts rest on in this run: networks, (network, layer) points, alpha range."""
    return "\n".join(
        f"- **{POPULATIONS[p]}**: {c.n_networks} networks, {next(iter(c.trends.values())).n} (network, layer) "
        f"points, alpha {c.alpha_range[0]:.2f} to {c.alpha_range[1]:.2f}."
        for p, c in clouds.items()
    )


def summary(clouds: dict[str, Cloud]) -> pd.DataFrame:
    """The shape both side slopes establish for each accuracy measure, per population, as one small table."""
    return pd.DataFrame(
        {POPULATIONS[p]: {MEASURES[m]: side_shape(t) for m, t in c.trends.items()} for p, c in clouds.items()}
    )
