"""Chapter 5's figures: every lens against robustness, and the lenses against each other."""

from __future__ import annotations

import textwrap

import pandas as pd
import seaborn as sns

from ... import plots
from .association import robustness_row
from .lenses import LENSES, ROBUSTNESS, ROBUSTNESS_LABEL, SHORT
from .population import METHOD_TITLES, METHODS

__all__ = ["LOG_LENSES", "plot_lenses", "plot_matrix"]

LOG_LENSES = ("on_off_ratio", "perp_par_ratio")


def plot_lenses(table: pd.DataFrame, corr: pd.DataFrame):
    """One panel per lens: the lens against robustness, one point per network, coloured by training method."""
    fig, axes = plots.subplots(2, 4, width=3.3, height=3.0, sharey=True)
    colours = dict(zip(METHODS, sns.color_palette(plots.PALETTE, len(METHODS))))
    for ax, (lens, (chapter, label, sign)) in zip(axes.flat, LENSES.items()):
        for m in METHODS:
            part = table[table.method == m]
            ax.scatter(part[lens], part[ROBUSTNESS], s=16, alpha=0.8, color=colours[m], label=METHOD_TITLES[m])
        r = robustness_row(corr, lens)
        pred = {1: "+", -1: "-", 0: "no"}[sign]
        ax.set_title(
            f"ch. {chapter}: $\\rho$ = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}]\n"
            f"within methods {r['within rho']:+.2f} (predicted: {pred} sign)",
            fontsize=9,
        )
        ax.set_xlabel(textwrap.fill(label, 40), fontsize=8)  # two short lines, not one that runs into the next panel
        if lens in LOG_LENSES:
            ax.set_xscale("log")
            plots.log_ticks(ax.xaxis)
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
