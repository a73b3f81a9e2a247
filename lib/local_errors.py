"""Deep supervised learning with local errors (Mostafa, Ramesh & Cauwenberghs 2018).

Every hidden layer of an MLP has its own *fixed* random linear classifier ``B_l``
(drawn once, never trained) and is trained only to minimise the cross-entropy of
``B_l h_l`` against the labels. Each layer sees its input detached, so no gradient
crosses from one layer to the one below; the top classifier is trained on the
(detached) last hidden layer. The same MLP trained end to end by backpropagation
is the usual baseline; its layers get linear readouts fitted afterwards on frozen
features (:func:`fit_linear_readouts`).
"""
from __future__ import annotations

from typing import Sequence

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

    def __init__(self, in_dim: int, widths: Sequence[int], n_classes: int, *, activation: str = "relu",
                 readout_scale: float = 0.01, generator: torch.Generator | None = None):
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
            gb = [gr for gr in grads[i:i + len(b)] if gr is not None]
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
        parts = [net(x[i:i + batch_size], return_hidden=True)[1] for i in range(0, len(x), batch_size)]
    return [torch.cat([p[k] for p in parts]) for k in range(len(net.hidden))]


def fit_linear_readouts(net: MLP, x: torch.Tensor, y: torch.Tensor, n_classes: int, *, epochs: int,
                        lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 0.0,
                        generator: torch.Generator | None = None) -> list[nn.Linear]:
    """A multinomial logistic regression per hidden layer, fitted with Adam on frozen features."""
    readouts = []
    for h in hidden_features(net, x):
        lin = nn.Linear(h.shape[1], n_classes).to(h.device)
        train.fit(lin, h, y, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                  generator=generator, progress=False)
        readouts.append(lin)
    return readouts
