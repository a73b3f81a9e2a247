"""Deep supervised learning with local errors (Mostafa, Ramesh & Cauwenberghs 2018).

Every hidden layer of an MLP has its own *fixed* random linear classifier ``B_l``
(drawn once, never trained) and is trained only to minimise the cross-entropy of
``B_l h_l`` against the labels. Each layer sees its input detached, so no gradient
crosses from one layer to the one below; the top classifier is trained on the
(detached) last hidden layer. The same MLP trained end to end by backpropagation
is the usual baseline; its layers get linear readouts fitted afterwards on frozen
features (:func:`fit_linear_readouts`).

Training can end with a low-learning-rate stage (:func:`fit_annealed`): with a
constant Adam step the last iterate wanders, and a top classifier that learns from
moving, detached features lags behind its own layer. :class:`Snapshots` keeps
copies of a network during training (the "shorter training" conditions), and
:func:`tuned_logistic` is the multinomial logistic regression, its L2 penalty
chosen on held-out training data, that serves as the linear baseline.
"""

from __future__ import annotations

import copy
from typing import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import train
from .attacks import eval_mode
from .config import ParameterError
from .models import MLP


class LocalErrorMLP(MLP):
    """An :class:`~lib.models.MLP` with one fixed random readout ``B_l`` per hidden layer.

    The readouts are buffers (they move with ``.to(device)`` and are never trained),
    drawn as ``readout_scale * N(0, 1)`` from ``generator``. ``forward`` is the plain
    MLP (the trained top classifier gives the network's prediction).
    """

    def __init__(
        self,
        in_dim: int,
        widths: Sequence[int],
        n_classes: int,
        *,
        activation: str = "relu",
        readout_scale: float = 0.01,
        generator: torch.Generator | None = None,
    ):
        super().__init__(in_dim, widths, n_classes, activation)
        if not readout_scale > 0:
            raise ParameterError(f"parameter 'readout_scale' must be > 0, got {readout_scale}")
        for i, w in enumerate(self.widths):
            self.register_buffer(f"readout_{i}", readout_scale * torch.randn(n_classes, w, generator=generator))

    @property
    def readouts(self) -> list[torch.Tensor]:
        """The fixed readout matrices ``B_l`` (n_classes x width_l), bottom layer first."""
        return [getattr(self, f"readout_{i}") for i in range(len(self.widths))]

    def local_forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Local logits ``B_l h_l`` of every layer and the top logits, each layer fed a detached input."""
        x = x.flatten(1)
        local = []
        for layer, b in zip(self.hidden, self.readouts):
            x = self.act(layer(x.detach()))
            local.append(x @ b.T)
        return local, self.head(x.detach())


def local_losses(model: LocalErrorMLP, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """One cross-entropy per hidden layer (through its fixed readout), then the top classifier's."""
    local, top = model.local_forward(x)
    return [F.cross_entropy(z, y) for z in local] + [F.cross_entropy(top, y)]


def local_loss(model: LocalErrorMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of the per-layer local losses: a ``loss_fn`` for :func:`lib.train.fit`.

    The summands share no graph, so the gradient each layer receives is that of its
    own loss; with a per-parameter optimizer (Adam, SGD) one step on the sum is one
    independent step per layer.
    """
    return torch.stack(local_losses(model, x, y)).sum()


def train_local(model: LocalErrorMLP, x: torch.Tensor, y: torch.Tensor, **fit_kwargs):
    """Train every layer on its local error (:func:`lib.train.fit` with :func:`local_loss`)."""
    return train.fit(model, x, y, loss_fn=local_loss, **fit_kwargs)


def cross_layer_gradients(model: LocalErrorMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Matrix ``G[k, j]``: largest |gradient| of loss ``k`` w.r.t. the parameters of block ``j``.

    Blocks are the hidden layers then the top classifier. Local-error training
    requires ``G`` to be zero off the diagonal (nothing crosses layers).
    """
    blocks = [list(layer.parameters()) for layer in model.hidden] + [list(model.head.parameters())]
    losses = local_losses(model, x, y)
    g = torch.zeros(len(losses), len(blocks))
    for k, loss in enumerate(losses):
        flat = [p for b in blocks for p in b]
        grads = torch.autograd.grad(loss, flat, allow_unused=True, retain_graph=True)
        i = 0
        for j, b in enumerate(blocks):
            gb = [gr for gr in grads[i : i + len(b)] if gr is not None]
            g[k, j] = max((gr.abs().max().item() for gr in gb), default=0.0)
            i += len(b)
    return g


class LayerReadout(nn.Module):
    """The network up to hidden layer ``depth`` (1-based) followed by a linear ``readout``.

    ``readout`` is an ``nn.Module`` (e.g. a fitted ``nn.Linear``) or a fixed matrix
    (n_classes x width). Gradients flow through all layers below, as attacks need.
    """

    def __init__(self, net: MLP, depth: int, readout: nn.Module | torch.Tensor):
        super().__init__()
        if not 1 <= depth <= len(net.hidden):
            raise ParameterError(f"depth must be in 1..{len(net.hidden)}, got {depth}")
        self.net, self.depth = net, depth
        if isinstance(readout, torch.Tensor):
            self.register_buffer("matrix", readout)
            self.readout = None
        else:
            self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = hidden_at(self.net, x, self.depth)
        return h @ self.matrix.T if self.readout is None else self.readout(h)


def hidden_at(net: MLP, x: torch.Tensor, depth: int) -> torch.Tensor:
    """Post-activation output of hidden layer ``depth`` (1-based) of ``net``."""
    x = x.flatten(1)
    for layer in net.hidden[:depth]:
        x = net.act(layer(x))
    return x


@torch.no_grad()
def hidden_features(net: MLP, x: torch.Tensor, batch_size: int = 4096) -> list[torch.Tensor]:
    """All hidden representations of ``x`` in eval mode, batched (for spectra and readouts)."""
    with eval_mode(net):
        parts = [net(x[i : i + batch_size], return_hidden=True)[1] for i in range(0, len(x), batch_size)]
    return [torch.cat([p[k] for p in parts]) for k in range(len(net.hidden))]


def fit_linear_readouts(
    net: MLP,
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[nn.Linear]:
    """A multinomial logistic regression per hidden layer, fitted with Adam on frozen features."""
    readouts = []
    for h in hidden_features(net, x):
        lin = nn.Linear(h.shape[1], n_classes).to(h.device)
        train.fit(
            lin,
            h,
            y,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            generator=generator,
            progress=False,
        )
        readouts.append(lin)
    return readouts


ANNEAL_FACTOR = 0.1  # learning rate of the final stage, relative to ``lr``


def fit_annealed(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    anneal_epochs: int = 0,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    **fit_kwargs,
) -> pd.DataFrame:
    """:func:`lib.train.fit` for ``epochs - anneal_epochs`` epochs at ``lr``, then the rest at ``lr * ANNEAL_FACTOR``.

    One generator draws every epoch's batch order, so the first stage is exactly a
    shorter constant-rate training; ``anneal_epochs = 0`` is the constant rate throughout.
    """
    train.check_schedule(epochs=epochs, anneal_epochs=anneal_epochs, lr=lr)  # batch_size: train.fit checks it
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    hist = [train.fit(model, x, y, epochs=epochs - anneal_epochs, lr=lr, generator=generator, **fit_kwargs)]
    if anneal_epochs:
        late = train.fit(model, x, y, epochs=anneal_epochs, lr=lr * ANNEAL_FACTOR, generator=generator, **fit_kwargs)
        hist.append(late.assign(epoch=late.epoch + epochs - anneal_epochs))
    return pd.concat(hist, ignore_index=True)


class Snapshots:
    """A batch ``transform`` for :func:`lib.train.fit` that keeps copies of the model during training.

    It returns every batch unchanged; before optimizer step ``k`` (0-based, counted
    over every ``fit`` it is passed to) it stores ``model.state_dict()`` under the
    label whose step is ``k``, i.e. the model after ``k`` steps.
    """

    def __init__(self, at_steps: dict[str, int]):
        self.at_steps = dict(at_steps)
        self.states: dict[str, dict] = {}
        self.step = 0

    def __call__(self, model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        for label, k in self.at_steps.items():
            if k == self.step:
                self.states[label] = copy.deepcopy(model.state_dict())
        self.step += 1
        return xb

    def restore(self, model: nn.Module, label: str) -> nn.Module:
        """A copy of ``model`` with the weights stored under ``label``."""
        if label not in self.states:
            raise KeyError(f"no snapshot {label!r} (step {self.at_steps.get(label)}; training ran {self.step} steps)")
        out = copy.deepcopy(model)
        out.load_state_dict(self.states[label])
        return out.eval()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, *, l2: float, max_iter: int = 300) -> nn.Linear:
    """Multinomial logistic regression: mean cross-entropy + ``l2/2 |W|^2`` minimised by full-batch L-BFGS.

    The features are standardised (per column, on ``x``) for the fit and the scaling
    is folded back into the returned layer, which reads raw features.
    """
    x = x.flatten(1).detach()
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mu) / sd
    lin = nn.Linear(x.shape[1], n_classes).to(x.device, x.dtype)
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(
        lin.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(z), y) + 0.5 * l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        lin.weight.div_(sd)
        lin.bias.sub_(lin.weight @ mu)
    return lin.requires_grad_(False)


def tuned_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    *,
    l2_grid: Sequence[float],
    val_fraction: float = 0.2,
    generator: torch.Generator | None = None,
) -> tuple[nn.Linear, float]:
    """:func:`fit_logistic` with ``l2`` chosen by accuracy on a held-out part of the training data, refitted on all of it.

    Returns the refitted layer and the chosen ``l2`` (the largest among equally good values).
    """
    if not 0 < val_fraction < 1:
        raise ParameterError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    n_val = max(1, int(round(val_fraction * len(x))))
    val, fit = perm[:n_val], perm[n_val:]
    scores = [train.accuracy(fit_logistic(x[fit], y[fit], n_classes, l2=l2), x[val], y[val]) for l2 in l2_grid]
    best = max(l2 for l2, s in zip(l2_grid, scores) if s == max(scores))
    return fit_logistic(x, y, n_classes, l2=best), best
