"""Chapter 5 (book/05_four_lenses.ipynb): the four papers' measures on one population of networks.

Each of chapters 1-4 tests one geometric explanation of adversarial vulnerability on
its own networks. This module trains one population of MLPs on one image dataset,
varied along the axes the papers say matter (training method: backprop, local errors,
PGD adversarial training; init scale; weight decay; width; epochs; several seeds),
measures every network through the four lenses with the same ``lib`` code the
chapters use, measures its robustness, and asks which lens predicts robustness:
rank correlations across networks with cluster-bootstrap intervals (the seeds of one
configuration are resampled together), partial correlations given clean accuracy,
and the correlations of the lenses with each other.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from scipy import stats
from tqdm.auto import tqdm

from .. import attacks, config, data, flip, manifold, models, plots, som, spectrum, stack, subspace, train
from .. import local_errors as le
from ..claims import FAILS, HOLDS, INCONCLUSIVE, Claim, by_interval, fmt
from ..config import DATASETS, Param, ParameterError
from ..monotonicity import trend
from ..stats import row_pearson, row_spearman, spearman_with_ci
from . import ch02
from .ch01 import direction_verdict, small_model_threads

METHODS = ("backprop", "local", "adversarial")
METHOD_TITLES = {"backprop": "backprop", "local": "local errors", "adversarial": "PGD adversarial training"}


def _unit_open(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


def _at_least(n):
    return lambda v: None if v >= n else f"must be >= {n}"


PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset, pixels in [0, 1]"),
    "n_train": Param(int, 0, 0, check="nonnegative", help="training images (seeded subset; 0 = all)"),
    "n_test": Param(int, 0, 0, check="nonnegative", help="test images (seeded subset; 0 = all)"),
    "widths": Param((list, int), [128, 128], [1000, 1000], check="positive",
                    help="hidden widths of the base networks (first and last hidden layer are read)"),
    "epochs": Param(int, 20, 30, check="positive", help="training epochs of the base networks"),
    "batch_size": Param(int, 64, 128, check="positive", help="mini-batch size (networks and autoencoder)"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", help="Adam learning rate"),
    "epoch_grid": Param((list, int), [5], [5], check="positive", help="condition 'epochs': shorter trainings"),
    "width_grid": Param((list, int), [256], [2000], check="positive", help="condition 'width': every hidden layer this wide"),
    "init_scales": Param((list, float), [0.5, 2.0], [0.5, 2.0], check="positive",
                         help="condition 'init': PyTorch's default initial weights times this factor"),
    "weight_decays": Param((list, float), [0.01], [0.001], check="nonnegative",
                           help="condition 'weight decay': Adam's L2 coefficient"),
    "n_seeds": Param(int, 3, 3, check=_at_least(2), help="networks (seeds) per configuration"),
    "readout_scale": Param(float, 0.3, 0.3, check="positive",
                           help="local errors: fixed readouts drawn as readout_scale * N(0, 1) (chapter 1's "
                                "default; the group's code: 0.01)"),
    "anneal_share": Param(float, 0.25, 0.25, check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
                          help="every network's last share of epochs at lr/10, all methods (chapter 1's "
                               "annealing; 0 = constant rate)"),
    "at_eps": Param(float, 0.5, 1.5, check="positive", help="L2 budget of PGD adversarial training"),
    "at_steps": Param(int, 3, 7, check="positive", help="PGD steps of adversarial training"),
    "pgd_budgets": Param((list, float), [0.5, 1.0], [1.0, 2.0], check="positive",
                         help="L2 budgets at which PGD accuracy is reported (robustness)"),
    "pgd_steps": Param(int, 10, 20, check="positive", help="steps of the robustness PGD"),
    "n_eval": Param(int, 100, 1000, check="positive",
                    help="test images on which gradients, flip norms and tangent spaces are measured"),
    "flip_eps_max": Param(float, 8.0, 20.0, check="positive", help="largest L2 budget of every flip-norm search"),
    "flip_steps": Param(int, 10, 20, check="positive", help="PGD steps per trial budget of the flip-norm search"),
    "bisection_steps": Param(int, 6, 6, check="nonnegative", help="geometric bisection rounds of the flip-norm search"),
    "alpha_window": Param((list, int), [11, 60], [11, 200], check="positive",
                          help="lens 1: rank window [first, last] of the power-law fit"),
    # lens 2 is chapter 2's learned manifold, with chapter 2's parameters and defaults
    **{name: replace(ch02.PARAMS[name], help="lens 2: " + ch02.PARAMS[name].help) for name in ch02.MANIFOLD_PARAMS},
    "som_grid": Param(int, 10, 20, check=_at_least(2), help="lens 3: a som_grid x som_grid map per layer"),
    "som_sigma": Param(float, 3.0, 6.0, check="positive", help="lens 3: initial neighbourhood radius (grid units)"),
    "som_epochs": Param(int, 20, 20, check="positive", help="lens 3: batch-SOM passes over the activations"),
    "pca_variance": Param(float, 0.9, 0.9, check=_unit_open,
                          help="lens 4: the principal subspace keeps this share of the pixel variance"),
    "n_boot": Param(int, 1000, 2000, check=_at_least(100), help="bootstrap resamples of every interval"),
}


def check(cfg: SimpleNamespace) -> None:
    """Constraints between parameters and the data's size, checked before any data are loaded."""
    lo, hi = cfg.alpha_window if len(cfg.alpha_window) == 2 else (0, 0)
    if len(cfg.alpha_window) != 2 or hi - lo < 2:
        raise ParameterError(f"parameter 'alpha_window' must be [first, last] with last >= first + 2, "
                             f"got {cfg.alpha_window}")
    narrowest = min([*cfg.widths, *cfg.width_grid])
    if hi > narrowest:
        raise ParameterError(f"parameter 'alpha_window' ends at rank {hi}, beyond the narrowest layer "
                             f"({narrowest} units)")
    n_test = config.dataset_sizes(cfg)[1]
    if hi >= n_test:
        raise ParameterError(f"parameter 'alpha_window' ends at rank {hi} but there are only "
                             f"{n_test} test images")
    ch02.check_manifold(cfg)
    if max(cfg.epoch_grid) >= cfg.epochs:
        raise ParameterError(f"parameter 'epoch_grid' must stay below 'epochs' ({cfg.epochs}), got {cfg.epoch_grid}")
    if max(cfg.pgd_budgets) > cfg.flip_eps_max:
        raise ParameterError(f"parameter 'flip_eps_max' ({cfg.flip_eps_max}) must be >= the largest of "
                             f"'pgd_budgets' ({max(cfg.pgd_budgets)})")
    if 1.0 in cfg.init_scales:
        raise ParameterError("parameter 'init_scales' lists 1.0, which is the base networks' scale")


config.register(PARAMS, check, min_per_class=10, within={"n_eval": "test"})  # resolve and lib.sweep run it first


def load_data(cfg: SimpleNamespace) -> data.Dataset:
    """The chapter's dataset (pixels in [0, 1])."""
    return data.load(cfg.dataset, device=cfg.device, seed=cfg.seed, n_train=cfg.n_train or None,
                     n_test=cfg.n_test or None)


# ---------------------------------------------------------------- the population

@dataclass(frozen=True)
class Network:
    """One member of the population: training method, configuration and seed."""

    method: str
    condition: str
    widths: tuple[int, ...]
    epochs: int
    init_scale: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0

    @property
    def configuration(self) -> str:
        """Method and condition: the cluster whose seeds a bootstrap keeps together."""
        return f"{self.method} / {self.condition}"


def population(cfg: SimpleNamespace) -> list[Network]:
    """Every method x (base and each condition) x seed; the same seeds in every configuration."""
    w, e = tuple(cfg.widths), cfg.epochs
    base = [("base", w, e, 1.0, 0.0)]
    base += [(f"{n} epochs", w, n, 1.0, 0.0) for n in cfg.epoch_grid]
    base += [(f"width {n}", (n,) * len(w), e, 1.0, 0.0) for n in cfg.width_grid]
    base += [(f"init x{s:g}", w, e, s, 0.0) for s in cfg.init_scales]
    base += [(f"weight decay {d:g}", w, e, 1.0, d) for d in cfg.weight_decays]
    return [Network(m, c, ws, ep, s, d, 1000 * cfg.seed + k)
            for m in METHODS for (c, ws, ep, s, d) in base for k in range(cfg.n_seeds)]


def build(cfg: SimpleNamespace, ds: data.Dataset, spec: Network) -> models.MLP:
    """A fresh MLP (with fixed random readouts for local errors), trainable weights scaled by ``init_scale``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if spec.method == "local":
            net = le.LocalErrorMLP(ds.n_features, spec.widths, ds.n_classes, readout_scale=cfg.readout_scale,
                                   generator=config.generator(spec.seed + 1))
        else:
            net = models.MLP(ds.n_features, spec.widths, ds.n_classes)
    with torch.no_grad():
        for p in net.parameters():  # the local readouts are buffers: they keep their scale
            p.mul_(spec.init_scale)
    return net.to(cfg.device)


def _training(cfg: SimpleNamespace, ds: data.Dataset, spec: Network, generator: torch.Generator) -> dict:
    """The loss and batch transform of ``spec``'s training method; PGD starts drawn from ``generator``."""
    if spec.method == "local":
        return {"loss": "local"}
    if spec.method == "adversarial":
        return {"transform": attacks.pgd_training(cfg.at_eps, norm="l2", steps=cfg.at_steps, generator=generator,
                                                  clamp=ds.value_range)}
    return {}


def train_network(cfg: SimpleNamespace, ds: data.Dataset, spec: Network) -> models.MLP:
    """Train one network with Adam: end to end, by local errors, or on L2 PGD examples (Madry et al.);
    the last ``anneal_share`` of its epochs at lr/10, as chapter 1 trains (a stack of one)."""
    return train_configuration(cfg, ds, [spec])[0]


def train_configuration(cfg: SimpleNamespace, ds: data.Dataset, specs: list[Network]) -> list[models.MLP]:
    """Train the seeds of one configuration together, as one :class:`lib.stack.StackedMLP`.

    Each network keeps its own initial weights, readouts and batch order (from its seed),
    exactly as if trained alone; for adversarial training the PGD random starts of each
    stacked batch are one draw, from the first seed's generator.
    """
    kinds = {(s.method, s.widths, s.epochs, s.init_scale, s.weight_decay) for s in specs}
    if len(kinds) != 1:
        raise ValueError("train_configuration trains the seeds of one configuration: the specs differ in "
                         "more than their seed")
    first = specs[0]
    st = stack.StackedMLP([build(cfg, ds, s) for s in specs])
    stack.fit_annealed(st, ds.x_train, ds.y_train, epochs=first.epochs,
                       anneal_epochs=anneal_epochs(cfg, first.epochs), batch_size=cfg.batch_size, lr=cfg.lr,
                       weight_decay=first.weight_decay, generators=[config.generator(s.seed + 2) for s in specs],
                       desc=first.configuration, **_training(cfg, ds, first, config.generator(first.seed + 3)))
    return st.unstack()


def anneal_epochs(cfg: SimpleNamespace, epochs: int) -> int:
    """The last epochs of an ``epochs``-long training run at lr/10: ``anneal_share`` of them, rounded."""
    return min(round(cfg.anneal_share * epochs), epochs - 1)


# ---------------------------------------------------------------- what every network is measured against

@dataclass
class Probe:
    """The measurement set and the subspaces every network is measured against (shared by all)."""

    x: torch.Tensor  # (n_eval, n) test images
    tangent: torch.Tensor  # (n_eval, n, latent_dim): the autoencoder manifold's tangent spaces
    random: torch.Tensor  # (n_eval, n, latent_dim): random subspaces of the same dimension
    pca: torch.Tensor  # (n, k): the principal subspace of the training images
    pca_k: int
    pca_share: float
    ae_explained: float  # share of the test pixels' variance the autoencoder reconstructs
    ae_mse: float


def make_probe(cfg: SimpleNamespace, ds: data.Dataset) -> Probe:
    """Train the autoencoder (chapter 2's manifold), take its tangent spaces and the PCA subspace (chapter 4)."""
    ae = ch02.make_autoencoder(cfg, ds.image_shape)
    hist = manifold.fit_autoencoder(ae, ds.x_train, epochs=cfg.ae_epochs, batch_size=cfg.batch_size, lr=cfg.ae_lr,
                                    generator=config.generator(cfg.seed + 7), x_val=ds.x_test, progress=False)
    idx = torch.randperm(len(ds.x_test), generator=config.generator(cfg.seed + 8))[:cfg.n_eval]
    x = ds.x_test[idx.sort().values.to(ds.x_test.device)]
    basis, k, share = subspace.principal_subspace(ds.x_train, cfg.pca_variance)
    rand = manifold.random_bases(len(x), ds.n_features, cfg.latent_dim, generator=config.generator(cfg.seed + 9),
                                 device=cfg.device)
    return Probe(x, manifold.autoencoder_bases(ae, x), rand, basis, k, share,
                 float(hist.val_explained.iloc[-1]), float(hist.val_mse.iloc[-1]))


# ---------------------------------------------------------------- the four lenses and robustness

# name: (chapter, label, sign of the correlation with robustness the paper's explanation predicts; 0 = none)
LENSES: dict[str, tuple[int, str, int]] = {
    "alpha": (1, "power-law exponent α (last hidden layer)", +1),
    "participation_ratio": (1, "participation ratio (last hidden layer)", 0),
    "tangent_share": (2, "on-manifold share of the boundary normal (relative to a random subspace)", +1),
    "on_off_ratio": (2, "ratio of the flip norms on / off the manifold", -1),
    "homogeneity_shallow": (3, "SOM code homogeneity, first hidden layer", -1),
    "homogeneity_deep": (3, "SOM code homogeneity, last hidden layer", 0),
    "perp_share": (4, "share of the boundary normal off the PCA subspace (relative to random)", -1),
    "perp_par_ratio": (4, "ratio of the flip norms off / within the PCA subspace", +1),
}
ROBUSTNESS = "flip_norm"
ROBUSTNESS_LABEL = "median smallest flipping L2 norm"
PAPERS = {1: "Jiang et al. (chapter 1)", 2: "Shamir et al. (chapter 2)", 3: "Lee & Vijayan (chapter 3)",
          4: "Melamed et al. (chapter 4)"}


def spectra(cfg: SimpleNamespace, net: models.MLP, x: torch.Tensor) -> dict[str, float]:
    """Lens 1: alpha and participation ratio of every hidden layer on ``x`` (lib.spectrum, as chapter 1)."""
    out = {}
    for depth, h in enumerate(le.hidden_features(net, x), start=1):
        try:
            s = spectrum.analyse(h, tuple(cfg.alpha_window))
        except spectrum.SpectrumError as exc:
            raise ParameterError(f"parameter 'alpha_window' does not fit hidden layer {depth}: {exc}") from exc
        out[f"alpha_{depth}"], out[f"pr_{depth}"] = s.fit.alpha, s.participation_ratio
    out["alpha"], out["participation_ratio"] = out[f"alpha_{depth}"], out[f"pr_{depth}"]
    return out


def homogeneity(cfg: SimpleNamespace, h_train: torch.Tensor, h_test: torch.Tensor, ds: data.Dataset) -> float:
    """Lens 3: mean homogeneity of the test codes of one layer's SOM (chapter 3's map and measure)."""
    m = som.fit(h_train, cfg.som_grid, cfg.som_grid, epochs=cfg.som_epochs, sigma=cfg.som_sigma,
                learning_rate=1.0, lr_decay="constant", init="pca")
    return float(np.nanmean(som.test_homogeneity(m.codes(h_train), ds.y_train, m.codes(h_test), ds.y_test,
                                                 m.n_units, ds.n_classes)))


def median_norm(norms: torch.Tensor, cap: float) -> float:
    """Median flip norm, inputs never flipped counted at the search's cap (they rank as the largest).

    Their norms exceed the cap, and every found norm is within it, so the ranks are right:
    the median is exact while fewer than half the inputs went unflipped, a lower bound otherwise."""
    return float(norms.clamp(max=cap).median())


def measure(cfg: SimpleNamespace, ds: data.Dataset, probe: Probe, net: models.MLP, spec: Network) -> dict:
    """Every lens and the robustness of one trained network (one row of the population table)."""
    row = {"method": spec.method, "condition": spec.condition, "configuration": spec.configuration,
           "seed": spec.seed, "clean_accuracy": train.accuracy(net, ds.x_test, ds.y_test)}
    pgd = attacks.accuracy_under(net, attacks.pgd, ds.x_test, ds.y_test, cfg.pgd_budgets, norm="l2",
                                 steps=cfg.pgd_steps, clamp=ds.value_range, generator=config.generator(spec.seed + 4))
    row.update({f"pgd_{b:g}": a for b, a in zip(cfg.pgd_budgets, pgd)})
    row.update(spectra(cfg, net, ds.x_test))
    x, cap = probe.x, cfg.flip_eps_max
    pred = train.predict(net, x).argmax(1)
    search = dict(eps_max=cap, steps=cfg.flip_steps, bisection_steps=cfg.bisection_steps)
    restrictions = {"full": (None, "on"), "on": (probe.tangent, "on"), "off": (probe.tangent, "off"),
                    "par": (probe.pca, "on"), "perp": (probe.pca, "off")}
    norm = {k: r.norm for k, r in flip.min_flip_norms(net, x, pred, restrictions, **search).items()}
    med = {k: median_norm(v, cap) for k, v in norm.items()}
    normal = manifold.boundary_normal(net, x)
    par, perp = subspace.norms(normal.flatten(1), probe.pca)
    d, k = ds.n_features, probe.pca_k
    row.update({
        "flip_norm": med["full"], "flipped_share": float(torch.isfinite(norm["full"]).float().mean()),
        "tangent_share": manifold.rms(manifold.on_fraction(normal, probe.tangent))
        / manifold.rms(manifold.on_fraction(normal, probe.random)),
        "on_off_ratio": med["on"] / med["off"],
        "perp_share": manifold.rms(perp / normal.flatten(1).norm(dim=1)) / math.sqrt((d - k) / d),
        "perp_par_ratio": med["perp"] / med["par"],
        **{f"flip_{k}": v for k, v in med.items() if k != "full"},
    })
    feats_train, feats_test = le.hidden_features(net, ds.x_train), le.hidden_features(net, ds.x_test)
    row["homogeneity_shallow"] = homogeneity(cfg, feats_train[0], feats_test[0], ds)
    row["homogeneity_deep"] = homogeneity(cfg, feats_train[-1], feats_test[-1], ds)
    return row


def run_population(cfg: SimpleNamespace, ds: data.Dataset, probe: Probe) -> pd.DataFrame:
    """Train and measure every network of :func:`population`; one row per network."""
    rows = []
    specs = population(cfg)
    groups = [specs[i:i + cfg.n_seeds] for i in range(0, len(specs), cfg.n_seeds)]  # one configuration each
    with small_model_threads(cfg.device), tqdm(total=len(specs), desc="networks", leave=False) as bar:
        for group in groups:
            for spec, net in zip(group, train_configuration(cfg, ds, group)):
                rows.append(measure(cfg, ds, probe, net, spec))
                bar.update()
    return pd.DataFrame(rows)


def configurations(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of accuracy, robustness and every lens, one row per configuration."""
    cols = ["clean_accuracy", *[c for c in table if c.startswith("pgd_")], ROBUSTNESS, *LENSES]
    return table.groupby(["method", "condition"], sort=False)[cols].mean()


# ---------------------------------------------------------------- statistics over networks

def cluster_resamples(clusters, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap index matrix ``(n_boot, N)``: whole clusters (configurations, all their seeds) drawn with replacement."""
    labels = pd.Series(np.asarray(clusters))
    groups = [np.asarray(g) for g in labels.groupby(labels, sort=False).indices.values()]
    if len({len(g) for g in groups}) != 1:
        raise ValueError("every configuration must hold the same number of networks")
    members = np.stack(groups)  # (G, m)
    pick = rng.integers(0, len(members), size=(n_boot, len(members)))
    return members[pick].reshape(n_boot, -1)


def _centred_ranks(v: np.ndarray) -> np.ndarray:
    r = stats.rankdata(v, axis=-1)
    return r - r.mean(axis=-1, keepdims=True)


def within_spearman_with_ci(a, b, strata, clusters, n_boot: int,
                            rng: np.random.Generator) -> tuple[float, float, float]:
    """Spearman's rho within strata (methods): ranks taken inside each stratum, centred, pooled.

    The interval resamples whole clusters (configurations) inside each stratum, so every
    stratum keeps its size; a lens that only separates one method from the others scores 0.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    strata, clusters = np.asarray(strata), np.asarray(clusters)
    full_a, full_b, boot_a, boot_b = [], [], [], []
    for s in dict.fromkeys(strata):
        members = np.flatnonzero(strata == s)
        idx = members[cluster_resamples(clusters[members], n_boot, rng)]
        full_a.append(_centred_ranks(a[members]))
        full_b.append(_centred_ranks(b[members]))
        boot_a.append(_centred_ranks(a[idx]))
        boot_b.append(_centred_ranks(b[idx]))
    full = float(row_pearson(np.concatenate(full_a), np.concatenate(full_b)))
    boots = row_pearson(np.concatenate(boot_a, axis=1), np.concatenate(boot_b, axis=1))
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, float(lo), float(hi)


def correlations(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Per lens and robustness measure: Spearman rho, partial rho given clean accuracy, rho within
    training methods, each with a 95% cluster-bootstrap interval."""
    rng = np.random.default_rng(cfg.seed)
    idx = cluster_resamples(table.configuration, cfg.n_boot, rng)
    targets = {ROBUSTNESS: ROBUSTNESS_LABEL, **{f"pgd_{b:g}": f"PGD accuracy, L2 budget {b:g}"
                                                for b in cfg.pgd_budgets}}
    rows = []
    for lens, (chapter, label, sign) in {**LENSES, "clean_accuracy": (0, "clean accuracy (the control)", 0)}.items():
        for target, tlabel in targets.items():
            r = spearman_with_ci(table[lens], table[target], idx)
            p = (spearman_with_ci(table[lens], table[target], idx, control=table.clean_accuracy)
                 if lens != "clean_accuracy" else (math.nan,) * 3)
            w = within_spearman_with_ci(table[lens], table[target], table.method, table.configuration,
                                        cfg.n_boot, rng)
            rows.append({"lens": lens, "chapter": chapter, "measure": label, "robustness": tlabel,
                         "predicted sign": {1: "+", -1: "-", 0: "none"}[sign], "rho": r[0], "lo": r[1], "hi": r[2],
                         "partial rho": p[0], "partial lo": p[1], "partial hi": p[2],
                         "within rho": w[0], "within lo": w[1], "within hi": w[2]})
    return pd.DataFrame(rows)


def lens_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlations across networks between the lenses, robustness and clean accuracy."""
    return table[[*LENSES, ROBUSTNESS, "clean_accuracy"]].corr(method="spearman")


def abs_rho_difference(cfg: SimpleNamespace, table: pd.DataFrame, lens: str, other: str = "alpha"):
    """``|rho(lens, robustness)| - |rho(other, robustness)|`` with a paired cluster-bootstrap interval."""
    idx = cluster_resamples(table.configuration, cfg.n_boot, np.random.default_rng(cfg.seed + 1))
    y = table[ROBUSTNESS].to_numpy(float)
    a, b = (table[c].to_numpy(float) for c in (lens, other))
    full = abs(float(row_spearman(a, y, None))) - abs(float(row_spearman(b, y, None)))
    boots = np.abs(row_spearman(a[idx], y[idx], None)) - np.abs(row_spearman(b[idx], y[idx], None))
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return full, (float(lo), float(hi))


def training_shift(cfg: SimpleNamespace, table: pd.DataFrame, method: str = "adversarial",
                   reference: str = "backprop") -> pd.DataFrame:
    """Per lens (and robustness): mean change from ``reference`` to ``method`` networks of the same
    condition and seed, with a cluster-bootstrap interval over conditions (seeds together)."""
    keys = ["condition", "seed"]
    a = table[table.method == method].set_index(keys)
    b = table[table.method == reference].set_index(keys).loc[a.index]
    conds = a.index.get_level_values("condition")
    idx = cluster_resamples(conds, cfg.n_boot, np.random.default_rng(cfg.seed + 2))
    rows = []
    for col in (ROBUSTNESS, *LENSES):
        diff = a[col].to_numpy(float) - b[col].to_numpy(float)
        boots = diff[idx].mean(1)
        sign = LENSES[col][2] if col in LENSES else +1
        rows.append({"measure": col, "predicted direction": {1: "up", -1: "down", 0: "none"}[sign],
                     "mean change": float(diff.mean()), "lo": float(np.quantile(boots, 0.025)),
                     "hi": float(np.quantile(boots, 0.975))})
    return pd.DataFrame(rows).set_index("measure")


# ---------------------------------------------------------------- claims

def _row(corr: pd.DataFrame, lens: str) -> pd.Series:
    return corr[(corr.lens == lens) & (corr.robustness == ROBUSTNESS_LABEL)].iloc[0]


def claims(cfg: SimpleNamespace, table: pd.DataFrame, corr: pd.DataFrame, shift: pd.DataFrame) -> list[Claim]:
    """The book's own claims about the four lenses, every verdict computed from this run."""
    out = []
    adv = shift.loc[ROBUSTNESS]
    out.append(Claim("[book] PGD adversarial training makes networks more robust (the population spans robustness)",
                     f"mean change of the {ROBUSTNESS_LABEL}, adversarial minus backprop (same condition and seed)",
                     fmt(adv["mean change"], (adv.lo, adv.hi)), by_interval(adv.lo, adv.hi, 0.0),
                     id="ch05.at_robust", estimate=adv["mean change"], lo=adv.lo, hi=adv.hi))
    for lens, (chapter, label, sign) in LENSES.items():
        if sign == 0:
            continue
        r = _row(corr, lens)
        word = "more" if sign > 0 else "less"
        out.append(Claim(
            f"[book] Networks with a larger {label} are {word} robust ({PAPERS[chapter]})",
            f"Spearman rho with the {ROBUSTNESS_LABEL}, over networks (cluster bootstrap)",
            fmt(r.rho, (r.lo, r.hi)), by_interval(r.lo, r.hi, 0.0, above=sign > 0),
            id=f"ch05.{lens}_predicts", estimate=r.rho, lo=r.lo, hi=r.hi))
        out.append(Claim(
            f"[book] ... also at equal clean accuracy",
            "the same rho, partial on clean accuracy", fmt(r["partial rho"], (r["partial lo"], r["partial hi"])),
            by_interval(r["partial lo"], r["partial hi"], 0.0, above=sign > 0),
            id=f"ch05.{lens}_beyond_accuracy", estimate=r["partial rho"], lo=r["partial lo"], hi=r["partial hi"]))
        out.append(Claim(
            f"[book] ... also within each training method",
            "Spearman rho with ranks taken within each method (stratified cluster bootstrap)",
            fmt(r["within rho"], (r["within lo"], r["within hi"])),
            by_interval(r["within lo"], r["within hi"], 0.0, above=sign > 0),
            id=f"ch05.{lens}_within_methods", estimate=r["within rho"], lo=r["within lo"], hi=r["within hi"]))
    t = trend(table.alpha, table[ROBUSTNESS], n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
    out.append(Claim("[book] Robustness is a non-monotonic function of alpha (as chapter 1's paper finds for FGSM)",
                     "shape of the flip norm vs alpha: Spearman + two-lines test (chapter 1's test)",
                     f"{t.shape}; rho {fmt(t.spearman, t.spearman_ci, 2)}", direction_verdict(t, "non-monotonic"),
                     id="ch05.alpha_nonmonotonic", estimate=t.spearman, lo=t.spearman_ci[0], hi=t.spearman_ci[1]))
    for lens in ("tangent_share", "perp_share"):
        d, ci = abs_rho_difference(cfg, table, lens)
        out.append(Claim(f"[book] The {LENSES[lens][1]} predicts robustness better than alpha",
                         "|rho| of the share minus |rho| of alpha (paired cluster bootstrap)",
                         fmt(d, ci), by_interval(*ci, 0.0), id=f"ch05.{lens}_beats_alpha",
                         estimate=d, lo=ci[0], hi=ci[1]))
    directed = [(c, LENSES[c][2]) for c in LENSES if LENSES[c][2] != 0]
    verdicts = [by_interval(shift.loc[c].lo, shift.loc[c].hi, 0.0, above=s > 0) for c, s in directed]
    n_ok, n_bad = verdicts.count(HOLDS), verdicts.count(FAILS)
    overall = HOLDS if n_ok == len(verdicts) else FAILS if n_bad else INCONCLUSIVE
    out.append(Claim("[book] Adversarial training moves every lens in the direction its paper predicts",
                     "lenses whose change (adversarial minus backprop) has its interval on the predicted side",
                     f"{n_ok} of {len(verdicts)} (opposite side: {n_bad})", overall, id="ch05.at_moves_all",
                     estimate=n_ok / len(verdicts)))
    return out


READING = {HOLDS: "supports", FAILS: "weakens", INCONCLUSIVE: "neither supports nor weakens"}
HOLD_WORD = {HOLDS: "holds", FAILS: "is reversed", INCONCLUSIVE: "is not resolved"}


def findings(table: pd.DataFrame, corr: pd.DataFrame, matrix: pd.DataFrame, shift: pd.DataFrame,
             rows: list[Claim]) -> str:
    """The run's reading in sentences built from its numbers: which paper's explanation each result supports."""
    verdict = {c.id: c.verdict for c in rows}
    lines = []
    for chapter, paper in PAPERS.items():
        parts = []
        for lens, (ch, label, sign) in LENSES.items():
            if ch != chapter or sign == 0:
                continue
            r = _row(corr, lens)
            v = verdict[f"ch05.{lens}_predicts"]
            parts.append(
                f"the {label} has rho = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] with robustness (predicted sign "
                f"{'+' if sign > 0 else '-'}), which {READING[v]} the explanation; at equal clean accuracy the link "
                f"{HOLD_WORD[verdict[f'ch05.{lens}_beyond_accuracy']]} (partial rho {r['partial rho']:+.2f}), "
                f"within training methods it {HOLD_WORD[verdict[f'ch05.{lens}_within_methods']]} "
                f"(rho {r['within rho']:+.2f})")
        lines.append(f"- **{paper}:** " + "; ".join(parts) + ".")
    t = next(c for c in rows if c.id == "ch05.alpha_nonmonotonic")
    shape = {HOLDS: "is borne out", FAILS: "is not borne out (the relation is monotonic)",
             INCONCLUSIVE: "is not decided"}[t.verdict]
    lines.append(f"- **Alpha's shape.** Robustness against alpha: {t.value.split(';')[0]} by chapter 1's test; the "
                 f"non-monotonic reading of chapter 1's paper {shape} on these networks.")
    main = corr[(corr.robustness == ROBUSTNESS_LABEL) & (corr.lens != "clean_accuracy")]
    best, inside = main.loc[main.rho.abs().idxmax()], main.loc[main["within rho"].abs().idxmax()]
    acc = _row(corr, "clean_accuracy")
    lines.append(f"- **Strongest lens** across all networks: the {best.measure} (rho {best.rho:+.2f}); within "
                 f"training methods: the {inside.measure} (rho {inside['within rho']:+.2f}). Clean accuracy alone "
                 f"has rho {acc.rho:+.2f} with robustness ({acc['within rho']:+.2f} within methods).")
    chap = {k: v[0] for k, v in LENSES.items()}
    pairs = [(a, b, matrix.loc[a, b]) for i, a in enumerate(LENSES) for b in list(LENSES)[i + 1:] if chap[a] != chap[b]]
    hi_pair, lo_pair = max(pairs, key=lambda p: abs(p[2])), min(pairs, key=lambda p: abs(p[2]))
    lines.append(f"- **Do the lenses see the same thing?** Across papers the most related pair is the "
                 f"{LENSES[hi_pair[0]][1]} and the {LENSES[hi_pair[1]][1]} (rho {hi_pair[2]:+.2f}), the least "
                 f"related the {LENSES[lo_pair[0]][1]} and the {LENSES[lo_pair[1]][1]} (rho {lo_pair[2]:+.2f}).")
    moved = [f"{SHORT[c]} {'up' if shift.loc[c, 'mean change'] > 0 else 'down'}" for c in LENSES]
    lines.append(f"- **Adversarial training** (mean change over matched networks): {', '.join(moved)}; "
                 f"{'every' if verdict['ch05.at_moves_all'] == HOLDS else 'not every'} lens moves significantly "
                 f"in its paper's direction.")
    return "\n".join(lines)


def accuracy_note(table: pd.DataFrame) -> str:
    """Clean accuracy of each method's base networks against backprop's, in one sentence."""
    base = table[table.condition == "base"].groupby("method").clean_accuracy.mean()
    others = ", ".join(f"{METHOD_TITLES[m]} {base[m]:.3f} ({base[m] - base['backprop']:+.3f})"
                       for m in METHODS if m != "backprop")
    return (f"Base networks, mean clean test accuracy over seeds: backprop {base['backprop']:.3f}; {others}; "
            f"weakest configuration: {table.groupby('configuration').clean_accuracy.mean().idxmin()} "
            f"({table.groupby('configuration').clean_accuracy.mean().min():.3f}).")


def scalars(table: pd.DataFrame, probe: Probe, corr: pd.DataFrame) -> dict:
    """Key numbers of the run, named for ``lib.results.record``."""
    out = {"networks": len(table), "pca_k": probe.pca_k, "pca_share": probe.pca_share,
           "ae_explained": probe.ae_explained}
    out.update({f"clean_accuracy_{m}": float(table[table.method == m].clean_accuracy.mean()) for m in METHODS})
    out.update({f"rho_{r.lens}": r.rho for r in corr[corr.robustness == ROBUSTNESS_LABEL].itertuples()})
    return out


# ---------------------------------------------------------------- figures

LOG_LENSES = ("on_off_ratio", "perp_par_ratio")


def plot_lenses(table: pd.DataFrame, corr: pd.DataFrame):
    """One panel per lens: the lens against robustness, one point per network, coloured by training method."""
    fig, axes = plots.subplots(2, 4, width=3.3, height=3.0, sharey=True)
    colours = dict(zip(METHODS, sns.color_palette(plots.PALETTE, len(METHODS))))
    for ax, (lens, (chapter, label, sign)) in zip(axes.flat, LENSES.items()):
        for m in METHODS:
            part = table[table.method == m]
            ax.scatter(part[lens], part[ROBUSTNESS], s=16, alpha=0.8, color=colours[m], label=METHOD_TITLES[m])
        r = _row(corr, lens)
        pred = {1: "+", -1: "-", 0: "no"}[sign]
        ax.set_title(f"ch. {chapter}: $\\rho$ = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}]\n"
                     f"within methods {r['within rho']:+.2f} (predicted: {pred} sign)", fontsize=9)
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


SHORT = {"alpha": "alpha (1)", "participation_ratio": "PR (1)", "tangent_share": "on-manifold share (2)",
         "on_off_ratio": "on/off flip (2)", "homogeneity_shallow": "homog. shallow (3)",
         "homogeneity_deep": "homog. deep (3)", "perp_share": "off-PCA share (4)", "perp_par_ratio": "off/in flip (4)",
         ROBUSTNESS: "flip norm", "clean_accuracy": "clean accuracy"}


def plot_matrix(matrix: pd.DataFrame):
    """Heat map of the Spearman correlations between lenses (chapter in brackets), robustness and accuracy."""
    fig, axes = plots.subplots(1, 1, width=7.0, height=5.8)
    m = matrix.rename(index=SHORT, columns=SHORT)
    sns.heatmap(m, vmin=-1, vmax=1, cmap="RdBu_r", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                square=True, cbar_kws={"label": "Spearman $\\rho$ across networks"}, ax=axes[0, 0])
    axes[0, 0].set(title="Do the lenses measure the same thing?", xlabel="measure (chapter)",
                   ylabel="measure (chapter)")
    return fig
