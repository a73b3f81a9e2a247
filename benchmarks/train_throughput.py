"""lib.train.fit (device-resident tensors, index batches) vs the canonical DataLoader loop.

Same model, data, batch size, optimizer and number of epochs, in one process.
Prints samples/s of both and the ratio. Usage: python benchmarks/train_throughput.py [--n 8000]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lib import models, train


def dataloader_loop(model, x, y, epochs, batch_size, lr, seed):
    """The canonical PyTorch training loop."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def lib_loop(model, x, y, epochs, batch_size, lr, seed):
    train.fit(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr,
              generator=torch.Generator().manual_seed(seed), progress=False)


def timed(fn, *args) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8000, help="training samples")
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.n, a.dim, generator=g).to(a.device)
    y = torch.randint(0, 10, (a.n,), generator=g).to(a.device)
    results = {}
    for name, fn in (("DataLoader(TensorDataset)", dataloader_loop), ("lib.train.fit", lib_loop)):
        times = []
        for r in range(a.repeats):
            torch.manual_seed(r)
            net = models.MLP(a.dim, a.widths, 10).to(a.device)
            times.append(timed(fn, net, x, y, a.epochs, a.batch_size, 1e-3, r))
        best = min(times)
        results[name] = a.n * a.epochs / best
        print(f"{name:28s} {results[name]:12,.0f} samples/s  (best of {a.repeats}: {best:.2f} s)")
    ratio = results["lib.train.fit"] / results["DataLoader(TensorDataset)"]
    print(f"ratio lib / DataLoader: {ratio:.2f}x  (device {a.device}, batch {a.batch_size}, "
          f"MLP {a.dim}-{'-'.join(map(str, a.widths))}-10, {a.n} samples x {a.epochs} epochs)")


if __name__ == "__main__":
    main()
