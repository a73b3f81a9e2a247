"""Subspace projections: known answers, idempotence, orthogonality, batching."""

import pytest
import torch

from lib import data, subspace


def test_projection_known_answer():
    basis = torch.eye(3)[:, :2]  # the x1-x2 plane of R^3
    x = torch.tensor([[1.0, 2.0, 3.0]])
    par, perp = subspace.split(x, basis)
    assert torch.equal(par, torch.tensor([[1.0, 2.0, 0.0]]))
    assert torch.equal(perp, torch.tensor([[0.0, 0.0, 3.0]]))


def test_projections_idempotent_orthogonal_and_complete():
    g = torch.Generator().manual_seed(0)
    basis = data.random_subspace(20, 5, generator=g, dtype=torch.float64)
    x = torch.randn(50, 20, generator=g, dtype=torch.float64)
    par, perp = subspace.split(x, basis)
    torch.testing.assert_close(subspace.project(par, basis), par)  # P P = P
    torch.testing.assert_close(subspace.project_perp(perp, basis), perp)
    torch.testing.assert_close(subspace.project(perp, basis), torch.zeros_like(x), atol=1e-12, rtol=0)
    torch.testing.assert_close((par * perp).sum(-1), torch.zeros(50, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(par + perp, x)
    n_par, n_perp = subspace.norms(x, basis)
    torch.testing.assert_close(n_par**2 + n_perp**2, (x**2).sum(-1))


def test_batched_bases_match_one_at_a_time():
    g = torch.Generator().manual_seed(1)
    bases = torch.stack([data.random_subspace(8, 3, generator=g) for _ in range(4)])  # (E, d, k)
    x = torch.randn(4, 6, 8, generator=g)
    batched = subspace.project(x, bases)
    for e in range(4):
        torch.testing.assert_close(batched[e], subspace.project(x[e], bases[e]))


def test_orthonormal_basis_of_a_rank_deficient_span():
    span = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]).T  # rank 2 in R^3
    basis = subspace.orthonormal_basis(span)
    assert basis.shape == (3, 2)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(subspace.project(span.T, basis), span.T, atol=1e-6, rtol=0)


def test_random_perp_directions_are_unit_and_orthogonal():
    g = torch.Generator().manual_seed(2)
    basis = data.random_subspace(10, 3, generator=g)
    u = subspace.random_perp_directions(basis, 7, generator=g)
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(7))
    torch.testing.assert_close(u @ basis, torch.zeros(7, 3), atol=1e-6, rtol=0)


def test_pca_of_a_planted_covariance_and_the_subspace_keeping_a_share_of_variance():
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    x = torch.randn(500, 4, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    x = x @ q.T + torch.tensor([1.0, -2.0, 0.0, 5.0], dtype=torch.float64)
    mean, directions, variances = subspace.pca(x)
    torch.testing.assert_close(mean, x.mean(0))
    cov = torch.cov(x.T)
    want = torch.linalg.eigvalsh(cov).flip(0)
    torch.testing.assert_close(variances, want)
    assert (variances[:-1] >= variances[1:]).all()
    torch.testing.assert_close(directions.T @ directions, torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(cov @ directions, directions * variances)  # eigenvectors, in that order
    m32, d32, v32 = subspace.pca(x.float())
    assert m32.dtype == d32.dtype == torch.float32 and v32.dtype == torch.float64
    share = variances.cumsum(0) / variances.sum()
    basis, k, kept = subspace.principal_subspace(x, float(share[1]) + 1e-9)  # just above two directions' share
    assert k == 3 and basis.shape == (4, 3) and kept == float(share[2])
    torch.testing.assert_close(basis, directions[:, :3])
    assert subspace.principal_subspace(x, float(share[1]) - 1e-9)[1] == 2
    assert subspace.principal_subspace(x, float(share[1]))[1] == 2  # a share reached exactly needs no more
    assert subspace.principal_subspace(x, 1e-12)[1] == 1
    with pytest.raises(ValueError, match="N >= 2"):
        subspace.pca(x[:1])


def test_batched_norms_are_per_row_norms_of_each_members_projection():
    """Norms broadcast over a leading batch (E, N, d): one (par, perp) pair per row, taken over d."""
    bases = torch.eye(3)[:, :1].expand(2, 3, 1)  # two members, both the x1 axis of R^3
    x = torch.tensor([[[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]], [[0.0, 3.0, 4.0], [2.0, 0.0, 0.0]]])  # (2, 2, 3)
    n_par, n_perp = subspace.norms(x, bases)
    assert n_par.shape == n_perp.shape == (2, 2)
    assert torch.equal(n_par, torch.tensor([[3.0, 1.0], [0.0, 2.0]]))
    assert torch.equal(n_perp, torch.tensor([[4.0, 0.0], [5.0, 0.0]]))


def test_orthonormal_basis_drops_directions_below_the_tolerance_relative_to_at_least_one():
    """Singular values at or below ``tol * max(1, s_max)`` are dropped: an absolute tolerance when
    s_max < 1, relative to s_max above it."""
    small = torch.diag(torch.tensor([1.0, 0.15, 0.0], dtype=torch.float64))  # s_max = 1: threshold 0.1
    assert subspace.orthonormal_basis(small, tol=0.1).shape == (3, 2)
    assert subspace.orthonormal_basis(small, tol=0.2).shape == (3, 1)  # 0.15 is below 0.2
    tiny = torch.diag(torch.tensor([0.5, 0.15, 0.0], dtype=torch.float64))  # s_max < 1: still threshold 0.1
    assert subspace.orthonormal_basis(tiny, tol=0.1).shape == (3, 2)
    big = torch.diag(torch.tensor([10.0, 1.5, 0.5], dtype=torch.float64))  # s_max = 10: threshold 1.0
    basis = subspace.orthonormal_basis(big, tol=0.1)
    assert basis.shape == (3, 2)
    torch.testing.assert_close(basis.abs(), torch.eye(3, dtype=torch.float64)[:, :2])


def test_pca_of_two_rows_is_the_line_through_them():
    """Two rows are enough: the mean is their midpoint, all variance lies along their difference
    (|x1 - x2|^2 / 2 with the N - 1 divisor), none across it."""
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    mean, directions, variances = subspace.pca(x)
    torch.testing.assert_close(mean, torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(variances, torch.tensor([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(directions[:, 0].abs(), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_random_perp_directions_broadcast_over_a_batch_of_bases():
    """With bases (E, d, k) the directions are (E, n, d), each a unit vector orthogonal to its own member's P."""
    g = torch.Generator().manual_seed(3)
    bases = torch.stack([data.random_subspace(10, 3, generator=g) for _ in range(4)])
    u = subspace.random_perp_directions(bases, 7, generator=g)
    assert u.shape == (4, 7, 10)
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(4, 7))
    torch.testing.assert_close(u @ bases, torch.zeros(4, 7, 3), atol=1e-6, rtol=0)
