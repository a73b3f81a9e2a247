"""The chapter's figures: every ``plot_*`` returns its figure."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ... import plots, som
from .params import MODEL_TITLES

__all__ = [
    "plot_code_changes",
    "plot_landing",
    "plot_layer_measures",
    "plot_maps",
    "plot_training",
    "plot_vulnerability",
]


def plot_training(history: pd.DataFrame):
    """Training loss (log scale) and train/test accuracy per epoch, one colour per model; dotted: rate drops."""
    fig, axes = plots.subplots(1, 2, width=4.2, height=3.2)
    for j, (model, h) in enumerate(history.groupby("model", sort=False)):
        axes[0, 0].plot(h.epoch, h.loss, color=f"C{j}", label=model)
        measured = h.dropna(subset=["train_acc"])  # measured every few epochs
        axes[0, 1].plot(measured.epoch, measured.train_acc, color=f"C{j}", marker=".", label=f"{model}, train")
        axes[0, 1].plot(h.epoch, h.val_acc, color=f"C{j}", ls="--", label=f"{model}, test")
        for e in h.epoch[h.lr.diff().fillna(0) != 0]:
            for ax in axes[0]:
                ax.axvline(e - 0.5, color="0.6", ls=":", lw=1)
    axes[0, 0].set(yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy, nats)", title="loss")
    axes[0, 1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    axes[0, 0].legend()
    axes[0, 1].legend(fontsize=8)
    return fig


def plot_layer_measures(table: pd.DataFrame, n_units: int):
    """Code measures against depth (0 = input), one line per model."""
    panels = [
        ("homogeneity", "homogeneity $\\bar\\eta$"),
        ("inputs_in_shared_codes", "share of inputs in shared codes"),
        ("purity", "purity"),
        ("nmi", "$I(c; y) / H(y)$"),
        ("decision agreement", "decision agreement"),
        ("effective_codes", f"effective number of codes (of {n_units})"),
    ]
    fig, axes = plots.subplots(2, 3, width=3.6, height=2.9)
    for ax, (col, label) in zip(axes.flat, panels):
        for j, (model, part) in enumerate(table.groupby("model", sort=False)):
            xs = np.arange(len(part))
            ax.plot(xs, part[col], marker="os"[j % 2], color=f"C{j}", label=f"{model} ({', '.join(part.layer[1:])})")
            if col == "homogeneity":
                ax.fill_between(xs, part["homogeneity lo"], part["homogeneity hi"], color=f"C{j}", alpha=0.2)
        depth = table.groupby("model").size().max()
        ax.set_xticks(range(depth), ["in"] + [str(i) for i in range(1, depth)])  # long names overlapped
        ax.set(
            xlabel="hidden layer (in: the input)", ylabel=textwrap.fill(label, 24), title=label
        )  # no taller than its panel
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle("SOM code measures layer by layer (test inputs; band: 95% bootstrap interval)")
    return fig


def plot_maps(res: SimpleNamespace, layers: list[int], labels: torch.Tensor, class_names: list[str]):
    """U-matrix (top) and class map (bottom) of the chosen layers' SOMs, from the training inputs' codes."""
    n_classes = len(class_names)
    fig, axes = plots.subplots(2, len(layers), width=4.0, height=3.5)
    colours = _palette(n_classes)
    for j, li in enumerate(layers):
        m = res.maps[li]
        im = axes[0, j].imshow(m.u_matrix().cpu().numpy(), cmap="bone_r")
        fig.colorbar(im, ax=axes[0, j], shrink=0.85, label="mean distance to neighbours")
        axes[0, j].set_title(f"{res.layers[li]}: U-matrix")
        counts = som.contingency(res.codes_train[li], labels, m.n_units, n_classes).cpu().numpy()
        tot = counts.sum(1)
        used = tot > 0
        rgba = np.ones((m.n_units, 4))
        rgba[used, :3] = colours[counts[used].argmax(1)]
        rgba[used, 3] = counts[used].max(1) / tot[used]
        axes[1, j].imshow(rgba.reshape(m.rows, m.cols, 4))
        axes[1, j].set_title(f"{res.layers[li]}: class map")
        for ax in axes[:, j]:
            ax.set(xlabel="map column", ylabel="map row")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(False)
    handles = [Patch(color=colours[i], label=class_names[i]) for i in range(n_classes)]
    fig.legend(handles=handles, loc="outside right center", title="majority\nclass")
    fig.suptitle(
        f"{MODEL_TITLES[res.name]}: maps of a shallow and a deep layer (class map: opacity = purity, white = unused)"
    )
    return fig


def _palette(n: int) -> np.ndarray:
    """``n`` distinguishable RGB colours."""
    return np.array(sns.color_palette("tab10" if n <= 10 else "husl", n))


def plot_code_changes(changes: pd.DataFrame):
    """Fraction of attacked inputs whose code changes, per layer, one line per budget."""
    groups = list(changes.groupby(["model", "attack"], sort=False))
    fig, axes = plots.subplots(1, len(groups), width=3.3, height=3.0, sharey=True)
    for ax, ((model, attack), part) in zip(axes[0], groups):
        for eps, p in part.groupby("eps"):
            xs = np.arange(len(p))
            ax.plot(xs, p["code changed"], marker="o", label=f"$\\epsilon$ = {eps:g}")
            ax.set_xticks(xs, p["layer"], rotation=30)
        ax.set(title=f"{model}, {attack}", xlabel="representation", ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("share of inputs whose code changes")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=len(part["eps"].unique()))
    return fig


def plot_landing(landing: pd.DataFrame, eps: float):
    """Where the codes of successful adversarial inputs land, per layer (stacked bars) at budget ``eps``."""
    part = landing[np.isclose(landing["eps"], eps)]
    groups = list(part.groupby(["model", "attack"], sort=False))
    fig, axes = plots.subplots(1, len(groups), width=3.3, height=3.2, sharey=True)
    colours = dict(zip(som.LANDING, ["C2", "C3", "C7", "C0"]))
    for ax, ((model, attack), p) in zip(axes[0], groups):
        table = p.pivot(index="layer", columns="lands in", values="fraction").reindex(p["layer"].unique())
        bottom = np.zeros(len(table))
        for cat in som.LANDING:
            ax.bar(range(len(table)), table[cat], bottom=bottom, color=colours[cat], label=cat)
            bottom += table[cat].to_numpy()
        ax.set_xticks(range(len(table)), table.index, rotation=30)
        ax.set(title=f"{model}, {attack}, $\\epsilon$ = {eps:g}", xlabel="representation", ylim=(0, 1))
    axes[0, 0].set_ylabel("fraction of successful adversarial inputs")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(som.LANDING))
    return fig


def plot_vulnerability(per: dict[str, pd.DataFrame], layer: dict[str, str], corr: pd.DataFrame):
    """Smallest flipping budget against the shallow-layer homogeneity of each input's code, coloured by margin."""
    fig, axes = plots.subplots(1, len(per), width=4.3, height=3.4)
    for ax, (model, p) in zip(axes[0], per.items()):
        sc = ax.scatter(p[layer[model]], p["flip eps"], c=p["margin"], s=12, alpha=0.7, cmap="viridis")
        fig.colorbar(sc, ax=ax, label="clean logit margin")
        r = corr[(corr.model == model) & (corr.layer == layer[model])].iloc[0]
        ax.set(
            xlabel=f"homogeneity $\\eta$ of the {layer[model]} code",
            ylabel="smallest flipping $\\epsilon^*$ ($L_\\infty$)",
            title=f"{model}: Spearman $\\rho$ = {r.rho:.2f}\ngiven the margin "
            f"{r['partial rho (margin)']:.2f} [{r['partial lo']:.2f}, {r['partial hi']:.2f}]",
        )
    return fig
