"""Chapter 3 (book/03_som_codes.ipynb): internal codes seen through self-organizing maps.

Lee & Vijayan (2022) fit self-organizing maps to hidden activations and read the
best-matching unit of an input as its *code*. This module trains the chapter's
networks, fits one map per layer with :mod:`lib.som`, measures the codes layer by
layer, follows adversarial inputs through the maps and links each input's smallest
label-flipping budget to the homogeneity of its shallow codes.
"""
from __future__ import annotations

from types import SimpleNamespace

from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from minisom import MiniSom
import numpy as np
import pandas as pd
from scipy import stats
import seaborn as sns
import torch
from tqdm.auto import tqdm

from .. import attacks, claims, config, data, flip, models, plots, som, train
from ..config import DATASETS, Param, ParameterError
from ..stats import bootstrap_ci, row_pearson

MODELS = ("mlp", "conv")
MODEL_TITLES = {"mlp": "MLP", "conv": "conv net"}

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "models": Param((list, str), ["mlp", "conv"], choices=MODELS, help="networks to analyse"),
    "widths": Param((list, int), [128, 128, 128], [1000, 1000, 1000], check="positive",
                    help="MLP hidden widths (the book's choice)"),
    "channels": Param((list, int), [16, 32], [32, 64], check="positive",
                      help="conv net: channels of its two conv layers (exactly two)"),
    "conv_hidden": Param(int, 64, 128, check="positive", help="conv net: width of its dense hidden layer"),
    "epochs": Param(int, 20, 15, check="positive", help="training epochs"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate"),
    "som_grid": Param(int, 10, 20, check="positive", help="map side: a som_grid x som_grid map per layer"),
    "som_sigma": Param(float, 3.0, 6.0, check="positive",
                       help="initial neighbourhood radius (grid units); decays to 1/3 of it"),
    "som_lr": Param(float, 1.0, 1.0, check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
                    help="batch-SOM learning rate (1 = pure Kohonen batch map), kept constant"),
    "som_epochs": Param(int, 20, 20, check="positive", help="SOM iterations (passes over the activations)"),
    "epsilons": Param((list, float), [0.02, 0.05, 0.1, 0.2], [0.02, 0.05, 0.1, 0.2], check="positive",
                      help="L-inf budgets of FGSM and PGD (pixels in [0, 1])"),
    "pgd_steps": Param(int, 10, 40, check="positive", max=10_000, help="PGD iterations"),
    "n_attack": Param(int, 450, 2000, check="positive", help="test inputs attacked (at most the test set)"),
    "flip_attack": Param(str, "pgd", "pgd", choices=("fgsm", "pgd"), help="attack whose smallest flipping "
                         "budget is searched"),
    "flip_eps_max": Param(float, 0.5, 0.5, check="positive", help="upper end of the budget search"),
    "bisection_steps": Param(int, 10, 12, check="positive", help="bisection steps per input"),
    "n_boot": Param(int, 1000, 2000, check="positive", help="bootstrap resamples for confidence intervals"),
}

# The book's threshold for "the codes reveal the network's decisions" (claim 1).
DECISION_AGREEMENT = 0.9


def check(cfg: SimpleNamespace) -> SimpleNamespace:
    """Constraints that span several parameters (run right after ``config.resolve``)."""
    if len(cfg.channels) != 2:
        raise ParameterError(f"parameter 'channels' needs exactly two entries, got {cfg.channels}")
    if len(set(cfg.models)) != len(cfg.models):
        raise ParameterError(f"parameter 'models' lists a model twice: {cfg.models}")
    if cfg.som_grid < 2:
        raise ParameterError(f"parameter 'som_grid' must be >= 2 (topographic error needs two units), "
                             f"got {cfg.som_grid}")
    if max(cfg.epsilons) > cfg.flip_eps_max:
        raise ParameterError(f"parameter 'flip_eps_max' ({cfg.flip_eps_max}) must be >= the largest of "
                             f"'epsilons' ({max(cfg.epsilons)})")
    return cfg


config.register(PARAMS, check, min_per_class=10, within={"n_attack": "test"})  # run by resolve and lib.sweep


# ---------------------------------------------------------------- networks and activations

def build(name: str, cfg: SimpleNamespace, ds: data.Dataset) -> torch.nn.Module:
    """The chapter's MLP or small conv net, on the configured device."""
    if name == "mlp":
        net = models.MLP(ds.n_features, cfg.widths, ds.n_classes)
    else:
        net = models.SmallConvNet(ds.image_shape, ds.n_classes, cfg.channels, cfg.conv_hidden)
    return net.to(cfg.device)


def layer_names(name: str, cfg: SimpleNamespace) -> list[str]:
    """Names of the representations a model exposes: the input, then its hidden layers."""
    if name == "mlp":
        return ["input"] + [f"dense {i + 1}" for i in range(len(cfg.widths))]
    return ["input", "conv 1", "conv 2", "dense"]


def train_models(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[dict, pd.DataFrame]:
    """Train every model of ``cfg.models`` with Adam; return them and their accuracies."""
    nets, rows = {}, []
    for name in cfg.models:
        net = build(name, cfg, ds)
        train.fit(net, ds.x_train, ds.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                  generator=cfg.generator, desc=f"training {name}")
        nets[name] = net
        rows.append({"model": MODEL_TITLES[name], "parameters": models.n_params(net),
                     "train accuracy": train.accuracy(net, ds.x_train, ds.y_train),
                     "test accuracy": train.accuracy(net, ds.x_test, ds.y_test)})
    return nets, pd.DataFrame(rows).set_index("model")


@torch.no_grad()
def activations(net: torch.nn.Module, x: torch.Tensor, batch_size: int = 2048) -> list[torch.Tensor]:
    """The input and every hidden representation of ``net`` on ``x`` (eval mode), one matrix each."""
    with attacks.eval_mode(net):
        parts = [net(x[i:i + batch_size], return_hidden=True)[1] for i in range(0, len(x), batch_size)]
    hidden = [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))] if parts else []
    return [x.flatten(1)] + hidden


# ---------------------------------------------------------------- maps and code measures

def fit_maps(cfg: SimpleNamespace, acts: list[torch.Tensor], desc: str = "") -> list[som.SOM]:
    """One batch SOM per representation, fitted on the training activations."""
    return [som.fit(a, cfg.som_grid, cfg.som_grid, epochs=cfg.som_epochs, sigma=cfg.som_sigma,
                    learning_rate=cfg.som_lr, lr_decay="constant", init="pca")
            for a in tqdm(acts, desc=f"SOMs {desc}", leave=False)]


def _spearman_rows(a: np.ndarray, b: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    """Spearman's rho (partial on ``c`` if given) of matching rows: ranks within each row."""
    ra, rb = stats.rankdata(a, axis=-1), stats.rankdata(b, axis=-1)
    r_ab = row_pearson(ra, rb)
    if c is None:
        return r_ab
    rc = stats.rankdata(c, axis=-1)
    r_ac, r_bc = row_pearson(ra, rc), row_pearson(rb, rc)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_ab - r_ac * r_bc) / np.sqrt((1 - r_ac ** 2) * (1 - r_bc ** 2))


def bootstrap_spearman(a, b, n_boot: int, rng: np.random.Generator,
                       control=None) -> tuple[float, float, float]:
    """Spearman's rank correlation of ``a`` and ``b`` (partial on ``control`` if given) and its 95% bootstrap CI.

    Pairs with a non-finite value are dropped; every resample re-ranks its own values.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = None if control is None else np.asarray(control, float)
    keep = np.isfinite(a) & np.isfinite(b)
    if c is not None:
        keep &= np.isfinite(c)
        c = c[keep]
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return (np.nan, np.nan, np.nan)
    full = float(_spearman_rows(a, b, c))
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = _spearman_rows(a[idx], b[idx], None if c is None else c[idx])
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, float(lo), float(hi)


def analyse_layers(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, name: str) -> SimpleNamespace:
    """Fit the maps of one model and measure its codes layer by layer.

    Returns the maps, the train/test codes, each test input's per-layer homogeneity
    (:func:`lib.som.other_class_fraction` against the training codes) and a table with,
    per layer: quantization and topographic error (test inputs), the code measures of
    :func:`lib.som.code_measures` on the test codes, homogeneity with its bootstrap CI, and
    the agreement between each test input's prediction and its code's majority predicted
    label (training inputs' predictions).
    """
    rng = np.random.default_rng(cfg.seed)
    a_train, a_test = activations(net, ds.x_train), activations(net, ds.x_test)
    maps = fit_maps(cfg, a_train, MODEL_TITLES[name])
    p_train, p_test = (train.predict(net, x).argmax(1) for x in (ds.x_train, ds.x_test))
    k, c = cfg.som_grid ** 2, ds.n_classes
    rows, codes_train, codes_test, homog = [], [], [], []
    for layer, m, atr, ate in zip(layer_names(name, cfg), maps, a_train, a_test):
        ctr, cte = m.codes(atr), m.codes(ate)
        ref = som.contingency(ctr, ds.y_train, k, c)
        h = som.other_class_fraction(cte, ds.y_test, ref).cpu().numpy()
        owner = som.code_labels(som.contingency(ctr, p_train, k, c).to(cte.device))[cte]
        agree = (owner == p_test).float().cpu().numpy()
        lo, hi = bootstrap_ci(h, n_boot=cfg.n_boot, rng=rng)
        alo, ahi = bootstrap_ci(agree, n_boot=cfg.n_boot, rng=rng)
        rows.append({"model": MODEL_TITLES[name], "layer": layer, "dim": atr.shape[1],
                     "quantization error": m.quantization_error(ate), "topographic error": m.topographic_error(ate),
                     **som.code_measures(som.contingency(cte, ds.y_test, k, c)),
                     "homogeneity": float(np.nanmean(h)), "homogeneity lo": lo, "homogeneity hi": hi,
                     "decision agreement": float(agree.mean()), "agreement lo": alo, "agreement hi": ahi})
        codes_train.append(ctr)
        codes_test.append(cte)
        homog.append(h)
    return SimpleNamespace(name=name, maps=maps, codes_train=codes_train, codes_test=codes_test,
                           homogeneity=homog, table=pd.DataFrame(rows), layers=layer_names(name, cfg))


def shallow_vs_deep(cfg: SimpleNamespace, res: SimpleNamespace) -> dict:
    """Homogeneity of the first minus the last hidden layer, per test input, with a paired bootstrap CI."""
    d = res.homogeneity[1] - res.homogeneity[-1]
    lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 1))
    return {"model": MODEL_TITLES[res.name], "shallow": res.layers[1], "deep": res.layers[-1],
            "difference": float(np.nanmean(d)), "lo": lo, "hi": hi}


def minisom_check(cfg: SimpleNamespace, x: torch.Tensor, fitted: som.SOM, n_codes: int = 300,
                  n_fit: int = 1000) -> dict:
    """Cross-check against MiniSom: the codes of ``n_codes`` inputs, and the quality of a fit.

    MiniSom's ``winner`` on ``fitted``'s weights must give the same codes as the batched
    assignment. Then both implementations fit a map to the same ``n_fit`` inputs (a
    seeded subset, so MiniSom's per-sample loop stays affordable) from the same PCA start
    with the same sigma schedule and number of passes: MiniSom's online ``train``
    (learning rate 0.5, its default) and the chapter's batch map; their quantization
    errors are compared.
    """

    g = cfg.som_grid
    xs = x.double().cpu().numpy()
    ref = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, random_seed=cfg.seed)
    ref._weights = fitted.weights.double().cpu().numpy().reshape(g, g, -1)
    expected = np.array([np.ravel_multi_index(ref.winner(v), (g, g)) for v in xs[:n_codes]])
    same = bool(np.array_equal(fitted.codes(x[:n_codes].double()).cpu().numpy(), expected))
    sub = np.sort(np.random.default_rng(cfg.seed).permutation(len(xs))[:n_fit])
    online = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, learning_rate=0.5, random_seed=cfg.seed)
    online.pca_weights_init(xs[sub])
    online.train(xs[sub], cfg.som_epochs * len(sub), random_order=True)
    batch = fit_maps(cfg, [x[torch.as_tensor(sub, device=x.device)]], "check")[0]
    return {"codes equal MiniSom's winner": same, "inputs checked": len(expected), "inputs fitted": len(sub),
            "QE lib.som (batch)": batch.quantization_error(x[torch.as_tensor(sub, device=x.device)]),
            "QE MiniSom train (online)": float(online.quantization_error(xs[sub]))}


def grid_sensitivity(cfg: SimpleNamespace, nets: dict, ds: data.Dataset, grids: list[int]) -> pd.DataFrame:
    """The shallow-minus-deep homogeneity difference for other map sizes (sigma scaled with the side)."""
    rows = []
    for name, net in nets.items():
        layers = layer_names(name, cfg)
        a_train, a_test = activations(net, ds.x_train), activations(net, ds.x_test)
        for g in grids:
            sub = SimpleNamespace(**{**vars(cfg), "som_grid": g, "som_sigma": cfg.som_sigma * g / cfg.som_grid})
            h = []
            for li in (1, len(layers) - 1):
                m = fit_maps(sub, [a_train[li]], f"{MODEL_TITLES[name]} {g}x{g}")[0]
                ref = som.contingency(m.codes(a_train[li]), ds.y_train, g * g, ds.n_classes)
                h.append(som.other_class_fraction(m.codes(a_test[li]), ds.y_test, ref).cpu().numpy())
            lo, hi = bootstrap_ci(h[0] - h[1], n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
            rows.append({"model": MODEL_TITLES[name], "map": f"{g}x{g}", "sigma": sub.som_sigma,
                         "shallow": layers[1], "deep": layers[-1], "shallow homogeneity": np.nanmean(h[0]),
                         "deep homogeneity": np.nanmean(h[1]), "difference": np.nanmean(h[0] - h[1]),
                         "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- adversarial codes

def attack_set(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset) -> torch.Tensor:
    """Indices of the test inputs the chapter attacks: a seeded subset of size n_attack, correctly classified."""
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(ds.x_test), generator=g)[:cfg.n_attack].sort().values.to(ds.x_test.device)
    pred = train.predict(net, ds.x_test[idx]).argmax(1)
    return idx[pred == ds.y_test[idx]]


def run_attack(cfg: SimpleNamespace, net: torch.nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor,
               eps, clamp) -> torch.Tensor:
    """FGSM or PGD (L-inf) at budget ``eps`` (a float or a per-sample tensor)."""
    if kind == "fgsm":
        return attacks.fgsm(net, x, y, eps, clamp=clamp)
    return attacks.pgd(net, x, y, eps, steps=cfg.pgd_steps, generator=cfg.generator, clamp=clamp)


def adversarial_codes(cfg: SimpleNamespace, net: torch.nn.Module, res: SimpleNamespace,
                      ds: data.Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per attack, budget and layer: how many codes change, and where successful adversarial codes land.

    Returns ``changes`` (fraction of attacked inputs whose code changes, the attack's
    success rate, mean grid distance moved) and ``landing`` (fractions of the successful
    adversarial inputs in each category of :data:`lib.som.LANDING`).
    """
    idx = attack_set(cfg, net, ds)
    x, y = ds.x_test[idx], ds.y_test[idx]
    k, c = cfg.som_grid ** 2, ds.n_classes
    refs = [som.contingency(ct, ds.y_train, k, c) for ct in res.codes_train]
    clean = [ct[idx] for ct in res.codes_test]
    coords = som.grid(cfg.som_grid, cfg.som_grid, device=x.device)
    changes, landing = [], []
    for kind in ("fgsm", "pgd"):
        for eps in cfg.epsilons:
            xa = run_attack(cfg, net, kind, x, y, eps, ds.value_range)
            pa = train.predict(net, xa).argmax(1)
            ok = pa != y
            for layer, m, ref, cc, a in zip(res.layers, res.maps, refs, clean, activations(net, xa)):
                ca = m.codes(a)
                moved = (coords[ca] - coords[cc]).norm(dim=1)
                base = {"model": MODEL_TITLES[res.name], "attack": kind.upper(), "eps": eps, "layer": layer}
                changes.append({**base, "code changed": (ca != cc).float().mean().item(),
                                "grid distance": moved.mean().item(), "success rate": ok.float().mean().item(),
                                "n attacked": len(y)})
                if ok.any():
                    where = som.landing(ca[ok], y[ok], pa[ok], ref)
                    frac = torch.bincount(where, minlength=len(som.LANDING)).double() / ok.sum()
                    landing += [{**base, "lands in": cat, "fraction": f.item(), "n successful": int(ok.sum())}
                                for cat, f in zip(som.LANDING, frac)]
    return pd.DataFrame(changes), pd.DataFrame(landing)


def flip_attack(cfg: SimpleNamespace, ds: data.Dataset) -> tuple:
    """The attack whose smallest flipping budget is searched, with its keyword arguments."""
    if cfg.flip_attack == "fgsm":
        return attacks.fgsm, {"clamp": ds.value_range}
    # no random start: a deterministic attack makes "flipped at eps" a function of eps, as bisection needs
    return attacks.pgd, {"clamp": ds.value_range, "steps": cfg.pgd_steps, "random_start": False}


def flips_at(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, per: pd.DataFrame) -> np.ndarray:
    """Whether the flip attack, re-run at each input's bisected budget, flips it (inputs flipped in the search).

    The attack runs on all of ``per``'s inputs at once, as in the search, so the numbers are the same.
    """
    idx = torch.as_tensor(per["test index"].to_numpy(), device=ds.x_test.device)
    x, y = ds.x_test[idx], ds.y_test[idx]
    attack, kw = flip_attack(cfg, ds)
    eps = torch.as_tensor(per["flip eps"].to_numpy(), dtype=x.dtype, device=x.device)
    flipped = (train.predict(net, attack(net, x, y, eps, **kw)).argmax(1) != y).cpu().numpy()
    return flipped[per["flipped in search"].to_numpy()]


def vulnerability(cfg: SimpleNamespace, net: torch.nn.Module, res: SimpleNamespace,
                  ds: data.Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Smallest flipping budget per attacked input vs the homogeneity of its code at every layer.

    Returns the per-input table (flip budget, clean logit margin, homogeneity per layer)
    and, per layer, Spearman's rho between homogeneity and flip budget with a 95%
    bootstrap CI, also partial on the clean logit margin.
    """
    idx = attack_set(cfg, net, ds)
    x, y = ds.x_test[idx], ds.y_test[idx]
    attack, kw = flip_attack(cfg, ds)
    eps = flip.smallest_flipping_eps(net, attack, x, y, cfg.flip_eps_max,
                                          bisection_steps=cfg.bisection_steps, **kw)
    logits = train.predict(net, x)
    top2 = logits.topk(2, dim=1).values
    per = pd.DataFrame({"test index": idx.cpu().numpy(), "flip eps": eps.cpu().numpy(),
                        "margin": (top2[:, 0] - top2[:, 1]).cpu().numpy()})
    censored = ~np.isfinite(per["flip eps"].to_numpy())
    per["flipped in search"] = ~censored
    per.loc[censored, "flip eps"] = cfg.flip_eps_max  # not flipped within the search: ranked as the largest
    idx_np = idx.cpu().numpy()
    for layer, h in zip(res.layers, res.homogeneity):
        per[layer] = h[idx_np]
    rng = np.random.default_rng(cfg.seed + 2)
    rows = []
    for layer in res.layers:
        r, lo, hi = bootstrap_spearman(per[layer], per["flip eps"], cfg.n_boot, rng)
        pr, plo, phi = bootstrap_spearman(per[layer], per["flip eps"], cfg.n_boot, rng, control=per["margin"])
        rows.append({"model": MODEL_TITLES[res.name], "layer": layer, "rho": r, "lo": lo, "hi": hi,
                     "partial rho (margin)": pr, "partial lo": plo, "partial hi": phi})
    r, lo, hi = bootstrap_spearman(per["margin"], per["flip eps"], cfg.n_boot, rng)
    rows.append({"model": MODEL_TITLES[res.name], "layer": "logit margin (control)", "rho": r, "lo": lo, "hi": hi})
    per.attrs["censored"] = float(censored.mean())
    return per, pd.DataFrame(rows)


# ---------------------------------------------------------------- figures

def plot_layer_measures(table: pd.DataFrame, n_units: int):
    """Code measures against depth (0 = input), one line per model."""

    panels = [("homogeneity", "homogeneity $\\bar\\eta$"), ("inputs_in_shared_codes", "share of inputs in shared codes"),
              ("purity", "purity"), ("nmi", "$I(c; y) / H(y)$"), ("decision agreement", "decision agreement"),
              ("effective_codes", f"effective number of codes (of {n_units})")]
    fig, axes = plots.subplots(2, 3, width=3.6, height=2.9)
    for ax, (col, label) in zip(axes.flat, panels):
        for j, (model, part) in enumerate(table.groupby("model", sort=False)):
            xs = np.arange(len(part))
            ax.plot(xs, part[col], marker="os"[j % 2], color=f"C{j}", label=f"{model} ({', '.join(part.layer[1:])})")
            if col == "homogeneity":
                ax.fill_between(xs, part["homogeneity lo"], part["homogeneity hi"], color=f"C{j}", alpha=0.2)
        depth = table.groupby("model").size().max()
        ax.set_xticks(range(depth), ["input"] + [f"hidden {i}" for i in range(1, depth)])
        ax.set(xlabel="layer (shallow to deep)", ylabel=label, title=label)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle("SOM code measures layer by layer (test inputs; band: 95% bootstrap interval)")
    return fig


def plot_maps(res: SimpleNamespace, layers: list[int], labels: torch.Tensor, class_names: list[str]):
    """U-matrix (top) and class map (bottom) of the chosen layers' SOMs, from the training inputs' codes."""


    n_classes = len(class_names)
    fig, axes = plots.subplots(2, len(layers), width=4.0, height=3.5)
    colours = plots_palette(n_classes)
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
    fig.suptitle(f"{MODEL_TITLES[res.name]}: maps of a shallow and a deep layer "
                 "(class map: opacity = purity, white = unused)")
    return fig


def plots_palette(n: int) -> np.ndarray:
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
        ax.set(xlabel=f"homogeneity $\\eta$ of the {layer[model]} code",
               ylabel="smallest flipping $\\epsilon^*$ ($L_\\infty$)",
               title=f"{model}: Spearman $\\rho$ = {r.rho:.2f} [{r.lo:.2f}, {r.hi:.2f}]")
    return fig


# ---------------------------------------------------------------- claims

def claims_table(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame) -> list[claims.Claim]:
    """The paper's claims, one row per model, with verdicts computed from the intervals."""
    out = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        deep = r.table.iloc[-1]
        out.append(claims.Claim(
            f"{title}: SOM codes reveal the network's decisions",
            f"share of test inputs predicted as their {deep.layer} code's majority prediction "
            f"(holds if CI > {DECISION_AGREEMENT})",
            claims.fmt(deep["decision agreement"], (deep["agreement lo"], deep["agreement hi"])),
            claims.by_interval(deep["agreement lo"], deep["agreement hi"], DECISION_AGREEMENT)))
        d = diffs[diffs.model == title].iloc[0]
        out.append(claims.Claim(
            f"{title}: shallow codes homogeneous, deep codes diverse",
            f"homogeneity {d.shallow} minus {d.deep} (paired bootstrap; holds if CI > 0)",
            claims.fmt(d.difference, (d.lo, d.hi)), claims.by_interval(d.lo, d.hi, 0.0)))
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.append(claims.Claim(
            f"{title}: homogeneous shallow codes go with vulnerability",
            f"Spearman rho, {c.layer} homogeneity vs smallest flipping eps (holds if CI < 0)",
            claims.fmt(c.rho, (c.lo, c.hi)), claims.by_interval(c.lo, c.hi, 0.0, above=False)))
        out.append(claims.Claim(
            f"{title}: ... beyond what the clean logit margin explains",
            "the same rho, partial on the logit margin (holds if CI < 0)",
            claims.fmt(c["partial rho (margin)"], (c["partial lo"], c["partial hi"])),
            claims.by_interval(c["partial lo"], c["partial hi"], 0.0, above=False)))
    return out


def budget_to_show(changes: pd.DataFrame, share: float = 0.5) -> float:
    """The smallest budget at which PGD flips at least ``share`` of the attacked inputs of every model."""
    pgd = changes[changes.attack == "PGD"].groupby("eps")["success rate"].min()
    enough = pgd[pgd >= share]
    return float(enough.index.min() if len(enough) else pgd.index.max())


def summary(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame, changes: pd.DataFrame, landing: pd.DataFrame,
            eps: float) -> str:
    """The run's main numbers in sentences (so the text never states a number the run did not produce)."""
    lines = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        d = diffs[diffs.model == title].iloc[0]
        c = corr[corr.model == title].set_index("layer")
        ch = changes[(changes.model == title) & (changes.attack == "PGD") & np.isclose(changes.eps, eps)]
        ch = ch.set_index("layer")["code changed"]
        la = landing[(landing.model == title) & (landing.attack == "PGD") & np.isclose(landing.eps, eps)]
        deep = la[la.layer == r.layers[-1]].set_index("lands in")["fraction"]
        inp = la[la.layer == r.layers[0]].set_index("lands in")["fraction"]
        lines.append(
            f"{title}: homogeneity {d.shallow} {r.table.homogeneity.iloc[1]:.3f} vs {d.deep} "
            f"{r.table.homogeneity.iloc[-1]:.3f} (difference {d.difference:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]). "
            f"Rank correlation of homogeneity with the flipping budget: {d.shallow} {c.loc[d.shallow, 'rho']:.2f}, "
            f"{d.deep} {c.loc[d.deep, 'rho']:.2f}, clean logit margin {c.loc['logit margin (control)', 'rho']:.2f}; "
            f"{d.shallow} given the margin {c.loc[d.shallow, 'partial rho (margin)']:.2f}. "
            f"PGD at eps = {eps:g} changes the code of {ch.iloc[0]:.0%} of inputs at the input layer and "
            f"{ch.iloc[-1]:.0%} at {r.layers[-1]}; at {r.layers[-1]}, {deep.get(som.LANDING[1], 0):.0%} of the "
            f"successful adversarial inputs land in codes of the adversarial class, "
            f"{deep.get(som.LANDING[0], 0):.0%} in codes of their true class and "
            f"{deep.get(som.LANDING[3], 0):.0%} in codes no clean training input uses "
            f"(at the input layer: {inp.get(som.LANDING[0], 0):.0%} keep a code of their true class).")
    return "\n\n".join(lines)


CLAIM_KEYS = ("decisions", "shallow_homogeneous_deep_diverse", "homogeneity_vulnerability",
              "homogeneity_vulnerability_beyond_margin")


def scalars(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame, rows: list[claims.Claim]) -> dict:
    """The run's key numbers and verdicts, named for ``lib.results.record``."""
    out = {}
    for j, (name, r) in enumerate(res.items()):
        title = MODEL_TITLES[name]
        d = diffs[diffs.model == title].iloc[0]
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.update({f"{name}_homogeneity_shallow": r.table.homogeneity.iloc[1],
                    f"{name}_homogeneity_deep": r.table.homogeneity.iloc[-1],
                    f"{name}_homogeneity_difference": d.difference,
                    f"{name}_decision_agreement": r.table["decision agreement"].iloc[-1],
                    f"{name}_rho_shallow_flip_eps": c.rho, f"{name}_partial_rho_margin": c["partial rho (margin)"]})
        out.update({f"{name}_verdict_{key}": row.verdict
                    for key, row in zip(CLAIM_KEYS, rows[j * len(CLAIM_KEYS):(j + 1) * len(CLAIM_KEYS)])})
    return out
