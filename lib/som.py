"""Self-organizing maps (Kohonen 1982) in torch: batch training, codes and code measures.

A map has ``rows x cols`` units on a rectangular grid; unit ``k`` sits at grid position
``(k // cols, k % cols)`` (MiniSom's row-major order, so ``k`` is ``np.ravel_multi_index``
of MiniSom's ``winner``). The *code* of an input is the index of its best-matching unit
(BMU), the unit whose weight vector is nearest in Euclidean distance.

Training is Kohonen's batch algorithm, vectorised: each epoch assigns every input to
its BMU (in chunks, one matrix product per chunk), then moves each unit to the
neighbourhood-weighted mean of the inputs, blended with its old weights by the
learning rate exactly as MiniSom's ``train_batch_offline`` does. Sigma and learning
rate follow MiniSom's decay schedules (default ``asymptotic``: ``v / (1 + 2 t / T)``,
which ends at one third of the start value, not at zero). Everything runs on the
device of the data.

Wide layers at scale: :func:`fit_layers` fits the maps of several layers in the same
passes over a :data:`Batches` source that may compute activations chunk by chunk, so no
layer's activations are held whole; the PCA start comes from :func:`principal_planes`,
a randomized block power iteration for the two components a map needs (``O(N dim)`` per
pass instead of the ``O(N dim^2 + dim^3)`` of a full covariance and ``eigh``), computed
once per layer and shared by maps of every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import ParameterError

# MiniSom's decay schedules, with the names it uses (t = epoch, T = number of epochs).
LR_DECAYS = ("asymptotic", "inverse_to_zero", "linear_to_zero", "constant")
SIGMA_DECAYS = ("asymptotic", "inverse_to_one", "linear_to_one", "constant")


def decay(value: float, t: int, total: int, kind: str) -> float:
    """The value of a learning rate or sigma at step ``t`` of ``total`` under MiniSom's schedule ``kind``."""
    if kind == "asymptotic":
        return value / (1 + t / (total / 2))
    if kind == "inverse_to_zero":
        c = total / 100.0
        return value * c / (c + t)
    if kind == "linear_to_zero":
        return value * (1 - t / total)
    if kind == "inverse_to_one":
        return value / (1 + t * (value - 1) / total)
    if kind == "linear_to_one":
        return value + t * (1 - value) / total
    if kind == "constant":
        return value
    raise ParameterError(f"unknown decay {kind!r}; allowed: {', '.join(map(repr, LR_DECAYS + SIGMA_DECAYS))}")


def grid(rows: int, cols: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Grid coordinates ``(rows*cols, 2)`` of the units, row-major."""
    i, j = torch.meshgrid(
        torch.arange(rows, device=device, dtype=dtype), torch.arange(cols, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([i.reshape(-1), j.reshape(-1)], dim=1)


def neighbourhood(coords: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian neighbourhood ``h[j, k] = exp(-|r_j - r_k|^2 / (2 sigma^2))`` between all units."""
    d2 = torch.cdist(coords, coords).pow(2)
    return torch.exp(-d2 / (2 * sigma * sigma))


Batches = Callable[[], Iterable[Sequence[torch.Tensor]]]
"""A re-iterable source of activations: calling it starts a pass over the inputs, yielding
chunks, each a sequence with one ``(rows, dim_l)`` tensor per layer (the same inputs in
every layer). The maps of several layers are fitted in one pass per epoch, and a pass can
compute the activations as it goes, so no layer's activations need to be held at once."""


def tensor_batches(*xs: torch.Tensor, chunk_size: int | None = None) -> Batches:
    """A :data:`Batches` source over matrices already in memory (views, no copies)."""
    n = len(xs[0])
    if any(len(x) != n for x in xs):
        raise ValueError(f"all matrices need the same number of rows, got {[len(x) for x in xs]}")
    step = chunk_size or max(1, (1 << 24) // max(max(x.shape[1] for x in xs), 1))

    def batches():
        for i in range(0, n, step):
            yield [x[i : i + step] for x in xs]

    return batches


@dataclass
class Plane:
    """A layer's mean and first (up to) two principal components: all a PCA initialisation needs."""

    mean: torch.Tensor  # (dim,), float64
    components: torch.Tensor  # (2, dim), unit rows (a zero row when the data have one component)
    variances: torch.Tensor  # (2,)
    n: int


PCA_METHODS = ("randomized", "exact")


def _orient(pcs: torch.Tensor) -> torch.Tensor:
    """Fix each component's sign: its entry of largest magnitude is positive (a deterministic choice)."""
    j = pcs.abs().argmax(1, keepdim=True)
    return pcs * torch.where(pcs.gather(1, j) < 0, -1.0, 1.0).to(pcs.dtype)


def principal_planes(
    batches: Batches,
    *,
    method: str = "randomized",
    oversample: int = 8,
    n_iter: int = 6,
    seed: int = 0,
    progress: bool = False,
    desc: str = "PCA",
) -> list[Plane]:
    """Mean and top two principal components of every layer, streamed over ``batches``.

    ``"randomized"``: block power (subspace) iteration with ``2 + oversample`` columns and a
    Rayleigh-Ritz step (Halko, Martinsson & Tropp 2011, Alg. 4.4), ``n_iter`` passes over
    the data in all, each pass ``O(N dim k)``; the covariance ``C`` is never formed: with
    ``S = sum_i x_i (x_i^T Q)`` the pass gives ``C Q = (S - n mu (mu^T Q)) / (n - 1)``.
    ``"exact"`` forms the ``dim x dim`` covariance and calls ``eigh`` (``O(N dim^2 + dim^3)``,
    the reference). Accumulation is in float64; ``seed`` draws the random start.
    ``progress`` shows a bar over the passes.
    """
    if method not in PCA_METHODS:
        raise ParameterError(f"PCA 'method' is {method!r}; allowed: {', '.join(map(repr, PCA_METHODS))}")
    if n_iter < 1 or oversample < 0:
        raise ParameterError(f"PCA needs 'n_iter' >= 1 and 'oversample' >= 0, got {n_iter}, {oversample}")
    if method == "exact":
        return _exact_planes(batches)
    q, g = None, torch.Generator().manual_seed(seed)
    for it in tqdm(range(n_iter), desc=desc, disable=not progress, leave=False):
        n, sums, prods = 0, None, None
        for chunk in batches():
            if q is None:  # random orthonormal start, one per layer (k never exceeds the dimension)
                q = [
                    torch.linalg.qr(
                        torch.randn(a.shape[1], min(2 + oversample, a.shape[1]), generator=g, dtype=torch.float64).to(
                            a.device
                        )
                    )[0]
                    for a in chunk
                ]
            if sums is None:
                sums = [torch.zeros(a.shape[1], dtype=torch.float64, device=a.device) for a in chunk]
                prods = [torch.zeros_like(ql) for ql in q]
            n += len(chunk[0])
            for a, ql, s, p in zip(chunk, q, sums, prods):
                a = a.double()
                s += a.sum(0)
                p += a.T @ (a @ ql)
        if n < 2:
            raise ValueError("principal_planes needs at least two inputs")
        means = [s / n for s in sums]
        cq = [(p - n * m[:, None] * (m @ ql)[None, :]) / (n - 1) for p, m, ql in zip(prods, means, q)]
        if it < n_iter - 1:
            q = [torch.linalg.qr(c)[0] for c in cq]
    planes = []
    for m, ql, c in zip(means, q, cq):
        ritz = ql.T @ c
        evals, evecs = torch.linalg.eigh((ritz + ritz.T) / 2)
        order = torch.argsort(evals, descending=True)[:2]
        planes.append(_plane(m, (ql @ evecs[:, order]).T, evals[order], n))
    return planes


def _exact_planes(batches: Batches) -> list[Plane]:
    """The reference: full covariance (two passes, float64) and ``torch.linalg.eigh``."""
    n, sums = 0, None
    for chunk in batches():
        sums = sums or [torch.zeros(a.shape[1], dtype=torch.float64, device=a.device) for a in chunk]
        n += len(chunk[0])
        for a, s in zip(chunk, sums):
            s += a.double().sum(0)
    if n < 2:
        raise ValueError("principal_planes needs at least two inputs")
    means = [s / n for s in sums]
    covs = [torch.zeros(len(m), len(m), dtype=torch.float64, device=m.device) for m in means]
    for chunk in batches():
        for a, m, c in zip(chunk, means, covs):
            xc = a.double() - m
            c += xc.T @ xc
    planes = []
    for m, c in zip(means, covs):
        evals, evecs = torch.linalg.eigh(c / (n - 1))
        order = torch.argsort(evals, descending=True)[:2]
        planes.append(_plane(m, evecs[:, order].T, evals[order], n))
    return planes


def _plane(mean: torch.Tensor, pcs: torch.Tensor, evals: torch.Tensor, n: int) -> Plane:
    pcs, evals = _orient(pcs), evals.clamp_min(0)
    if len(pcs) < 2:  # one-dimensional data: the second axis of the map gets no spread
        pcs = torch.cat([pcs, torch.zeros_like(pcs)])
        evals = torch.cat([evals, torch.zeros_like(evals)])
    return Plane(mean, pcs, evals, n)


def pca_init(
    x: torch.Tensor | Plane, rows: int, cols: int, *, scaled: bool = False, method: str = "randomized"
) -> torch.Tensor:
    """Weights on the plane of the first two principal components, as MiniSom's ``pca_weights_init``.

    Unit ``(i, j)`` gets ``mean + a_i pc1 + b_j pc2`` with ``a``, ``b`` evenly spaced in
    [-1, 1] and unit-length components (MiniSom's choice); ``scaled=True`` multiplies each
    component by its standard deviation so the initial map spans the data's spread.
    ``x`` is the data (its plane is computed with :func:`principal_planes` by ``method``)
    or a :class:`Plane` computed once and reused for maps of any size. Returns
    ``(rows*cols, dim)`` in the data's dtype (float32 for a plane); each component's sign
    makes its largest entry positive.
    """
    if rows < 1 or cols < 1:
        raise ParameterError(f"SOM grid must be at least 1x1, got {rows}x{cols}")
    plane = x if isinstance(x, Plane) else principal_planes(tensor_batches(x), method=method)[0]
    pcs = plane.components
    if scaled:
        pcs = pcs * plane.variances.sqrt()[:, None]
    a = torch.linspace(-1, 1, rows, dtype=torch.float64, device=pcs.device)
    b = torch.linspace(-1, 1, cols, dtype=torch.float64, device=pcs.device)
    w = plane.mean + a[:, None, None] * pcs[0] + b[None, :, None] * pcs[1]
    return w.reshape(rows * cols, -1).to(torch.float32 if isinstance(x, Plane) else x.dtype)


def _chunk_size(n_units: int, dim: int = 1, budget: int = 1 << 24) -> int:
    """Rows per chunk so that neither the (rows, units) distances nor a (rows, dim) copy exceed ``budget``."""
    return max(1, budget // max(n_units, dim, 1))


def distances2(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(N, K)`` between rows of ``x`` and unit weights (one matmul)."""
    d2 = (x * x).sum(1, keepdim=True) - 2 * x @ weights.T + (weights * weights).sum(1)
    return d2.clamp_min(0)


@torch.no_grad()
def best_units(
    x: torch.Tensor, weights: torch.Tensor, k: int = 1, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest units of every input and their Euclidean distances, in chunks.

    Returns ``(idx, dist)`` of shape ``(N, k)``, nearest first.
    """
    chunk_size = chunk_size or _chunk_size(len(weights), x.shape[1])
    idx, dist = [], []
    w = weights.to(x.dtype)
    for i in range(0, len(x), chunk_size):
        d2 = distances2(x[i : i + chunk_size], w)
        if k == 1:  # argmin keeps the first of tied units, as MiniSom's winner does
            j = d2.argmin(1, keepdim=True)
            d2 = d2.gather(1, j)
        else:
            d2, j = torch.topk(d2, k, dim=1, largest=False)
        idx.append(j)
        dist.append(d2.sqrt())
    if not idx:
        return (torch.empty(0, k, dtype=torch.long, device=x.device), torch.empty(0, k, device=x.device))
    return torch.cat(idx), torch.cat(dist)


def winners(x: torch.Tensor, weights: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """Codes: index of the best-matching unit of every row of ``x`` (MiniSom's ``winner``, batched)."""
    return best_units(x, weights, 1, chunk_size)[0][:, 0]


@dataclass
class SOM:
    """A fitted map: weights ``(rows*cols, dim)`` and the training schedule actually used."""

    weights: torch.Tensor
    rows: int
    cols: int
    history: list[dict] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return self.rows * self.cols

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Best-matching unit of each input (flat, row-major)."""
        return winners(x, self.weights)

    def quantization_error(self, x: torch.Tensor) -> float:
        """Mean Euclidean distance from each input to its BMU's weights (MiniSom's definition)."""
        return quantization_error(best_units(x, self.weights)[1])

    def topographic_error(self, x: torch.Tensor) -> float:
        """Fraction of inputs whose two best units are not grid neighbours (8-neighbourhood, as MiniSom)."""
        if self.n_units < 2:
            return math.nan
        return topographic_error(best_units(x, self.weights, 2)[0], self.rows, self.cols)

    def u_matrix(self) -> torch.Tensor:
        """U-matrix ``(rows, cols)``: mean distance of each unit's weights to its (up to 8) grid neighbours."""
        w = self.weights.reshape(self.rows, self.cols, -1)
        total = torch.zeros(self.rows, self.cols, dtype=w.dtype, device=w.device)
        count = torch.zeros_like(total)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di == dj == 0:
                    continue
                a = w[max(di, 0) : self.rows + min(di, 0), max(dj, 0) : self.cols + min(dj, 0)]
                b = w[max(-di, 0) : self.rows + min(-di, 0), max(-dj, 0) : self.cols + min(-dj, 0)]
                d = (a - b).norm(dim=-1)
                total[max(-di, 0) : self.rows + min(-di, 0), max(-dj, 0) : self.cols + min(-dj, 0)] += d
                count[max(-di, 0) : self.rows + min(-di, 0), max(-dj, 0) : self.cols + min(-dj, 0)] += 1
        return total / count.clamp_min(1)


def _check_fit_args(rows, cols, epochs, sigma, learning_rate, sigma_decay, lr_decay, schedule_at):
    if rows < 1 or cols < 1:
        raise ParameterError(f"SOM 'rows' and 'cols' must be positive, got {rows}x{cols}")
    if epochs < 1:
        raise ParameterError(f"SOM 'epochs' must be >= 1, got {epochs}")
    if not sigma > 0:
        raise ParameterError(f"SOM 'sigma' must be > 0, got {sigma}")
    if not 0 < learning_rate <= 1:
        raise ParameterError(f"SOM 'learning_rate' must be in (0, 1], got {learning_rate}")
    if sigma_decay not in SIGMA_DECAYS:
        raise ParameterError(f"SOM 'sigma_decay' is {sigma_decay!r}; allowed: {', '.join(SIGMA_DECAYS)}")
    if lr_decay not in LR_DECAYS:
        raise ParameterError(f"SOM 'lr_decay' is {lr_decay!r}; allowed: {', '.join(LR_DECAYS)}")
    if schedule_at not in ("start", "end"):
        raise ParameterError(f"SOM 'schedule_at' must be 'start' or 'end', got {schedule_at!r}")


def _initial_weights(init, plane: Plane | None, rows: int, cols: int, dim: int, device, dtype) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        if init.shape != (rows * cols, dim):
            raise ParameterError(f"initial weights must have shape {(rows * cols, dim)}, got {tuple(init.shape)}")
        return init.to(device=device, dtype=dtype).clone()
    return pca_init(plane, rows, cols, scaled=init == "pca-scaled").to(device=device, dtype=dtype)


@torch.no_grad()
def fit_layers(
    batches: Batches,
    rows: int,
    cols: int,
    *,
    epochs: int = 10,
    sigma: float | None = None,
    learning_rate: float = 1.0,
    sigma_decay: str = "asymptotic",
    lr_decay: str = "asymptotic",
    init: str | Sequence[torch.Tensor] = "pca",
    planes: Sequence[Plane] | None = None,
    schedule_at: str = "end",
    progress: bool = False,
    desc: str = "SOM",
) -> list[SOM]:
    """One batch SOM per layer of ``batches`` (see :data:`Batches`), all fitted in the same passes.

    The algorithm is :func:`fit`'s. Each pass streams the chunks once: every layer's BMUs,
    code counts and per-unit sums accumulate chunk by chunk, so memory holds one chunk of
    activations, never a whole layer. ``init`` is ``"pca"``, ``"pca-scaled"`` (from
    ``planes``, computed here by :func:`principal_planes` when not given, so that maps of
    several sizes can share one PCA) or one ``(rows*cols, dim)`` tensor per layer.
    """
    sigma = max(rows, cols) / 2 if sigma is None else sigma
    _check_fit_args(rows, cols, epochs, sigma, learning_rate, sigma_decay, lr_decay, schedule_at)
    if isinstance(init, torch.Tensor):
        init = [init]
    elif not isinstance(init, str):
        init = list(init)
    elif init not in ("pca", "pca-scaled"):
        raise ParameterError(f"SOM 'init' is {init!r}; allowed: 'pca', 'pca-scaled' or a weight tensor")
    first = next(iter(batches()), None)
    if first is None or len(first[0]) == 0 or any(a.ndim != 2 for a in first):
        raise ParameterError("SOM data must be non-empty (N, dim) matrices")
    if isinstance(init, str) and planes is None:
        planes = principal_planes(batches)
    ws = [
        _initial_weights(
            init[li] if isinstance(init, list) else init,
            None if planes is None else planes[li],
            rows,
            cols,
            a.shape[1],
            a.device,
            a.dtype,
        )
        for li, a in enumerate(first)
    ]
    coords = grid(rows, cols, device=first[0].device, dtype=first[0].dtype)
    k = rows * cols
    history = []
    for t in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        ts = t + 1 if schedule_at == "end" else t
        s = decay(sigma, ts, epochs, sigma_decay)
        lr = decay(learning_rate, ts, epochs, lr_decay)
        counts = [torch.zeros(k, dtype=w.dtype, device=w.device) for w in ws]
        sums = [torch.zeros_like(w) for w in ws]
        for chunk in batches():
            for a, w, c, su in zip(chunk, ws, counts, sums):
                codes = winners(a, w)
                c += torch.bincount(codes, minlength=k).to(w.dtype)
                su.index_add_(0, codes, a.to(w.dtype))
        h = neighbourhood(coords, s)
        for w, c, su in zip(ws, counts, sums):
            num, den = h @ su, h @ c
            live = den > 0
            w[live] = (1 - lr) * w[live] + lr * num[live] / den[live, None]
        history.append({"epoch": t, "sigma": s, "learning_rate": lr})
    return [SOM(w, rows, cols, list(history)) for w in ws]


def fit(
    x: torch.Tensor,
    rows: int,
    cols: int,
    *,
    epochs: int = 10,
    sigma: float | None = None,
    learning_rate: float = 1.0,
    sigma_decay: str = "asymptotic",
    lr_decay: str = "asymptotic",
    init: str | torch.Tensor = "pca",
    plane: Plane | None = None,
    schedule_at: str = "end",
    chunk_size: int | None = None,
    progress: bool = False,
    desc: str = "SOM",
) -> SOM:
    """Batch SOM on the rows of ``x``: ``epochs`` passes over the data, one weight update per pass.

    Each pass ``t``: every input's BMU ``c_i``; ``h_t[j, k]`` the Gaussian neighbourhood at
    ``sigma_t``; target ``m_j = sum_i h_t[j, c_i] x_i / sum_i h_t[j, c_i]``; update
    ``w_j <- (1 - lr_t) w_j + lr_t m_j`` for units with any weight (MiniSom's
    ``train_batch_offline``; ``learning_rate=1`` with ``lr_decay="constant"`` is the pure
    Kohonen batch map). ``sigma`` defaults to ``max(rows, cols) / 2``. ``init`` is
    ``"pca"`` (MiniSom's, from ``plane`` if given), ``"pca-scaled"`` or a
    ``(rows*cols, dim)`` tensor.

    ``schedule_at`` says where in pass ``t`` (0-based) the decays are read: ``"end"``
    (default) uses ``t + 1``, so the last pass runs at the final sigma, as the last
    updates of MiniSom's online ``train`` do; ``"start"`` uses ``t``, which reproduces
    ``train_batch_offline`` exactly.
    """
    if x.ndim != 2 or len(x) == 0:
        raise ParameterError(f"SOM data must be a non-empty (N, dim) matrix, got shape {tuple(x.shape)}")
    chunk_size = chunk_size or _chunk_size(rows * cols, x.shape[1])
    return fit_layers(
        tensor_batches(x, chunk_size=chunk_size),
        rows,
        cols,
        epochs=epochs,
        sigma=sigma,
        learning_rate=learning_rate,
        sigma_decay=sigma_decay,
        lr_decay=lr_decay,
        init=[init] if isinstance(init, torch.Tensor) else init,
        planes=None if plane is None else [plane],
        schedule_at=schedule_at,
        progress=progress,
        desc=desc,
    )[0]


@torch.no_grad()
def assign_layers(maps: Sequence[SOM], batches: Batches, k: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``k`` best units and their distances for every input at every layer, streamed over ``batches``.

    Returns one ``(idx, dist)`` pair of ``(N, k)`` tensors per map, as :func:`best_units`.
    """
    parts = [[] for _ in maps]
    for chunk in batches():
        for m, a, part in zip(maps, chunk, parts):
            part.append(best_units(a, m.weights, k))
    return [(torch.cat([p[0] for p in part]), torch.cat([p[1] for p in part])) for part in parts]


def quantization_error(dist: torch.Tensor) -> float:
    """Mean distance from each input to its BMU, from the ``dist`` of :func:`best_units` (MiniSom's definition)."""
    return dist[:, 0].mean().item()


def topographic_error(idx: torch.Tensor, rows: int, cols: int) -> float:
    """Share of inputs whose two best units (``idx`` of :func:`best_units`, k >= 2) are not grid neighbours."""
    if rows * cols < 2:
        return math.nan
    r = grid(rows, cols, device=idx.device)
    return ((r[idx[:, 0]] - r[idx[:, 1]]).norm(dim=1) > 1.42).double().mean().item()


# ---------------------------------------------------------------- code measures


def contingency(codes: torch.Tensor, labels: torch.Tensor, n_units: int, n_classes: int) -> torch.Tensor:
    """Counts ``(n_units, n_classes)``: how many inputs of each class have each code."""
    flat = codes.long() * n_classes + labels.long()
    return torch.bincount(flat, minlength=n_units * n_classes).reshape(n_units, n_classes).double()


def _entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy in bits of (possibly unnormalised, non-negative) weights along ``dim``."""
    tot = p.sum(dim, keepdim=True)
    q = p / tot.clamp_min(1e-300)
    return -(q * torch.log2(q.clamp_min(1e-300))).sum(dim)


def code_measures(counts: torch.Tensor) -> dict[str, float]:
    """Code measures from a code-by-class count table (see :func:`contingency`).

    - ``effective_codes``: ``2**H(code)``, the number of equally used codes with the same entropy;
    - ``effective_codes_per_class``: mean over classes of ``2**H(code | class)``;
    - ``used_codes``: codes with at least one input;
    - ``shared_codes``: fraction of used codes that inputs of two or more classes share;
    - ``inputs_in_shared_codes``: fraction of inputs whose code is shared with another class;
    - ``purity``: fraction of inputs in their code's majority class;
    - ``mutual_information`` ``I(code; label)`` in bits and ``nmi = I / H(label)``.
    """
    c = counts.double()
    n = c.sum()
    if n <= 0:
        raise ValueError("code_measures needs at least one input")
    per_code = c.sum(1)
    per_class = c.sum(0)
    used = per_code > 0
    n_classes_in_code = (c > 0).sum(1)
    shared = used & (n_classes_in_code >= 2)
    h_code = _entropy(per_code)
    h_label = _entropy(per_class)
    h_label_given_code = (per_code / n * _entropy(c, 1)).sum()
    mi = h_label - h_label_given_code
    present = per_class > 0
    per_class_eff = torch.pow(2.0, _entropy(c[:, present].T, 1))
    return {
        "effective_codes": float(2**h_code),
        "effective_codes_per_class": float(per_class_eff.mean()),
        "used_codes": int(used.sum()),
        "shared_codes": float(shared.sum() / used.sum()),
        "inputs_in_shared_codes": float(per_code[shared].sum() / n),
        "purity": float(c.max(1).values.sum() / n),
        "mutual_information": float(mi),
        "nmi": float(mi / h_label) if h_label > 0 else math.nan,
    }


def code_labels(counts: torch.Tensor) -> torch.Tensor:
    """Majority class of each code (``-1`` for codes no input uses)."""
    lab = counts.argmax(1)
    lab[counts.sum(1) == 0] = -1
    return lab


def other_class_fraction(codes: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per input: the fraction of reference inputs in its code that belong to another class.

    ``reference`` is a code-by-class count table (e.g. of the training set). This is a
    per-sample homogeneity of the input's code: 0 when its code holds its own class
    only, near 1 when its code belongs to other classes; NaN when no reference input
    uses the code.
    """
    ref = reference.to(codes.device).double()
    tot = ref.sum(1)[codes]
    own = ref[codes, labels.long()]
    out = 1 - own / tot.clamp_min(1)
    out[tot == 0] = math.nan
    return out


def homogeneity(codes: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor) -> float:
    """A layer's code homogeneity: the mean of :func:`other_class_fraction` over inputs whose code is used.

    0 when every code holds a single class, ``1 - 1/C`` when every code holds all ``C``
    classes in equal shares.
    """
    return float(torch.nanmean(other_class_fraction(codes, labels, reference)))


def test_homogeneity(
    codes_train: torch.Tensor,
    y_train: torch.Tensor,
    codes_test: torch.Tensor,
    y_test: torch.Tensor,
    n_units: int,
    n_classes: int,
) -> np.ndarray:
    """Each test input's :func:`other_class_fraction` against the training inputs' codes (NaN: unused code)."""
    ref = contingency(codes_train, y_train, n_units, n_classes)
    return other_class_fraction(codes_test, y_test, ref).cpu().numpy()


LANDING = ("true class's code", "adversarial class's code", "another class's code", "unused code")


def landing(
    codes: torch.Tensor, true: torch.Tensor, adversarial: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """Where each (adversarial) code lands, as an index into :data:`LANDING`.

    A code belongs to the majority class of the reference (clean) inputs that use it;
    ``3`` marks a code that no reference input uses.
    """
    owner = code_labels(reference.to(codes.device))[codes]
    out = torch.full_like(codes, 2)
    out[owner == true] = 0
    out[(owner == adversarial) & (owner != true)] = 1
    out[owner < 0] = 3
    return out
