"""SOM training speed and quality: MiniSom (online and offline) vs the batch SOM of ``lib.som``.

All runs fit the same hidden-layer activations (a one-hidden-layer MLP trained for one
epoch on 28x28 images: scikit-learn's digits upsampled, always at hand, or real data with
``--dataset fashion-mnist``), start from the same PCA weights (MiniSom's
``pca_weights_init``) and make the same number of passes over the data:

1. MiniSom ``train`` (online): ``passes * N`` single-sample updates in random order;
2. MiniSom ``train_batch_offline``: ``passes`` batch updates (a Python loop over samples);
3. ``lib.som.fit`` with MiniSom's offline settings (``schedule_at="start"``, same learning
   rate and decay): must give the same weights as 2, hence the same quantization error;
4. ``lib.som.fit`` as the book uses it (pure batch map, learning rate 1, schedule read at the
   end of each pass): the quality bar is a quantization error within 5% of MiniSom's online
   ``train``, at >= 10x its speed on the CPU.

``--size full`` is the size the bar is stated for: 10,000 x 1,000 activations, 20x20 map.
The default is a modest size that runs in seconds. On a machine with CUDA, the book's
batch SOM is also timed on the GPU.

Second part (``--part pca``): the PCA start of a wide layer, as chapter 3 needs it for the
first conv block of its ``paper`` conv net (32 channels x 14 x 14 = 6,272 dimensions).
The default is a narrower first block (8 channels, 1,568 dimensions) so that the
run takes seconds; ``--pca-channels 32`` is the paper's. The old way held every layer's
activations of the whole training set, formed the dim x dim covariance in float64 and called ``eigh``, once for the chapter's map and
once per map size of its sensitivity table (four calls per layer). The new way is
:func:`lib.som.principal_planes`' randomized block power iteration, computed once per
layer and streamed over activations recomputed chunk by chunk. Both are timed in this
process (ratio old / new); each way's peak memory is measured in a fresh child process
(Linux ``VmHWM`` after resetting it, so the figure is what that way adds); equivalence is
the angle between the components and the quantization error of a map fitted from each
start (tolerance: within 1%).

    python benchmarks/som_fit.py [--part fit|pca|all] [--size small|full] [--n N --dim D --grid G --passes P]
    python benchmarks/som_fit.py --part pca --pca-channels 32 [--pca-n 60000]   # the paper's layer and data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minisom import MiniSom  # noqa: E402

from lib import data, models, som, train  # noqa: E402
from lib.chapters import ch03  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import images  # noqa: E402

SIZES = {"small": (2000, 300, 20), "full": (10_000, 1000, 20)}


def training_images(dataset: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 training images and labels: upsampled digits (always at hand) or a real dataset's."""
    if dataset == "digits-28":
        return images(n, seed)
    ds = data.load(dataset, n_train=n, n_test=10, seed=seed)
    return ds.x_train, ds.y_train


def activations(n: int, dim: int, dataset: str, seed: int) -> np.ndarray:
    """Hidden activations (n, dim) of a one-hidden-layer ReLU MLP trained one epoch on ``dataset``."""
    torch.manual_seed(seed)
    x, y = training_images(dataset, n, seed)
    net = models.MLP(x.shape[1], [dim], 10)
    train.fit(net, x, y, epochs=1, generator=torch.Generator().manual_seed(seed), progress=False)
    with torch.no_grad():
        return net(x, return_hidden=True)[1][0].double().numpy()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def conv_layers(n: int, seed: int, channels: int = 32, epochs: int = 1, dataset: str = "digits-28"):
    """The chapter's conv net (``channels``, twice that, dense 128; the ``paper`` net has 32), trained on ``n`` images."""
    torch.manual_seed(seed)
    x, y = training_images(dataset, n, seed)
    net = models.SmallConvNet((28, 28), 10, (channels, 2 * channels), 128)
    train.fit(
        net,
        x,
        y,
        epochs=epochs,
        batch_size=128,
        generator=torch.Generator().manual_seed(seed),
        progress=False,
    )
    return net, x


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def peak_mb(fn) -> tuple[object, float]:
    """Run ``fn`` and return its result and the peak resident memory it added (MB, Linux ``VmHWM``)."""
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    before = _status_mb("VmRSS")
    out = fn()
    return out, _status_mb("VmHWM") - before


def pca_old(net, x, layer: int = 1) -> som.Plane:
    """The old chapter: every layer's activations held, then the exact covariance + eigh of one layer."""
    acts = ch03.activations(net, x)
    return som.principal_planes(som.tensor_batches(acts[layer]), method="exact")[0]


def pca_new(net, x, layer: int = 1, budget_mb: float = 0.0) -> som.Plane:
    """The new chapter: randomized planes over activations recomputed chunk by chunk (budget 0: always)."""
    return som.principal_planes(ch03.layer_batches(net, x, [layer], budget_mb=budget_mb))[0]


def probe(way: str, n: int, seed: int, channels: int, dataset: str) -> None:
    """Child process: peak memory added by one way of computing the plane (prints JSON)."""
    net, x = conv_layers(n, seed, channels, dataset=dataset)
    _, mb = peak_mb(lambda: (pca_old if way == "old" else pca_new)(net, x))
    print(json.dumps({"way": way, "peak_mb": mb}))


def pca_part(a) -> None:
    """Time, memory and equivalence of the old and new PCA start of the 6,272-dimensional conv layer."""
    n = a.pca_n
    net, x = conv_layers(n, a.seed, a.pca_channels, dataset=a.dataset)
    dim = ch03.activations(net, x[:1])[1].shape[1]
    print(
        f"\nPCA start of the first conv layer: {n} {a.dataset} images x {dim} dimensions "
        f"(conv net {a.pca_channels}-{2 * a.pca_channels}-128, one epoch), torch threads {torch.get_num_threads()}"
    )
    old, t_old = timed(lambda: pca_old(net, x))
    print(
        f"  old: all activations held, exact covariance + eigh (float64)   {t_old:9.2f} s per call, "
        f"x4 calls per layer in the old chapter = {4 * t_old:.1f} s"
    )
    held = ch03.layer_batches(net, x, [1], budget_mb=float("inf"))
    new_held, t_held = timed(lambda: som.principal_planes(held))
    new, t_new = timed(lambda: pca_new(net, x))
    print(f"  new: randomized, activations held                               {t_held:9.2f} s, once per layer")
    print(f"  new: randomized, activations recomputed chunk by chunk          {t_new:9.2f} s, once per layer")
    cos = (old.components * new.components).sum(1).abs()
    print(
        f"  |cos| between old and new components: {cos[0]:.8f}, {cos[1]:.8f}; variances "
        f"{old.variances[0]:.5g}, {old.variances[1]:.5g} vs {new.variances[0]:.5g}, {new.variances[1]:.5g}"
    )
    mem = {}
    for way in ("old", "new"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--probe",
                way,
                "--pca-n",
                str(n),
                "--seed",
                str(a.seed),
                "--pca-channels",
                str(a.pca_channels),
                "--dataset",
                a.dataset,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        mem[way] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
    print(f"  peak memory added (fresh process each): old {mem['old']:.0f} MB, new {mem['new']:.0f} MB")
    g = a.grid
    xa = ch03.activations(net, x)[1]
    fits = {}
    for name, plane in (("old", old), ("new", new)):
        m = som.fit(xa, g, g, epochs=a.passes, sigma=a.sigma, learning_rate=1.0, lr_decay="constant", plane=plane)
        fits[name] = m.quantization_error(xa)
    rel = fits["new"] / fits["old"] - 1
    print(
        f"  QE of a {g}x{g} map, {a.passes} passes, from each start: old {fits['old']:.4f}, new {fits['new']:.4f} "
        f"({100 * rel:+.3f}%)"
    )
    print("\nPCA start, old / new:")
    print(f"  time per call (held activations):              {t_old / t_held:8.1f}x")
    print(f"  time per chapter (4 old calls vs 1 streamed):  {4 * t_old / t_new:8.1f}x")
    print(f"  peak memory:                                   {mem['old'] / max(mem['new'], 1):8.1f}x")
    print(f"equivalence bar (QE within 1%): {'met' if abs(rel) <= 0.01 else 'NOT met'}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("fit", "pca", "all"), default="all")
    p.add_argument("--pca-n", type=int, default=2000, help="training images for the PCA part (paper: 60000)")
    p.add_argument(
        "--pca-channels",
        type=int,
        default=8,
        help="first conv block's channels: 8 gives 1,568 dimensions (seconds); the paper's 32 gives "
        "6,272 (the old exact way then takes minutes per call on two cores)",
    )
    p.add_argument("--probe", choices=("old", "new"), help=argparse.SUPPRESS)
    p.add_argument("--size", choices=SIZES, default="small")
    p.add_argument("--n", type=int, help="number of activation vectors (overrides --size)")
    p.add_argument("--dim", type=int, help="activation dimension (overrides --size)")
    p.add_argument("--grid", type=int, help="map side (overrides --size)")
    p.add_argument("--passes", type=int, default=5, help="passes over the data, all methods")
    p.add_argument("--sigma", type=float, default=3.0, help="initial neighbourhood radius (decays to 1/3)")
    p.add_argument("--lr", type=float, default=0.5, help="MiniSom's initial learning rate")
    p.add_argument(
        "--dataset",
        default="digits-28",
        choices=("digits-28", "fashion-mnist", "mnist"),
        help="images the activations come from: 8x8 digits upsampled to 28x28 (default, always at hand) or real data",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-offline", action="store_true", help="skip MiniSom's (slow) offline training")
    a = p.parse_args(argv)
    if a.probe:
        return probe(a.probe, a.pca_n, a.seed, a.pca_channels, a.dataset)
    n, dim, g = SIZES[a.size]
    n, dim, g = a.n or n, a.dim or dim, a.grid or g
    if a.part != "fit":
        pca_part(argparse.Namespace(**{**vars(a), "grid": g}))
        if a.part == "pca":
            return

    x = activations(n, dim, a.dataset, a.seed)
    print(
        f"activations {n} x {dim}, map {g}x{g}, {a.passes} passes, sigma {a.sigma} -> {a.sigma / 3:.2f}, "
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    ref = MiniSom(g, g, dim, sigma=a.sigma, learning_rate=a.lr, random_seed=a.seed)
    ref.pca_weights_init(x)
    w0 = ref.get_weights().reshape(g * g, dim).copy()
    xt = torch.tensor(x, dtype=torch.float32)
    rows = []

    def add(name, seconds, qe, te):
        rows.append((name, seconds, qe, te))
        print(f"  {name:<44s} {seconds:9.3f} s   QE {qe:.4f}   TE {te:.4f}", flush=True)

    online = MiniSom(g, g, dim, sigma=a.sigma, learning_rate=a.lr, random_seed=a.seed)
    online._weights = w0.reshape(g, g, dim).copy()
    _, t_on = timed(lambda: online.train(x, a.passes * n, random_order=True))
    add("MiniSom train (online)", t_on, online.quantization_error(x), online.topographic_error(x))

    if not a.skip_offline:
        offline = MiniSom(g, g, dim, sigma=a.sigma, learning_rate=a.lr, random_seed=a.seed)
        offline._weights = w0.reshape(g, g, dim).copy()
        _, t_off = timed(lambda: offline.train_batch_offline(x, a.passes))
        add("MiniSom train_batch_offline", t_off, offline.quantization_error(x), offline.topographic_error(x))

    init = torch.tensor(w0, dtype=torch.float32)
    som.fit(xt[:256], g, g, epochs=1, sigma=a.sigma, init=init)  # warm-up (first-call overheads)
    like_off, t_like = timed(
        lambda: som.fit(
            xt,
            g,
            g,
            epochs=a.passes,
            sigma=a.sigma,
            learning_rate=a.lr,
            lr_decay="asymptotic",
            schedule_at="start",
            init=init,
        )
    )
    add(
        "lib.som.fit, MiniSom offline settings (CPU)",
        t_like,
        like_off.quantization_error(xt),
        like_off.topographic_error(xt),
    )
    book, t_book = timed(
        lambda: som.fit(xt, g, g, epochs=a.passes, sigma=a.sigma, learning_rate=1.0, lr_decay="constant", init=init)
    )
    qe_book = book.quantization_error(xt)
    add("lib.som.fit, book settings (CPU)", t_book, qe_book, book.topographic_error(xt))
    if torch.cuda.is_available():
        xc, ic = xt.cuda(), init.cuda()
        som.fit(xc[:256], g, g, epochs=1, sigma=a.sigma, init=ic)
        torch.cuda.synchronize()

        def gpu_fit():
            s = som.fit(xc, g, g, epochs=a.passes, sigma=a.sigma, learning_rate=1.0, lr_decay="constant", init=ic)
            torch.cuda.synchronize()
            return s

        gs, t_gpu = timed(gpu_fit)
        add(
            f"lib.som.fit, book settings ({torch.cuda.get_device_name()})",
            t_gpu,
            gs.quantization_error(xc),
            gs.topographic_error(xc),
        )

    print("\nspeed ratios (time of the MiniSom run / time of the lib.som run):")
    print(f"  online train / lib.som book settings (CPU):        {t_on / t_book:8.1f}x")
    if not a.skip_offline:
        print(f"  train_batch_offline / lib.som offline settings:    {t_off / t_like:8.1f}x")
        print(f"  QE(lib.som offline settings) / QE(MiniSom offline): {rows[2][2] / rows[1][2]:.4f}")
    if torch.cuda.is_available():
        print(f"  online train / lib.som book settings (GPU):        {t_on / t_gpu:8.1f}x")
    qe_on = rows[0][2]
    rel = qe_book / qe_on - 1
    print(f"\nQE lib.som (book) vs MiniSom online: {qe_book:.4f} vs {qe_on:.4f} ({100 * rel:+.2f}%)")
    ok_q, ok_s = rel <= 0.05, t_on / t_book >= 10
    print(
        f"quality bar (QE at most 5% above MiniSom online): {'met' if ok_q else 'NOT met'}; "
        f"speed bar (>= 10x on CPU): {'met' if ok_s else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
