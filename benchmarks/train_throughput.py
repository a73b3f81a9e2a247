"""lib.train.fit (device-resident tensors, index batches) vs the canonical DataLoader loop.

Like for like: same model, data, batch size, optimizer, learning rate and number of
epochs, and the reference does the same per-epoch work ``fit`` does (the training-set
accuracy it reports, computed the same way), in one process. The variants run
interleaved (``--repeats`` rounds); a ratio is the median of the ratios within a round. Two references: the loop as usually written (``torch.optim.Adam`` with its
default implementation) and the same loop with the optimizer implementation ``fit``
picks, which isolates the data path. Prints samples/s and both ratios, of wall-clock and of process CPU time.

Usage: python benchmarks/train_throughput.py [--n 8000] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _timing import CPU, WALL, best, interleaved, judged
from torch.utils.data import DataLoader, TensorDataset

from lib import models, train


def dataloader_loop(model, x, y, epochs, batch_size, lr, seed, fused):
    """The canonical PyTorch training loop, plus the per-epoch train accuracy ``fit`` reports."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    loader = DataLoader(
        TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train.accuracy(model, x, y)


def lib_loop(model, x, y, epochs, batch_size, lr, seed, fused):
    train.fit(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        generator=torch.Generator().manual_seed(seed),
        progress=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8000, help="training samples")
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.n, a.dim, generator=g).to(a.device)
    y = torch.randint(0, 10, (a.n,), generator=g).to(a.device)
    probe = models.MLP(a.dim, a.widths, 10).to(a.device)
    fit_fused = train.make_optimizer(probe.parameters(), "adam", 1e-3).defaults.get("fused")
    variants = {
        "DataLoader, Adam default": (dataloader_loop, None),
        f"DataLoader, Adam fused={fit_fused}": (dataloader_loop, fit_fused),
        "lib.train.fit": (lib_loop, None),
    }

    def setup(fn, fused):
        """A fresh, identically initialised network for every timed run."""
        torch.manual_seed(0)
        net = models.MLP(a.dim, a.widths, 10).to(a.device)
        return lambda: fn(net, x, y, a.epochs, a.batch_size, 1e-3, 0, fused)

    times = interleaved({name: (lambda v=v: setup(*v)) for name, v in variants.items()}, a.repeats)
    for name, ts in times.items():
        print(
            f"{name:34s} {a.n * a.epochs / best(ts):10,.0f} samples/s  (best of {a.repeats}: "
            f"{best(ts):.2f} s wall, {best(ts, CPU):.2f} s CPU)"
        )
    canonical, same_opt, lib = (times[k] for k in variants)
    for label, which in (("wall", WALL), ("CPU time", CPU)):
        print(
            f"ratio lib / DataLoader ({label}): {judged(canonical, lib, which, at_least=1.0)}; "
            f"with fit's optimizer: {judged(same_opt, lib, which, at_least=1.0)}"
        )
    print(
        f"(device {a.device}, batch {a.batch_size}, MLP {a.dim}-{'-'.join(map(str, a.widths))}-10, "
        f"{a.n} samples x {a.epochs} epochs, train accuracy every epoch in both; median of "
        f"{a.repeats} interleaved rounds with its 95% interval; the CPU-time ratio is the steadier one when other "
        "processes share the cores)"
    )


if __name__ == "__main__":
    main()
