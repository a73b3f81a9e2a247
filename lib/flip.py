"""The smallest perturbation that flips a label: every search the book uses, in one place.

Which to use when:

- **An attack's budget** (chapters 2 and 3): :func:`budget_search` finds, per input, the
  smallest budget at which a per-input predicate ("the attack at this budget changes the
  label") turns true, for all inputs at once. :func:`smallest_flipping_eps` applies it to
  any ``lib.attacks`` attack (arithmetic bisection on ``[0, eps_max]``, for deterministic
  attacks such as FGSM or PGD without random start); :func:`min_flip_norm` to L2 PGD
  restricted to a subspace or not (doubling, then geometric bisection: the answer can
  span orders of magnitude).
- **The smallest flipping L2 perturbation** (chapters 2 and 5): :func:`flip_norms`, the one
  entry point, under any restrictions to subspaces; by default (``method="fmn"``) the
  minimal-norm attack :func:`lib.attacks.fmn` in one run (:func:`fmn_flip_norms`), with
  ``method="budget"`` the PGD budget search (:func:`min_flip_norms`), the reference it is
  tested against. On chapter 2's quick MLP (tests/test_flip.py) every point's FMN distance
  is within 1.10x of the better of foolbox's DDN and FAB (the budget search: 85% of
  points, median 1.03x), with no resolution floor; in chapters 2 and 5 on Fashion-MNIST
  (benchmarks/flip_chapters.py) 98.6-99.8% of points are within 1.10x of the budget
  search's distance (median 0.97-0.99x), from 0.35-0.70x its gradients.
- **A fixed direction** for any scalar score (label = sign): :func:`ray_distance` scans a
  grid along the ray and bisects the first sign change.
- **A fixed direction in a two-layer ReLU network**: :func:`ray_distance_exact` is exact
  (the score is piecewise linear along a ray); use it whenever the model is a
  :class:`lib.ensemble.TwoLayerEnsemble`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from . import attacks, manifold
from .config import Param, ParameterError
from .ensemble import TwoLayerEnsemble
from .train import predict

Score = Callable[[torch.Tensor], torch.Tensor]
# flips(idx, eps): whether inputs ``idx`` (long tensor) flip at budgets ``eps`` (scalar or one per index)
Flips = Callable[[torch.Tensor, "float | torch.Tensor"], torch.Tensor]


# ---------------------------------------------------------------- the budget of an attack


def budget_search(
    flips: Flips,
    n: int,
    eps_max: float,
    *,
    doublings: int = 0,
    bisection_steps: int = 12,
    geometric: bool = False,
    device=None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Per input, the smallest budget in ``(0, eps_max]`` at which a monotone predicate turns true.

    Growth: budgets ``eps_max / 2**doublings``, doubled up to ``eps_max``; each round asks
    only the inputs not yet flipped, and the first budget ``b`` that flips brackets the
    answer in ``(previous budget, b]``. Refinement: ``bisection_steps`` rounds of bisection
    on all bracketed inputs at once, arithmetic (``geometric=False``; absolute precision
    ``eps_max / 2**(doublings + steps)``) or geometric (relative precision
    ``2**(2**-steps)``). An arithmetic search starts from 0 and first asks every input at
    budget 0: those already flipped get 0. A geometric one cannot reach 0: an input that
    flips at the smallest budget ``b`` is bracketed in ``[b / 2, b]``. Returns the upper end
    of each final bracket, ``inf`` where even ``eps_max`` does not flip.
    """
    if not eps_max > 0 or not math.isfinite(eps_max):
        raise ParameterError(f"parameter 'eps_max' must be finite and > 0, got {eps_max}")
    if doublings < 0 or bisection_steps < 0:
        raise ParameterError(f"doublings and bisection_steps must be >= 0, got {doublings}, {bisection_steps}")
    hi = torch.full((n,), math.inf, dtype=dtype, device=device)
    lo = torch.zeros_like(hi)
    if not geometric:
        at_zero = flips(torch.arange(n, device=device), 0.0).bool()
        hi[at_zero] = 0.0
    eps = float(eps_max) * 2.0**-doublings
    below = eps / 2 if geometric else 0.0
    for _ in range(doublings + 1):
        idx = torch.isinf(hi).nonzero().squeeze(1)
        if len(idx) == 0:
            break
        ok = flips(idx, eps).bool()
        hi[idx[ok]], lo[idx[ok]] = eps, below
        below, eps = eps, eps * 2
    idx = (torch.isfinite(hi) & (hi > 0)).nonzero().squeeze(1)
    for _ in range(bisection_steps if len(idx) else 0):
        mid = (lo[idx] * hi[idx]).sqrt() if geometric else (lo[idx] + hi[idx]) / 2
        ok = flips(idx, mid).bool()
        hi[idx[ok]], lo[idx[~ok]] = mid[ok], mid[~ok]
    return hi


def smallest_flipping_eps(
    model: nn.Module,
    attack: Callable[..., torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    eps_max: float,
    *,
    bisection_steps: int = 12,
    batch_size: int = 4096,
    **attack_kw,
) -> torch.Tensor:
    """Per input, the smallest budget ``eps`` at which ``attack(model, x, y, eps)`` changes the label from ``y``.

    ``attack`` follows ``lib.attacks`` (per-sample ``eps`` tensor allowed) and must be
    deterministic, so that "flipped at eps" is a function of eps. :func:`budget_search`
    with arithmetic bisection on ``[0, eps_max]``: 0 for inputs already misclassified,
    ``inf`` for inputs the attack does not flip at ``eps_max``.
    """

    def flips(idx: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, len(idx), batch_size):
            j = idx[i : i + batch_size]
            e = eps if not torch.is_tensor(eps) else eps[i : i + batch_size].to(x.dtype)
            xa = attack(model, x[j], y[j], e, **attack_kw)
            out.append(predict(model, xa).argmax(1) != y[j])
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool, device=x.device)

    eps = budget_search(flips, len(x), eps_max, bisection_steps=bisection_steps, device=x.device)
    return eps.to(torch.float32)


class FlipResult(NamedTuple):
    """Output of :func:`min_flip_norm`: per-sample L2 norm (inf if never flipped) and perturbation."""

    norm: torch.Tensor
    delta: torch.Tensor


def min_flip_norm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps_max: float,
    bases: torch.Tensor | None = None,
    part: str = "on",
    steps: int = 10,
    doublings: int = 8,
    bisection_steps: int = 4,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    clamp: tuple[float, float] | None = None,
) -> FlipResult:
    """Smallest L2 budget at which L2 PGD, restricted to a subspace or not, moves the prediction off ``y``.

    With ``bases`` the PGD steps and random start are projected on (``part="on"``) or off
    (``"off"``) each sample's subspace (see :func:`lib.manifold.projector`). The budget is
    found by :func:`budget_search` with ``doublings`` and geometric bisection: each
    growth round attacks only the samples not yet flipped, so PGD's step (proportional to
    the budget) stays matched to the distance it looks for. Returns the norm of the
    smallest flipping perturbation found (``inf``, with a zero perturbation, if none at
    ``eps_max``). PGD ascends :func:`lib.manifold.margin_loss`, which keeps a useful
    gradient at confidently classified points. No random start by default: the part of a
    random start that the gradient steps do not cancel only takes up budget, so a search
    with it overestimates the distance. Unclamped by default: clamping to a pixel box
    would move a restricted perturbation out of its subspace.

    Resolution floor: the smallest budget of the growth is ``b = eps_max / 2**doublings``, and
    an input that flips already at ``b`` is bisected in ``[b / 2, b]``, so no budget below
    ``b / 2 * 2**(2**-bisection_steps)`` is ever tried: 0.0163 at ``eps_max = 8`` with the
    defaults (chapters 2 and 5, quick profile), about 0.04 at ``eps_max = 20``. PGD at a
    budget fills its ball (the margin keeps rising past the boundary), so every input
    nearer the boundary than that reads as that floor (measured: inputs planted at
    0.0005 to 0.014 from the boundary all read 0.0163). :func:`fmn_flip_norm` has no
    floor: its bound starts at the linear estimate of the distance, however small.
    """
    return min_flip_norms(
        model,
        x,
        y,
        {"": (bases, part)},
        eps_max=eps_max,
        steps=steps,
        doublings=doublings,
        bisection_steps=bisection_steps,
        random_start=random_start,
        generator=generator,
        clamp=clamp,
    )[""]


def min_flip_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    restrictions: dict[str, tuple[torch.Tensor | None, str]],
    *,
    eps_max: float,
    steps: int = 10,
    doublings: int = 8,
    bisection_steps: int = 4,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    clamp: tuple[float, float] | None = None,
) -> dict[str, FlipResult]:
    """:func:`min_flip_norm` under several restrictions at once: ``{name: (bases or None, part)}``.

    The searches run as one: every (restriction, sample) pair is one input of a single
    :func:`budget_search`, so each trial budget costs one PGD call on all the pairs still
    searched instead of one call per restriction (the same steps on a batch R times
    larger: far fewer, fuller passes for a small network). Each pair is searched exactly
    as alone; only float round-off of the larger batch can differ.
    """
    _check_parts(restrictions)
    x = x.detach()
    n, r = len(x), len(restrictions)
    xs = x if r == 1 else x.repeat(r, *([1] * (x.ndim - 1)))
    ys = y if r == 1 else y.repeat(r)
    best = torch.zeros_like(xs)
    kinds = list(restrictions.values())

    def flips(idx: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(eps):
            eps = eps.to(x.dtype)
        adv = attacks.pgd(
            model,
            xs[idx],
            ys[idx],
            eps,
            norm="l2",
            steps=steps,
            project=_projector(kinds, idx, n),
            clamp=clamp,
            random_start=random_start,
            generator=generator,
            loss_fn=manifold.margin_loss,
        )
        ok = predict(model, adv).argmax(1) != ys[idx]
        best[idx[ok]] = (adv - xs[idx])[ok]
        return ok

    hi = budget_search(
        flips,
        r * n,
        eps_max,
        doublings=doublings,
        bisection_steps=bisection_steps,
        geometric=True,
        device=x.device,
        dtype=x.dtype,
    )
    norm = torch.where(torch.isfinite(hi), best.flatten(1).norm(dim=1), hi)
    return {
        name: FlipResult(norm[i * n : (i + 1) * n], best[i * n : (i + 1) * n]) for i, name in enumerate(restrictions)
    }


def fmn_flip_norm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps_max: float,
    bases: torch.Tensor | None = None,
    part: str = "on",
    steps: int = 30,
    candidates: int = 2,
    clamp: tuple[float, float] | None = None,
) -> FlipResult:
    """The smallest L2 perturbation that moves the prediction off ``y``, restricted to a subspace or not, by FMN.

    What :func:`min_flip_norm` answers, from one run of :func:`lib.attacks.fmn` (``steps``
    and ``candidates`` are its) instead of a budget search: ``bases`` and ``part`` restrict
    every step as there, the norm is ``inf`` with a zero perturbation where none flips
    within ``eps_max``, and unclamped by default for the same reason.
    """
    return fmn_flip_norms(
        model, x, y, {"": (bases, part)}, eps_max=eps_max, steps=steps, candidates=candidates, clamp=clamp
    )[""]


def fmn_flip_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    restrictions: dict[str, tuple[torch.Tensor | None, str]],
    *,
    eps_max: float,
    steps: int = 30,
    candidates: int = 2,
    clamp: tuple[float, float] | None = None,
) -> dict[str, FlipResult]:
    """:func:`fmn_flip_norm` under several restrictions at once: ``{name: (bases or None, part)}``.

    As in :func:`min_flip_norms`, every (restriction, sample) pair is one row of a single
    attack, each row projected by its own restriction.
    """
    _check_parts(restrictions)
    if not eps_max > 0 or not math.isfinite(eps_max):
        raise ParameterError(f"parameter 'eps_max' must be finite and > 0, got {eps_max}")
    x = x.detach()
    n, r = len(x), len(restrictions)
    xs = x if r == 1 else x.repeat(r, *([1] * (x.ndim - 1)))
    ys = y if r == 1 else y.repeat(r)
    project = _projector(list(restrictions.values()), torch.arange(r * n, device=x.device), n)
    found = attacks.fmn(
        model, xs, ys, steps=steps, candidates=candidates, eps_max=eps_max, project=project, clamp=clamp
    )
    # the bound never passes eps_max; round-off can put a norm a hair above it
    within = found.norm <= eps_max * (1 + 1e-6)
    norm = torch.where(within, found.norm, torch.full_like(found.norm, math.inf))
    delta = torch.where(within.view(-1, *([1] * (x.ndim - 1))), found.delta, torch.zeros_like(found.delta))
    return {
        name: FlipResult(norm[i * n : (i + 1) * n], delta[i * n : (i + 1) * n]) for i, name in enumerate(restrictions)
    }


# The parameters of every smallest-flip measurement (chapters 2 and 5 declare them alike).
FLIP_PARAMS: dict[str, Param] = {
    "flip_eps_max": Param(
        float,
        8.0,
        20.0,
        check="positive",
        help="largest L2 norm a flip is searched within (a point not flipped within it counts as not flipped)",
    ),
    "fmn_steps": Param(
        int,
        30,
        100,
        check="positive",
        help="steps per target class of the minimal-norm attack FMN that finds every smallest flip: the book's "
        "choice (the authors' reference code defaults to 10; its norm-bound schedule, gamma 0.05 to 0.001, is theirs)",
    ),
}
METHODS = ("fmn", "budget")
# each method's own options (besides steps and clamp), for flip_norms
METHOD_OPTIONS = {
    "fmn": ("candidates",),
    "budget": ("doublings", "bisection_steps", "random_start", "generator"),
}


def flip_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    restrictions: dict[str, tuple[torch.Tensor | None, str]],
    *,
    eps_max: float,
    method: str = "fmn",
    steps: int | None = None,
    clamp: tuple[float, float] | None = None,
    **options,
) -> dict[str, FlipResult]:
    """Per point and restriction ``{name: (bases or None, part)}``, the smallest L2 perturbation that moves the
    prediction off ``y``: the book's one entry point to it.

    ``method="fmn"``: :func:`fmn_flip_norms` (``steps``: FMN steps per target class, default
    30; option ``candidates``). ``method="budget"``: :func:`min_flip_norms`, the reference
    (``steps``: PGD steps per trial budget, default 10; options ``doublings``,
    ``bisection_steps``, ``random_start``, ``generator``). Either way ``inf``, with a zero
    perturbation, where no flip was found within ``eps_max``: FMN's bound never passes it,
    so a point the attack does not flip within its steps reads as not flipped, never as a
    distance it did not find. Unclamped by default: a clamp would move a restricted
    perturbation out of its subspace.
    """
    if method not in METHODS:
        raise ParameterError(f"parameter 'method' is {method!r}; allowed values: {', '.join(map(repr, METHODS))}")
    unknown = sorted(set(options) - set(METHOD_OPTIONS[method]))
    if unknown:
        raise ParameterError(
            f"parameter {unknown[0]!r} is not an option of method {method!r}; its options: "
            + ", ".join(map(repr, ("steps", "clamp", *METHOD_OPTIONS[method])))
        )
    if steps is not None:
        options["steps"] = steps
    search = fmn_flip_norms if method == "fmn" else min_flip_norms
    return search(model, x, y, restrictions, eps_max=eps_max, clamp=clamp, **options)


def _check_parts(restrictions: dict[str, tuple[torch.Tensor | None, str]]) -> None:
    """Raise :class:`ParameterError` naming the first restriction whose part is not one of ``manifold.PARTS``."""
    for name, (_, part) in restrictions.items():
        if part not in manifold.PARTS:
            raise ParameterError(
                f"restriction {name!r}: parameter 'part' is {part!r}; allowed values: "
                + ", ".join(map(repr, manifold.PARTS))
            )


def _projector(
    kinds: list[tuple[torch.Tensor | None, str]], idx: torch.Tensor, n: int
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The step projection of the batch ``idx`` of stacked (restriction, sample) pairs: each row by its own restriction.

    ``idx`` is ascending (as :func:`budget_search` passes it), so each restriction's rows
    are one contiguous slice of the batch.
    """
    sample = idx % n
    ends = torch.searchsorted(idx, torch.arange(1, len(kinds) + 1, device=idx.device) * n).tolist()
    pieces, start = [], 0
    for (bases, part), end in zip(kinds, ends):
        if end > start:
            if bases is None:
                proj = None
            else:
                proj = manifold.projector(bases if bases.ndim == 2 else bases[sample[start:end]], part)
            pieces.append((start, end, proj))
        start = end
    if all(p is None for _, _, p in pieces):
        return None
    if len(pieces) == 1:
        return pieces[0][2]

    def project(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[a:b] if p is None else p(v[a:b]) for a, b, p in pieces])

    return project


# ---------------------------------------------------------------- along a fixed direction


@torch.no_grad()
def ray_distance(
    f: Score, x: torch.Tensor, u: torch.Tensor, *, t_max: float, grid: int = 64, tol: float = 1e-6, max_iter: int = 60
) -> torch.Tensor:
    """Smallest ``t`` in ``(0, t_max]`` with ``sign f(x + t u) != sign f(x)``; ``inf`` if none.

    ``f`` maps ``(..., d)`` to ``(...)``; ``x`` and ``u`` have the same shape ``(..., d)``
    (unit ``u`` makes ``t`` an L2 distance). The first sign change on a uniform grid of
    ``grid`` steps is refined by bisection until the bracket is shorter than ``tol * t_max``.
    On a linear score this is the exact distance ``-f(x) / (u . grad f)`` (to ``tol``); on
    a piecewise-linear network it is exact unless the sign flips twice between two grid
    points.
    """
    if not t_max > 0 or not math.isfinite(t_max):
        raise ParameterError(f"parameter 't_max' must be finite and > 0, got {t_max}")
    if grid < 1:
        raise ParameterError(f"parameter 'grid' must be >= 1, got {grid}")
    if x.shape != u.shape:
        raise ValueError(f"x {tuple(x.shape)} and u {tuple(u.shape)} must have the same shape")
    s0 = torch.sign(f(x))
    lo = torch.zeros_like(s0)
    hi = torch.full_like(s0, math.inf)
    ts = torch.linspace(0, t_max, grid + 1, dtype=x.dtype, device=x.device)
    for a, b in zip(ts[:-1], ts[1:]):
        open_ = torch.isinf(hi)
        if not open_.any():
            break
        flipped = open_ & (torch.sign(f(x + b * u)) != s0)
        lo = torch.where(flipped, a, lo)
        hi = torch.where(flipped, b, hi)
    found = torch.isfinite(hi)
    lo = torch.where(found, lo, torch.zeros_like(lo))
    hi = torch.where(found, hi, torch.zeros_like(hi))
    for _ in range(max_iter):
        if float((hi - lo).max()) <= tol * t_max:
            break
        mid = (lo + hi) / 2
        flipped = torch.sign(f(x + mid[..., None] * u)) != s0
        hi = torch.where(flipped, mid, hi)
        lo = torch.where(flipped, lo, mid)
    return torch.where(found, hi, torch.full_like(hi, math.inf))


def ray_distance_exact(
    ens: TwoLayerEnsemble, x: torch.Tensor, u: torch.Tensor, t_max: float = math.inf
) -> torch.Tensor:
    """Exact smallest ``t > 0`` with ``sign f_e(x_i + t u_ei) != sign f_e(x_i)``, shape ``(E, n)``.

    Along a ray every pre-activation is linear in ``t``, so ``f`` is piecewise linear
    with one breakpoint per neuron; the first zero is found by sorting the
    breakpoints and accumulating the slope and offset of each linear piece. ``inf``
    where ``f`` keeps its sign up to ``t_max``. ``u`` is ``(E, n, d)`` (use unit vectors to
    read ``t`` as an L2 distance).
    """
    p = ens.preactivations(x)  # (E, n, m)
    q = torch.matmul(u, ens.w.transpose(1, 2))  # slope of each pre-activation along u
    v = ens.v[:, None, :]
    on = p > 0
    with torch.no_grad():
        tau = torch.where(q != 0, -p / q, torch.full_like(p, math.inf))
        tau = torch.where(tau > 0, tau, torch.full_like(p, math.inf))
    sgn = torch.where(on, -1.0, 1.0).to(p.dtype)  # crossing switches a unit off if it was on
    finite = torch.isfinite(tau)
    dA = torch.where(finite, sgn * v * p, torch.zeros_like(p))
    dB = torch.where(finite, sgn * v * q, torch.zeros_like(p))
    order = tau.argsort(-1)
    tau_s = tau.gather(-1, order)
    A0 = (on * v * p).sum(-1, keepdim=True)
    B0 = (on * v * q).sum(-1, keepdim=True)
    A = torch.cat([A0, A0 + dA.gather(-1, order).cumsum(-1)], -1)  # (E, n, m+1): piece k
    B = torch.cat([B0, B0 + dB.gather(-1, order).cumsum(-1)], -1)
    lo = torch.cat([torch.zeros_like(A0), tau_s], -1)
    hi = torch.cat([tau_s, torch.full_like(A0, math.inf)], -1)
    with torch.no_grad():
        root = torch.where(B != 0, -A / B, torch.full_like(A, math.inf))
        ok = (root >= lo) & (root <= hi) & (root > 0) & torch.isfinite(lo)
        root = torch.where(ok, root, torch.full_like(root, math.inf))
        t = root.min(-1).values
    return torch.where(t <= t_max, t, torch.full_like(t, math.inf))
