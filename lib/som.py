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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    i, j = torch.meshgrid(torch.arange(rows, device=device, dtype=dtype),
                          torch.arange(cols, device=device, dtype=dtype), indexing="ij")
    return torch.stack([i.reshape(-1), j.reshape(-1)], dim=1)


def neighbourhood(coords: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian neighbourhood ``h[j, k] = exp(-|r_j - r_k|^2 / (2 sigma^2))`` between all units."""
    d2 = torch.cdist(coords, coords).pow(2)
    return torch.exp(-d2 / (2 * sigma * sigma))


def pca_init(x: torch.Tensor, rows: int, cols: int, *, scaled: bool = False) -> torch.Tensor:
    """Weights on the plane of the first two principal components, as MiniSom's ``pca_weights_init``.

    Unit ``(i, j)`` gets ``mean + a_i pc1 + b_j pc2`` with ``a``, ``b`` evenly spaced in
    [-1, 1] and unit-length components (MiniSom's choice); ``scaled=True`` multiplies each
    component by its standard deviation so the initial map spans the data's spread.
    Returns ``(rows*cols, dim)``; components' signs are those of ``torch.linalg.eigh``.
    """
    if rows < 1 or cols < 1:
        raise ParameterError(f"SOM grid must be at least 1x1, got {rows}x{cols}")
    # in chunks, in double precision: a double copy of 60,000 wide activations would be large
    starts = range(0, len(x), 2 ** 14)
    mean = sum(x[i:i + 2 ** 14].double().sum(0) for i in starts) / len(x)
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    for i in starts:
        xc = x[i:i + 2 ** 14].double() - mean
        cov += xc.T @ xc
    cov /= max(len(x) - 1, 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)[:2]
    pcs = evecs[:, order].T
    if scaled:
        pcs = pcs * evals[order].clamp_min(0).sqrt()[:, None]
    pc2 = pcs[1] if len(pcs) > 1 else torch.zeros_like(pcs[0])
    a = torch.linspace(-1, 1, rows, dtype=torch.float64, device=x.device)
    b = torch.linspace(-1, 1, cols, dtype=torch.float64, device=x.device)
    w = mean + a[:, None, None] * pcs[0] + b[None, :, None] * pc2
    return w.reshape(rows * cols, -1).to(x.dtype)


def _chunk_size(n_units: int, budget: int = 1 << 24) -> int:
    return max(1, budget // max(n_units, 1))


def distances2(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(N, K)`` between rows of ``x`` and unit weights (one matmul)."""
    d2 = (x * x).sum(1, keepdim=True) - 2 * x @ weights.T + (weights * weights).sum(1)
    return d2.clamp_min(0)


@torch.no_grad()
def best_units(x: torch.Tensor, weights: torch.Tensor, k: int = 1,
               chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest units of every input and their Euclidean distances, in chunks.

    Returns ``(idx, dist)`` of shape ``(N, k)``, nearest first.
    """
    chunk_size = chunk_size or _chunk_size(len(weights))
    idx, dist = [], []
    w = weights.to(x.dtype)
    for i in range(0, len(x), chunk_size):
        d2 = distances2(x[i:i + chunk_size], w)
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
        return best_units(x, self.weights)[1][:, 0].mean().item()

    def topographic_error(self, x: torch.Tensor) -> float:
        """Fraction of inputs whose two best units are not grid neighbours (8-neighbourhood, as MiniSom)."""
        if self.n_units < 2:
            return math.nan
        idx = best_units(x, self.weights, 2)[0]
        r = grid(self.rows, self.cols, device=x.device)
        return ((r[idx[:, 0]] - r[idx[:, 1]]).norm(dim=1) > 1.42).double().mean().item()

    def u_matrix(self) -> torch.Tensor:
        """U-matrix ``(rows, cols)``: mean distance of each unit's weights to its (up to 8) grid neighbours."""
        w = self.weights.reshape(self.rows, self.cols, -1)
        total = torch.zeros(self.rows, self.cols, dtype=w.dtype, device=w.device)
        count = torch.zeros_like(total)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di == dj == 0:
                    continue
                a = w[max(di, 0):self.rows + min(di, 0), max(dj, 0):self.cols + min(dj, 0)]
                b = w[max(-di, 0):self.rows + min(-di, 0), max(-dj, 0):self.cols + min(-dj, 0)]
                d = (a - b).norm(dim=-1)
                total[max(-di, 0):self.rows + min(-di, 0), max(-dj, 0):self.cols + min(-dj, 0)] += d
                count[max(-di, 0):self.rows + min(-di, 0), max(-dj, 0):self.cols + min(-dj, 0)] += 1
        return total / count.clamp_min(1)


def _check_fit_args(x, rows, cols, epochs, sigma, learning_rate, sigma_decay, lr_decay):
    if x.ndim != 2 or len(x) == 0:
        raise ParameterError(f"SOM data must be a non-empty (N, dim) matrix, got shape {tuple(x.shape)}")
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


@torch.no_grad()
def fit(x: torch.Tensor, rows: int, cols: int, *, epochs: int = 10, sigma: float | None = None,
        learning_rate: float = 1.0, sigma_decay: str = "asymptotic", lr_decay: str = "asymptotic",
        init: str | torch.Tensor = "pca", schedule_at: str = "end", chunk_size: int | None = None,
        progress: bool = False, desc: str = "SOM") -> SOM:
    """Batch SOM on the rows of ``x``: ``epochs`` passes over the data, one weight update per pass.

    Each pass ``t``: every input's BMU ``c_i``; ``h_t[j, k]`` the Gaussian neighbourhood at
    ``sigma_t``; target ``m_j = sum_i h_t[j, c_i] x_i / sum_i h_t[j, c_i]``; update
    ``w_j <- (1 - lr_t) w_j + lr_t m_j`` for units with any weight (MiniSom's
    ``train_batch_offline``; ``learning_rate=1`` with ``lr_decay="constant"`` is the pure
    Kohonen batch map). ``sigma`` defaults to ``max(rows, cols) / 2``. ``init`` is
    ``"pca"`` (MiniSom's), ``"pca-scaled"`` or a ``(rows*cols, dim)`` tensor.

    ``schedule_at`` says where in pass ``t`` (0-based) the decays are read: ``"end"``
    (default) uses ``t + 1``, so the last pass runs at the final sigma, as the last
    updates of MiniSom's online ``train`` do; ``"start"`` uses ``t``, which reproduces
    ``train_batch_offline`` exactly.
    """
    sigma = max(rows, cols) / 2 if sigma is None else sigma
    _check_fit_args(x, rows, cols, epochs, sigma, learning_rate, sigma_decay, lr_decay)
    if schedule_at not in ("start", "end"):
        raise ParameterError(f"SOM 'schedule_at' must be 'start' or 'end', got {schedule_at!r}")
    if isinstance(init, torch.Tensor):
        if init.shape != (rows * cols, x.shape[1]):
            raise ParameterError(f"initial weights must have shape {(rows * cols, x.shape[1])}, "
                                 f"got {tuple(init.shape)}")
        w = init.to(device=x.device, dtype=x.dtype).clone()
    elif init in ("pca", "pca-scaled"):
        w = pca_init(x, rows, cols, scaled=init == "pca-scaled")
    else:
        raise ParameterError(f"SOM 'init' is {init!r}; allowed: 'pca', 'pca-scaled' or a weight tensor")
    coords = grid(rows, cols, device=x.device, dtype=x.dtype)
    k = rows * cols
    history = []
    for t in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        ts = t + 1 if schedule_at == "end" else t
        s = decay(sigma, ts, epochs, sigma_decay)
        lr = decay(learning_rate, ts, epochs, lr_decay)
        codes = winners(x, w, chunk_size)
        counts = torch.bincount(codes, minlength=k).to(x.dtype)
        sums = torch.zeros_like(w).index_add_(0, codes, x)
        h = neighbourhood(coords, s)
        num, den = h @ sums, h @ counts
        live = den > 0
        w[live] = (1 - lr) * w[live] + lr * num[live] / den[live, None]
        history.append({"epoch": t, "sigma": s, "learning_rate": lr})
    return SOM(w, rows, cols, history)


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
        "effective_codes": float(2 ** h_code),
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


LANDING = ("true class's code", "adversarial class's code", "another class's code", "unused code")


def landing(codes: torch.Tensor, true: torch.Tensor, adversarial: torch.Tensor,
            reference: torch.Tensor) -> torch.Tensor:
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
