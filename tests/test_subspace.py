"""Subspace projections: known answers, idempotence, orthogonality, batching."""

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
