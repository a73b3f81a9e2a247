"""Chapter 5's figures: every lens against robustness, and the lenses against each other."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from ... import plots
from .association import robustness_row
from .lenses import LENSES, ROBUSTNESS, ROBUSTNESS_LABEL, SHORT
from .population import METHOD_TITLES, METHODS

__all__ = ["plot_lenses", "plot_matrix"]


def plot_lenses(table: pd.DataFrame, corr: pd.DataFrame):
    """One panel per lens (and the first-order baseline): the lens on the lens half of the test set against
    robustness on the other half, one point per network, coloured by training method."""
    fig, axes = plots.subplots(3, 3, width=3.3, height=3.0, sharey=True)
    colours = dict(zip(METHODS, sns.color_palette(plots.PALETTE, len(METHODS))))
    for ax, (lens, (_, _, sign)) in zip(axes.flat, LENSES.items()):
        for m in METHODS:
            part = table[table.method == m]
            ax.scatter(part[lens], part[ROBUSTNESS], s=16, alpha=0.8, color=colours[m], label=METHOD_TITLES[m])
        r = robustness_row(corr, lens)
        pred = {1: "predicted +", -1: "predicted -", 0: "no prediction"}[sign]
        ax.set_title(f"$\\rho$ = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}]\nwithin {r['within rho']:+.2f}, {pred}")
        ax.set_xlabel(SHORT[lens])  # the short name (chapter in brackets); the full measure is in the text
    axes[0, 0].set_yscale("log")
    plots.log_ticks(axes[0, 0].yaxis)
    fig.supylabel(f"{ROBUSTNESS_LABEL} (pixel units, log scale)", fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=len(METHODS))
    fig.suptitle("Four lenses against robustness: one point per network")
    return fig


def plot_matrix(matrix: pd.DataFrame):
    """Heat map of the Spearman correlations between lenses (chapter in brackets), robustness and accuracy."""
    fig, axes = plots.subplots(1, 1, width=7.0, height=5.8)
    m = matrix.rename(index=SHORT, columns=SHORT)
    sns.heatmap(
        m,
        vmin=-1,
        vmax=1,
        cmap="RdBu_r",
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        square=True,
        cbar_kws={"label": "Spearman $\\rho$ across networks"},
        ax=axes[0, 0],
    )
    axes[0, 0].set(
        title="Do the lenses measure the same thing?", xlabel="measure (chapter)", ylabel="measure (chapter)"
    )
    return fig
