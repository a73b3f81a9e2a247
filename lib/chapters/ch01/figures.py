"""Chapter 1's figures: layer spectra, accuracy against attack strength, accuracy against alpha."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ... import plots
from ...monotonicity import side_shape
from .alpha_trends import Cloud
from .layers import MEASURES
from .networks import METHODS, TRAINED


def plot_spectra(cfg: SimpleNamespace, spectra: dict, condition: str = "base"):
    """Log-log eigen-spectrum of every layer (rows: method) with the fit window and fitted line."""

    depth = len(cfg.widths)
    fig, axes = plots.subplots(len(METHODS), depth, width=3.3, height=2.8, sharey="row")
    lo, hi = cfg.alpha_window
    for i, m in enumerate(METHODS):
        for j in range(depth):
            ax = axes[i, j]
            s = spectra[(m, condition, j + 1)]
            ranks = np.arange(1, s.rank + 1)
            ax.loglog(ranks, s.eigs[: s.rank], color="C0", lw=1.5, label="eigenvalues")
            ax.axvspan(lo, hi, color="C1", alpha=0.15, label=f"fit window {lo}..{hi}")
            fr = np.arange(lo, hi + 1)
            ax.loglog(
                fr, s.fit.line(fr), color="C3", ls="--", lw=2, label=f"$n^{{-\\alpha}}$, $\\alpha$ = {s.fit.alpha:.2f}"
            )
            ax.set_title(f"{m}, layer {j + 1}\n$R^2$ = {s.fit.r2:.3f}, participation ratio {s.participation_ratio:.1f}")
            ax.set_xlabel("rank $n$ of principal component")
            if j == 0:
                ax.set_ylabel("variance $\\lambda_n$ (activation units$^2$)")
            ax.legend(fontsize="x-small", loc="lower left")
    return fig


def plot_strength_curves(cfg: SimpleNamespace, long: pd.DataFrame, condition: str = "base"):
    """Accuracy of every layer's readout against attack strength, local (solid) vs backprop (dashed)."""

    fig, axes = plots.subplots(1, 2, width=4.4, height=3.4, sharey=True)
    part = long[long.condition == condition]
    for ax, (attack, title) in zip(
        axes[0],
        [
            ("gaussian", "Gaussian noise, std $2\\epsilon$"),
            ("fgsm", "FGSM, step $2\\epsilon\\,$sign$(\\nabla_x \\ell)$"),
        ],
    ):
        for (m, layer), g in part[part.attack == attack].groupby(["method", "layer"]):
            ax.plot(
                g.eps,
                g.accuracy,
                marker="o",
                ms=3,
                color=f"C{layer - 1}",
                ls="-" if m == "local" else "--",
                label=f"{m}, layer {layer}",
            )
        ax.set(xlabel="strength $\\epsilon$ (inputs in [-1, 1])", title=title, ylim=(0, 1.02))
    axes[0, 0].set_ylabel("test accuracy of the layer's readout")
    axes[0, 1].legend(fontsize="x-small", ncol=2)
    return fig


def plot_accuracy_vs_alpha(table: pd.DataFrame, cloud: Cloud, bound: float, title: str = ""):
    """Accuracy against alpha for every (network, layer): clean, Gaussian noise and FGSM relative to clean.

    Trained networks are coloured by condition, with the two lines of the test fitted
    on them; the snapshots of the base training (grey crosses) are shown, not tested.
    """

    fig, axes = plots.subplots(1, 3, width=4.0, height=3.4)
    fig.suptitle(title)
    done = table[table.kind.isin(TRAINED)]
    path = table[~table.kind.isin(TRAINED)]
    kinds = list(dict.fromkeys(done.kind))
    for ax, (measure, label) in zip(axes[0], MEASURES.items()):
        ax.scatter(path.alpha, path[measure], s=18, marker="x", color="0.6", label="snapshots (not tested)")
        for (m, kind), g in done.groupby(["method", "kind"]):
            ax.scatter(
                g.alpha,
                g[measure],
                s=22,
                marker="o" if m == "local" else "s",
                color=f"C{kinds.index(kind)}",
                alpha=0.85,
                facecolors="none" if m == "backprop" else None,
                label=f"{m}, {kind}",
            )
        t = cloud.trends[measure]
        ax.axvline(t.breakpoint, color="grey", lw=1, ls=":")
        for side, slope in (("left", t.left_slope), ("right", t.right_slope)):
            g = done[done.alpha <= t.breakpoint] if side == "left" else done[done.alpha >= t.breakpoint]
            if len(g) > 1 and np.isfinite(slope):
                xs = np.array([g.alpha.min(), g.alpha.max()])
                ax.plot(xs, g[measure].mean() + slope * (xs - g.alpha.mean()), color="k", lw=1.2)
        if table.alpha.min() <= bound * 1.05:
            ax.axvline(bound, color="C3", lw=1, label="$1 + 2/d$")
        ax.set(xlabel="power-law exponent $\\alpha$", ylabel=label, title=f"{measure}: {side_shape(t)}")
    axes[0, 2].legend(fontsize="xx-small", ncol=1, loc="best")
    return fig
