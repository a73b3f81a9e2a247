"""Cost of one PGD iteration over one bare forward+backward of the same model and batch.

A PGD step needs one forward pass, one backward pass to the input and a few
elementwise operations; anything more is overhead. The reference is the least work
that yields the gradient: ``autograd.grad`` of the summed cross-entropy with respect
to the input, in eval mode, repeated ``--steps`` times. The attack is a whole
``lib.attacks.pgd`` call with ``--steps`` iterations (set-up and random start
included) divided by ``--steps``. Reference and attacks run interleaved in one
process, best of ``--repeats``; ratios of wall-clock and of process CPU time.
Target: <= 1.1x.

Usage: python benchmarks/attack_step.py [--batch 128] [--steps 10] [--repeats 10]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from _timing import timed
from lib import attacks, models


def bare_steps(model, x, y, steps: int) -> None:
    """``steps`` forward passes and backward passes to the input, nothing else."""
    with attacks.eval_mode(model):
        for _ in range(steps):
            xr = x.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)


def pgd_call(model, x, y, steps: int, norm: str, eps: float) -> None:
    attacks.pgd(model, x, y, eps, norm=norm, steps=steps, generator=torch.Generator().manual_seed(0))


def bench(name: str, model, x, y, a) -> None:
    variants = {
        "forward+backward": (bare_steps, ()),
        "PGD L-inf": (pgd_call, ("linf", 0.1)),
        "PGD L2": (pgd_call, ("l2", 1.5)),
    }
    model = model.to(a.device)
    for fn, extra in variants.values():  # warm-up: first calls allocate and pick kernels
        fn(model, x, y, 2, *extra)
    times = {k: [] for k in variants}
    for _ in range(a.repeats):
        for k, (fn, extra) in variants.items():
            times[k].append(timed(fn, model, x, y, a.steps, *extra))
    wall = {k: min(t[0] for t in ts) / a.steps for k, ts in times.items()}
    cpu = {k: min(t[1] for t in ts) / a.steps for k, ts in times.items()}
    ref = "forward+backward"
    print(f"{name}, batch {len(x)} ({a.device}): forward+backward {wall[ref] * 1e3:.2f} ms wall, "
          f"{cpu[ref] * 1e3:.2f} ms CPU per iteration")
    for k in list(variants)[1:]:
        print(f"  {k:10s} {wall[k] * 1e3:7.2f} ms/iteration   ratio {wall[k] / wall[ref]:.3f}x wall, "
              f"{cpu[k] / cpu[ref]:.3f}x CPU time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 784, generator=g).to(a.device)
    y = torch.randint(0, 10, (a.batch,), generator=g).to(a.device)
    torch.manual_seed(0)
    bench("MLP 784-256-256-10", models.MLP(784, [256, 256], 10), x, y, a)
    bench("SmallConvNet 28x28 (16, 32 channels)", models.SmallConvNet((28, 28), 10), x, y, a)
    print("target: PGD iteration <= 1.1x forward+backward (the CPU-time ratio is the steadier one "
          "when other processes share the cores)")


if __name__ == "__main__":
    main()
