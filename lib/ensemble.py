"""Batched ensembles of two-layer ReLU networks, trained all at once by full-batch descent.

``E`` networks ``f_e(x) = sum_j v_ej relu(w_ej . x + b_ej)`` are stored as stacked
tensors ``w (E, m, d)``, ``b (E, m)``, ``v (E, m)``. A training step of the whole
ensemble is one batched matmul per layer forward and one per layer backward, with
gradients written out by hand (no autograd graph), so a sweep of 64 small networks
costs about as many Python operations as one network.

Members may differ in input dimension (``dims``), width (``widths``), init scale,
learning rate and weight decay. A member of input dimension ``d_e < d`` or width
``m_e < m`` has zero weights in the unused columns/rows; their gradients are exactly
zero, so the member is exactly the smaller network. Each member stops updating when
its minimum margin ``min_i y_i f(x_i)`` reaches the target (or at the step budget),
so finished members do not keep training while others catch up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import ParameterError
from .models import TwoLayerReLU

OPTIMIZERS = ("gd", "adam")
Scalars = float | Sequence[float] | torch.Tensor


def signed(y: torch.Tensor) -> torch.Tensor:
    """Labels as floats in {-1, +1} (0/1 integer labels are mapped 0 -> -1)."""
    y = torch.as_tensor(y)
    if y.dtype in (torch.long, torch.int, torch.bool, torch.uint8):
        y = y.long()
        if ((y != 0) & (y != 1) & (y != -1)).any():
            raise ValueError("labels must be 0/1 or -1/+1")
        y = torch.where(y == 0, -1, y)
    return y.float()


def per_member(value: Scalars, n: int, name: str, *, device=None, dtype=torch.float32,
               positive: bool = False) -> torch.Tensor:
    """``value`` (a scalar or one value per member) as a tensor of shape ``(n,)``, checked."""
    t = torch.as_tensor(value, dtype=dtype, device=device).flatten()
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ParameterError(f"parameter {name!r} needs 1 or {n} values, got {t.numel()}")
    if not torch.isfinite(t).all() or (t < 0).any() or (positive and (t <= 0).any()):
        raise ParameterError(f"parameter {name!r} must be finite and {'> 0' if positive else '>= 0'}")
    return t


@dataclass
class TwoLayerEnsemble:
    """Stacked parameters of ``E`` two-layer ReLU networks (scalar output, no output bias)."""

    w: torch.Tensor  # (E, m, d)
    b: torch.Tensor  # (E, m)
    v: torch.Tensor  # (E, m)

    @property
    def n_members(self) -> int:
        return self.w.shape[0]

    @property
    def width(self) -> int:
        return self.w.shape[1]

    @property
    def dim(self) -> int:
        return self.w.shape[2]

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """``w_e x_i + b_e`` of shape ``(E, n, m)``; ``x`` is ``(n, d)`` (shared) or ``(E, n, d)``."""
        return torch.matmul(x, self.w.transpose(1, 2)) + self.b[:, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``f_e(x_i)`` of shape ``(E, n)``."""
        return torch.matmul(torch.relu(self.preactivations(x)), self.v[:, :, None]).squeeze(-1)

    __call__ = forward

    def input_grad(self, x: torch.Tensor) -> torch.Tensor:
        """``grad_x f_e(x_i) = sum_j v_j 1[w_j x + b_j > 0] w_j`` of shape ``(E, n, d)``."""
        gate = (self.preactivations(x) > 0).to(self.w.dtype) * self.v[:, None, :]
        return torch.matmul(gate, self.w)

    def active_output_mass(self, x: torch.Tensor) -> torch.Tensor:
        """``S_e(x_i) = sum_j v_j^2 1[w_j x_i + b_j > 0]``, shape ``(E, n)`` (the book's derivation)."""
        gate = (self.preactivations(x) > 0).to(self.w.dtype)
        return torch.matmul(gate, (self.v ** 2)[:, :, None]).squeeze(-1)

    def clone(self) -> "TwoLayerEnsemble":
        return TwoLayerEnsemble(self.w.clone(), self.b.clone(), self.v.clone())

    def member(self, e: int) -> TwoLayerReLU:
        """Member ``e`` as a :class:`lib.models.TwoLayerReLU` (a copy)."""
        net = TwoLayerReLU(self.dim, self.width)
        with torch.no_grad():
            net.w.copy_(self.w[e])
            net.b.copy_(self.b[e])
            net.v.copy_(self.v[e])
        return net.to(self.w.device)

    @classmethod
    def stack(cls, nets: Sequence[TwoLayerReLU]) -> "TwoLayerEnsemble":
        """An ensemble holding copies of the parameters of ``nets`` (same d and width)."""
        w = torch.stack([n.w.detach() for n in nets]).clone()
        b = torch.stack([n.b.detach() if n.b is not None else torch.zeros_like(n.v) for n in nets]).clone()
        v = torch.stack([n.v.detach() for n in nets]).clone()
        return cls(w, b, v)


def init(n_members: int, d: int, width: int, *, init_scale: Scalars = 1.0, dims: Sequence[int] | None = None,
         widths: Sequence[int] | None = None, random_bias: bool = True,
         first_layer_std: Scalars | None = None, generator: torch.Generator | None = None,
         device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TwoLayerEnsemble:
    """A fresh ensemble: ``w, b ~ N(0, s^2/d_e)``, ``v ~ N(0, s^2/m_e)`` per member.

    Fan-in scaling times the member's ``init_scale`` ``s``, as in
    :class:`lib.models.TwoLayerReLU`; the bias is drawn like a weight on a constant
    input (as PyTorch's ``nn.Linear`` does), or zero with ``random_bias=False``.
    ``first_layer_std`` (per member) replaces ``s/sqrt(d_e)`` for ``w`` and ``b`` by a
    standard deviation that does not shrink with the input dimension.
    ``dims``/``widths`` give per-member input dimension and width (at most ``d`` /
    ``width``); the unused columns/rows are zero.
    """
    if n_members < 1 or d < 1 or width < 1:
        raise ParameterError(f"n_members, d and width must be positive, got {n_members}, {d}, {width}")
    s = per_member(init_scale, n_members, "init_scale", dtype=torch.float64, positive=True)
    de = torch.as_tensor(dims if dims is not None else [d] * n_members, dtype=torch.long)
    me = torch.as_tensor(widths if widths is not None else [width] * n_members, dtype=torch.long)
    for name, vals, top in (("dims", de, d), ("widths", me, width)):
        if vals.shape != (n_members,) or (vals < 1).any() or (vals > top).any():
            raise ParameterError(f"parameter {name!r} needs {n_members} values in [1, {top}], got {vals.tolist()}")
    w = torch.randn(n_members, width, d, generator=generator, dtype=torch.float64)
    v = torch.randn(n_members, width, generator=generator, dtype=torch.float64)
    row_mask = (torch.arange(width)[None, :] < me[:, None]).double()  # (E, m)
    col_mask = (torch.arange(d)[None, :] < de[:, None]).double()  # (E, d)
    std = s / de.double().sqrt()
    if first_layer_std is not None:
        std = per_member(first_layer_std, n_members, "first_layer_std", dtype=torch.float64, positive=True)
    w = w * std[:, None, None] * row_mask[:, :, None] * col_mask[:, None, :]
    v = v * (s / me.double().sqrt())[:, None] * row_mask
    b = torch.randn(n_members, width, generator=generator, dtype=torch.float64)
    b = b * std[:, None] * row_mask * float(random_bias)
    return TwoLayerEnsemble(*(t.to(device=device, dtype=dtype) for t in (w, b, v)))


@dataclass
class FitResult:
    """Per-member outcome of :func:`fit` (tensors of shape ``(E,)``) and a sparse history.

    ``shrink`` is the factor ``1 - lr * wd`` that each plain-GD step applied to the
    weights, exactly as rounded in the training dtype.
    """

    steps: torch.Tensor
    reached: torch.Tensor
    min_margin: torch.Tensor
    loss: torch.Tensor
    shrink: torch.Tensor
    history: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def decay(self) -> torch.Tensor:
        """``(1 - lr * wd) ** steps`` per member: how much plain GD shrank the weights off the data span."""
        return self.shrink.double() ** self.steps.double()


def logistic_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss ``log(1 + exp(-y f))`` over the last axis."""
    return F.softplus(-y * f).mean(-1)


class _Workspace:
    """Forward pass and hand-written gradients of the mean logistic loss for all members.

    The ``(E, n, m)`` intermediates live in buffers allocated once, so a training loop
    does not allocate (and page-fault) large temporaries at every step; products are
    laid out as (row vector) x (matrix), which CPU kernels run much faster than
    (matrix) x (column vector) for these shapes.
    """

    def __init__(self, ens: TwoLayerEnsemble, x: torch.Tensor, y: torch.Tensor):
        E, m, d = ens.w.shape
        self.x = x if x.ndim == 3 else x.expand(E, *x.shape)  # a view, not a copy
        self.xt = self.x.transpose(1, 2)
        self.y = y
        n = y.shape[-1]
        new = ens.w.new_empty
        self.pre, self.h, self.gpre = new(E, n, m), new(E, n, m), new(E, n, m)
        self.on = new(E, n, m)  # the ReLU gate as 0/1 floats (masked_fill is far slower on CPU)
        self.f, self.gv, self.gwt, self.gb = new(E, 1, n), new(E, 1, m), new(E, d, m), new(E, m)

    def __call__(self, ens: TwoLayerEnsemble):
        pre, h, gpre = self.pre, self.h, self.gpre
        torch.baddbmm(ens.b[:, None, :], self.x, ens.w.transpose(1, 2), out=pre)
        torch.clamp_min(pre, 0, out=h)
        torch.bmm(ens.v[:, None, :], h.transpose(1, 2), out=self.f)
        f = self.f[:, 0, :]
        z = self.y * f
        g = -self.y * torch.sigmoid(-z) / f.shape[-1]  # dL/df, (E, n)
        torch.bmm(g[:, None, :], h, out=self.gv)
        torch.mul(g[:, :, None], ens.v[:, None, :], out=gpre)
        gpre.mul_(torch.gt(pre, 0, out=self.on))
        torch.bmm(self.xt, gpre, out=self.gwt)
        torch.sum(gpre, 1, out=self.gb)
        return f, z, self.gwt.transpose(1, 2), self.gb, self.gv[:, 0, :]


def fit(ens: TwoLayerEnsemble, x: torch.Tensor, y: torch.Tensor, *, lr: Scalars, steps: int,
        weight_decay: Scalars = 0.0, margin: float | None = None, optimizer: str = "gd",
        train_output: bool = True, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        log_every: int = 0, progress: bool = True, desc: str = "ensemble") -> FitResult:
    """Train every member in place by full-batch descent on the mean logistic loss.

    ``x`` is ``(n, d)`` shared by all members or ``(E, n, d)``; ``y`` is ``(n,)`` or
    ``(E, n)`` (0/1 or -1/+1). ``lr`` and ``weight_decay`` (an L2 penalty
    ``wd/2 * ||theta||^2`` on all parameters) are scalars or one value per member.
    ``optimizer`` is ``"gd"`` (plain gradient descent) or ``"adam"``. A member stops
    (its parameters and optimizer state freeze) once ``min_i y_i f(x_i) >= margin``.
    """
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"parameter 'optimizer' is {optimizer!r}; allowed values: "
                             + ", ".join(map(repr, OPTIMIZERS)))
    if steps < 0:
        raise ParameterError(f"parameter 'steps' must be >= 0, got {steps}")
    if margin is not None and not margin > 0:
        raise ParameterError(f"parameter 'margin' must be > 0, got {margin}")
    E, dev, dt = ens.n_members, ens.w.device, ens.w.dtype
    lr_t = per_member(lr, E, "lr", device=dev, dtype=dt, positive=True)
    wd_t = per_member(weight_decay, E, "weight_decay", device=dev, dtype=dt)
    x = x.to(device=dev, dtype=dt)
    y = signed(y).to(device=dev, dtype=dt)
    if y.ndim == 1:
        y = y.expand(E, -1)
    if x.shape[-2] != y.shape[-1] or x.shape[-1] != ens.dim:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} do not fit an ensemble of input dim {ens.dim}")
    params = [ens.w, ens.b] + ([ens.v] if train_output else [])
    use_wd = bool((wd_t > 0).any())
    done = torch.zeros(E, dtype=torch.bool, device=dev)
    n_steps = torch.zeros(E, dtype=torch.long, device=dev)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params] if optimizer == "adam" else None
    hist: dict[str, list] = {"step": [], "loss": [], "min_margin": []}
    work = _Workspace(ens, x, y)
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=0.5)
    for t in bar:
        f, z, gw, gb, gv = work(ens)
        min_margin = z.min(-1).values
        if margin is not None:
            done |= min_margin >= margin
        if log_every and t % log_every == 0:
            hist["step"].append(t)
            hist["loss"].append(F.softplus(-z).mean(-1).cpu().numpy())
            hist["min_margin"].append(min_margin.cpu().numpy())
        if bool(done.all()):
            break
        active = (~done).to(dt)
        grads = [gw, gb] + ([gv] if train_output else [])
        n_steps += (~done).long()
        if optimizer == "gd":
            rate = lr_t * active
            shrink = 1 - rate * wd_t  # the L2 term, applied as a multiplicative decay (1 when stopped)
            for p, g in zip(params, grads):
                if use_wd:
                    p.mul_(_bc(shrink, p))
                p.addcmul_(_bc(rate, p), g, value=-1)
        else:
            if use_wd:
                grads = [g + _bc(wd_t, g) * p for g, p in zip(grads, params)]
            b1, b2 = betas
            tt = n_steps.to(dt).clamp(min=1)
            c1, c2 = 1 - b1 ** tt, 1 - b2 ** tt
            for p, g, (m1, m2) in zip(params, grads, moments):
                keep = _bc(active, p)
                m1.add_(keep * (1 - b1) * (g - m1))
                m2.add_(keep * (1 - b2) * (g * g - m2))
                p.sub_(_bc(lr_t * active / c1, p) * m1 / ((m2 / _bc(c2, p)).sqrt() + eps))
        if t % 200 == 0:
            bar.set_postfix(running=int((~done).sum()))
    f = ens.forward(x)
    z = y * f
    final_margin = z.min(-1).values
    reached = final_margin >= margin if margin is not None else torch.zeros(E, dtype=torch.bool, device=dev)
    history = {k: np.asarray(v) for k, v in hist.items()} if log_every else {}
    return FitResult(n_steps.cpu(), reached.cpu(), final_margin.cpu(), F.softplus(-z).mean(-1).cpu(),
                     (1 - lr_t * wd_t).cpu(), history)


def _bc(per: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-member vector ``(E,)`` shaped to broadcast against ``like`` ``(E, ...)``."""
    return per.view(-1, *([1] * (like.ndim - 1)))
