"""The toolkit tour (book/00_toolkit.ipynb): train an MLP, then attack it three ways."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from .. import attacks, data, models, train
from ..config import DATASETS, Param

PARAMS: dict[str, Param] = {
    "dataset": Param(str, "digits", "mnist", choices=DATASETS, help="image dataset"),
    "widths": Param((list, int), [128, 128], [1000, 1000], check="positive", help="hidden layer widths"),
    "epochs": Param(int, 15, 20, check="positive", help="training epochs"),
    "batch_size": Param(int, 64, 64, check="positive", help="mini-batch size"),
    "lr": Param(float, 1e-3, 1e-3, check="positive", help="Adam learning rate"),
    "epsilons": Param((list, float), [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3], check="nonnegative",
                      help="L-inf budgets for FGSM and PGD (inputs in [0, 1])"),
    "noise_stds": Param((list, float), [0.0, 0.1, 0.2, 0.3, 0.5, 0.8], check="nonnegative",
                        help="standard deviations of the Gaussian noise"),
    "pgd_steps": Param(int, 10, 40, check="positive", help="PGD iterations"),
}


def train_mlp(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[models.MLP, pd.DataFrame]:
    """The tour's MLP, trained with Adam on cross-entropy."""
    net = models.MLP(ds.n_features, cfg.widths, ds.n_classes).to(cfg.device)
    hist = train.fit(net, ds.x_train, ds.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                     generator=cfg.generator, x_val=ds.x_test, y_val=ds.y_test)
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
