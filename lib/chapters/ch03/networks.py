"""The chapter's networks: built, trained to convergence on a step schedule, and their layers' activations."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from ... import attacks, data, models, som, train
from .params import CONVERGED_FALL, FITTED_ACCURACY, MODEL_TITLES

__all__ = [
    "activations",
    "build",
    "convergence",
    "layer_batches",
    "layer_names",
    "lr_stages",
    "pixel_baseline",
    "train_model",
    "train_models",
]

# The training-set accuracy is measured every fifth epoch and at the end of each stage (the book's
# choice): a pass over the 8,000 Fashion-MNIST training images cost more than the epoch's training.
# Only the last value decides anything (convergence); the others draw the training curve.
TRAIN_ACC_EVERY = 5


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
    return [(b - a, cfg.lr * 0.1**k) for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]


def train_model(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset, desc: str) -> pd.DataFrame:
    """Train ``net`` with Adam through the stages of :func:`lr_stages`; the per-epoch history (test accuracy too).

    Each stage is one :func:`lib.train.fit` call (Adam restarts with the lower rate; the
    seeded generator carries on, so the run stays deterministic).
    """
    parts, done = [], 0
    for epochs, lr in lr_stages(cfg):
        h = train.fit(
            net,
            ds.x_train,
            ds.y_train,
            epochs=epochs,
            batch_size=cfg.batch_size,
            lr=lr,
            generator=cfg.generator,
            x_val=ds.x_test,
            y_val=ds.y_test,
            desc=f"{desc}, lr {lr:g}",
            train_acc_every=TRAIN_ACC_EVERY,
        )
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


def train_models(cfg: SimpleNamespace, ds: data.Dataset) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """Train every model of ``cfg.models``.

    Returns the trained networks, a table of accuracies and convergence, the histories, and
    the *untrained* networks: a copy of each network at its initial weights, taken before
    training (copying draws no random number, so the trained networks are unchanged).
    """
    nets, rows, hist, untrained = {}, [], [], {}
    linear = pixel_baseline(ds, cfg.seed)
    for name in cfg.models:
        net = build(name, cfg, ds)
        untrained[name] = copy.deepcopy(net)
        h = train_model(cfg, net, ds, f"training {name}")
        nets[name] = net
        hist.append(h.assign(model=MODEL_TITLES[name]))
        rows.append(
            {
                "model": MODEL_TITLES[name],
                "parameters": models.n_params(net),
                "train accuracy": train.accuracy(net, ds.x_train, ds.y_train),
                "test accuracy": train.accuracy(net, ds.x_test, ds.y_test),
                "pixel logistic regression (test)": linear,
                **convergence(h),
            }
        )
    return nets, pd.DataFrame(rows).set_index("model"), pd.concat(hist, ignore_index=True), untrained


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
            xb = x[i : i + batch_size]
            chunk = [xb.flatten(1)] + net(xb, return_hidden=True)[1]
            yield chunk if layers is None else [chunk[j] for j in layers]


def layer_batches(
    net: torch.nn.Module,
    x: torch.Tensor,
    layers: list[int] | None = None,
    *,
    budget_mb: float = 1024,
    batch_size: int = 2048,
) -> som.Batches:
    """The representations of ``x`` (all, or the chosen ``layers``) as a :data:`lib.som.Batches` source.

    When they fit in ``budget_mb`` megabytes they are computed once and held; otherwise
    every pass recomputes them chunk by chunk, so that no wide layer of a large training
    set (60,000 x 6,272 for the paper's first conv block) is ever held whole.
    """
    with torch.no_grad(), attacks.eval_mode(net):
        first = next(_forward_chunks(net, x[:1], layers, 1))
    size_mb = len(x) * sum(a.shape[1] * a.element_size() for a in first) / 2**20
    if size_mb > budget_mb:
        return lambda: _forward_chunks(net, x, layers, batch_size)
    parts = list(_forward_chunks(net, x, layers, batch_size))
    return som.tensor_batches(*[torch.cat([p[k] for p in parts]) for k in range(len(first))])
