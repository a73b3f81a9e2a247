"""Batched ensemble vs one network at a time: 64 two-layer ReLU networks, same steps, one process.

Three ways to train the same 64 networks (same initial weights, same data, full-batch
gradient descent on the logistic loss for the same number of steps):

* ``batched``: :func:`lib.ensemble.fit` on all 64 at once (stacked weights, one
  batched matmul per layer, hand-written gradients);
* ``loop, autograd``: a Python loop over 64 :class:`lib.models.TwoLayerReLU` trained
  one after another with autograd and ``torch.optim.SGD`` (the usual way);
* ``loop, same kernel``: a loop calling :func:`lib.ensemble.fit` on one network at a
  time, which isolates the gain of batching from that of the hand-written gradients.

Prints the wall time of each, the ratios, and the largest weight difference (the
three must train the same networks). Sizes default to those of the chapter's sweeps.

Then the stopping of finished networks: the same ensemble with init scales spread over
``[0.1, 2]`` (so its members reach the margin at very different steps) trained until
every member reaches the margin, once with finished members masked in the batch (the
behaviour before they left it, ``compact=False``) and once with finished members leaving
the batch (``compact=True``, the default). Prints both times, the ratio, and whether the
two trained ensembles are bitwise equal (they must be).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from lib import ensemble
from lib.models import TwoLayerReLU


def make_nets(members: int, d: int, width: int, seed: int) -> list[TwoLayerReLU]:
    g = torch.Generator().manual_seed(seed)
    return [TwoLayerReLU(d, width, generator=g) for _ in range(members)]


def train_loop_autograd(nets, x, y, lr, steps):
    for net in nets:
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        for _ in range(steps):
            loss = F.softplus(-y * net(x)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


def train_loop_kernel(ens_list, x, y, lr, steps):
    for ens in ens_list:
        ensemble.fit(ens, x, y, lr=lr, steps=steps, progress=False)


def compaction_comparison(
    members: int, d: int, width: int, n: int, lr: float, seed: int, margin: float, steps: int
) -> None:
    """Masked vs compacted batch on members that stop at very different steps; same process."""
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    scales = torch.logspace(math.log10(0.1), math.log10(2.0), members).tolist()
    start = ensemble.init(members, d, width, init_scale=scales, generator=g)
    masked, compact = start.clone(), start.clone()
    ensemble.fit(start.clone(), x, y, lr=lr, steps=5, margin=margin, progress=False)  # warm-up
    t_mask = timed(lambda: ensemble.fit(masked, x, y, lr=lr, steps=steps, margin=margin, progress=False, compact=False))
    t0 = time.perf_counter()
    res = ensemble.fit(compact, x, y, lr=lr, steps=steps, margin=margin, progress=False)
    t_comp = time.perf_counter() - t0
    same = all(torch.equal(a, b) for a, b in zip(masked._tensors(), compact._tensors()) if a is not None)
    st = res.steps.double()
    print(
        f"\nstopping finished networks: {members} networks, margin {margin}, steps to reach it "
        f"{int(st.min())}..{int(st.max())} (mean {st.mean():.0f}), {int(res.reached.sum())} reached"
    )
    print(f"{'masked in the batch':>22}: {t_mask:8.3f} s")
    print(f"{'leave the batch':>22}: {t_comp:8.3f} s")
    print(
        f"speed-up of leaving the batch: {t_mask / t_comp:.2f}x (ideal, mean/max steps: "
        f"{float(st.max() / st.mean()):.2f}x); bitwise equal results: {same}"
    )


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--n", type=int, default=16, help="training points")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only-stopping", action="store_true", help="run only the stopping comparison")
    p.add_argument("--margin", type=float, default=2.0, help="stop margin of the stopping comparison")
    p.add_argument("--max-steps", type=int, default=20000, help="step budget of the stopping comparison")
    a = p.parse_args()

    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.n, a.d, generator=g)
    y = torch.randint(0, 2, (a.n,), generator=g).float() * 2 - 1
    nets = make_nets(a.members, a.d, a.width, a.seed)
    batched = ensemble.TwoLayerEnsemble.stack(nets)
    singles = [ensemble.TwoLayerEnsemble.stack([n]) for n in nets]

    if a.only_stopping:
        compaction_comparison(a.members, a.d, a.width, a.n, a.lr, a.seed, a.margin, a.max_steps)
        return
    print(
        f"{a.members} networks {a.d} -> {a.width} -> 1, {a.n} points, {a.steps} full-batch steps, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    ensemble.fit(ensemble.TwoLayerEnsemble.stack(nets[:2]), x, y, lr=a.lr, steps=5, progress=False)  # warm-up
    t_batch = timed(lambda: ensemble.fit(batched, x, y, lr=a.lr, steps=a.steps, progress=False))
    t_kernel = timed(train_loop_kernel, singles, x, y, a.lr, a.steps)
    t_auto = timed(train_loop_autograd, nets, x, y, a.lr, a.steps)

    diff = max((batched.w[e] - nets[e].w.detach()).abs().max().item() for e in range(a.members))
    diff = max(diff, max((batched.w[e] - singles[e].w[0]).abs().max().item() for e in range(a.members)))
    rate = a.members * a.steps
    print(f"{'batched ensemble':>22}: {t_batch:8.3f} s  ({rate / t_batch:10.0f} network-steps/s)")
    print(f"{'loop, same kernel':>22}: {t_kernel:8.3f} s  ({rate / t_kernel:10.0f} network-steps/s)")
    print(f"{'loop, autograd + SGD':>22}: {t_auto:8.3f} s  ({rate / t_auto:10.0f} network-steps/s)")
    print(
        f"speed-up of the batched ensemble: {t_auto / t_batch:.1f}x over the autograd loop, "
        f"{t_kernel / t_batch:.1f}x over the same-kernel loop"
    )
    print(f"largest first-layer weight difference between the three: {diff:.2e}")
    compaction_comparison(a.members, a.d, a.width, a.n, a.lr, a.seed, a.margin, a.max_steps)


if __name__ == "__main__":
    main()
