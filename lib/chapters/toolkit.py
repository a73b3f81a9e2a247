"""The toolkit tour (book/00_toolkit.ipynb): train an MLP, then attack it three ways."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .. import attacks, data, models, train
from ..config import DATASETS, MAX_WIDTH, Param

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "widths": Param((list, int), [128, 128], [1000, 1000], check="positive", max=MAX_WIDTH, help="hidden layer widths"),
    "epochs": Param(int, 15, 20, check="positive", max=10_000, help="training epochs"),
    "batch_size": Param(int, 64, 64, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", max=1.0, help="Adam learning rate"),
    "epsilons": Param(
        (list, float),
        [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
        check="nonnegative",
        help="L-inf budgets for FGSM and PGD (inputs in [0, 1])",
    ),
    "noise_stds": Param(
        (list, float),
        [0.0, 0.1, 0.2, 0.3, 0.5, 0.8],
        check="nonnegative",
        help="standard deviations of the Gaussian noise",
    ),
    "pgd_steps": Param(int, 10, 40, check="positive", max=10_000, help="PGD iterations"),
}


def train_mlp(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[models.MLP, pd.DataFrame]:
    """The tour's MLP, trained with Adam on cross-entropy."""
    net = models.MLP(ds.n_features, cfg.widths, ds.n_classes).to(cfg.device)
    hist = train.fit(
        net,
        ds.x_train,
        ds.y_train,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        generator=cfg.generator,
        x_val=ds.x_test,
        y_val=ds.y_test,
    )
    return net, hist


def robustness(cfg: SimpleNamespace, net: models.MLP, ds: data.Dataset) -> pd.DataFrame:
    """Test accuracy vs strength under Gaussian noise (std), FGSM and PGD (L-inf eps)."""
    g = cfg.generator
    runs = {
        "Gaussian noise": (attacks.noise_attack, cfg.noise_stds, {"generator": g}),
        "FGSM": (attacks.fgsm, cfg.epsilons, {}),
        f"PGD-{cfg.pgd_steps}": (attacks.pgd, cfg.epsilons, {"steps": cfg.pgd_steps, "generator": g}),
    }
    rows = []
    for name, (attack, strengths, kw) in runs.items():
        accs = attacks.accuracy_under(net, attack, ds.x_test, ds.y_test, strengths, clamp=ds.value_range, **kw)
        rows += [{"attack": name, "strength": s, "accuracy": a} for s, a in zip(strengths, accs)]
    return pd.DataFrame(rows)


def _halving_strength(part: pd.DataFrame, clean: float) -> float:
    """Smallest strength at which accuracy falls to half of ``clean`` (interpolated from 0); nan if never.

    The curve starts at strength 0 with the clean accuracy, whether or not the grid has 0.
    """
    part = part[part.strength > 0].sort_values("strength")
    s = np.concatenate([[0.0], part.strength.to_numpy()])
    a = np.concatenate([[clean], part.accuracy.to_numpy()])
    target = clean / 2
    below = np.nonzero(a <= target)[0]
    if len(below) == 0:
        return float("nan")
    i = below[0]
    if i == 0:
        return 0.0
    return float(s[i - 1] + (a[i - 1] - target) * (s[i] - s[i - 1]) / (a[i - 1] - a[i]))


def summarise(cfg: SimpleNamespace, curves: pd.DataFrame, net: models.MLP, ds: data.Dataset) -> dict:
    """Scalars of the tour: clean accuracy (on the clean test set), L2 size of the halving perturbation."""
    pgd_name = f"PGD-{cfg.pgd_steps}"
    by = {name: part for name, part in curves.groupby("attack")}
    joined = by["FGSM"].merge(by[pgd_name], on="strength", suffixes=("_fgsm", "_pgd"))
    clean = train.accuracy(net, ds.x_test, ds.y_test)
    root_d = float(np.sqrt(ds.n_features))
    # L2 size: sigma*sqrt(d) for noise (its expected norm), eps*sqrt(d) for a full sign step
    return {
        "clean_accuracy": clean,
        "noise_halving_l2": _halving_strength(by["Gaussian noise"], clean) * root_d,
        "fgsm_halving_l2": _halving_strength(by["FGSM"], clean) * root_d,
        "pgd_halving_l2": _halving_strength(by[pgd_name], clean) * root_d,
        "pgd_never_weaker": bool((joined.accuracy_pgd <= joined.accuracy_fgsm + 0.02).all()),
    }


def describe_summary(s: dict) -> str:
    """The summary as a sentence, saying 'not reached' where the curve never halves."""

    def f(v):
        return "not reached on this grid" if np.isnan(v) else f"{v:.2f}"

    ratio = s["noise_halving_l2"] / s["fgsm_halving_l2"]
    extra = "" if np.isnan(ratio) else f" Gaussian noise needs {ratio:.1f} times the L2 size of FGSM."
    return (
        f"Clean accuracy {s['clean_accuracy']:.3f}. L2 size of the perturbation that halves it: "
        f"Gaussian noise {f(s['noise_halving_l2'])}, FGSM {f(s['fgsm_halving_l2'])}, "
        f"PGD {f(s['pgd_halving_l2'])}.{extra}"
    )
