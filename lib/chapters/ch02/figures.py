"""Chapter 2's figures: every ``plot_*`` returns its figure."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from ... import data, plots
from .claims import MIN_EXPLAINED
from .images import RESTRICTIONS
from .mislabelled import judged
from .params import MIN_SUCCESS
from .synthetic import TRAININGS, Setting, grid_points, random_band


def plot_boundaries(cfg: SimpleNamespace, settings: dict[str, Setting], fields: dict, curves: pd.DataFrame):
    """Small multiples: the 2-D decision boundary (black) at each picture step, per 2-D setting."""
    names = [n for n, s in settings.items() if s.n == 2]
    steps = sorted(set(cfg.picture_steps))
    gx, gy, _ = grid_points()
    fig, axes = plots.subplots(len(names), len(steps), width=2.3, height=2.4, sharex=True, sharey=True)
    for r, name in enumerate(names):
        s = settings[name]
        c = torch.linspace(-1.2, 1.2, 300, device=s.x.device).view(-1, 1)
        with torch.no_grad():
            curve = s.phi(c).cpu()
        acc = curves[(curves.setting == name) & (curves.training == "standard")].set_index("step").accuracy
        for j, step in enumerate(steps):
            ax = axes[r, j]
            f = fields[(name, "standard")][step].reshape(gx.shape)
            ax.contourf(gx, gy, f, levels=[-1e9, 0, 1e9], colors=["#d6e4f0", "#f6dccb"])
            ax.contour(gx, gy, f, levels=[0], colors="k", linewidths=1.2)
            ax.plot(curve[:, 0], curve[:, 1], color="0.5", lw=0.8, ls=":")
            xs, ys = s.x.cpu(), s.y.cpu()
            for label, color, marker in ((0, "C0", "o"), (1, "C3", "s")):
                ax.scatter(
                    xs[ys == label, 0],
                    xs[ys == label, 1],
                    s=12,
                    c=color,
                    marker=marker,
                    edgecolors="k",
                    linewidths=0.3,
                    zorder=3,
                )
            ax.set_title(f"{name}, step {step}\n(accuracy {acc.get(step, math.nan):.2f})", fontsize=9)
            ax.set_aspect("equal")
            if r == len(names) - 1:
                ax.set_xlabel("$x_1$ (input units)")
            if j == 0:
                ax.set_ylabel("$x_2$ (input units)")
    handles = [
        Line2D([], [], color="k", label="decision boundary"),
        Line2D([], [], color="0.5", ls=":", label="data manifold"),
        Line2D([], [], ls="", marker="o", color="C0", label="class 0"),
        Line2D([], [], ls="", marker="s", color="C3", label="class 1"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    return fig


CURVE_PANELS = (
    ("frac_tangent", "tangent share", "RMS tangent share\nof the boundary normal"),
    ("dist_full", "distance", "median L2 distance\nto the boundary"),
    ("angle", "angle", "median angle between\nnormal and manifold (deg)"),
    ("accuracy", "accuracy", "accuracy on fresh\nmanifold points"),
)


def plot_curves(curves: pd.DataFrame, settings: dict[str, Setting]):
    """The geometry over training: one row per dimension, one column per measure, one line per run."""
    groups = [[n for n, s in settings.items() if s.n == 2], [n for n, s in settings.items() if s.n > 2]]
    fig, axes = plots.subplots(2, len(CURVE_PANELS), width=3.1, height=2.9)
    for r, names in enumerate(groups):
        s0 = settings[names[0]]
        lo, hi = random_band(s0.n, s0.k, len(s0.x_eval))
        for ci, name in enumerate(names):
            for kind, ls in zip(TRAININGS, ("-", "--")):
                part = curves[(curves.setting == name) & (curves.training == kind)]
                if part.empty:
                    continue
                x = part.epoch.clip(lower=part.epoch[part.epoch > 0].min() / 2)
                for c, (col, _, _) in enumerate(CURVE_PANELS):
                    axes[r, c].plot(x, part[col], ls=ls, marker="o", ms=3, color=f"C{ci}")
                axes[r, 0].plot(x, part.frac_random, ls=ls, color=f"C{ci}", alpha=0.35, lw=1)
            axes[r, 1].axhline(float(settings[name].class_distance.median()), color=f"C{ci}", lw=0.8, ls=":")
        axes[r, 0].axhspan(lo, hi, color="0.8", alpha=0.6)
        axes[r, 2].axhline(math.degrees(math.acos(math.sqrt(s0.k / s0.n))), color="0.4", lw=1, ls="-.")
        for c, (_, short, label) in enumerate(CURVE_PANELS):
            ax = axes[r, c]
            ax.set_xscale("log")
            ax.set_xlabel("epoch (log scale)")
            ax.set_ylabel(label)
            ax.set_title(f"{short}, n = {s0.n}, k = {s0.k}", fontsize=9)
        axes[r, 1].set_yscale("log")
        axes[r, 1].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes[r, 1].yaxis.set_major_formatter(FormatStrFormatter("%g"))
        axes[r, 1].yaxis.set_minor_formatter(NullFormatter())
        kinds = curves[curves.setting.isin(names)].training.unique()
        handles = [Line2D([], [], color=f"C{i}", label=f"{n}") for i, n in enumerate(names)]
        handles += [
            Line2D([], [], color="k", ls=ls, label=f"{kind} training")
            for kind, ls in zip(TRAININGS, ("-", "--"))
            if kind in kinds
        ]
        handles += [
            Line2D([], [], color="0.5", alpha=0.5, label="random subspace, same k"),
            Line2D([], [], color="0.8", lw=6, label="random-direction band"),
            Line2D([], [], color="0.5", ls=":", label="distance to true label change"),
            Line2D([], [], color="0.4", ls="-.", label="random-direction angle"),
        ]
        axes[r, -1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def plot_fractions(geo: dict[str, pd.DataFrame], k: int, n: int):
    """Histograms of the on-subspace share per test image: tangent space vs a random subspace (of all pixels,
    and of the image's unsaturated pixels)."""
    fig, axes = plots.subplots(1, 2, width=4.4, height=3.2, sharey=True)
    bins = np.linspace(0, 1, 41)
    for ax, what, title in ((axes[0, 0], "normal", "boundary normal"), (axes[0, 1], "pgd", "PGD perturbation")):
        for kind, color in zip(TRAININGS, ("C0", "C1")):
            ax.hist(
                geo[kind][f"{what}_tangent"], bins=bins, alpha=0.55, color=color, label=f"tangent space, {kind} net"
            )
        for null, color, ls, label in (
            ("random", "k", "-", "random k-dim subspace, standard net"),
            ("unsaturated", "C2", "--", "random k-dim subspace of the\nunsaturated pixels, standard net"),
        ):
            ax.hist(
                geo["standard"][f"{what}_{null}"], bins=bins, histtype="step", color=color, lw=1.2, ls=ls, label=label
            )
        ax.axvline(math.sqrt(k / n), color="k", ls="--", lw=1, label=f"$\\sqrt{{k/n}}$ = {math.sqrt(k / n):.2f}")
        ax.axvline(1 / math.sqrt(2), color="0.5", ls=":", lw=1, label="on = off ($1/\\sqrt{2}$)")
        ax.set(xlabel="on-subspace share of the L2 norm", title=f"{title} (k = {k}, n = {n})")
    axes[0, 0].set_ylabel("test images")
    fig.legend(*axes[0, 1].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=7)
    return fig


def plot_flip_norms(geo: dict[str, pd.DataFrame], scales: pd.DataFrame, eps_max: float):
    """Box plots of the smallest L2 norm that flips the prediction under each restriction, with the data's
    scales (:func:`~.images.data_scales`, medians) as reference lines.

    Points with no flip within ``eps_max`` cannot be drawn; each box's label gives their share.
    """
    long = pd.concat([df[list(RESTRICTIONS)].assign(training=k) for k, df in geo.items()])
    long = long.melt(id_vars="training", var_name="attack restricted to", value_name="flip norm")
    missed = (~np.isfinite(long["flip norm"])).groupby(long["attack restricted to"], sort=False).mean()
    labels = {
        name: name if missed[name] == 0 else f"{name}\n({missed[name]:.0%} no flip\nwithin {eps_max:g})"
        for name in RESTRICTIONS
    }
    long["attack restricted to"] = long["attack restricted to"].map(labels)
    long = long[np.isfinite(long["flip norm"])]
    fig, axes = plots.subplots(1, 1, width=7.5, height=3.6)
    ax = axes[0, 0]
    sns.boxplot(
        long, x="attack restricted to", y="flip norm", hue="training", ax=ax, fliersize=1.5, order=list(labels.values())
    )
    for (name, label), ls in zip(
        (
            ("nearest same class", "distance to the nearest\nsame-class image (the rule)"),
            ("image norm", "image norm"),
        ),
        (":", "-."),
    ):
        ax.axhline(float(scales[name].median()), color="k", ls=ls, lw=1, label=f"median {label}")
    ax.set(
        yscale="log",
        ylabel="L2 norm needed to flip (pixel units)",
        title="Smallest flipping perturbation, by subspace the attack is confined to",
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
    return fig


def plot_manifold_quality(quality: pd.DataFrame, k: int, n: int):
    """RMS tangent share of the probe directions against the manifold model's explained variance."""
    fig, axes = plots.subplots(1, 1, width=5.8, height=3.6)
    ax = axes[0, 0]
    ae = quality[quality.manifold != "PCA"]
    pca = quality[quality.manifold == "PCA"]
    for i, col in enumerate(c for c in quality.columns if c.startswith("RMS share: ")):
        name = col.removeprefix("RMS share: ")
        ax.plot(ae["explained variance"], ae[col], marker="o", color=f"C{i}", label=f"{name}, autoencoder epochs")
        for _, r in ae.iterrows():
            ax.annotate(
                f"{r.epoch:g}", (r["explained variance"], r[col]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.scatter(
            pca["explained variance"],
            pca[col],
            marker="s",
            s=50,
            color=f"C{i}",
            edgecolors="k",
            label=f"{name}, PCA (same k)",
            zorder=3,
        )
    ax.axhline(
        math.sqrt(k / n), color="k", ls="--", lw=1, label=f"random direction $\\sqrt{{k/n}}$ = {math.sqrt(k / n):.2f}"
    )
    ax.axvline(MIN_EXPLAINED, color="0.5", ls=":", lw=1, label="half the variance explained")
    ax.set(
        xlabel="explained variance of the test images (1 - MSE / pixel variance)",
        ylabel="RMS share in the tangent space",
        title=f"On-manifold share against manifold quality (k = {k})",
    )
    ax.legend(fontsize=7)
    return fig


def plot_perturbations(ds: data.Dataset, x: torch.Tensor, deltas: dict, count: int = 4):
    """Example test images and the smallest flipping perturbation under each restriction."""
    cols = ["image", *RESTRICTIONS]
    norms = {k: d.flatten(1).norm(dim=1) for k, d in deltas.items()}
    found = torch.stack([torch.isfinite(norms[k]) & (norms[k] > 0) for k in RESTRICTIONS]).all(0)
    idx = found.nonzero().squeeze(1)[:count].tolist()
    fig, axes = plots.subplots(len(idx), len(cols), width=1.6, height=1.7)
    for r, i in enumerate(idx):
        for c, name in enumerate(cols):
            ax = axes[r, c]
            if name == "image":
                ax.imshow(ds.images(x[i : i + 1])[0, 0].cpu(), cmap="gray_r", vmin=0, vmax=1)
            else:
                d = ds.images(deltas[name][i : i + 1])[0, 0].cpu()
                m = float(d.abs().max()) or 1.0
                ax.imshow(d, cmap="RdBu_r", vmin=-m, vmax=m)
                ax.set_xlabel(f"norm {float(norms[name][i]):.2f}", fontsize=8)
            if r == 0:
                ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Smallest flipping perturbations (red +, blue -, each scaled to its own maximum)", fontsize=9)
    return fig


def plot_mislabelled(mis: pd.DataFrame, chance: float):
    """Clean test accuracy of networks trained only on mislabelled adversarial examples, by budget."""
    fig, axes = plots.subplots(1, 1, width=5.8, height=3.6)
    ax = axes[0, 0]
    ax.plot(mis.rms, mis.clean_accuracy, marker="o", label="clean test accuracy (true labels)")
    ax.fill_between(mis.rms, mis.clean_lo, mis.clean_hi, alpha=0.2, color="C0")
    ax.plot(mis.rms, mis.shifted_accuracy, marker="s", label="predicts y + 1 (the training rule)")
    ax.plot(mis.rms, mis.attack_success, marker="^", ls="--", label="targeted attack success")
    ax.axhline(chance, color="k", ls=":", lw=1, label="chance")
    ax.axhline(MIN_SUCCESS, color="C2", ls=":", lw=1, label=f"success needed to judge ({MIN_SUCCESS:g})")
    j = judged(mis)
    ax.axvline(j.rms, color="0.6", lw=6, alpha=0.3, label="budget the claim is judged at")
    ax.set(
        xlabel="budget: RMS change per pixel (L2 budget / sqrt(pixels))",
        ylabel="fraction",
        title="Training on mislabelled adversarial examples only",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=7)
    return fig
