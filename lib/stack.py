"""Several MLPs of one architecture trained as one batched model.

A small MLP's training step on a CPU costs mostly its fixed per-operation overhead,
not arithmetic, so training ``S`` networks one after another costs about ``S`` times
what one batched step over all of them costs. :class:`StackedMLP` holds the weights
of ``S`` networks stacked along a leading axis and runs them as batched matrix
products; :func:`fit_annealed` trains them with one Adam over the stacked tensors.

The members stay independent: member ``s`` reads only its own rows of the batch, its
loss is the mean over its own rows, and Adam (with or without weight decay) is
elementwise, so every member receives exactly the update it would receive alone.
Each member draws its batch order from its own generator, as :func:`lib.train.fit`
does. What a stack shares: one random draw per batch for the batch ``transform``
(e.g. the random starts of PGD adversarial training), and the float round-off of a
batched product, which differs slightly from that of one network's product.

A batch of the stack is ``S`` member batches of equal size laid end to end:
``(S * B, ...)`` rows, member ``s`` owning rows ``s * B ... (s + 1) * B - 1``. The
stack's ``forward`` maps such a batch to ``(S * B, n_classes)`` logits, so attacks
written for one network (:func:`lib.attacks.pgd`, with its per-row norms) apply to
the stack unchanged.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import train
from .config import ParameterError
from .local_errors import ANNEAL_FACTOR, LocalErrorMLP
from .models import MLP

LOSSES = ("cross_entropy", "local")


class StackedMLP(nn.Module):
    """``S`` MLPs of one architecture (all :class:`~lib.models.MLP` or all
    :class:`~lib.local_errors.LocalErrorMLP`) as one module with stacked weights.

    The stack copies the members' weights (and local readouts); :meth:`unstack` copies
    them back into fresh networks.
    """

    def __init__(self, nets: Sequence[MLP]):
        super().__init__()
        nets = list(nets)
        if not nets:
            raise ParameterError("parameter 'nets' must hold at least one network")
        first = nets[0]
        kind = type(first)
        shapes = tuple(p.shape for p in first.parameters())
        for net in nets[1:]:
            if (
                type(net) is not kind
                or tuple(p.shape for p in net.parameters()) != shapes
                or type(net.act) is not type(first.act)
            ):
                raise ParameterError(
                    "parameter 'nets': every network of a stack must have the same class, layer sizes and activation"
                )
        self.n_members = len(nets)
        self.local = isinstance(first, LocalErrorMLP)
        self.act = copy.deepcopy(first.act)
        # The template of :meth:`unstack` is kept outside the module tree: registered as a
        # submodule, its parameters would enter ``parameters()``, the optimizer and the state dict.
        self._template = (copy.deepcopy(first),)
        layers = [*range(len(first.hidden)), "head"]

        def stacked(get):
            return torch.stack([get(net).detach() for net in nets]).clone()

        # Weights transposed, (S, in, out), so that a layer is one baddbmm and its gradient
        # comes out in the parameter's own layout; biases (S, 1, out).
        self.weights = nn.ParameterList(
            nn.Parameter(stacked(lambda n, i=i: (n.head if i == "head" else n.hidden[i]).weight.T)) for i in layers
        )
        self.biases = nn.ParameterList(
            nn.Parameter(stacked(lambda n, i=i: (n.head if i == "head" else n.hidden[i]).bias).unsqueeze(1))
            for i in layers
        )
        if self.local:
            for i in range(len(first.hidden)):
                self.register_buffer(f"readout_{i}", stacked(lambda n, i=i: n.readouts[i]))

    def _members(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if rows % self.n_members:
            raise ValueError(
                f"a batch of a stack of {self.n_members} has a multiple of {self.n_members} rows, got {rows}"
            )
        return x.reshape(self.n_members, rows // self.n_members, -1)

    def _layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.biases[i], h, self.weights[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(S * B, n_classes)`` of a stacked batch ``(S * B, ...)``."""
        h = self._members(x)
        for i in range(len(self.weights) - 1):
            h = self.act(self._layer(i, h))
        return self._layer(len(self.weights) - 1, h).flatten(0, 1)

    def local_forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """As :meth:`lib.local_errors.LocalErrorMLP.local_forward`: local logits of every layer through
        its fixed readout, each layer fed a detached input, and the top logits; each ``(S * B, n_classes)``."""
        if not self.local:
            raise ParameterError("local_forward needs a stack of LocalErrorMLP networks")
        h = self._members(x)
        local = []
        for i in range(len(self.weights) - 1):
            h = self.act(self._layer(i, h.detach()))
            local.append(torch.bmm(h, getattr(self, f"readout_{i}").mT).flatten(0, 1))
        return local, self._layer(len(self.weights) - 1, h.detach()).flatten(0, 1)

    @torch.no_grad()
    def unstack(self) -> list[MLP]:
        """The members as separate networks (fresh copies, on the stack's device, in eval mode)."""
        out = []
        device = self.weights[0].device
        for s in range(self.n_members):
            net = copy.deepcopy(self._template[0]).to(device)
            for i, layer in enumerate([*net.hidden, net.head]):
                layer.weight.copy_(self.weights[i][s].T)
                layer.bias.copy_(self.biases[i][s, 0])
            if self.local:
                for i in range(len(net.hidden)):
                    getattr(net, f"readout_{i}").copy_(getattr(self, f"readout_{i}")[s])
            out.append(net.eval())
        return out


def member_losses(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Every member's mean loss over its own rows, ``(S,)``: softmax cross-entropy, or the sum of
    the local losses of every layer and the top classifier (:func:`lib.local_errors.local_loss`)."""

    def per_member(logits):
        return F.cross_entropy(logits, y, reduction="none").view(stack.n_members, -1).mean(1)

    if loss == "cross_entropy":
        return per_member(stack(x))
    local, top = stack.local_forward(x)
    return torch.stack([per_member(z) for z in (*local, top)]).sum(0)


def fit_annealed(
    stack: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    anneal_epochs: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    generators: Sequence[torch.Generator],
    loss: str = "cross_entropy",
    transform: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    desc: str = "training",
) -> pd.DataFrame:
    """Train every member of ``stack`` as :func:`lib.local_errors.fit_annealed` trains one network.

    Adam at ``lr`` for ``epochs - anneal_epochs`` epochs, then a fresh Adam at ``lr *
    ANNEAL_FACTOR`` for the rest; every epoch, member ``s`` visits a fresh permutation
    of ``x`` drawn from ``generators[s]`` (the draws one network's training makes), in
    batches of ``batch_size``. ``transform(stack, xb, yb)`` replaces each stacked batch
    before its step (adversarial training). Returns one row per member and epoch:
    ``member, epoch, loss`` (the mean over the epoch's batches); a member whose loss
    diverges is named in a ``RuntimeWarning``.
    """
    if loss not in LOSSES:
        raise ParameterError(f"parameter 'loss' is {loss!r}; allowed values: {', '.join(map(repr, LOSSES))}")
    if loss == "local" and not stack.local:
        raise ParameterError("parameter 'loss' is 'local' but the stack holds no LocalErrorMLP networks")
    train.check_schedule(epochs=epochs, anneal_epochs=anneal_epochs, batch_size=batch_size, lr=lr)
    generators = list(generators)
    if len(generators) != stack.n_members:
        raise ParameterError(
            f"parameter 'generators' needs one generator per member ({stack.n_members}), got {len(generators)}"
        )
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    n, s = len(x), stack.n_members
    losses, warned = [], set()
    stack.train()
    stages = [(epochs - anneal_epochs, lr)] + ([(anneal_epochs, lr * ANNEAL_FACTOR)] if anneal_epochs else [])
    for stage_epochs, stage_lr in stages:
        opt = train.make_optimizer(list(stack.parameters()), "adam", stage_lr, weight_decay)
        for _ in range(stage_epochs):
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(x.device)  # (S, n)
            total = torch.zeros(s, device=x.device)
            for idx in order.split(batch_size, dim=1):
                flat = idx.reshape(-1)
                xb, yb = x.index_select(0, flat), y.index_select(0, flat)
                if transform is not None:
                    xb = transform(stack, xb, yb)
                    stack.train()
                per = member_losses(stack, xb, yb, loss)
                opt.zero_grad(set_to_none=True)
                per.sum().backward()
                opt.step()
                total.add_(per.detach(), alpha=idx.shape[1])
            losses.append((total / n).tolist())
            for m in set(range(s)) - warned:  # as lib.train.fit: checked every epoch, warned once
                if why := train.divergence([row[m] for row in losses]):
                    warned.add(m)
                    warnings.warn(
                        f"{desc}: member {m}: {why} by epoch {len(losses)}; training diverges, lower 'lr' (now {lr:g})",
                        RuntimeWarning,
                        stacklevel=2,
                    )
    stack.eval()
    return pd.DataFrame(
        [{"member": m, "epoch": e + 1, "loss": row[m]} for e, row in enumerate(losses) for m in range(s)]
    )
