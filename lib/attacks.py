"""Adversarial attacks and noise: FGSM, PGD (L-inf and L2), Gaussian noise.

One call per attack, in the style of torchattacks: the device is taken from the
inputs, results are clamped to ``clamp`` (the data's valid range), the model's
train/eval mode is restored, the inputs are never modified, and random starts
draw from an explicit ``torch.Generator`` so a seeded run repeats exactly.
``eps`` may be a float or a per-sample tensor of shape ``(N,)``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import ParameterError

NORMS = ("linf", "l2")
# Largest batch (in numbers) whose PGD update runs on one CPU thread; see pgd.
SERIAL_UPDATE_MAX = 1 << 19
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextmanager
def eval_mode(model: nn.Module):
    """Put ``model`` in eval mode and restore its previous mode afterwards.

    A model already wholly in eval mode is left alone: ``eval()`` and ``train()`` walk
    every module, about 35 us for a small MLP, which an attack of a few milliseconds
    would pay on every call.
    """
    if not any(m.training for m in model.modules()):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _per_sample(eps: float | torch.Tensor, x: torch.Tensor, name: str = "eps") -> float | torch.Tensor:
    """``eps`` checked finite and >= 0: a float, or a per-sample tensor shaped ``(N, 1, 1, ...)`` against ``x``.

    A scalar stays a Python float: as an operand it costs nothing, where a 0-dim tensor
    costs a broadcast pass over the batch in every operation it enters.
    """
    if isinstance(eps, (int, float)) and not isinstance(eps, bool):
        if not (math.isfinite(eps) and eps >= 0):
            raise ParameterError(f"parameter {name!r} must be finite and >= 0, got {eps!r}")
        return float(eps)
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
    if torch.any(e < 0) or not torch.all(torch.isfinite(e)):
        raise ParameterError(f"parameter {name!r} must be finite and >= 0, got {eps!r}")
    if e.ndim == 0:
        return float(e)
    if e.shape != (len(x),):
        raise ParameterError(f"parameter {name!r} as a tensor must have shape ({len(x)},), got {tuple(e.shape)}")
    return e.view(-1, *([1] * (x.ndim - 1)))


def _clamp(x: torch.Tensor, clamp: tuple[float, float] | None) -> torch.Tensor:
    return x if clamp is None else x.clamp(*clamp)


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Loss) -> torch.Tensor:
    """Gradient of the summed loss w.r.t. the input only (parameters' .grad untouched)."""
    x = x.detach().requires_grad_(True)
    loss = loss_fn(model(x), y)
    (g,) = torch.autograd.grad(loss, x)
    return g


def _ce_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="sum")


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | torch.Tensor,
    *,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: Loss = _ce_sum,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): ``x + eps * sign(grad_x loss)``.

    With ``targeted=True``, ``y`` holds target classes and the step descends their loss.
    """
    e = _per_sample(eps, x)
    with eval_mode(model):
        g = _input_grad(model, x, y, loss_fn)
    step = -g.sign() if targeted else g.sign()
    return _clamp(x.detach() + e * step, clamp).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | torch.Tensor,
    *,
    norm: str = "linf",
    steps: int = 10,
    step_size: float | torch.Tensor | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: Loss = _ce_sum,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) in the ``norm`` ball of radius ``eps``.

    ``step_size`` defaults to ``2.5 * eps / steps``. The random start is uniform in the
    L-inf ball, or uniform in the L2 ball, drawn from ``generator`` (on the inputs'
    device, or CPU and moved). ``project`` (optional) maps every step direction into a
    linear subspace before it is taken (on-/off-manifold attacks).
    """
    if norm not in NORMS:
        raise ParameterError(f"parameter 'norm' is {norm!r}; allowed values: {', '.join(map(repr, NORMS))}")
    if steps < 1:
        raise ParameterError(f"parameter 'steps' must be >= 1, got {steps}")
    e = _per_sample(eps, x)
    step = 2.5 * e / steps if step_size is None else _per_sample(step_size, x, "step_size")
    # A targeted step descends: fold the sign into the step size (the projection is linear).
    step = -step if targeted else step
    x0 = x.detach()
    # On CPU, the few elementwise operations of an update run on one thread when the batch
    # is small: each parallel region wakes the sleeping OpenMP threads (OMP_WAIT_POLICY=
    # PASSIVE), which cost more than the work. On the 2-core machine a 3-operation L-inf
    # update of 100,000 floats took 367 us at 2 threads and 101 us at 1; the two are even
    # near 500,000 floats. Forward and backward passes keep every thread.
    threads = torch.get_num_threads()
    serial = x0.device.type == "cpu" and threads > 1 and x0.numel() <= SERIAL_UPDATE_MAX
    try:
        if serial:
            torch.set_num_threads(1)
        if random_start:
            delta = _random_start(x0, e, norm, generator)
            if project is not None:
                delta = project(delta)
            # The iterate starts in the start's memory when that belongs to this call.
            xa = delta.add_(x0) if project is None else x0 + delta
            xa = _clamp_(xa, clamp)
        else:
            xa = x0.clone() if clamp is None else x0.clamp(*clamp)  # a fresh tensor in one operation
        bounds = _step_bounds(x0, e, norm, clamp)
        # Each iteration: one forward, one backward to the input, and as few operations as the
        # update needs (3 for L-inf; 8 for L2, two of them per-sample norms): after a forward
        # and backward pass each further operation costs its dispatch from cold caches
        # (15-25 us on CPU, whatever its size), so the count matters as much as the passes.
        # The updates write in place into the gradient and the iterate, which belong to this
        # call alone (the iterate is a fresh tensor from the start on and the graph of its
        # gradient is already freed), so no step allocates a batch-sized tensor and the
        # inputs are never written to.
        linf, scalar, scalar_e = norm == "linf", isinstance(step, float), isinstance(e, float)
        if not linf:
            # L2 projection: delta * min(1, e / |delta|) = delta * e / max(|delta|, e); the floor
            # keeps e = 0 (and a zero delta) away from 0 / 0.
            e_floor = max(e, 1e-12) if scalar_e else e.clamp_min(1e-12)
        with eval_mode(model):
            for _ in range(steps):
                if serial:
                    torch.set_num_threads(threads)
                g = _input_grad(model, xa, y, loss_fn)
                if project is not None:
                    g = project(g)
                if serial:
                    torch.set_num_threads(1)
                if not g.is_contiguous():  # e.g. an expanded gradient: in-place writes need their own memory
                    g = g.contiguous()
                if linf:
                    g.sign_()
                    xa = _clamp_(xa.add_(g, alpha=step) if scalar else xa.addcmul_(step, g), bounds)
                else:
                    gn = _norms(g).clamp_min_(1e-12)
                    delta = (xa.addcdiv_(g, gn, value=step) if scalar else xa.addcmul_(g, step / gn)).sub_(x0)
                    dn = _norms(delta).clamp_min_(e_floor)
                    # g is spent: the new iterate reuses its memory
                    xa = _clamp_(
                        torch.addcdiv(x0, delta, dn, value=e, out=g)
                        if scalar_e
                        else torch.addcdiv(x0, delta, dn.div_(e), out=g),
                        bounds,
                    )
    finally:
        if serial:
            torch.set_num_threads(threads)
    return xa.detach()


def pgd_training(
    eps: float,
    *,
    norm: str = "l2",
    steps: int,
    generator: torch.Generator | None = None,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """PGD adversarial training (Madry et al. 2018) as a batch ``transform`` for :func:`lib.train.fit`.

    Every batch is replaced by its :func:`pgd` examples at budget ``eps`` against the model
    being trained; the random starts draw from ``generator``, one draw per batch.
    """
    if norm not in NORMS:
        raise ParameterError(f"parameter 'norm' is {norm!r}; allowed values: {', '.join(map(repr, NORMS))}")

    def transform(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return pgd(model, xb, yb, eps, norm=norm, steps=steps, generator=generator, clamp=clamp)

    return transform


def _norms(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norms of ``v``, shaped ``(N, 1, ...)`` to broadcast against it (one operation)."""
    return torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True)


def _random_start(
    x0: torch.Tensor, e: float | torch.Tensor, norm: str, generator: torch.Generator | None
) -> torch.Tensor:
    """A start uniform in the L-inf ball, or uniform in the L2 ball, of radius ``e``, from ``generator``.

    A fresh tensor, written in place: one draw and at most one more pass over the batch.
    """
    gdev = generator.device if generator is not None else x0.device
    if norm == "linf":
        r = torch.empty(x0.shape, device=gdev, dtype=x0.dtype)
        if isinstance(e, float):
            return r.uniform_(-e, e, generator=generator).to(x0.device)
        return r.uniform_(-1.0, 1.0, generator=generator).to(x0.device).mul_(e)
    r = torch.randn(x0.shape, generator=generator, device=gdev, dtype=x0.dtype).to(x0.device)
    n = x0[0].numel()
    u = torch.rand(len(x0), generator=generator, device=gdev, dtype=x0.dtype).to(x0.device)
    radius = u.pow(1.0 / n).view(-1, *([1] * (x0.ndim - 1)))
    return r.mul_(radius * e / _norms(r).clamp_min(1e-12))  # per-sample factors: (N, 1, ...)


def _step_bounds(
    x0: torch.Tensor, e: float | torch.Tensor, norm: str, clamp: tuple[float, float] | None
) -> tuple | None:
    """Bounds of every iterate: the L-inf box of ``x0`` within the valid range, or the range alone.

    Clamping the box ``[x0 - e, x0 + e]`` to the range first makes one clamp equal to
    the box clamp followed by the range clamp, even for inputs outside the range.
    """
    if norm == "l2":
        return clamp
    lo, hi = x0 - e, x0 + e
    return (lo, hi) if clamp is None else (lo.clamp_(*clamp), hi.clamp_(*clamp))


def _clamp_(x: torch.Tensor, bounds: tuple | None) -> torch.Tensor:
    """``x`` clamped in place to ``bounds`` (floats or tensors), or unchanged for None."""
    return x if bounds is None else x.clamp_(*bounds)


def gaussian_noise(
    x: torch.Tensor,
    std: float | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """``x`` plus independent N(0, std^2) noise per coordinate, clamped to the valid range."""
    s = _per_sample(std, x, "std")
    gdev = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=gdev, dtype=x.dtype).to(x.device)
    return _clamp(x.detach() + s * noise, clamp)


def noise_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, std: float | torch.Tensor, **kwargs
) -> torch.Tensor:
    """:func:`gaussian_noise` with the attacks' call signature (model and labels unused)."""
    return gaussian_noise(x, std, **kwargs)


def accuracy_under(
    model: nn.Module,
    attack: Callable[..., torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    strengths,
    batch_size: int = 2048,
    **kwargs,
) -> list[float]:
    """Accuracy of ``model`` on ``attack(model, x, y, s, **kwargs)`` for each strength ``s``."""
    out = []
    for s in strengths:
        correct = 0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            xa = attack(model, xb, yb, s, **kwargs)
            with torch.no_grad(), eval_mode(model):
                correct += (model(xa).argmax(1) == yb).sum().item()
        out.append(correct / len(x))
    return out
