"""Adversarial attacks and noise: FGSM, PGD (L-inf and L2), the minimal-norm L2 attack FMN, Gaussian noise.

One call per attack, in the style of torchattacks: the device is taken from the
inputs, results are clamped to ``clamp`` (the data's valid range), the model's
train/eval mode is restored, the inputs are never modified, and random starts
draw from an explicit ``torch.Generator`` so a seeded run repeats exactly.
``eps`` may be a float or a per-sample tensor of shape ``(N,)``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, NamedTuple

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


class MinNorm(NamedTuple):
    """Output of :func:`fmn`: per-sample L2 norm of the smallest flipping perturbation found (``inf`` if none)
    and that perturbation (zero if none)."""

    norm: torch.Tensor
    delta: torch.Tensor


def fmn(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 30,
    candidates: int = 2,
    eps_max: float = math.inf,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    alpha: tuple[float, float] = (0.5, 0.01),
    gamma: tuple[float, float] = (0.05, 0.001),
) -> MinNorm:
    """Smallest L2 perturbation that moves the prediction off ``y``: Fast Minimum-Norm attack (FMN).

    Pintor, Roli, Brendel and Biggio, "Fast Minimum-norm Adversarial Attacks through Adaptive
    Norm Constraints", NeurIPS 2021 (arXiv:2102.12827), Algorithm 1, L2 case: one run adapts
    the norm bound while it searches, so it replaces a whole budget search. Each step ``k``
    of ``steps``, from ``delta = 0``, ``eps = inf``:

    - ``m = z_t - z_y``, the logit margin to a target class ``t``, and its input gradient
      ``g`` (projected by ``project``; with ``clamp``, zero on the pixels at a bound of the
      box that ``g`` pushes out of it, which no step can move);
    - the norm bound: ``eps <- min(eps (1 - gamma_k), |best delta|)`` if ``x + delta``
      flips; ``eps (1 + gamma_k)`` if not but an earlier iterate flipped; else the linear
      estimate of the distance to the boundary, ``(|delta| + |m| / |g|) (1 + gamma_k)``
      (the factor makes the iterate cross the boundary rather than near it from one side);
      never above ``eps_max``;
    - the step: ``delta <- delta + alpha_k eps g / |g|``, then ``delta <- delta min(1,
      eps / |delta|)`` (into the ball) and clamped to the box. ``alpha_k`` and ``gamma_k``
      fall from their first to their last value by cosine annealing.

    Departures from the paper, each measured against foolbox's DDN (Rony et al., CVPR
    2019) and FAB (Croce and Hein, ICML 2020) and against the book's budget search: the step
    is ``alpha_k`` times the bound (the paper's is absolute, for pixels in [0, 1]), so the
    attack works at any scale, its first step along DeepFool's (Moosavi-Dezfooli et al., CVPR
    2016); ``alpha`` starts at 0.5, not the paper's 1: a step of the whole bound overshoots
    where the boundary bends, and on chapter 2's synthetic settings the iterate then met
    far parts of the boundary (tests/test_ch02.py: 83% of points within 1.10x of the budget
    search's distance, seven checkpoints' medians above 1.05x, up to 4.1x; from 0.5: 99.2%,
    none); the margin is to a fixed class, not the largest other logit, which is often not
    the nearest boundary: the ``candidates`` classes ``j`` whose boundary the linearisation at ``x`` puts nearest,
    ``(z_y - z_j) / |grad (z_j - z_y)|`` (FAB's choice of class; one gradient per class),
    are attacked side by side and the smaller flip kept. Cost per input: one gradient per
    class, then ``candidates * steps``.

    ``project`` maps a batch of gradients of the inputs ``x`` (same rows) into each row's
    allowed subspace; unclamped (``clamp=None``) the perturbation stays in it. Nothing is
    random: a run repeats exactly. Returns the smallest flipping perturbation among the
    iterates (zero, norm 0, for inputs already off ``y``).
    """
    if steps < 1:
        raise ParameterError(f"parameter 'steps' must be >= 1, got {steps}")
    if candidates < 1:
        raise ParameterError(f"parameter 'candidates' must be >= 1, got {candidates}")
    if not eps_max > 0:
        raise ParameterError(f"parameter 'eps_max' must be > 0, got {eps_max}")
    x0 = x.detach()
    n, shape = len(x0), (-1,) + (1,) * (x0.ndim - 1)
    with eval_mode(model):
        targets = _nearest_classes(model, x0, y, candidates, project, clamp)
        t = targets.shape[1]
        xs, ys, ts = x0.repeat(t, *([1] * (x0.ndim - 1))), y.repeat(t), targets.T.reshape(-1)

        delta = torch.zeros_like(xs)
        best = torch.zeros_like(xs)
        eps = torch.full((len(xs),), math.inf, dtype=x0.dtype, device=x0.device)
        best_norm = eps.clone()
        found = torch.zeros(len(xs), dtype=torch.bool, device=x0.device)
        for k in range(steps + 1):
            xa = (xs + delta).requires_grad_(True)
            logits = model(xa)
            norm = _norms(delta).view(-1)
            flipped = logits.argmax(1) != ys
            better = flipped & (norm < best_norm)
            best_norm = torch.where(better, norm, best_norm)
            best = torch.where(better.view(shape), delta, best)
            found |= flipped
            if k == steps:  # the last iterate is checked, not stepped from
                break
            margin = logits.gather(1, ts[:, None]) - logits.gather(1, ys[:, None])
            (g,) = torch.autograd.grad(margin.sum(), xa)
            if project is not None:  # each candidate's block of rows is a batch of the inputs x
                g = torch.cat([project(b) for b in g.split(n)])
            g = _movable(g, xa.detach(), clamp)
            gn = _norms(g).view(-1).clamp_min(1e-12)
            gam, alp = _cosine(gamma, k, steps), _cosine(alpha, k, steps)
            estimate = (norm + margin.detach().view(-1).abs() / gn) * (1 + gam)
            eps = torch.where(
                flipped,
                torch.minimum(eps * (1 - gam), best_norm),
                torch.where(found, eps * (1 + gam), estimate),
            ).clamp(max=eps_max)
            delta = delta + (alp * eps / gn).view(shape) * g
            delta = delta * (eps / _norms(delta).view(-1).clamp_min(1e-12)).clamp(max=1).view(shape)
            if clamp is not None:
                delta = (xs + delta).clamp(*clamp) - xs
            delta = delta.detach()
    # the smallest flip over the candidates, per input
    pick = best_norm.view(t, n).argmin(0)
    rows = pick * n + torch.arange(n, device=x0.device)
    return MinNorm(best_norm[rows], best[rows])


def _cosine(values: tuple[float, float], k: int, steps: int) -> float:
    """Cosine annealing from ``values[0]`` at step 0 towards ``values[1]`` at step ``steps``."""
    first, last = values
    return last + (first - last) * (1 + math.cos(math.pi * k / steps)) / 2


def _movable(g: torch.Tensor, xa: torch.Tensor, clamp: tuple[float, float] | None) -> torch.Tensor:
    """``g`` with zeros where ``xa`` sits on a bound of the box ``clamp`` and ``g`` points out of it."""
    if clamp is None:
        return g
    return torch.where(((xa <= clamp[0]) & (g < 0)) | ((xa >= clamp[1]) & (g > 0)), 0.0, g)


def _nearest_classes(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    count: int,
    project: Callable[[torch.Tensor], torch.Tensor] | None,
    clamp: tuple[float, float] | None,
) -> torch.Tensor:
    """Per input, the ``count`` classes ``j != y`` with the smallest linearised distance ``(z_y - z_j) / |grad|``.

    ``grad`` is the input gradient of ``z_j - z_y``, projected as the attack's steps are
    (``project``, and the box's blocked pixels zeroed), so the distance is the one the
    attack can travel. Shape ``(N, min(count, classes - 1))``.
    """
    xr = x.detach().requires_grad_(True)
    logits = model(xr)
    classes = logits.shape[1]
    zy = logits.gather(1, y[:, None])
    dist = torch.full(logits.shape, math.inf, dtype=x.dtype, device=x.device)
    for j in range(classes):
        (g,) = torch.autograd.grad((logits[:, j : j + 1] - zy).sum(), xr, retain_graph=j < classes - 1)
        g = _movable(g if project is None else project(g), x, clamp)
        dist[:, j] = (zy[:, 0] - logits[:, j]).detach() / _norms(g).view(-1).clamp_min(1e-12)
    dist.scatter_(1, y[:, None], math.inf)
    return dist.argsort(dim=1, stable=True)[:, : min(count, classes - 1)]


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
