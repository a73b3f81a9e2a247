"""Tangent bases of an autoencoder's manifold: batched torch.func against a per-sample loop.

`lib.manifold.tangent_basis` takes every decoder Jacobian in one `vmap(jacfwd)` call and
orthonormalises them with one batched QR. The reference computes the same forward-mode
Jacobian (`jacfwd`) and its QR one sample at a time in a Python loop. Both run here, on
the same decoder and codes; the script checks that they span the same subspaces and
prints samples/s of each and the ratio.
"""
from __future__ import annotations

import time

import torch

from lib import manifold


def per_sample(decoder, z: torch.Tensor) -> torch.Tensor:
    """Reference: one forward-mode Jacobian and one QR per code, in a Python loop."""
    jacobian = torch.func.jacfwd(lambda v: decoder(v.unsqueeze(0))[0])
    out = []
    for zi in z:
        out.append(torch.linalg.qr(jacobian(zi))[0])
    return torch.stack(out)


def rate(fn, *args, repeats: int = 3) -> tuple[float, torch.Tensor]:
    """Best-of-``repeats`` samples per second of ``fn(*args)`` and its result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return len(args[-1]) / best, out


def main() -> None:
    torch.manual_seed(0)
    for name, n, k, widths, count in (("digits-size", 64, 8, [128], 450), ("MNIST-size", 784, 16, [512, 256], 200)):
        ae = manifold.AutoEncoder(n, k, widths).eval()
        z = torch.randn(count, k)
        with torch.no_grad():
            fast, b_fast = rate(manifold.tangent_basis, ae.decode, z)
            slow, b_slow = rate(per_sample, ae.decode, z)
        p_fast = b_fast @ b_fast.transpose(1, 2)
        p_slow = b_slow @ b_slow.transpose(1, 2)
        err = (p_fast - p_slow).abs().max().item()
        assert err < 1e-4, f"batched and per-sample tangent spaces differ by {err}"
        print(f"{name} (n={n}, k={k}, {count} codes): batched {fast:,.0f} samples/s, "
              f"per-sample loop {slow:,.0f} samples/s, ratio {fast / slow:.1f}x (projector max diff {err:.1e})")


if __name__ == "__main__":
    main()
