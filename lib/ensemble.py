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
its minimum margin ``min_i y_i f(x_i)`` reaches the target (or at the step budget).
A finished member leaves the batch: the remaining members are gathered into a smaller
batch, so a group costs what its running members cost, not what its slowest member
costs, and a member's result does not depend on when the others stop.

Three initialisations (``INIT_SCHEMES``): the book's Gaussian fan-in scheme (weights
and biases ``N(0, s^2/fan_in)``, no output bias), and the two of the authors' figure
code for chapter 4 (PyTorch's ``nn.Linear`` default, uniform, or Gaussian fan-in
weights; in both the weights are divided by the init factor while the biases keep
PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and there is an output bias).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import ParameterError
from .models import TwoLayerReLU

OPTIMIZERS = ("gd", "adam")
INIT_SCHEMES = ("fan-in-gaussian", "pytorch-uniform", "gaussian-weights")
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


def per_member(
    value: Scalars, n: int, name: str, *, device=None, dtype=torch.float32, positive: bool = False
) -> torch.Tensor:
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
    """Stacked parameters of ``E`` two-layer ReLU networks with scalar output.

    ``c`` is an optional output bias ``(E,)``: ``f_e(x) = sum_j v_ej relu(w_ej . x + b_ej) + c_e``.
    """

    w: torch.Tensor  # (E, m, d)
    b: torch.Tensor  # (E, m)
    v: torch.Tensor  # (E, m)
    c: torch.Tensor | None = None  # (E,) output bias, or none

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
        out = torch.matmul(torch.relu(self.preactivations(x)), self.v[:, :, None]).squeeze(-1)
        return out if self.c is None else out + self.c[:, None]

    __call__ = forward

    def input_grad(self, x: torch.Tensor) -> torch.Tensor:
        """``grad_x f_e(x_i) = sum_j v_j 1[w_j x + b_j > 0] w_j`` of shape ``(E, n, d)``."""
        gate = (self.preactivations(x) > 0).to(self.w.dtype) * self.v[:, None, :]
        return torch.matmul(gate, self.w)

    def active_output_mass(self, x: torch.Tensor) -> torch.Tensor:
        """``S_e(x_i) = sum_j v_j^2 1[w_j x_i + b_j > 0]``, shape ``(E, n)`` (the book's derivation)."""
        gate = (self.preactivations(x) > 0).to(self.w.dtype)
        return torch.matmul(gate, (self.v**2)[:, :, None]).squeeze(-1)

    def clone(self) -> "TwoLayerEnsemble":
        return TwoLayerEnsemble(
            self.w.clone(), self.b.clone(), self.v.clone(), None if self.c is None else self.c.clone()
        )

    def select(self, idx: torch.Tensor) -> "TwoLayerEnsemble":
        """The members ``idx`` (a copy), in that order."""
        return TwoLayerEnsemble(*(None if t is None else t.index_select(0, idx) for t in self._tensors()))

    def assign(self, idx: torch.Tensor, other: "TwoLayerEnsemble") -> None:
        """Write the members of ``other`` into members ``idx`` of this ensemble, in place."""
        for mine, theirs in zip(self._tensors(), other._tensors()):
            if mine is not None:
                mine.index_copy_(0, idx, theirs)

    def _tensors(self) -> tuple:
        return self.w, self.b, self.v, self.c

    def bias_as_unit(self) -> "TwoLayerEnsemble":
        """The same functions without an output bias: ``c`` becomes one more hidden unit that is
        always on (``w = 0``, ``b = 1``, ``v = c``), so code written for bias-free networks applies."""
        if self.c is None:
            return self
        E, _, d = self.w.shape
        return TwoLayerEnsemble(
            torch.cat([self.w, self.w.new_zeros(E, 1, d)], 1),
            torch.cat([self.b, self.b.new_ones(E, 1)], 1),
            torch.cat([self.v, self.c[:, None]], 1),
        )

    def member(self, e: int) -> TwoLayerReLU:
        """Member ``e`` as a :class:`lib.models.TwoLayerReLU` (a copy; needs no output bias)."""
        if self.c is not None:
            raise ValueError("TwoLayerReLU has no output bias; use bias_as_unit() first")
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

    @classmethod
    def concat(cls, parts: Sequence["TwoLayerEnsemble"]) -> "TwoLayerEnsemble":
        """One ensemble holding the members of ``parts`` in order (all with or all without ``c``)."""
        has_c = {p.c is not None for p in parts}
        if len(has_c) != 1:
            raise ValueError("cannot concatenate ensembles with and without an output bias")
        cols = zip(*(p._tensors() for p in parts))
        return cls(*(None if ts[0] is None else torch.cat(ts) for ts in cols))


def init(
    n_members: int,
    d: int,
    width: int,
    *,
    init_scale: Scalars = 1.0,
    scheme: str = "fan-in-gaussian",
    dims: Sequence[int] | None = None,
    widths: Sequence[int] | None = None,
    random_bias: bool = True,
    first_layer_std: Scalars | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> TwoLayerEnsemble:
    """A fresh ensemble; ``s = init_scale`` per member (the authors' init factor is ``1/s``).

    ``scheme`` (fan-in = the member's own ``d_e`` for the first layer, ``m_e`` for the second):

    * ``"fan-in-gaussian"`` (the book's): ``w, b ~ N(0, s^2/d_e)``, ``v ~ N(0, s^2/m_e)``, no
      output bias, as in :class:`lib.models.TwoLayerReLU`; the bias is drawn like a weight on
      a constant input, or zero with ``random_bias=False``. ``first_layer_std`` (per member)
      replaces ``s/sqrt(d_e)`` for ``w`` and ``b`` by a standard deviation that does not
      shrink with the input dimension.
    * ``"pytorch-uniform"`` (the authors' chessboard): ``nn.Linear``'s default,
      ``w ~ s U(-1/sqrt(d_e), 1/sqrt(d_e))``, ``v ~ s U(-1/sqrt(m_e), 1/sqrt(m_e))``, biases
      ``b ~ U(-1/sqrt(d_e), 1/sqrt(d_e))`` and output bias ``c ~ U(-1/sqrt(m_e), 1/sqrt(m_e))``
      *not* scaled by ``s``.
    * ``"gaussian-weights"`` (the authors' diagonal): ``w ~ N(0, s^2/d_e)``, ``v ~ N(0, s^2/m_e)``,
      biases and output bias as in ``"pytorch-uniform"``.

    ``dims``/``widths`` give per-member input dimension and width (at most ``d`` /
    ``width``); the unused columns/rows are zero.
    """
    if n_members < 1 or d < 1 or width < 1:
        raise ParameterError(f"n_members, d and width must be positive, got {n_members}, {d}, {width}")
    if scheme not in INIT_SCHEMES:
        raise ParameterError(f"parameter 'scheme' is {scheme!r}; allowed values: " + ", ".join(map(repr, INIT_SCHEMES)))
    if first_layer_std is not None and scheme != "fan-in-gaussian":
        raise ParameterError(f"parameter 'first_layer_std' applies only to scheme 'fan-in-gaussian', not {scheme!r}")
    s = per_member(init_scale, n_members, "init_scale", dtype=torch.float64, positive=True)
    de = torch.as_tensor(dims if dims is not None else [d] * n_members, dtype=torch.long)
    me = torch.as_tensor(widths if widths is not None else [width] * n_members, dtype=torch.long)
    for name, vals, top in (("dims", de, d), ("widths", me, width)):
        if vals.shape != (n_members,) or (vals < 1).any() or (vals > top).any():
            raise ParameterError(f"parameter {name!r} needs {n_members} values in [1, {top}], got {vals.tolist()}")
    row_mask = (torch.arange(width)[None, :] < me[:, None]).double()  # (E, m)
    col_mask = (torch.arange(d)[None, :] < de[:, None]).double()  # (E, d)
    std, std_out = s / de.double().sqrt(), s / me.double().sqrt()  # fan-in scaling times s
    if scheme == "pytorch-uniform":
        w = _uniform((n_members, width, d), generator) * std[:, None, None]
        v = _uniform((n_members, width), generator) * std_out[:, None]
    else:
        w = torch.randn(n_members, width, d, generator=generator, dtype=torch.float64)
        v = torch.randn(n_members, width, generator=generator, dtype=torch.float64) * std_out[:, None]
        if first_layer_std is not None:
            std = per_member(first_layer_std, n_members, "first_layer_std", dtype=torch.float64, positive=True)
        w = w * std[:, None, None]
    w = w * row_mask[:, :, None] * col_mask[:, None, :]
    v = v * row_mask
    c = None
    if scheme == "fan-in-gaussian":
        b = torch.randn(n_members, width, generator=generator, dtype=torch.float64) * std[:, None]
    else:  # PyTorch's default bias, not divided by the init factor
        b = _uniform((n_members, width), generator) / de.double().sqrt()[:, None]
        c = _uniform((n_members,), generator) / me.double().sqrt() * float(random_bias)
    b = b * row_mask * float(random_bias)
    return TwoLayerEnsemble(*(None if t is None else t.to(device=device, dtype=dtype) for t in (w, b, v, c)))


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """``U(-1, 1)`` samples in float64."""
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1


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
    (matrix) x (column vector) for these shapes. The first-layer gradient is written in the
    weights' own layout ``(E, m, d)`` when ``d >= 16`` (the update then streams contiguous
    memory: 2-3x faster there) and transposed for smaller ``d``, where that product is the
    faster one. The layout depends on ``d`` only, never on the number of members.
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
        self.w_layout = d >= 16
        self.gw = new(E, m, d) if self.w_layout else new(E, d, m)
        self.f, self.gv, self.gb = new(E, 1, n), new(E, 1, m), new(E, m)
        # sigmoid runs on rows padded to a multiple of 64 floats: SIMD kernels and their scalar
        # tail round differently, and padding puts every member's values in the same lanes
        # whatever the number of members, so a member's numbers do not depend on the batch
        n_pad = -(-n // 64) * 64
        self.zbuf, self.sbuf = ens.w.new_zeros(E, n_pad), new(E, n_pad)

    def __call__(self, ens: TwoLayerEnsemble):
        """``(f, z = y f, [grad_w, grad_b, grad_v, grad_c])``; ``grad_c`` only with an output bias."""
        pre, h, gpre = self.pre, self.h, self.gpre
        torch.baddbmm(ens.b[:, None, :], self.x, ens.w.transpose(1, 2), out=pre)
        torch.clamp_min(pre, 0, out=h)
        torch.bmm(ens.v[:, None, :], h.transpose(1, 2), out=self.f)
        f = self.f[:, 0, :]
        if ens.c is not None:
            f = f + ens.c[:, None]
        n = f.shape[-1]
        z = torch.mul(self.y, f, out=self.zbuf[:, :n])
        torch.sigmoid(torch.neg(self.zbuf, out=self.sbuf), out=self.sbuf)
        g = -self.y * self.sbuf[:, :n] / n  # dL/df = -y sigmoid(-y f) / n, (E, n)
        torch.bmm(g[:, None, :], h, out=self.gv)
        torch.mul(g[:, :, None], ens.v[:, None, :], out=gpre)
        gpre.mul_(torch.gt(pre, 0, out=self.on))
        if self.w_layout:
            gw = torch.bmm(gpre.transpose(1, 2), self.x, out=self.gw)
        else:
            gw = torch.bmm(self.xt, gpre, out=self.gw).transpose(1, 2)
        torch.sum(gpre, 1, out=self.gb)
        grads = [gw, self.gb, self.gv[:, 0, :]]
        if ens.c is not None:
            grads.append(g.sum(-1))
        return f, z, grads


def fit(
    ens: TwoLayerEnsemble,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: Scalars,
    steps: int,
    weight_decay: Scalars = 0.0,
    margin: float | None = None,
    optimizer: str = "gd",
    train_output: bool = True,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    log_every: int = 0,
    progress: bool = True,
    desc: str = "ensemble",
    compact: bool = True,
) -> FitResult:
    """Train every member in place by full-batch descent on the mean logistic loss.

    ``x`` is ``(n, d)`` shared by all members or ``(E, n, d)``; ``y`` is ``(n,)`` or
    ``(E, n)`` (0/1 or -1/+1). ``lr`` and ``weight_decay`` (an L2 penalty
    ``wd/2 * ||theta||^2`` on all parameters, output bias included, as ``torch.optim.SGD``'s
    ``weight_decay``) are scalars or one value per member. ``optimizer`` is ``"gd"``
    (plain gradient descent) or ``"adam"``. A member stops (its parameters and optimizer
    state freeze) once ``min_i y_i f(x_i) >= margin`` before a step. With ``compact`` a
    stopped member leaves the batch, so the step costs only the running members; without
    it, stopped members stay in the batch with a zero step (the reference the tests
    compare with: both give the same numbers).
    """
    if optimizer not in OPTIMIZERS:
        raise ParameterError(
            f"parameter 'optimizer' is {optimizer!r}; allowed values: " + ", ".join(map(repr, OPTIMIZERS))
        )
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
    run = _Running(ens, x, y, lr_t, wd_t, optimizer, train_output, betas, eps)
    n_steps = torch.full((E,), -1, dtype=torch.long, device=dev)  # updates made, set when a member stops
    last_z = torch.zeros(E, y.shape[-1], dtype=dt, device=dev)  # y f of every member when last computed
    hist: dict[str, list] = {"step": [], "loss": [], "min_margin": []}
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=0.5)
    updates = 0
    for t in bar:
        _, z, grads = run.work(run.ens)
        if log_every and t % log_every == 0:
            last_z.index_copy_(0, run.idx, z)
            hist["step"].append(t)
            hist["loss"].append(F.softplus(-last_z).mean(-1).cpu().numpy())
            hist["min_margin"].append(last_z.min(-1).values.cpu().numpy())
        if margin is not None:
            fin = (z.min(-1).values >= margin) & ~run.done
            if bool(fin.any()):
                last_z.index_copy_(0, run.idx, z)  # a stopped member's margin no longer changes
                n_steps.index_fill_(0, run.idx[fin], t)
                if bool((fin | run.done).all()):
                    break
                if run.stop(fin, compact):  # a smaller batch: recompute the step of the members left
                    _, z, grads = run.work(run.ens)
        run.step(grads)
        updates = t + 1
        if t % 200 == 0:
            bar.set_postfix(running=run.n_running())
    run.write_back()
    n_steps = torch.where(n_steps < 0, updates, n_steps)
    z = y * ens.forward(x)
    final_margin = z.min(-1).values
    reached = final_margin >= margin if margin is not None else torch.zeros(E, dtype=torch.bool, device=dev)
    history = {k: np.asarray(v) for k, v in hist.items()} if log_every else {}
    loss = F.softplus(-z).mean(-1).cpu()
    _warn_diverged(loss, lr_t.cpu(), updates, desc)
    return FitResult(n_steps.cpu(), reached.cpu(), final_margin.cpu(), loss, (1 - lr_t * wd_t).cpu(), history)


def _warn_diverged(loss: torch.Tensor, lr: torch.Tensor, steps: int, desc: str) -> None:
    """A ``RuntimeWarning`` naming the members whose final training loss is not finite (they diverged)."""
    bad = (~torch.isfinite(loss)).nonzero().squeeze(1).tolist()
    if not bad:
        return
    shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    rates = sorted({float(lr[i]) for i in bad})
    warnings.warn(
        f"{desc}: the training loss of {len(bad)} of {len(loss)} members is not finite after "
        f"{steps} steps (members {shown}); training diverges, lower 'lr' "
        f"(theirs: {', '.join(f'{r:g}' for r in rates[:5])}{' ...' if len(rates) > 5 else ''})",
        RuntimeWarning,
        stacklevel=3,
    )


class _Running:
    """The members in the batch: their parameters, data, settings and optimizer state.

    Starts as the whole ensemble (updated in place). :meth:`stop` either marks members
    as stopped (a zero step from then on) or gathers the members that keep running into
    a smaller batch, after writing every member back into the full ensemble, so the full
    ensemble always holds each stopped member's final state.
    """

    def __init__(self, ens: TwoLayerEnsemble, x, y, lr, wd, optimizer: str, train_output: bool, betas, eps):
        self.full, self.ens, self.x, self.y, self.lr, self.wd = ens, ens, x, y, lr, wd
        self.train_output, self.adam, self.betas, self.eps = train_output, optimizer == "adam", betas, eps
        self.idx = torch.arange(ens.n_members, device=ens.w.device)
        self.done = torch.zeros(ens.n_members, dtype=torch.bool, device=ens.w.device)  # stopped, still in the batch
        self.use_wd = bool((wd > 0).any())
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params()] if self.adam else None
        ones = torch.ones(ens.n_members, dtype=ens.w.dtype, device=ens.w.device)
        self.pow1, self.pow2 = ones.clone(), ones.clone()  # beta^t per member (Adam's bias corrections)
        self.work = _Workspace(ens, x, y)
        self._factors()

    def params(self) -> list[torch.Tensor]:
        e = self.ens
        return [e.w, e.b] + ([e.v] + ([e.c] if e.c is not None else []) if self.train_output else [])

    def n_running(self) -> int:
        return int((~self.done).sum())

    def write_back(self) -> None:
        if self.ens is not self.full:
            self.full.assign(self.idx, self.ens)

    def _factors(self) -> None:
        """Per-parameter step factors of the current batch (a stopped member steps by 0)."""
        self.active = (~self.done).to(self.lr.dtype)
        # betas in the parameters' dtype (a Python float through torch.where would round to float32)
        one = torch.ones_like(self.lr)
        self.beta1, self.beta2 = (torch.where(self.done, one, one * b) for b in self.betas)
        rate = self.lr * self.active
        shrink = 1 - rate * self.wd  # the L2 term as a multiplicative decay (1 when stopped)
        self.factors = [(_bc(shrink, p), _bc(rate, p), _bc(self.active, p)) for p in self.params()]

    def stop(self, finished: torch.Tensor, compact: bool) -> bool:
        """Stop the members ``finished`` (a mask over the batch); with ``compact`` remove them once
        the stopped members are at least two and a quarter of the batch (so a batch is rebuilt
        only O(log E) times). Returns whether the batch changed.

        A batch never shrinks below two members: batched matmuls of one matrix take
        other kernels (with other rounding) than those of two or more, so one stopped
        member stays in the batch with a zero step when a single member keeps running.
        """
        stopped = finished | self.done
        keep = (~stopped).nonzero().squeeze(1)
        if not compact or len(stopped) - len(keep) < max(2, len(stopped) // 4):  # not worth a new batch yet
            self.done = stopped
            self._factors()
            return False
        self.write_back()
        if len(keep) == 1:
            keep = torch.cat([keep, stopped.nonzero()[:1, 0]]).sort().values
        self.idx = self.idx.index_select(0, keep)
        self.ens = self.full.select(self.idx)
        if self.x.ndim == 3:
            self.x = self.x.index_select(0, keep)
        self.y, self.lr, self.wd, self.done, self.pow1, self.pow2 = (
            t.index_select(0, keep) for t in (self.y, self.lr, self.wd, stopped, self.pow1, self.pow2)
        )
        if self.moments is not None:
            self.moments = [(m1.index_select(0, keep), m2.index_select(0, keep)) for m1, m2 in self.moments]
        self.work = _Workspace(self.ens, self.x, self.y)
        self._factors()
        return True

    def step(self, grads: list[torch.Tensor]) -> None:
        """One update of every member in the batch (a zero step for stopped members)."""
        params = self.params()
        if not self.adam:
            for p, g, (shrink, rate, _) in zip(params, grads, self.factors):
                if self.use_wd:
                    p.mul_(shrink)
                p.addcmul_(rate, g, value=-1)
            return
        if self.use_wd:
            grads = [g + _bc(self.wd, g) * p for g, p in zip(grads, params)]
        b1, b2 = self.betas
        # beta^t as a running product: elementwise pow takes SIMD or scalar paths by position
        self.pow1.mul_(self.beta1)
        self.pow2.mul_(self.beta2)
        c1, c2 = (1 - self.pow1).clamp_min(1 - b1), (1 - self.pow2).clamp_min(1 - b2)  # > 0 when stopped at 0
        for p, g, (m1, m2), (_, _, keep) in zip(params, grads, self.moments, self.factors):
            m1.add_(keep * (1 - b1) * (g - m1))
            m2.add_(keep * (1 - b2) * (g * g - m2))
            p.sub_(_bc(self.lr * self.active / c1, p) * m1 / ((m2 / _bc(c2, p)).sqrt() + self.eps))


def _bc(per: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-member vector ``(E,)`` shaped to broadcast against ``like`` ``(E, ...)``."""
    return per.view(-1, *([1] * (like.ndim - 1)))
