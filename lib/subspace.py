"""Linear subspaces of input space: orthonormal bases and the projections onto P and P-perp.

A subspace P is given by an orthonormal basis ``B`` of shape ``(d, k)`` (or a batch
``(E, d, k)``, one subspace per ensemble member); the projection of a row vector
``x`` onto P is ``x B B^T`` and onto its orthogonal complement ``x - x B B^T``.
All functions broadcast over leading batch dimensions and follow the device of
their inputs.
"""

from __future__ import annotations

import torch


def orthonormal_basis(span: torch.Tensor, tol: float = 1e-10) -> torch.Tensor:
    """An orthonormal basis ``(d, r)`` of the column span of ``span`` ``(d, k)`` (rank r, via SVD)."""
    u, s, _ = torch.linalg.svd(span.double(), full_matrices=False)
    rank = int((s > tol * max(1.0, s.max().item())).sum())
    return u[:, :rank].to(span.dtype)


def project(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Orthogonal projection of the rows of ``x`` onto span(``basis``): ``x B B^T``."""
    return (x @ basis) @ basis.transpose(-1, -2)


def project_perp(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Projection of the rows of ``x`` onto the orthogonal complement of span(``basis``)."""
    return x - project(x, basis)


def split(x: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_P, x_perp)`` with ``x = x_P + x_perp``, ``x_P`` in P and ``x_perp`` orthogonal to P."""
    par = project(x, basis)
    return par, x - par


def norms(x: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean norms of the P and P-perp components of the rows of ``x``."""
    par, perp = split(x, basis)
    return par.norm(dim=-1), perp.norm(dim=-1)


def random_perp_directions(basis: torch.Tensor, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` unit vectors uniformly distributed on the sphere of P-perp (basis ``(d, k)``)."""
    d = basis.shape[-2]
    z = torch.randn(n, d, generator=generator, dtype=basis.dtype).to(basis.device)
    z = project_perp(z, basis)
    return z / z.norm(dim=-1, keepdim=True)


def pca(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Principal components of the rows of ``x`` ``(N, d)``: mean ``(d,)``, directions ``(d, d)``, variances ``(d,)``.

    Directions are columns in order of decreasing variance (the sample covariance's
    eigen-decomposition, computed in float64); mean and directions come back in ``x``'s
    dtype, variances in float64. The one PCA of the book: its subspaces keep a share of
    the variance (:func:`principal_subspace`) or a number of directions
    (:func:`lib.manifold.pca_basis`).
    """
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"pca needs a (N, d) matrix with N >= 2 rows, got shape {tuple(x.shape)}")
    xc = x.double()  # a copy for any other dtype, centred in place below; float64 input: centred copy
    mean = xc.mean(0)
    xc = xc.sub_(mean) if xc is not x else xc - mean
    evals, evecs = torch.linalg.eigh(xc.T @ xc / (len(x) - 1))
    return mean.to(x.dtype), evecs.flip(1).to(x.dtype), evals.flip(0).clamp_min(0)


def principal_subspace(x: torch.Tensor, share: float) -> tuple[torch.Tensor, int, float]:
    """Orthonormal basis ``(n, k)`` of the top-k principal directions of ``x`` keeping ``share`` of its variance."""
    _, directions, variances = pca(x)
    cum = variances.cumsum(0) / variances.sum()
    k = int((cum < share).sum()) + 1
    return directions[:, :k], k, float(cum[k - 1])
