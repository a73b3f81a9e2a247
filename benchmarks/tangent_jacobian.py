"""Tangent bases of an autoencoder's manifold: batched torch.func against a per-sample loop.

Run for MLP and convolutional decoders (the chapter's default is convolutional).

`lib.manifold.tangent_basis` takes every decoder Jacobian in one `vmap(jacfwd)` call and
orthonormalises them with one batched QR. The reference computes the same forward-mode
Jacobian (`jacfwd`) and its QR one sample at a time in a Python loop. Both run here, on
the same decoder and codes; the script checks that they span the same subspaces and
prints samples/s of each and the ratio.
"""

from __future__ import annotations

import argparse
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


def rates(fast_fn, slow_fn, *args, repeats: int = 3) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Best-of-``repeats`` samples per second of two functions on the same arguments, and their results.

    The two are timed in alternation, so that a change in the machine's load during the run
    affects both alike.
    """
    best, out = [float("inf"), float("inf")], [None, None]
    for _ in range(repeats):
        for i, fn in enumerate((fast_fn, slow_fn)):
            t0 = time.perf_counter()
            out[i] = fn(*args)
            best[i] = min(best[i], time.perf_counter() - t0)
    return len(args[-1]) / best[0], len(args[-1]) / best[1], out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codes", type=int, default=None, help="codes per case (default: 450 at 8x8, 200 at 28x28)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    cases = (
        ("MLP, digits-size", "mlp", (8, 8), 8, 450),
        ("MLP, MNIST-size", "mlp", (28, 28), 16, 200),
        ("conv, digits-size", "conv", (8, 8), 8, 450),
        ("conv, MNIST-size", "conv", (28, 28), 16, 200),
    )
    for name, kind, shape, k, count in cases:
        widths = [128] if shape == (8, 8) else [512, 256]
        ae = manifold.make_autoencoder(kind, shape, k, widths=widths, channels=(32, 64)).eval()
        n = shape[0] * shape[1]
        count = a.codes or count
        z = torch.randn(count, k)
        with torch.no_grad():
            fast, slow, b_fast, b_slow = rates(manifold.tangent_basis, per_sample, ae.decode, z, repeats=a.repeats)
        p_fast = b_fast @ b_fast.transpose(1, 2)
        p_slow = b_slow @ b_slow.transpose(1, 2)
        err = (p_fast - p_slow).abs().max().item()
        assert err < 1e-4, f"batched and per-sample tangent spaces differ by {err}"
        print(
            f"{name} (n={n}, k={k}, {count} codes): batched {fast:,.0f} samples/s, "
            f"per-sample loop {slow:,.0f} samples/s, ratio {fast / slow:.1f}x (projector max diff {err:.1e})"
        )


if __name__ == "__main__":
    main()
