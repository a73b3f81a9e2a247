"""Chapter 3 (book/03_som_codes.ipynb): internal codes seen through self-organizing maps.

Lee & Vijayan (2022) fit self-organizing maps to hidden activations and read the
best-matching unit of an input as its *code*. This module trains the chapter's
networks, fits one map per layer with :mod:`lib.som`, measures the codes layer by
layer, follows adversarial inputs through the maps and links each input's smallest
label-flipping budget to the homogeneity of its shallow codes.
"""
from __future__ import annotations

import textwrap
from types import SimpleNamespace

from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from minisom import MiniSom
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.linear_model import LogisticRegression
import torch

from .. import attacks, claims, config, data, flip, models, plots, som, train
from ..config import DATASETS, Param, ParameterError
from ..stats import bootstrap_ci, row_pearson, spearman_with_ci

MODELS = ("mlp", "conv")
MODEL_TITLES = {"mlp": "MLP", "conv": "conv net"}

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images, a seeded subset (0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images, a seeded subset (0 = all)"),
    "models": Param((list, str), ["mlp", "conv"], choices=MODELS, help="networks to analyse"),
    "widths": Param((list, int), [128, 128, 128], [1000, 1000, 1000], check="positive",
                    help="MLP hidden widths (the book's choice)"),
    "channels": Param((list, int), [16, 32], [32, 64], check="positive",
                      help="conv net: channels of its two conv layers (exactly two)"),
    "conv_hidden": Param(int, 64, 128, check="positive", help="conv net: width of its dense hidden layer"),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs (all stages of the schedule)"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size"),
    "lr": Param(float, 3e-3, 3e-3, check="positive", max=1.0, help="Adam learning rate (first stage)"),
    "lr_schedule": Param(str, "step", "step", choices=("step", "constant"),
                         help="'step': the rate is divided by 10 after each fraction in lr_drops"),
    "lr_drops": Param((list, float), [0.5, 0.75], [0.5, 0.75],
                      check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
                      help="fractions of the epochs after which the step schedule divides the rate by 10"),
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
    "activation_budget_mb": Param(float, 1024.0, 1024.0, check="positive",
                                  help="activations of a data set held in memory at most (MB); above it "
                                       "every SOM pass recomputes them chunk by chunk"),
    "n_boot": Param(int, 1000, 2000, check=lambda v: None if v >= 100 else "must be >= 100",
                    help="bootstrap resamples for confidence intervals"),
}

# The book's threshold for "the codes reveal the network's decisions" (claim 1).
DECISION_AGREEMENT = 0.9
# The book's test of convergence: over the last tenth of the epochs the training loss fell by less than
# this share of its value (a plateau), or the network classifies at least FITTED_ACCURACY of its
# training set correctly (the training set is fitted: nothing is left to learn from it).
CONVERGED_FALL = 0.01
FITTED_ACCURACY = 0.99


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

def load_data(cfg: SimpleNamespace) -> data.Dataset:
    """The chapter's image dataset on the device, pixels in [0, 1], with seeded ``n_train``/``n_test`` subsets."""
    return data.load(cfg.dataset, device=cfg.device, seed=cfg.seed,
                     n_train=cfg.n_train or None, n_test=cfg.n_test or None)


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


def lr_stages(cfg: SimpleNamespace) -> list[tuple[int, float]]:
    """``(epochs, learning rate)`` of each stage: the step schedule divides the rate by 10 at each drop."""
    drops = cfg.lr_drops if cfg.lr_schedule == "step" else []
    bounds = sorted({0, cfg.epochs, *(round(f * cfg.epochs) for f in drops)})
    return [(b - a, cfg.lr * 0.1 ** k) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]


def train_model(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, desc: str) -> pd.DataFrame:
    """Train ``net`` with Adam through the stages of :func:`lr_stages`; the per-epoch history (test accuracy too).

    Each stage is one :func:`lib.train.fit` call (Adam restarts with the lower rate; the
    seeded generator carries on, so the run stays deterministic).
    """
    parts, done = [], 0
    for epochs, lr in lr_stages(cfg):
        h = train.fit(net, ds.x_train, ds.y_train, epochs=epochs, batch_size=cfg.batch_size, lr=lr,
                      generator=cfg.generator, x_val=ds.x_test, y_val=ds.y_test, desc=f"{desc}, lr {lr:g}")
        parts.append(h.assign(epoch=h.epoch + done, lr=lr))
        done += epochs
    return pd.concat(parts, ignore_index=True)


def convergence(history: pd.DataFrame) -> dict:
    """Final training loss, its relative fall over the last tenth of the epochs (at least one) and the verdict.

    Converged means a plateau (fall below :data:`CONVERGED_FALL`) or a fitted training set
    (final train accuracy at least :data:`FITTED_ACCURACY`); ``converged`` says which, or ``"no"``.
    """
    k = max(1, len(history) // 10)
    loss = history["loss"].to_numpy()
    fall = (loss[-1 - k] - loss[-1]) / loss[-1] if len(loss) > k else float("nan")
    fitted = history["train_acc"].iloc[-1] >= FITTED_ACCURACY
    how = "plateau" if fall < CONVERGED_FALL else "fitted" if fitted else "no"
    return {"final train loss": float(loss[-1]), f"loss fall, last {k} epochs": float(fall), "converged": how}


def pixel_baseline(ds: data.Dataset, seed: int) -> float:
    """Test accuracy of a multinomial logistic regression on the raw pixels (the bar a network must clear)."""
    clf = LogisticRegression(max_iter=500, C=1.0, random_state=seed)
    clf.fit(ds.x_train.cpu().numpy(), ds.y_train.cpu().numpy())
    return float(clf.score(ds.x_test.cpu().numpy(), ds.y_test.cpu().numpy()))


def train_models(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Train every model of ``cfg.models``; return them, a table of accuracies and convergence, and the histories."""
    nets, rows, hist = {}, [], []
    linear = pixel_baseline(ds, cfg.seed)
    for name in cfg.models:
        net = build(name, cfg, ds)
        h = train_model(cfg, net, ds, f"training {name}")
        nets[name] = net
        hist.append(h.assign(model=MODEL_TITLES[name]))
        rows.append({"model": MODEL_TITLES[name], "parameters": models.n_params(net),
                     "train accuracy": train.accuracy(net, ds.x_train, ds.y_train),
                     "test accuracy": train.accuracy(net, ds.x_test, ds.y_test),
                     "pixel logistic regression (test)": linear, **convergence(h)})
    return nets, pd.DataFrame(rows).set_index("model"), pd.concat(hist, ignore_index=True)


def training_summary(table: pd.DataFrame) -> str:
    """Whether each network converged and clears the pixel baseline, in sentences built from ``table``."""
    fall = next(c for c in table.columns if c.startswith("loss fall"))
    lines = []
    for model, r in table.iterrows():
        margin = r["test accuracy"] - r["pixel logistic regression (test)"]
        k = fall.split()[-2]
        verdict = {"plateau": f"it has converged at this schedule (a plateau: less than {CONVERGED_FALL:.0%})",
                   "fitted": f"it has converged (the training set is fitted: at least {FITTED_ACCURACY:.0%} "
                             "of it classified correctly)",
                   "no": "it has not converged by the book's test"}[r.converged]
        lines.append(f"{model}: training loss {r['final train loss']:.4f} at the end, {r[fall]:.2%} lower than "
                     f"{k} epochs before, so {verdict}; train accuracy {r['train accuracy']:.3f}, test accuracy "
                     f"{r['test accuracy']:.3f}, {abs(margin):.3f} {'above' if margin > 0 else 'below'} a logistic "
                     f"regression on the pixels.")
    return "\n".join(lines)


def plot_training(history: pd.DataFrame):
    """Training loss (log scale) and train/test accuracy per epoch, one colour per model; dotted: rate drops."""
    fig, axes = plots.subplots(1, 2, width=4.2, height=3.2)
    for j, (model, h) in enumerate(history.groupby("model", sort=False)):
        axes[0, 0].plot(h.epoch, h.loss, color=f"C{j}", label=model)
        axes[0, 1].plot(h.epoch, h.train_acc, color=f"C{j}", label=f"{model}, train")
        axes[0, 1].plot(h.epoch, h.val_acc, color=f"C{j}", ls="--", label=f"{model}, test")
        for e in h.epoch[h.lr.diff().fillna(0) != 0]:
            for ax in axes[0]:
                ax.axvline(e - 0.5, color="0.6", ls=":", lw=1)
    axes[0, 0].set(yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy, nats)", title="loss")
    axes[0, 1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    axes[0, 0].legend()
    axes[0, 1].legend(fontsize=8)
    return fig


@torch.no_grad()
def activations(net: torch.nn.Module, x: torch.Tensor, batch_size: int = 2048) -> list[torch.Tensor]:
    """The input and every hidden representation of ``net`` on ``x`` (eval mode), one matrix each.

    For small sets (attacked inputs); whole training sets go through :func:`layer_batches`.
    """
    parts = list(_forward_chunks(net, x, None, batch_size))
    return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))] if parts else []


def _forward_chunks(net: torch.nn.Module, x: torch.Tensor, layers: list[int] | None, batch_size: int):
    """Chunks of ``[input, hidden...]`` (or the chosen ``layers`` of it), computed in eval mode."""
    with torch.no_grad(), attacks.eval_mode(net):
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            chunk = [xb.flatten(1)] + net(xb, return_hidden=True)[1]
            yield chunk if layers is None else [chunk[j] for j in layers]


def layer_batches(net: torch.nn.Module, x: torch.Tensor, layers: list[int] | None = None, *,
                  budget_mb: float = 1024, batch_size: int = 2048) -> som.Batches:
    """The representations of ``x`` (all, or the chosen ``layers``) as a :data:`lib.som.Batches` source.

    When they fit in ``budget_mb`` megabytes they are computed once and held; otherwise
    every pass recomputes them chunk by chunk, so that no wide layer of a large training
    set (60,000 x 6,272 for the paper's first conv block) is ever held whole.
    """
    with torch.no_grad(), attacks.eval_mode(net):
        first = next(_forward_chunks(net, x[:1], layers, 1))
    size_mb = len(x) * sum(a.shape[1] * a.element_size() for a in first) / 2 ** 20
    if size_mb > budget_mb:
        return lambda: _forward_chunks(net, x, layers, batch_size)
    parts = list(_forward_chunks(net, x, layers, batch_size))
    return som.tensor_batches(*[torch.cat([p[k] for p in parts]) for k in range(len(first))])


# ---------------------------------------------------------------- maps and code measures

def fit_maps(cfg: SimpleNamespace, batches: som.Batches, planes: list[som.Plane], grid: int | None = None,
             desc: str = "") -> list[som.SOM]:
    """One batch SOM per representation of ``batches``, fitted in shared passes from the layers' PCA planes.

    ``grid`` (default ``som_grid``) sets the map side; sigma scales with it.
    """
    g = grid or cfg.som_grid
    return som.fit_layers(batches, g, g, epochs=cfg.som_epochs, sigma=cfg.som_sigma * g / cfg.som_grid,
                          learning_rate=cfg.som_lr, lr_decay="constant", planes=planes, progress=True,
                          desc=f"SOMs {desc} {g}x{g}")


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
    return spearman_with_ci(a, b, rng.integers(0, len(a), size=(n_boot, len(a))), c)


def _homogeneity(codes_train: torch.Tensor, codes_test: torch.Tensor, ds: data.Dataset, n_units: int) -> np.ndarray:
    """Each test input's :func:`lib.som.test_homogeneity` against the training inputs' codes."""
    return som.test_homogeneity(codes_train, ds.y_train, codes_test, ds.y_test, n_units, ds.n_classes)


def analyse_layers(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, name: str) -> SimpleNamespace:
    """Fit the maps of one model and measure its codes layer by layer.

    Every layer's PCA plane is computed once (randomized, :func:`lib.som.principal_planes`)
    and its map fitted from it, all layers in the same streamed passes
    (:func:`layer_batches`). Returns the planes, the maps, the train/test codes, each test
    input's per-layer homogeneity (:func:`lib.som.other_class_fraction` against the
    training codes) and a table with, per layer: quantization and topographic error (test
    inputs), the code measures of :func:`lib.som.code_measures` on the test codes,
    homogeneity with its bootstrap CI, and the agreement between each test input's
    prediction and its code's majority predicted label (training inputs' predictions).
    """
    rng = np.random.default_rng(cfg.seed)
    src_train = layer_batches(net, ds.x_train, budget_mb=cfg.activation_budget_mb)
    planes = som.principal_planes(src_train, seed=cfg.seed, progress=True, desc=f"PCA planes {MODEL_TITLES[name]}")
    maps = fit_maps(cfg, src_train, planes, desc=MODEL_TITLES[name])
    codes_train = [idx[:, 0] for idx, _ in som.assign_layers(maps, src_train, k=1)]
    test = som.assign_layers(maps, layer_batches(net, ds.x_test, budget_mb=cfg.activation_budget_mb), k=2)
    p_train, p_test = (train.predict(net, x).argmax(1) for x in (ds.x_train, ds.x_test))
    k, c = cfg.som_grid ** 2, ds.n_classes
    rows, codes_test, homog = [], [], []
    for layer, m, ctr, (idx, dist) in zip(layer_names(name, cfg), maps, codes_train, test):
        cte = idx[:, 0]
        h = _homogeneity(ctr, cte, ds, k)
        owner = som.code_labels(som.contingency(ctr, p_train, k, c).to(cte.device))[cte]
        agree = (owner == p_test).float().cpu().numpy()
        lo, hi = bootstrap_ci(h, n_boot=cfg.n_boot, rng=rng)
        alo, ahi = bootstrap_ci(agree, n_boot=cfg.n_boot, rng=rng)
        rows.append({"model": MODEL_TITLES[name], "layer": layer, "dim": m.weights.shape[1],
                     "quantization error": som.quantization_error(dist),
                     "topographic error": som.topographic_error(idx, m.rows, m.cols),
                     **som.code_measures(som.contingency(cte, ds.y_test, k, c)),
                     "homogeneity": float(np.nanmean(h)), "homogeneity lo": lo, "homogeneity hi": hi,
                     "decision agreement": float(agree.mean()), "agreement lo": alo, "agreement hi": ahi})
        codes_test.append(cte)
        homog.append(h)
    return SimpleNamespace(name=name, planes=planes, maps=maps, codes_train=codes_train, codes_test=codes_test,
                           homogeneity=homog, table=pd.DataFrame(rows), layers=layer_names(name, cfg))


def shallow_vs_deep(cfg: SimpleNamespace, res: SimpleNamespace) -> dict:
    """Homogeneity of the first minus the last hidden layer, per test input, with a paired bootstrap CI."""
    d = res.homogeneity[1] - res.homogeneity[-1]
    lo, hi = bootstrap_ci(d, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 1))
    return {"model": MODEL_TITLES[res.name], "shallow": res.layers[1], "deep": res.layers[-1],
            "difference": float(np.nanmean(d)), "lo": lo, "hi": hi}


def minisom_check(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, res: SimpleNamespace,
                  layer: int = 1, n_codes: int = 300, n_fit: int = 1000) -> dict:
    """Cross-check against MiniSom on one layer: the codes of ``n_codes`` inputs, and the quality of a fit.

    MiniSom's ``winner`` on the chapter's fitted weights must give the same codes as the
    batched assignment. Then both implementations fit a map to the same ``n_fit``
    training inputs (a seeded subset, so MiniSom's per-sample loop stays affordable)
    from a PCA start with the same sigma schedule and number of passes: MiniSom's online
    ``train`` (learning rate 0.5, its default; its own exact ``pca_weights_init``) and the
    chapter's batch map (randomized PCA plane); their quantization errors are compared.
    """
    g, fitted = cfg.som_grid, res.maps[layer]
    sub = np.sort(np.random.default_rng(cfg.seed).permutation(len(ds.x_train))[:n_fit])
    x = activations(net, ds.x_train[torch.as_tensor(sub, device=ds.x_train.device)])[layer]
    xs = x.double().cpu().numpy()
    ref = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, random_seed=cfg.seed)
    ref._weights = fitted.weights.double().cpu().numpy().reshape(g, g, -1)
    expected = np.array([np.ravel_multi_index(ref.winner(v), (g, g)) for v in xs[:n_codes]])
    same = bool(np.array_equal(fitted.codes(x[:n_codes].double()).cpu().numpy(), expected))
    online = MiniSom(g, g, xs.shape[1], sigma=cfg.som_sigma, learning_rate=0.5, random_seed=cfg.seed)
    online.pca_weights_init(xs)
    online.train(xs, cfg.som_epochs * len(xs), random_order=True)
    batch = fit_maps(cfg, som.tensor_batches(x), som.principal_planes(som.tensor_batches(x), seed=cfg.seed),
                     desc="check")[0]
    return {"codes equal MiniSom's winner": same, "inputs checked": len(expected), "inputs fitted": len(xs),
            "QE lib.som (batch)": batch.quantization_error(x),
            "QE MiniSom train (online)": float(online.quantization_error(xs))}


def grid_sensitivity(cfg: SimpleNamespace, nets: dict, res: dict, ds: data.Dataset, grids: list[int]) -> pd.DataFrame:
    """The shallow-minus-deep homogeneity difference for other map sizes (sigma scaled with the side).

    The maps of other sizes start from the PCA planes of :func:`analyse_layers` (computed
    once per layer); the chapter's own size reuses its maps.
    """
    rows = []
    for name, net in nets.items():
        r = res[name]
        chosen = [1, len(r.layers) - 1]
        src_train = layer_batches(net, ds.x_train, chosen, budget_mb=cfg.activation_budget_mb)
        src_test = layer_batches(net, ds.x_test, chosen, budget_mb=cfg.activation_budget_mb)
        for g in grids:
            if g == cfg.som_grid:
                h = [r.homogeneity[i] for i in chosen]
            else:
                maps = fit_maps(cfg, src_train, [r.planes[i] for i in chosen], grid=g, desc=MODEL_TITLES[name])
                ctr, cte = (som.assign_layers(maps, src, k=1) for src in (src_train, src_test))
                h = [_homogeneity(a[0][:, 0], b[0][:, 0], ds, g * g) for a, b in zip(ctr, cte)]
            lo, hi = bootstrap_ci(h[0] - h[1], n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
            rows.append({"model": MODEL_TITLES[name], "map": f"{g}x{g}", "sigma": cfg.som_sigma * g / cfg.som_grid,
                         "shallow": r.layers[1], "deep": r.layers[-1], "shallow homogeneity": np.nanmean(h[0]),
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
        ax.set(xlabel="layer (shallow to deep)", ylabel=textwrap.fill(label, 24), title=label)  # no taller than its panel
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
    """The paper's claims, four per model (ids ``ch03.<model>_<claim>``), verdicts computed from the intervals."""
    out = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        deep = r.table.iloc[-1]
        est, lo, hi = deep["decision agreement"], deep["agreement lo"], deep["agreement hi"]
        out.append(claims.Claim(
            f"{title}: SOM codes reveal the network's decisions",
            f"share of test inputs predicted as their {deep.layer} code's majority prediction "
            f"(holds if CI > {DECISION_AGREEMENT})",
            claims.fmt(est, (lo, hi)), claims.by_interval(lo, hi, DECISION_AGREEMENT),
            id=f"ch03.{name}_{CLAIM_KEYS[0]}", estimate=est, lo=lo, hi=hi))
        d = diffs[diffs.model == title].iloc[0]
        out.append(claims.Claim(
            f"{title}: shallow codes homogeneous, deep codes diverse",
            f"homogeneity {d.shallow} minus {d.deep} (paired bootstrap; holds if CI > 0)",
            claims.fmt(d.difference, (d.lo, d.hi)), claims.by_interval(d.lo, d.hi, 0.0),
            id=f"ch03.{name}_{CLAIM_KEYS[1]}", estimate=d.difference, lo=d.lo, hi=d.hi))
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.append(claims.Claim(
            f"{title}: homogeneous shallow codes go with vulnerability",
            f"Spearman rho, {c.layer} homogeneity vs smallest flipping eps (holds if CI < 0)",
            claims.fmt(c.rho, (c.lo, c.hi)), claims.by_interval(c.lo, c.hi, 0.0, above=False),
            id=f"ch03.{name}_{CLAIM_KEYS[2]}", estimate=c.rho, lo=c.lo, hi=c.hi))
        pr, plo, phi = c["partial rho (margin)"], c["partial lo"], c["partial hi"]
        out.append(claims.Claim(
            f"{title}: ... beyond what the clean logit margin explains",
            "the same rho, partial on the logit margin (holds if CI < 0)",
            claims.fmt(pr, (plo, phi)), claims.by_interval(plo, phi, 0.0, above=False),
            id=f"ch03.{name}_{CLAIM_KEYS[3]}", estimate=pr, lo=plo, hi=phi))
    return out


def _verdicts(rows: list[claims.Claim], key: str) -> dict[str, claims.Claim]:
    """The claims of one kind, by model title."""
    return {MODEL_TITLES[name]: c for c in rows for name in MODELS if c.id == f"ch03.{name}_{key}"}


def _names(titles: list[str]) -> str:
    return " and ".join(titles) if titles else "no network"


def findings(rows: list[claims.Claim], res: dict, grids: pd.DataFrame, corr: pd.DataFrame,
             landing: pd.DataFrame, eps: float) -> str:
    """A Markdown reading of this run (each sentence chosen by the computed numbers, none typed in advance)."""
    dec, sd = _verdicts(rows, CLAIM_KEYS[0]), _verdicts(rows, CLAIM_KEYS[1])
    vul, beyond = _verdicts(rows, CLAIM_KEYS[2]), _verdicts(rows, CLAIM_KEYS[3])
    track = [t for t, c in dec.items() if c.verdict == claims.HOLDS]
    lines = [f"- **Decisions.** The deepest hidden layer's codes track the decisions of {_names(track)} "
             f"(share of test inputs labelled as their code's majority: "
             + ", ".join(f"{t} {c.estimate:.3f}" for t, c in dec.items()) + f"; bar {DECISION_AGREEMENT})."]
    parts = []
    for t, c in sd.items():
        g = grids[grids.model == t]
        pos = int((g.lo > 0).sum())
        side = {claims.HOLDS: "more class-mixed than", claims.FAILS: "less class-mixed than",
                claims.INCONCLUSIVE: "not distinguishable from"}[c.verdict]
        parts.append(f"the {t}'s first hidden layer has codes {side} its last (difference {c.estimate:+.3f} "
                     f"[{c.lo:+.3f}, {c.hi:+.3f}]; interval above 0 for {pos} of {len(g)} map sizes)")
    text = "; ".join(parts)
    lines.append("- **Shallow against deep.** " + text[0].upper() + text[1:] + ".")
    eff = pd.concat([r.table for r in res.values()])["effective_codes"]
    spread = (eff.max() - eff.min()) / eff.max()
    lines.append(f"- **Diversity as code usage.** The effective number of codes ranges from {eff.min():.0f} to "
                 f"{eff.max():.0f} over all layers (a spread of {spread:.0%} of the largest): "
                 + ("it hardly depends on depth, since a map spreads its units over whatever data it is given."
                    if spread < 0.25 else "it changes with depth."))
    parts = []
    for name, r in res.items():
        t = MODEL_TITLES[name]
        c = corr[corr.model == t].set_index("layer")
        rs, rd = c.loc[r.layers[1], "rho"], c.loc[r.layers[-1], "rho"]
        parts.append(f"{t}: rho {rs:.2f} at {r.layers[1]}, {rd:.2f} at {r.layers[-1]}, "
                     f"{beyond[t].estimate:.2f} at {r.layers[1]} given the margin ({beyond[t].verdict})")
    neg = [t for t, c in vul.items() if c.verdict == claims.HOLDS]
    spec = [t for name, r in res.items() for t in [MODEL_TITLES[name]]
            if corr[(corr.model == t) & (corr.layer == r.layers[1])].hi.iloc[0]
            < corr[(corr.model == t) & (corr.layer == r.layers[-1])].lo.iloc[0]]
    lines.append(f"- **Homogeneity and vulnerability.** Inputs with more homogeneous shallow codes are easier to "
                 f"flip for {_names(neg)}; the link is specific to shallow layers (its interval wholly below the "
                 f"deepest layer's) for {_names(spec)}. " + "; ".join(parts) + ".")
    parts = []
    for name, r in res.items():
        t = MODEL_TITLES[name]
        la = landing[(landing.model == t) & (landing.attack == "PGD") & np.isclose(landing.eps, eps)]
        deep = la[la.layer == r.layers[-1]].set_index("lands in")["fraction"]
        inp = la[la.layer == r.layers[0]].set_index("lands in")["fraction"]
        parts.append(f"{t}: at {r.layers[-1]} {deep.get(som.LANDING[1], 0):.0%} in codes of the class now "
                     f"predicted, {deep.get(som.LANDING[3], 0):.0%} in codes no clean input uses; at the input "
                     f"{inp.get(som.LANDING[0], 0):.0%} keep a code of their true class")
    lines.append(f"- **Where adversarial codes land** (PGD, eps = {eps:g}). " + "; ".join(parts) + ".")
    return "\n".join(lines)


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


def scalars(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame, accuracy: pd.DataFrame) -> dict:
    """The run's key numbers, named for ``lib.results.record`` (the claims record themselves)."""
    out = {"pixel_logreg_test_accuracy": float(accuracy["pixel logistic regression (test)"].iloc[0])}
    for name, r in res.items():
        title = MODEL_TITLES[name]
        out.update({f"{name}_train_accuracy": accuracy.loc[title, "train accuracy"],
                    f"{name}_test_accuracy": accuracy.loc[title, "test accuracy"],
                    f"{name}_final_train_loss": accuracy.loc[title, "final train loss"]})
        d = diffs[diffs.model == title].iloc[0]
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.update({f"{name}_homogeneity_shallow": r.table.homogeneity.iloc[1],
                    f"{name}_homogeneity_deep": r.table.homogeneity.iloc[-1],
                    f"{name}_homogeneity_difference": d.difference,
                    f"{name}_decision_agreement": r.table["decision agreement"].iloc[-1],
                    f"{name}_rho_shallow_flip_eps": c.rho, f"{name}_partial_rho_margin": c["partial rho (margin)"]})
    return out
