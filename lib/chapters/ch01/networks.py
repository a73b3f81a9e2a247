"""The chapter's networks: local-error MLPs and their backprop baselines under the conditions that move alpha.

Each condition (width, weight decay, the authors' group's settings) is trained for
both methods, and the base training is snapshotted along the way (the training
trajectory). Every hidden layer of every network gets the same kind of readout, a
logistic regression fitted on its frozen features, so its accuracy means the same
for both methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import config, data, models, train
from ... import local_errors as le
from ..common import one_thread

METHODS = ("local", "backprop")
TRAINED = ("base", "width", "regularisation", "group")  # trained to the end of their schedule; "epochs" are snapshots
GROUP_READOUT_SCALE = 0.01  # the authors' group's public code: fixed readouts 0.01 * N(0, 1) ...
GROUP_ANNEAL_EPOCHS = 0  # ... and a constant learning rate


@dataclass
class Condition:
    """One trained network: method, architecture, training length and weight decay."""

    method: str
    kind: str
    widths: list[int]
    epochs: float
    weight_decay: float = 0.0
    readout_scale: float | None = None  # None: the parameter readout_scale
    anneal_epochs: int | None = None  # None: the parameter anneal_epochs

    @property
    def label(self) -> str:
        if self.kind == "epochs":
            return f"{self.epochs:g} epochs"
        if self.kind == "width":
            return f"width {self.widths[0]}"
        if self.kind == "regularisation":
            return f"weight decay {self.weight_decay:g}"
        if self.kind == "group":
            return "group's settings"
        return "base"


def conditions(cfg: SimpleNamespace) -> list[Condition]:
    """The base network and each condition that moves alpha, for both training methods.

    ``group``: the authors' group's settings, readouts 0.01 N(0, 1) (local errors) and a
    constant learning rate (both methods), where the book uses ``readout_scale`` and
    ``anneal_epochs``.
    """
    out = []
    for m in METHODS:
        out.append(Condition(m, "base", list(cfg.widths), cfg.epochs))
        out += [Condition(m, "epochs", list(cfg.widths), e) for e in cfg.epoch_grid]
        out += [Condition(m, "width", [w] * len(cfg.widths), cfg.epochs) for w in cfg.width_grid]
        out += [Condition(m, "regularisation", list(cfg.widths), cfg.epochs, wd) for wd in cfg.weight_decays]
        group = dict(readout_scale=GROUP_READOUT_SCALE, anneal_epochs=GROUP_ANNEAL_EPOCHS)
        out.append(Condition(m, "group", list(cfg.widths), cfg.epochs, **group))
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
    history: pd.DataFrame | None = None  # per epoch: training loss and accuracy, test accuracy (base, group)


def build(
    cfg: SimpleNamespace, ds: data.Dataset, method: str, widths: list[int], readout_scale: float | None = None
) -> models.MLP:
    """A fresh network; same seed -> same initial weights for every condition of one width."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        if method == "local":
            net = le.LocalErrorMLP(
                ds.n_features,
                widths,
                ds.n_classes,
                readout_scale=cfg.readout_scale if readout_scale is None else readout_scale,
                generator=config.generator(cfg.seed + 1),
            )
        else:
            net = models.MLP(ds.n_features, widths, ds.n_classes)
    return net.to(cfg.device)


def snapshot_steps(cfg: SimpleNamespace, ds: data.Dataset) -> dict[float, int]:
    """Optimizer steps after which the base training is snapshotted, per entry of ``epoch_grid``."""
    per_epoch = -(-len(ds.x_train) // cfg.batch_size)
    return {e: int(round(e * per_epoch)) for e in cfg.epoch_grid}


def with_readouts(cfg: SimpleNamespace, ds: data.Dataset, cond: Condition, net: models.MLP) -> Trained:
    """Attach a fitted logistic regression to every hidden layer, for either method (one readout kind).

    A local-error network's fixed ``B_l`` is the random classifier its layer is trained
    towards, not one fitted to the layer, and a backprop layer has none: a fitted readout
    for every layer makes a layer's accuracy the same quantity for both methods.
    """
    readouts = le.fit_linear_readouts(
        net,
        ds.x_train,
        ds.y_train,
        ds.n_classes,
        epochs=cfg.readout_epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        generator=config.generator(cfg.seed + 3),
    )
    t = Trained(
        cond, net, readouts, train.accuracy(net, ds.x_train, ds.y_train), train.accuracy(net, ds.x_test, ds.y_test)
    )
    t.layers = [le.LayerReadout(net, i + 1, r) for i, r in enumerate(readouts)]
    return t


def train_condition(
    cfg: SimpleNamespace, ds: data.Dataset, cond: Condition, snapshots: le.Snapshots | None = None
) -> Trained:
    """Train one network (local errors or backprop; last ``anneal_epochs`` at lr/10) and read out its layers.

    The batch order is the same for every condition, so a snapshot of the base run
    after ``e`` epochs is exactly a training of ``e`` epochs at the constant rate.
    """
    net = build(cfg, ds, cond.method, cond.widths, cond.readout_scale)
    loss_fn = le.local_loss if cond.method == "local" else train.cross_entropy
    val = dict(x_val=ds.x_test, y_val=ds.y_test) if cond.kind in ("base", "group") else {}  # test accuracy per epoch
    history = le.fit_annealed(
        net,
        ds.x_train,
        ds.y_train,
        epochs=int(cond.epochs),
        anneal_epochs=cfg.anneal_epochs if cond.anneal_epochs is None else cond.anneal_epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cond.weight_decay,
        loss_fn=loss_fn,
        transform=snapshots,
        generator=config.generator(cfg.seed + 2),
        progress=False,
        train_acc_every=max(1, int(cond.epochs)),  # the chapter reads no training curve: each stage's last epoch only
        **val,
    )
    out = with_readouts(cfg, ds, cond, net)
    out.history = history
    return out


def train_all(cfg: SimpleNamespace, ds: data.Dataset) -> list[Trained]:
    """Every condition of :func:`conditions`: the 'epochs' ones are snapshots of the base run, the rest trained."""
    steps = snapshot_steps(cfg, ds)
    out = []
    with one_thread(cfg.device):
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


def training_summary(runs: list[Trained]) -> pd.DataFrame:
    """Final training loss and the network's own test accuracy, per trained network."""
    return pd.DataFrame(
        [
            {
                "method": r.cond.method,
                "condition": r.cond.label,
                "top-classifier training accuracy": r.train_accuracy,
                "top-classifier test accuracy": r.top_accuracy,
            }
            for r in runs
        ]
    )


def epoch_movement(cfg: SimpleNamespace, runs: list[Trained]) -> pd.DataFrame:
    """How much the top classifier's test accuracy moves from one epoch to the next (mean absolute change).

    Per method: the base run over its last ``anneal_epochs`` epoch-to-epoch changes at the
    constant rate (``base_constant``) and over its annealed epochs (``base_annealed``), and
    the group's constant-rate run over as many changes at the end of its training
    (``group_constant``; 5 when ``anneal_epochs`` is 0).
    """
    k = cfg.anneal_epochs or 5
    rows = {}
    for r in runs:
        if r.history is None or "val_acc" not in r.history:
            continue
        steps = np.abs(np.diff(r.history.val_acc.to_numpy()))  # steps[j]: from epoch j + 1 to j + 2
        row = rows.setdefault(r.cond.method, {})
        if r.cond.kind == "base" and cfg.anneal_epochs:
            e = len(steps) + 1 - cfg.anneal_epochs  # the last epoch at the constant rate
            row["base_constant"] = steps[max(0, e - 1 - k) : e - 1].mean()
            row["base_annealed"] = steps[e - 1 :].mean()
        elif r.cond.kind == "group":
            row["group_constant"] = steps[-k:].mean()
    return pd.DataFrame(rows).T.rename_axis("method")


def readouts_unchanged(cfg: SimpleNamespace, ds: data.Dataset, run: Trained) -> bool:
    """True if a local-error network's readouts still equal their initial random draw."""
    fresh = build(cfg, ds, "local", run.cond.widths)
    return all(torch.equal(a, b) for a, b in zip(fresh.readouts, run.net.readouts))
