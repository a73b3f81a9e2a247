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

from .. import attacks, claims, config, data, intrinsic_dim, models, plots, spectrum, stats, train
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
    "epoch_grid": Param((list, float), [0.05, 1, 2, 5, 10], [0.05, 1, 2, 5, 10], check="nonnegative",
                        help="condition 'epochs': snapshots of the base networks after this many epochs "
                             "(fractions allowed; 0 = the initialisation)"),
    "width_grid": Param((list, int), [128, 384], [500, 2000], check="positive",
                        help="condition 'width': every hidden layer this wide"),
    "weight_decays": Param((list, float), [1e-3, 1e-2], [1e-4, 1e-3], check="nonnegative",
                           help="condition 'regularisation': Adam L2 weight decay"),
    "batch_size": Param(int, 64, 64, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate"),
    "readout_scale": Param(float, 0.3, 0.3, check="positive",
                           help="fixed local readouts drawn as readout_scale * N(0, 1) (the group's code: 0.01)"),
    "anneal_epochs": Param(int, 5, 8, check="nonnegative",
                           help="last epochs at lr/10, both methods (the group's code: 0, constant lr)"),
    "logistic_l2": Param((list, float), [1e-3, 1e-2, 1e-1], [1e-3, 1e-2, 1e-1], check="positive",
                         help="L2 penalties tried (on held-out training data) by the logistic-regression baselines"),
    "readout_epochs": Param(int, 10, 5, check="positive",
                            help="epochs of the logistic-regression readouts of backprop layers"),
    "epsilons": Param((list, float), [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
                      [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], check="nonnegative",
                      help="attack strengths: FGSM step and noise std are 2*eps on [-1, 1] inputs"),
    "alpha_window": Param((list, int), [11, 60], [11, 200], check="positive",
                          help="rank window [first, last] of the power-law fit (1-based, inclusive)"),
    "gap_tolerance": Param(float, 0.02, 0.02, check="unit",
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
    if cfg.anneal_epochs >= cfg.epochs:
        raise ParameterError(f"parameter 'anneal_epochs' must stay below 'epochs' ({cfg.epochs}), got {cfg.anneal_epochs}")
    if max(cfg.epoch_grid) >= cfg.epochs - cfg.anneal_epochs:
        raise ParameterError(f"parameter 'epoch_grid' must stay below 'epochs' - 'anneal_epochs' "
                             f"({cfg.epochs - cfg.anneal_epochs}: snapshots precede the annealing), got {cfg.epoch_grid}")
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
    epochs: float
    weight_decay: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "epochs":
            return f"{self.epochs:g} epochs"
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
    train_accuracy: float
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


def snapshot_steps(cfg: SimpleNamespace, ds: data.Dataset) -> dict[float, int]:
    """Optimizer steps after which the base training is snapshotted, per entry of ``epoch_grid``."""
    per_epoch = -(-len(ds.x_train) // cfg.batch_size)
    return {e: int(round(e * per_epoch)) for e in cfg.epoch_grid}


def with_readouts(cfg: SimpleNamespace, ds: data.Dataset, cond: Condition, net: models.MLP) -> Trained:
    """Attach a readout to every hidden layer: the fixed ``B_l`` (local) or a fitted logistic regression (backprop)."""
    if cond.method == "local":
        readouts = net.readouts
    else:
        readouts = le.fit_linear_readouts(net, ds.x_train, ds.y_train, ds.n_classes, epochs=cfg.readout_epochs,
                                          lr=cfg.lr, batch_size=cfg.batch_size,
                                          generator=config.generator(cfg.seed + 3))
    t = Trained(cond, net, readouts, train.accuracy(net, ds.x_train, ds.y_train),
                train.accuracy(net, ds.x_test, ds.y_test))
    t.layers = [le.LayerReadout(net, i + 1, r) for i, r in enumerate(readouts)]
    return t


def train_condition(cfg: SimpleNamespace, ds: data.Dataset, cond: Condition,
                    snapshots: le.Snapshots | None = None) -> Trained:
    """Train one network (local errors or backprop; last ``anneal_epochs`` at lr/10) and read out its layers.

    The batch order is the same for every condition, so a snapshot of the base run
    after ``e`` epochs is exactly a training of ``e`` epochs at the constant rate.
    """
    net = build(cfg, ds, cond.method, cond.widths)
    loss_fn = le.local_loss if cond.method == "local" else train.cross_entropy
    le.fit_annealed(net, ds.x_train, ds.y_train, epochs=int(cond.epochs), anneal_epochs=cfg.anneal_epochs,
                    batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cond.weight_decay, loss_fn=loss_fn,
                    transform=snapshots, generator=config.generator(cfg.seed + 2), progress=False)
    return with_readouts(cfg, ds, cond, net)


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
                          "top-classifier training accuracy": r.train_accuracy,
                          "top-classifier test accuracy": r.top_accuracy} for r in runs])


def train_all(cfg: SimpleNamespace, ds: data.Dataset) -> list[Trained]:
    """Every condition of :func:`conditions`: the 'epochs' ones are snapshots of the base run, the rest trained."""
    steps = snapshot_steps(cfg, ds)
    out = []
    with small_model_threads(cfg.device):
        for m in tqdm(METHODS, desc="methods", leave=False):
            conds = [c for c in conditions(cfg) if c.method == m]
            snaps = le.Snapshots({c.label: steps[c.epochs] for c in conds if c.kind == "epochs"})
            base = train_condition(cfg, ds, conds[0], snaps)
            for c in tqdm(conds, desc=f"{m} conditions", leave=False):
                if c.kind == "base":
                    out.append(base)
                elif c.kind == "epochs":
                    out.append(with_readouts(cfg, ds, c, snaps.restore(base.net, c.label)))
                else:
                    out.append(train_condition(cfg, ds, c))
    return out


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


def correct(model, ds: data.Dataset) -> np.ndarray:
    """1 where ``model`` classifies a test point correctly, else 0."""
    return (train.predict(model, ds.x_test).argmax(1) == ds.y_test).float().cpu().numpy()


def paired(cfg: SimpleNamespace, a: np.ndarray, b: np.ndarray, offset: int) -> tuple[float, tuple[float, float]]:
    """Accuracy of ``a`` minus that of ``b`` on the same test points, with a paired bootstrap CI."""
    diff = a - b
    return float(diff.mean()), stats.bootstrap_ci(diff, n_boot=cfg.n_boot, rng=cfg.seed + offset)


@dataclass
class Fidelity:
    """Is each network as good as its kind? Test accuracies of the base networks and the linear baselines."""

    logistic: float
    logistic_l2: float
    local_top: float
    backprop_top: float
    backprop_refit: list[float]
    local_refit: list[float]
    local_minus_logistic: tuple[float, tuple[float, float]]
    backprop_minus_local: tuple[float, tuple[float, float]]

    @property
    def refit_gap(self) -> float:
        """Best refitted readout of the backprop layers minus the backprop head."""
        return max(self.backprop_refit) - self.backprop_top


def fidelity(cfg: SimpleNamespace, ds: data.Dataset, runs: list[Trained]) -> Fidelity:
    """Raw-pixel logistic regression, the base networks' top classifiers and logistic readouts refitted on their layers."""
    base = {r.cond.method: r for r in runs if r.cond.kind == "base"}
    lin, l2 = le.tuned_logistic(ds.x_train, ds.y_train, ds.n_classes, l2_grid=cfg.logistic_l2,
                                generator=config.generator(cfg.seed + 6))
    refit = {}
    for m in METHODS:
        feats = le.hidden_features(base[m].net, ds.x_train)
        fits = [le.tuned_logistic(h, ds.y_train, ds.n_classes, l2_grid=cfg.logistic_l2,
                                  generator=config.generator(cfg.seed + 7 + i))[0] for i, h in enumerate(feats)]
        refit[m] = [train.accuracy(le.LayerReadout(base[m].net, i + 1, f), ds.x_test, ds.y_test)
                    for i, f in enumerate(fits)]
    c_lin, c_loc, c_bp = correct(lin, ds), correct(base["local"].net, ds), correct(base["backprop"].net, ds)
    return Fidelity(float(c_lin.mean()), l2, base["local"].top_accuracy, base["backprop"].top_accuracy,
                    refit["backprop"], refit["local"], paired(cfg, c_loc, c_lin, 7), paired(cfg, c_bp, c_loc, 8))


def fidelity_table(cfg: SimpleNamespace, fid: Fidelity) -> pd.DataFrame:
    """The checks a working reproduction must pass before its geometry is read, each computed."""
    f = claims.fmt
    lm, lm_ci = fid.local_minus_logistic
    bl, bl_ci = fid.backprop_minus_local
    rows = [
        ("local-error top classifier beats a raw-pixel logistic regression (95% CI above 0)",
         f"{fid.local_top:.3f} vs {fid.logistic:.3f} (l2 {fid.logistic_l2:g}); difference {f(lm, lm_ci)}", lm_ci[0] > 0),
        (f"local-error top classifier within {cfg.gap_tolerance:g} of backprop",
         f"{fid.local_top:.3f} vs {fid.backprop_top:.3f}; backprop minus local {f(bl, bl_ci)}", bl <= cfg.gap_tolerance),
        ("backprop head within 0.01 of the best logistic readout refitted on its layers",
         f"head {fid.backprop_top:.3f}; refitted layers " + ", ".join(f"{a:.3f}" for a in fid.backprop_refit),
         fid.refit_gap <= 0.01),
    ]
    return pd.DataFrame(rows, columns=["check", "measured (test accuracy)", "passes"], index=range(1, 4))


def fidelity_text(cfg: SimpleNamespace, fid: Fidelity) -> str:
    """One paragraph stating, from the numbers, how the networks compare with the linear baseline."""
    lm, lm_ci = fid.local_minus_logistic
    bl, _ = fid.backprop_minus_local
    if lm_ci[0] > 0:
        vs_lin = f"beats the raw-pixel logistic regression ({fid.logistic:.3f}) by {lm:.3f}, an interval above zero"
    elif lm_ci[1] < 0:
        vs_lin = f"is below the raw-pixel logistic regression ({fid.logistic:.3f}) by {-lm:.3f}"
    else:
        vs_lin = (f"cannot be told apart from the raw-pixel logistic regression ({fid.logistic:.3f}; difference "
                  f"{lm:+.3f}, interval containing zero)")
    gap = "within" if bl <= cfg.gap_tolerance else "further than"
    bp_lin = fid.backprop_top - fid.logistic
    tail = (f" The backprop network itself is only {bp_lin:+.3f} from the linear model, so on this data a "
            "linear model on pixels is nearly as good as either network." if bp_lin < 0.01 else "")
    return (f"The local-error network's top classifier ({fid.local_top:.3f}) {vs_lin}, and is {gap} "
            f"{cfg.gap_tolerance:g} of backprop ({fid.backprop_top:.3f}).{tail}")


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


def direction_verdict(t: Trend, want: str) -> str:
    """Verdict for a claimed shape (``increasing``, or ``non-monotonic``: an interior extremum) of a trend."""
    if t.shape == "undetermined":
        return claims.INCONCLUSIVE
    if want == "non-monotonic":
        return claims.HOLDS if t.interior_extremum else claims.FAILS
    return claims.HOLDS if t.shape == want else claims.FAILS


UNTESTABLE = "untestable here: no layer below the bound"
POP_IDS = {"local": "local", "pooled": "pooled"}


def claims_table(cfg: SimpleNamespace, trs: dict[str, dict[str, Trend]], fid: Fidelity, d: float, split,
                 alpha_min: float) -> pd.DataFrame:
    """The chapter's claims with ids, numeric statistics and computed verdicts.

    ``trs`` maps a population (see POPULATIONS) to its trends; claims 2-4 get one
    row per population.
    """
    f = claims.fmt
    tol = cfg.gap_tolerance
    gap, gap_ci = fid.backprop_minus_local
    diff, diff_ci, n_above, n_below = split
    bound = 1 + 2 / d
    rows = [claims.Claim(
        f"A deep MLP trained by local errors generalizes: its top classifier is within {tol:g} of the backprop MLP's",
        "test accuracy, backprop minus local (paired bootstrap over test points)",
        f(gap, gap_ci), claims.by_interval(*gap_ci, threshold=tol, above=False),
        id="ch01.local_vs_backprop", estimate=gap, lo=gap_ci[0], hi=gap_ci[1])]
    for pop, t in trs.items():
        who, key = POPULATIONS[pop], POP_IDS[pop]
        c, g, a = t["clean"], t["gaussian"], t["fgsm"]
        rows += [
            claims.Claim(f"High generalization accuracy requires a fast spectral decay, large alpha ({who})",
                         "Spearman(alpha, clean accuracy) over layers x conditions",
                         f(c.spearman, c.spearman_ci, 2), claims.by_interval(*c.spearman_ci, threshold=0.0),
                         id=f"ch01.clean_alpha_{key}", estimate=c.spearman, lo=c.spearman_ci[0], hi=c.spearman_ci[1]),
            claims.Claim(f"Under Gaussian noise, accuracy rises monotonically with alpha ({who})",
                         "shape of mean noisy accuracy vs alpha (Spearman + two-lines test); holds only if increasing",
                         f"{g.shape}; rho {f(g.spearman, g.spearman_ci, 2)}", direction_verdict(g, "increasing"),
                         id=f"ch01.gaussian_monotonic_{key}", estimate=g.spearman, lo=g.spearman_ci[0],
                         hi=g.spearman_ci[1]),
            claims.Claim(f"Under FGSM, accuracy vs alpha is non-monotonic ({who})",
                         "shape of mean FGSM accuracy vs alpha: two-lines test (estimate: Spearman)",
                         f"{a.shape}; rho {f(a.spearman, a.spearman_ci, 2)}", direction_verdict(a, "non-monotonic"),
                         id=f"ch01.fgsm_nonmonotonic_{key}", estimate=a.spearman, lo=a.spearman_ci[0],
                         hi=a.spearman_ci[1]),
        ]
    claim = (f"Smoothness: layers with alpha > 1 + 2/d = {bound:.3g} (TwoNN d = {d:.3g}) are more robust to FGSM "
             "than layers below it")
    stat = f"mean FGSM accuracy above minus below the bound ({n_above} vs {n_below} points)"
    if n_below == 0:
        rows.append(claims.Claim(claim, stat, f"{UNTESTABLE} (lowest alpha {alpha_min:.3g})", claims.INCONCLUSIVE,
                                 id="ch01.smoothness_bound"))
    else:
        value = f(diff, diff_ci) if np.isfinite(diff) else "no layer above the bound"
        rows.append(claims.Claim(claim, stat, value, claims.by_interval(*diff_ci, threshold=0.0, above=True),
                                 id="ch01.smoothness_bound", estimate=diff, lo=diff_ci[0], hi=diff_ci[1]))
    lm, lm_ci = fid.local_minus_logistic
    rows.append(claims.Claim(
        "[book, fidelity] The local-error network's top classifier beats a logistic regression on raw pixels",
        "test accuracy, local minus tuned pixel logistic regression (paired bootstrap over test points)",
        f(lm, lm_ci), claims.by_interval(*lm_ci, threshold=0.0),
        id="ch01.local_beats_pixels", estimate=lm, lo=lm_ci[0], hi=lm_ci[1]))
    return claims.table(rows, chapter="ch01")


def bound_text(table: pd.DataFrame, bound: float, input_alpha: float) -> str:
    """Where the layers lie relative to the smoothness bound, stated from the numbers."""
    below = table[table.alpha <= bound]
    lo, hi = table.alpha.min(), table.alpha.max()
    if below.empty:
        return (f"No layer of any condition lies below the bound: alpha ranges over [{lo:.2f}, {hi:.2f}], all above "
                f"1 + 2/d = {bound:.3f}, and the inputs themselves decay with alpha = {input_alpha:.2f} (same window, "
                "clipped to their rank). Even the earliest snapshots stay above it, so the smoothness claim is "
                "untestable on this data: the bound cannot separate robust from fragile layers here.")
    conds = ", ".join(sorted(set(below.method + " / " + below.condition)))
    return (f"{len(below)} of the {len(table)} (network, layer) points lie below 1 + 2/d = {bound:.3f} (alpha "
            f"ranges over [{lo:.2f}, {hi:.2f}]; the inputs themselves have alpha = {input_alpha:.2f} over the same "
            f"window, clipped to their rank); they come from: {conds}. The comparison across the bound is "
            "therefore between these networks and the rest, and differences in training, not only in smoothness, "
            "enter it.")


def input_alpha(cfg: SimpleNamespace, ds: data.Dataset) -> float:
    """Power-law exponent of the test inputs' own spectrum over ``alpha_window`` (clipped to their rank)."""
    eigs = spectrum.eigenspectrum(ds.x_test.flatten(1))
    lo, hi = cfg.alpha_window
    hi = min(hi, spectrum.numerical_rank(eigs))
    return spectrum.fit_power_law(eigs, (lo, hi)).alpha if hi - lo >= 2 else float("nan")


def scale_text(table: pd.DataFrame) -> str:
    """How the activation size (rms) changes with depth in each base network, and what the top classifier reaches."""
    base = base_layers(table)
    parts = []
    for m in METHODS:
        rms = base.loc[m].rms
        parts.append(f"{m}: rms {' -> '.join(f'{v:.3g}' for v in rms)} over layers 1..{len(rms)}, deepest readout "
                     f"{base.loc[m].clean.iloc[-1]:.3f}, top classifier {base.loc[m].top_accuracy.iloc[0]:.3f}")
    return "; ".join(parts) + "."


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
