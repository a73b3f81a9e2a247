"""Chapter 4's figures: every ``plot_*`` draws on the axes it is given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
import torch

from ... import data, plots
from .synthetic import AFFINE, VARIANTS, Figure, affine_gain, decision_grid, fitted

__all__ = [
    "plot_chessboard",
    "plot_diagonal",
    "plot_flips",
    "plot_gradients",
    "plot_optimizers",
    "plot_radius_ratio",
    "plot_scale",
    "plot_sweeps",
]

GPERP = "$\\|\\Pi_\\perp\\nabla_x f(x)\\|$"
GPAR = "$\\|\\Pi_P\\nabla_x f(x)\\|$"


LABEL_STYLE = {
    1.0: dict(marker="o", color="C3", label="label +1"),
    -1.0: dict(marker="s", color="C0", label="label -1"),
}


def _regions(ax, a, b, values):
    ax.contourf(a, b, values, levels=[-np.inf, 0, np.inf], colors=["C0", "C3"], alpha=0.18)
    ax.contour(a, b, values, levels=[0], colors="k", linewidths=1.2)


def _points(ax, u, v, y, legend=False):
    for lab, st in LABEL_STYLE.items():
        sel = y == lab
        ax.scatter(
            u[sel],
            v[sel],
            s=30,
            edgecolor="k",
            linewidth=0.5,
            zorder=3,
            **{**st, "label": st["label"] if legend else None},
        )


def plot_optimizers(optim: pd.DataFrame, axes) -> None:
    """Drift of the P-perp weights and the orthogonal gradient, GD vs Adam, per subspace."""

    d = optim.assign(
        setting=optim.optimizer.str.upper().str.replace("GD", "plain GD").str.replace("ADAM", "Adam"),
        drift_plot=optim.drift.clip(lower=1e-12),
    )
    sns.stripplot(d, x="subspace", y="drift_plot", hue="setting", dodge=True, ax=axes[0], log_scale=True, size=6)
    axes[0].set(
        xlabel="data subspace $P$",
        ylabel="relative drift of $\\Pi_\\perp W$\n(0 shown as $10^{-12}$)",
        title="does training move the orthogonal weights?",
    )
    sns.stripplot(d, x="subspace", y="g_perp", hue="setting", dodge=True, ax=axes[1], size=6, legend=False)
    axes[1].set(
        xlabel="data subspace $P$",
        ylabel=f"median {GPERP} at data points",
        title="orthogonal input gradient after training",
    )


def plot_gradients(df: pd.DataFrame, axes) -> None:
    """Per point: in-P vs P-perp gradient norms, and measured vs predicted P-perp norm."""
    ax = axes[0]
    ax.scatter(df.g_par, df.g_perp, s=12, alpha=0.6, color="C2")
    lim = [min(df.g_par.min(), df.g_perp.min()) * 0.8, max(df.g_par.max(), df.g_perp.max()) * 1.2]
    ax.plot(lim, lim, "k--", lw=1, label="equal norms")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=f"{GPAR} (within the data subspace)",
        ylabel=f"{GPERP} (orthogonal to it)",
        title="input gradient at each training point",
    )
    ax.legend()
    ax = axes[1]
    ax.scatter(df.pred_perp, df.g_perp, s=12, alpha=0.6, color="C4")
    lim = [df[["pred_perp", "g_perp"]].min().min() * 0.8, df[["pred_perp", "g_perp"]].max().max() * 1.2]
    ax.plot(lim, lim, "k--", lw=1, label="measured = predicted")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="predicted $c_T\\,\\sigma_w\\sqrt{(d-k)\\,S(x)}$",
        ylabel=f"measured {GPERP}",
        title="the book's derivation, point by point",
    )
    ax.legend()


def plot_flips(df: pd.DataFrame, t_u: float, axes) -> None:
    """ECDFs of the flip distances, and universal vs per-point orthogonal flips."""
    ax = axes[0]
    curves = [
        ("delta_perp", "along $\\Pi_\\perp\\nabla f(x)$ (orthogonal to $P$)", "C3"),
        ("delta_univ", "along one universal orthogonal direction", "C1"),
        ("delta_par", "along $\\Pi_P\\nabla f(x)$ (within $P$)", "C0"),
        ("delta_rand", "along a random orthogonal direction", "C7"),
    ]
    for col, label, color in curves:
        v = np.sort(df[col].to_numpy())
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label, color=color)
    half = np.sort(df.dist_other.to_numpy() / 2)
    ax.step(
        half,
        np.arange(1, len(half) + 1) / len(half),
        where="post",
        ls=":",
        color="k",
        label="half the distance to the nearest other-label point",
    )
    ax.axvline(t_u, color="C1", ls="--", lw=1)
    ax.set(
        xscale="log",
        xlabel="$L_2$ norm of the perturbation",
        ylabel="fraction of training points flipped",
        title="smallest label-flipping perturbation",
        ylim=(0, 1.02),
    )
    ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize="x-small")
    ax = axes[1]
    ax.scatter(np.sqrt(df.S_all / df.S), df.delta_univ / df.delta_perp, s=12, alpha=0.6, color="C1")
    lim = [1, max(2.0, float(np.sqrt(df.S_all / df.S).max()) * 1.1)]
    ax.plot(lim, lim, "k--", lw=1, label="first-order prediction")
    ax.set(
        xlabel="$\\sqrt{\\sum_j v_j^2 / S(x)}$",
        ylabel="universal / own-gradient flip distance",
        title="price of using one direction for all points",
    )
    ax.legend()


def plot_sweeps(meds: list[pd.DataFrame], exps: list[dict], axes, column: str = "g_perp") -> None:
    """Per sweep: per-member medians (one line per seed), seed mean, and the derivation's prediction."""
    ylabel = {
        "g_perp": f"median {GPERP} at data points",
        "delta_perp": "median flip distance along $\\Pi_\\perp\\nabla f$",
    }[column]
    for ax, med, e in zip(axes, meds, exps):
        xcol = "decay" if e["sweep"] == "weight decay" else "value"
        for _, g in med.groupby("seed"):
            ax.plot(g[xcol], g[column], color="C0", alpha=0.25, marker=".", lw=0.8)
        mean = med.groupby("value").agg(
            x=(xcol, "mean"),
            y=(column, lambda v: float(np.exp(np.log(v).mean()))),
            p=("pred_perp", lambda v: float(np.exp(np.log(v).mean()))),
        )
        ax.plot(mean.x, mean.y, color="C0", marker="o", lw=2, label="measured (geometric mean)")
        if column == "g_perp":
            ax.plot(mean.x, mean.p, color="C3", ls="--", lw=1.5, label="derivation with measured S")
            x0, y0 = np.exp(np.log(mean.x).mean()), np.exp(np.log(mean.p).mean())
            xs = np.array([mean.x.min(), mean.x.max()])
            ax.plot(
                xs,
                y0 * (xs / x0) ** e["structural"],
                color="C2",
                ls=":",
                lw=1.5,
                label=f"closed-form part (slope {e['structural']:.2f})",
            )
            title = f"{e['sweep']}: slope {e['measured']:.2f} (pred. {e['predicted']:.2f})"
        else:
            title = f"{e['sweep']}: slope {e['delta_measured']:.2f}"
        xlabel = "decay factor $c_T = (1-\\eta\\lambda)^T$" if xcol == "decay" else e["sweep"]
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
        plots.log_ticks(ax.xaxis, mean.x)
    axes[0].legend(fontsize="x-small")


def plot_radius_ratio(med: pd.DataFrame, ax) -> None:
    """Orthogonal over in-subspace flip distance against the data radius (the scale the claim needs)."""
    ratio = med.delta_perp / med.delta_par
    for _, g in med.assign(ratio=ratio).groupby("seed"):
        ax.plot(g.value, g.ratio, color="C0", alpha=0.25, marker=".", lw=0.8)
    mean = med.assign(ratio=np.log(ratio)).groupby("value").ratio.mean()
    ax.plot(mean.index, np.exp(mean), color="C0", marker="o", lw=2, label="geometric mean over seeds")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="equal distances")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="data radius",
        ylabel="median flip distance: orthogonal / within $P$",
        title="which direction is cheaper?",
    )
    plots.log_ticks(ax.xaxis, mean.index)
    ax.legend(fontsize="x-small")


SCALE_CURVES = (
    ("rel_perp", "trained, along $\\Pi_\\perp\\nabla f$", "C3", "-"),
    ("rel_par", "trained, along $\\Pi_P\\nabla f$ (within $P$)", "C0", "-"),
    ("rel_perp0", "untrained (same width), along $\\Pi_\\perp\\nabla f$", "C7", "--"),
)


def plot_scale(scale_med: pd.DataFrame, radius_med: pd.DataFrame, axes) -> None:
    """Median flip distance over ||x||, trained (P-perp, within P) and untrained, against d - k at a
    radius growing as sqrt(d) (left) and against the data radius at fixed d (right)."""
    for ax, med, x, xlabel in (
        (axes[0], scale_med, "ell", "$d-k$ (data radius $\\propto\\sqrt{d}$)"),
        (axes[1], radius_med, "value", "data radius (fixed $d$)"),
    ):
        for col, label, color, ls in SCALE_CURVES:
            for _, g in med.groupby("seed"):
                ax.plot(g[x], g[col], color=color, alpha=0.2, lw=0.7, ls=ls)
            mean = med.groupby(x)[col].agg(lambda v: float(np.exp(np.log(v).mean())))
            ax.plot(mean.index, mean.to_numpy(), color=color, marker="o", lw=2, ls=ls, label=label)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="median flip distance / $\\|x\\|$")
        plots.log_ticks(ax.xaxis, np.unique(med[x]))
        plots.log_ticks(ax.yaxis)
    axes[0].set_title("against the data scale, as $d$ grows")
    axes[1].set_title("against the data scale, as the radius grows")
    axes[0].legend(fontsize="x-small")


def _first_seed(fig: Figure, variant: str, plane: str | None = None) -> int:
    """Index of the seed-0 member of ``variant`` (on ``plane``)."""
    q = (fig.table.variant == variant) & (fig.table.seed == 0)
    if plane is not None:
        q &= fig.table.plane == plane
    return int(np.flatnonzero(q.to_numpy())[0])


def _variant_title(fig: Figure, i: int, meas: pd.DataFrame, plane: str | None = None) -> str:
    """Three short title lines: the variant (and plane), its training, its off-data flip distance."""
    r = fig.table.iloc[i]
    what = {
        "vanilla": "vanilla",
        "small init": f"small init (weights / {r.factor:g})",
        "weight decay": f"weight decay {r.weight_decay:g}",
    }[r.variant]
    decay = f", $c_T$ = {float(fig.fit.decay[i]):.2f}" if r.variant == "weight decay" else ""
    d = float(meas.delta_off.iloc[i])
    flip_text = f"median off-data flip {d:.2f}" if math.isfinite(d) else "median off-data flip: no label change"
    fit = "" if fitted(fig.table).iloc[i] else " (not fitted)"
    return (
        f"{what}{', plane ' + plane if plane else ''}\n{int(r.steps)} steps{decay}, min margin "
        f"{r.min_margin:.2f}{fit}\n{flip_text}"
    )


def plot_diagonal(fig: Figure, meas: pd.DataFrame, axes) -> None:
    """Decision regions of the seed-0 network of each variant; the data line P is dashed."""
    x, y = data.diagonal_points()
    t = torch.linspace(-2, 2, 241)
    vals = decision_grid(fig.ens, (t, t), lambda a, b: torch.stack([a, b], 1))
    a, b = torch.meshgrid(t, t, indexing="xy")
    for ax, variant in zip(axes, VARIANTS):
        i = _first_seed(fig, variant)
        _regions(ax, a, b, vals[i])
        ax.plot([-2, 2], [-2, 2], ls="--", color="0.4", lw=0.8, label="data line $P$")
        _points(ax, x[:, 0], x[:, 1], y, legend=ax is axes[0])
        ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
        ax.set_title(_variant_title(fig, i, meas), fontsize="small")
    axes[0].legend(fontsize="x-small", loc="lower right")


def plot_chessboard(cb: Figure, meas: pd.DataFrame, axes) -> None:
    """Vertical slices (x_1, x_3) through the row x_2 = 0 of the chessboard; last panel: the gains."""
    t1, t3 = torch.linspace(-0.4, 1.4, 181), torch.linspace(-0.5, 1.5, 161)
    a, b = torch.meshgrid(t1, t3, indexing="xy")
    xg, yg = data.chessboard_points(0.0)
    row = xg[:, 1] == 0
    picks = [
        ("vanilla", AFFINE),
        ("small init", AFFINE),
        ("weight decay", AFFINE),
        ("vanilla", "z=0"),
        ("small init", "z=0"),
    ]
    vals = decision_grid(cb.ens, (t1, t3), lambda u, w: torch.stack([u, torch.zeros_like(u), w], 1))
    for ax, (variant, plane) in zip(axes[:5], picks):
        i = _first_seed(cb, variant, plane)
        _regions(ax, a, b, vals[i])
        z = float(cb.x[i, 0, 2])
        ax.axhline(z, ls="--", color="0.4", lw=0.8)
        _points(ax, xg[row, 0], torch.full((int(row.sum()),), z), yg[row], legend=ax is axes[0])
        ax.set(xlabel="$x_1$", ylabel="$x_3$ (off the plane)")
        ax.set_title(_variant_title(cb, i, meas, plane), fontsize="small")
    axes[0].legend(fontsize="x-small", loc="lower left")
    gain = affine_gain(meas)
    for col, color in zip(gain.columns, ("C2", "C1")):
        axes[5].scatter(np.full(len(gain), list(gain.columns).index(col)), gain[col], color=color, s=25)
    for _, r in gain.iterrows():
        axes[5].plot(range(len(gain.columns)), r.to_numpy(), color="0.6", lw=0.8)
    axes[5].set(
        xticks=range(len(gain.columns)),
        xticklabels=[f"plane {c}" for c in gain.columns],
        xlim=(-0.5, len(gain.columns) - 0.5),
        ylabel="off-plane flip distance:\nsmall init / vanilla",
    )
    # A gain is not drawn where a network has not fitted its points (NaN), or where the exact flip
    # distance is infinite because the label never changes off the data; the title counts both.
    g = gain.to_numpy()
    unfit, inf = int(np.isnan(g).sum()), int(np.isinf(g).sum())
    notes = ([f"{unfit} of {g.size} not drawn: points not fitted"] if unfit else []) + (
        [f"{inf} not drawn: no label change off the plane"] if inf else []
    )
    axes[5].set_title("\n".join(["gain of small init", "(one line per seed)"] + notes), fontsize="small")
    if not np.isfinite(g).any():  # an empty panel says why instead of showing a meaningless axis
        axes[5].set_yticks([])
        axes[5].text(
            0.5,
            0.5,
            "no seed with both networks\nfitted and a label change\noff the plane",
            transform=axes[5].transAxes,
            ha="center",
            va="center",
            fontsize="small",
            color="0.3",
        )
