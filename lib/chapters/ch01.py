"""Chapter 1 (book/01_local_errors.ipynb): spectra, robustness and alpha in local-error networks.

Jiang, Zhou & Huang (2021) train an MLP by local errors, measure the power-law
exponent alpha of each hidden layer's eigen-spectrum and relate it to accuracy
under Gaussian noise and FGSM. This module trains the local-error networks and
their backprop baselines under several conditions that move alpha (training
length, width, weight decay), measures every layer, and tests the claims.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import attacks, claims, config, data, intrinsic_dim, models, plots, spectrum, train
from .. import local_errors as le
from ..config import DATASETS, Param, ParameterError
from ..monotonicity import Trend, trend

METHODS = ("local", "backprop")
MEASURES = {"clean": "clean accuracy", "gaussian": "accuracy, Gaussian noise (mean)",
            "fgsm": "accuracy, FGSM (mean)"}


PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset, scaled to [-1, 1]"),
    "widths": Param((list, int), [256, 256, 256], [1000, 1000, 1000], check="positive",
                    help="hidden widths of the base networks (depth = number of entries)"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training points (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test points for spectra and attacks (0 = all)"),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs of the base networks"),
    "epoch_grid": Param((list, int), [1, 2, 5, 10], [1, 2, 5, 10], check="positive",
                        help="condition 'epochs': shorter trainings of the base networks"),
    "width_grid": Param((list, int), [128, 384], [500, 2000], check="positive",
                        help="condition 'width': every hidden layer this wide"),
    "weight_decays": Param((list, float), [1e-3, 1e-2], [1e-4, 1e-3], check="nonnegative",
                           help="condition 'regularisation': Adam L2 weight decay"),
    "batch_size": Param(int, 64, 64, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate"),
    "readout_scale": Param(float, 0.01, 0.01, check="positive",
                           help="fixed local readouts drawn as readout_scale * N(0, 1)"),
    "readout_epochs": Param(int, 10, 5, check="positive",
                            help="epochs of the logistic-regression readouts of backprop layers"),
    "epsilons": Param((list, float), [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
                      [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], check="nonnegative",
                      help="attack strengths: FGSM step and noise std are 2*eps on [-1, 1] inputs"),
    "alpha_window": Param((list, int), [11, 60], [11, 200], check="positive",
                          help="rank window [first, last] of the power-law fit (1-based, inclusive)"),
    "gap_tolerance": Param(float, 0.05, 0.05, check="unit",
                           help="claim 1: local within this accuracy of backprop"),
    "n_boot": Param(int, 1000, 2000, check=lambda v: None if v >= 100 else "must be >= 100",
                    help="bootstrap resamples for every interval"),
    "id_points": Param(int, 2000, 10000, check=lambda v: None if v >= 10 else "must be >= 10",
                       help="training inputs used for the intrinsic dimension d"),
}


def check(cfg: SimpleNamespace, ds: data.Dataset | None = None) -> None:
    """Cross-parameter checks (with the data's sizes, loaded or not); fail before any training."""
    w = cfg.alpha_window
    if len(w) != 2 or w[1] - w[0] < 2:
        raise ParameterError(f"parameter 'alpha_window' must be two ranks [first, last] with last >= first + 2, got {w}")
    if 0 not in cfg.epsilons or max(cfg.epsilons) == 0:
        raise ParameterError(f"parameter 'epsilons' must contain 0 (clean) and a strength > 0, got {cfg.epsilons}")
    if max(cfg.epoch_grid) >= cfg.epochs:
        raise ParameterError(f"parameter 'epoch_grid' must stay below 'epochs' ({cfg.epochs}), got {cfg.epoch_grid}")
    last = cfg.alpha_window[1]
    narrowest = min([*cfg.widths, *cfg.width_grid])
    if last > narrowest:
        raise ParameterError(f"parameter 'alpha_window' ends at rank {last}, beyond the narrowest "
                             f"layer ({narrowest} units); lower it or widen the layers")
    n_test = config.dataset_sizes(cfg)[1] if ds is None else len(ds.x_test)
    if last >= n_test:
        raise ParameterError(f"parameter 'alpha_window' ends at rank {last} but the test set has only "
                             f"{n_test} points (rank <= {n_test - 1})")


config.register(PARAMS, check, min_per_class=10)  # resolve and lib.sweep run it before any compute


def load_data(cfg: SimpleNamespace) -> data.Dataset:
    """The chapter's data set, inputs in [-1, 1] as in the group's public code."""
    ds = data.load(cfg.dataset, device=cfg.device, value_range=(-1.0, 1.0), seed=cfg.seed,
                   n_train=cfg.n_train or None, n_test=cfg.n_test or None)
    check(cfg, ds)
    return ds


@dataclass
class Condition:
    """One trained network: method, architecture, training length and weight decay."""

    method: str
    kind: str
    widths: list[int]
    epochs: int
    weight_decay: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "epochs":
            return f"{self.epochs} epochs"
        if self.kind == "width":
            return f"width {self.widths[0]}"
        if self.kind == "regularisation":
            return f"weight decay {self.weight_decay:g}"
        return "base"


def conditions(cfg: SimpleNamespace) -> list[Condition]:
    """The base network and each condition that moves alpha, for both training methods."""
    out = []
    for m in METHODS:
        out.append(Condition(m, "base", list(cfg.widths), cfg.epochs))
        out += [Condition(m, "epochs", list(cfg.widths), e) for e in cfg.epoch_grid]
        out += [Condition(m, "width", [w] * len(cfg.widths), cfg.epochs) for w in cfg.width_grid]
        out += [Condition(m, "regularisation", list(cfg.widths), cfg.epochs, wd) for wd in cfg.weight_decays]
    return out


@dataclass
class Trained:
    """A trained network with the readout of every hidden layer."""

    cond: Condition
    net: models.MLP
    readouts: list
    history: pd.DataFrame
    top_accuracy: float
    layers: list[le.LayerReadout] = field(default_factory=list)


def build(cfg: SimpleNamespace, ds: data.Dataset, method: str, widths: list[int]) -> models.MLP:
    """A fresh network; same seed -> same initial weights for every condition of one width."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if method == "local":
            net = le.LocalErrorMLP(ds.n_features, widths, ds.n_classes, readout_scale=cfg.readout_scale,
                                   generator=config.generator(cfg.seed + 1))
        else:
            net = models.MLP(ds.n_features, widths, ds.n_classes)
    return net.to(cfg.device)


def train_condition(cfg: SimpleNamespace, ds: data.Dataset, cond: Condition) -> Trained:
    """Train one network (local errors or backprop) and attach a readout to every layer.

    Local-error layers are read out by their own fixed random classifier; backprop
    layers by a logistic regression fitted on frozen training features. The batch
    order is the same for every condition, so a shorter training is exactly the
    first epochs of the base training.
    """
    net = build(cfg, ds, cond.method, cond.widths)
    kw = dict(epochs=cond.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cond.weight_decay,
              generator=config.generator(cfg.seed + 2), progress=False)
    if cond.method == "local":
        hist = le.train_local(net, ds.x_train, ds.y_train, **kw)
        readouts = net.readouts
    else:
        hist = train.fit(net, ds.x_train, ds.y_train, **kw)
        readouts = le.fit_linear_readouts(net, ds.x_train, ds.y_train, ds.n_classes, epochs=cfg.readout_epochs,
                                          lr=cfg.lr, batch_size=cfg.batch_size,
                                          generator=config.generator(cfg.seed + 3))
    t = Trained(cond, net, readouts, hist, train.accuracy(net, ds.x_test, ds.y_test))
    t.layers = [le.LayerReadout(net, i + 1, r) for i, r in enumerate(readouts)]
    return t


@contextmanager
def small_model_threads(device: torch.device):
    """One CPU thread while it runs: these matrices are too small to gain from more, and
    on a shared machine extra OpenMP threads spin-wait, slowing training several-fold."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def training_summary(runs: list[Trained]) -> pd.DataFrame:
    """Final training loss and the network's own test accuracy, per trained network."""
    return pd.DataFrame([{"method": r.cond.method, "condition": r.cond.label,
                          "final training loss": r.history.loss.iloc[-1],
                          "top-classifier test accuracy": r.top_accuracy} for r in runs])


def train_all(cfg: SimpleNamespace, ds: data.Dataset) -> list[Trained]:
    """Every condition of :func:`conditions`, trained in order."""
    with small_model_threads(cfg.device):
        return [train_condition(cfg, ds, c) for c in tqdm(conditions(cfg), desc="networks", leave=False)]


def measure(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> tuple[pd.DataFrame, dict]:
    """Per network and layer: spectrum fit, participation ratio, accuracy at every strength.

    Returns a long table (one row per network, layer, attack and eps) and the
    spectra, keyed by (method, condition label, layer).
    """
    with small_model_threads(cfg.device):
        return _measure(cfg, ds, runs)


def _measure(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> tuple[pd.DataFrame, dict]:
    strengths = [2 * e for e in cfg.epsilons]
    rows, spectra = [], {}
    for run in tqdm(runs, desc="measuring", leave=False):
        feats = le.hidden_features(run.net, ds.x_test)
        for depth, (h, layer) in enumerate(zip(feats, run.layers), start=1):
            try:
                s = spectrum.analyse(h, tuple(cfg.alpha_window))
            except spectrum.SpectrumError as exc:
                raise ParameterError(f"parameter 'alpha_window' does not fit layer {depth} of the {run.cond.method} "
                                     f"network ({run.cond.label}): {exc}") from exc
            spectra[(run.cond.method, run.cond.label, depth)] = s
            base = dict(method=run.cond.method, kind=run.cond.kind, condition=run.cond.label, layer=depth,
                        alpha=s.fit.alpha, r2=s.fit.r2, pr=s.participation_ratio, rank=s.rank,
                        rms=float(np.sqrt(s.eigs.sum())),
                        top_accuracy=run.top_accuracy)
            noise = attacks.accuracy_under(layer, attacks.noise_attack, ds.x_test, ds.y_test, strengths,
                                           clamp=ds.value_range, generator=config.generator(cfg.seed + 4))
            fgsm = attacks.accuracy_under(layer, attacks.fgsm, ds.x_test, ds.y_test, strengths,
                                          clamp=ds.value_range)
            for eps, a_n, a_f in zip(cfg.epsilons, noise, fgsm):
                rows.append({**base, "attack": "gaussian", "eps": eps, "accuracy": a_n})
                rows.append({**base, "attack": "fgsm", "eps": eps, "accuracy": a_f})
    return pd.DataFrame(rows), spectra


def pairs(cfg: SimpleNamespace, long: pd.DataFrame) -> pd.DataFrame:
    """One row per (network, layer): alpha and the three accuracy summaries.

    ``clean`` is the accuracy at eps = 0; ``gaussian`` and ``fgsm`` are the mean
    accuracy over the non-zero strengths of the grid (the area under the
    accuracy-vs-strength curve, per unit of grid).
    """
    keys = ["method", "kind", "condition", "layer", "alpha", "r2", "pr", "rank", "rms", "top_accuracy"]
    clean = long[(long.eps == 0) & (long.attack == "fgsm")].set_index(keys).accuracy.rename("clean")
    if clean.empty:
        raise ParameterError("parameter 'epsilons' must contain 0 (the clean accuracy)")
    attacked = long[long.eps > 0].groupby(keys + ["attack"]).accuracy.mean().unstack("attack")
    if attacked.empty:
        raise ParameterError("parameter 'epsilons' needs at least one strength > 0")
    return pd.concat([clean, attacked[["gaussian", "fgsm"]]], axis=1).reset_index()


POPULATIONS = {"local": "local-error networks", "pooled": "local-error and backprop networks pooled"}


def trends(cfg: SimpleNamespace, table: pd.DataFrame, population: str = "pooled") -> dict[str, Trend]:
    """The shape of each accuracy measure against alpha over layers and conditions of ``population``."""
    part = table if population == "pooled" else table[table.method == population]
    rng = np.random.default_rng(cfg.seed)
    return {m: trend(part.alpha, part[m], n_boot=cfg.n_boot, rng=rng) for m in MEASURES}


def trend_rows(trs: dict[str, Trend], **extra) -> list[dict]:
    """Trends as table rows (Spearman, breakpoint, side slopes with intervals, shape)."""
    f = claims.fmt
    return [{**extra, "measure": m, "n": t.n, "Spearman [95% CI]": f(t.spearman, t.spearman_ci, 2),
             "breakpoint alpha [95% CI]": f(t.breakpoint, t.breakpoint_ci, 3),
             "slope left": f(t.left_slope, t.left_ci, 2), "slope right": f(t.right_slope, t.right_ci, 2),
             "shape": t.shape} for m, t in trs.items()]


def trends_per_strength(cfg: SimpleNamespace, long: pd.DataFrame, population: str = "pooled") -> pd.DataFrame:
    """The same trend test at every single non-zero strength (not only the grid mean)."""
    rng = np.random.default_rng(cfg.seed + 1)
    rows = []
    sel = long[long.eps > 0] if population == "pooled" else long[(long.eps > 0) & (long.method == population)]
    for (attack, eps), part in sel.groupby(["attack", "eps"]):
        t = trend(part.alpha, part.accuracy, n_boot=cfg.n_boot, rng=rng)
        rows += trend_rows({attack: t}, eps=eps)
    return pd.DataFrame(rows).rename(columns={"measure": "attack"}).set_index(["attack", "eps"])


def trends_by_population(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Trends within each training method and pooled (is the pooled shape a mix of two groups?)."""
    rows = []
    for population in ("local", "backprop", "pooled"):
        rows += trend_rows(trends(cfg, table, population), population=population)
    return pd.DataFrame(rows).set_index(["population", "measure"])


def intrinsic_dimension(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """TwoNN intrinsic dimension of (a seeded subset of) the training inputs."""
    g = config.generator(cfg.seed + 5)
    idx = torch.randperm(len(ds.x_train), generator=g)[:cfg.id_points].to(ds.x_train.device)
    return intrinsic_dim.twonn(ds.x_train[idx])


def accuracy_gap(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> tuple[float, tuple[float, float]]:
    """Deepest layer's readout accuracy, local minus backprop (base networks), with a paired bootstrap CI."""
    base = {r.cond.method: r for r in runs if r.cond.kind == "base"}
    correct = {m: (train.predict(base[m].layers[-1], ds.x_test).argmax(1) == ds.y_test).float().cpu().numpy()
               for m in METHODS}
    diff = correct["local"] - correct["backprop"]
    rng = np.random.default_rng(cfg.seed + 2)
    boot = diff[rng.integers(0, len(diff), size=(cfg.n_boot, len(diff)))].mean(1)
    return float(diff.mean()), (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))


def bound_split(cfg: SimpleNamespace, table: pd.DataFrame, bound: float, measure: str = "fgsm"):
    """Mean ``measure`` above minus below ``alpha = bound``, with a bootstrap CI (NaN if one side is empty)."""
    above = table[table.alpha > bound][measure].to_numpy()
    below = table[table.alpha <= bound][measure].to_numpy()
    if len(above) == 0 or len(below) == 0:
        return float("nan"), (float("nan"), float("nan")), len(above), len(below)
    rng = np.random.default_rng(cfg.seed + 3)
    boot = (above[rng.integers(0, len(above), (cfg.n_boot, len(above)))].mean(1)
            - below[rng.integers(0, len(below), (cfg.n_boot, len(below)))].mean(1))
    return (float(above.mean() - below.mean()), (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))),
            len(above), len(below))


def shape_verdict(t: Trend, want_monotonic: bool) -> str:
    """Verdict for "monotonic" (or "non-monotonic") from a computed trend shape."""
    if t.shape == "undetermined":
        return claims.INCONCLUSIVE
    return claims.HOLDS if t.monotonic == want_monotonic else claims.FAILS


def claims_table(cfg: SimpleNamespace, trs: dict[str, dict[str, Trend]], gap, d: float, split) -> pd.DataFrame:
    """The chapter's claims with their statistics and computed verdicts.

    ``trs`` maps a population (see POPULATIONS) to its trends; claims 2-4 get one
    row per population.
    """
    f = claims.fmt
    gap_value, gap_ci = gap
    tol = cfg.gap_tolerance
    diff, diff_ci, n_above, n_below = split
    bound = 1 + 2 / d
    rows = [claims.Claim(
        f"A deep MLP trained by local errors generalizes: its deepest layer's readout is within {tol:g} "
        "of the backprop MLP's", "test accuracy, local minus backprop (paired bootstrap over test points)",
        f(gap_value, gap_ci), claims.by_interval(*gap_ci, threshold=-tol, above=True))]
    for pop, t in trs.items():
        who = POPULATIONS[pop]
        c, g, a = t["clean"], t["gaussian"], t["fgsm"]
        rows += [
            claims.Claim(f"High generalization accuracy requires a fast spectral decay, large alpha ({who})",
                         "Spearman(alpha, clean accuracy) over layers x conditions",
                         f(c.spearman, c.spearman_ci, 2), claims.by_interval(*c.spearman_ci, threshold=0.0)),
            claims.Claim(f"Under Gaussian noise, accuracy vs alpha is monotonic ({who})",
                         "shape of mean noisy accuracy vs alpha: Spearman + two-lines test",
                         f"{g.shape}; rho {f(g.spearman, g.spearman_ci, 2)}", shape_verdict(g, True)),
            claims.Claim(f"Under FGSM, accuracy vs alpha is non-monotonic ({who})",
                         "shape of mean FGSM accuracy vs alpha: Spearman + two-lines test",
                         f"{a.shape}; rho {f(a.spearman, a.spearman_ci, 2)}", shape_verdict(a, False)),
        ]
    rows.append(claims.Claim(
        f"Smoothness: layers with alpha > 1 + 2/d = {bound:.3g} (TwoNN d = {d:.3g}) are more robust to FGSM "
        "than layers below it", f"mean FGSM accuracy above minus below the bound ({n_above} vs {n_below} points)",
        f(diff, diff_ci) if np.isfinite(diff) else f"no points {'below' if n_below == 0 else 'above'} the bound",
        claims.by_interval(*diff_ci, threshold=0.0, above=True)))
    return claims.table(rows)


# ---------------------------------------------------------------- figures

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
            ax.loglog(ranks, s.eigs[:s.rank], color="C0", lw=1.5, label="eigenvalues")
            ax.axvspan(lo, hi, color="C1", alpha=0.15, label=f"fit window {lo}..{hi}")
            fr = np.arange(lo, hi + 1)
            ax.loglog(fr, s.fit.line(fr), color="C3", ls="--", lw=2,
                      label=f"$n^{{-\\alpha}}$, $\\alpha$ = {s.fit.alpha:.2f}")
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
    for ax, (attack, title) in zip(axes[0], [("gaussian", "Gaussian noise, std $2\\epsilon$"),
                                             ("fgsm", "FGSM, step $2\\epsilon\\,$sign$(\\nabla_x \\ell)$")]):
        for (m, layer), g in part[part.attack == attack].groupby(["method", "layer"]):
            ax.plot(g.eps, g.accuracy, marker="o", ms=3, color=f"C{layer - 1}",
                    ls="-" if m == "local" else "--", label=f"{m}, layer {layer}")
        ax.set(xlabel="strength $\\epsilon$ (inputs in [-1, 1])", title=title, ylim=(0, 1.02))
    axes[0, 0].set_ylabel("test accuracy of the layer's readout")
    axes[0, 1].legend(fontsize="x-small", ncol=2)
    return fig


def plot_accuracy_vs_alpha(table: pd.DataFrame, trs: dict[str, Trend], bound: float, title: str = ""):
    """Accuracy against alpha for every (network, layer): clean, Gaussian noise, FGSM."""

    fig, axes = plots.subplots(1, 3, width=4.0, height=3.4)
    fig.suptitle(title)
    kinds = list(dict.fromkeys(table.kind))
    for ax, (measure, label) in zip(axes[0], MEASURES.items()):
        for (m, kind), g in table.groupby(["method", "kind"]):
            ax.scatter(g.alpha, g[measure], s=22, marker="o" if m == "local" else "s",
                       color=f"C{kinds.index(kind)}", alpha=0.85,
                       facecolors="none" if m == "backprop" else None, label=f"{m}, {kind}")
        t = trs[measure]
        ax.axvline(t.breakpoint, color="grey", lw=1, ls=":")
        ax.axvspan(*t.breakpoint_ci, color="grey", alpha=0.1)
        for side, slope in (("left", t.left_slope), ("right", t.right_slope)):
            g = table[table.alpha <= t.breakpoint] if side == "left" else table[table.alpha >= t.breakpoint]
            if len(g) > 1 and np.isfinite(slope):
                xs = np.array([g.alpha.min(), g.alpha.max()])
                ax.plot(xs, g[measure].mean() + slope * (xs - g.alpha.mean()), color="k", lw=1.2)
        if table.alpha.min() <= bound * 1.05:
            ax.axvline(bound, color="C3", lw=1, label="$1 + 2/d$")
        ax.set(xlabel="power-law exponent $\\alpha$", ylabel=label, title=f"{measure}: {t.shape}")
    axes[0, 2].legend(fontsize="xx-small", ncol=1, loc="best")
    return fig


def base_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The base networks' per-layer measurements, one row per (method, layer)."""
    cols = ["alpha", "r2", "pr", "rank", "rms", "clean", "gaussian", "fgsm", "top_accuracy"]
    return table[table.kind == "base"].set_index(["method", "layer"])[cols]


def readouts_unchanged(cfg: SimpleNamespace, ds: data.Dataset, run: Trained) -> bool:
    """True if a local-error network's readouts still equal their initial random draw."""
    fresh = build(cfg, ds, "local", run.cond.widths)
    return all(torch.equal(a, b) for a, b in zip(fresh.readouts, run.net.readouts))


def summary(trs: dict[str, dict[str, Trend]]) -> pd.DataFrame:
    """Shape of each accuracy measure against alpha, per population, as one small table."""
    return pd.DataFrame({POPULATIONS[p]: {MEASURES[m]: t.shape for m, t in ts.items()} for p, ts in trs.items()})
