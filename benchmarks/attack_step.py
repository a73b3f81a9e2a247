"""Cost of one PGD iteration over one bare forward+backward of the same model and batch.

A PGD step needs one forward pass, one backward pass to the input and a few
elementwise operations; anything more is overhead. The reference is the least work
that yields the gradient: ``autograd.grad`` of the summed cross-entropy with respect
to the input, in eval mode, repeated ``--steps`` times. The attack is a whole
``lib.attacks.pgd`` call with ``--steps`` iterations and no random start (its set-up
included) divided by ``--steps``: the target is on these lines. The random start is
not part of an iteration: it costs once per call, one draw from a CPU
``torch.Generator``. The lines "with the random start" time whole calls with it, and
the cost of the start itself is printed per call, without a verdict. Reference and
attacks run interleaved in one process (``--repeats`` rounds); a ratio is the median
of the ratios within a round, of wall-clock and of process CPU time.
Targets (restated once a compiled one-pass update showed no update reaches 1.1x a forward+backward on
the MLP here): on the 784-256-256-10 MLP, the library's iteration over the eager floor <= 1.05x (what
``pgd`` adds to the least eager work); on the conv net, a PGD iteration <= 1.1x a forward+backward.

The lines "eager floor" run the same iterations with the fewest eager operations,
written out with nothing prepared inside the loop (:func:`eager_floor`; its iterates are
the library's, bit for bit). The library's ratio over the floor is what ``pgd`` adds;
the floor's ratio over the reference is what eager elementwise operations cost on the
machine, which no change to ``pgd`` short of a fused kernel can remove.

With ``--fused``, the lines "fused floor" run the same iterations with each update as
compiled one-pass C++ kernels (``benchmarks/_fused.py``; built once with the machine's
C++ compiler, about 45 s, then cached by torch; iterates checked equal to the library's
as well). What the eager floor costs above the fused one is the price of dispatching
several eager operations; what the fused floor costs above the reference is the memory
an update has to read after a forward and backward pass, which no implementation avoids.

On CPU it runs at torch's thread count and then at one thread, the count chapters 1
and 5 train and attack with (``small_model_threads``).

Usage: python benchmarks/attack_step.py [--batch 128] [--steps 10] [--repeats 20] [--threads N ...] [--fused]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import _fused
import torch
import torch.nn.functional as F
from _timing import CPU, best, interleaved, judged, timed

from lib import attacks, models

MLP_OVER_FLOOR = 1.05  # MLP: the library's iteration over the eager floor's
CONV_OVER_FB = 1.1  # conv net: a PGD iteration over one bare forward+backward


def bare_steps(model, x, y, steps: int) -> None:
    """``steps`` forward passes and backward passes to the input, nothing else."""
    with attacks.eval_mode(model):
        for _ in range(steps):
            xr = x.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)


def dispatch_after_backward(model, x, y, rounds: int = 200) -> tuple[float, float]:
    """Median seconds of one tiny operation right after a forward+backward, and of the same again.

    The first pays for its dispatch from cold caches; the difference is what every extra
    operation in a PGD update costs, however small its tensor.
    """
    a = torch.ones(len(x), 1, device=x.device)
    first, again = [], []
    for _ in range(rounds):
        bare_steps(model, x, y, 1)
        t0 = time.perf_counter()
        a.clamp_min_(0.5)
        t1 = time.perf_counter()
        a.clamp_min_(0.5)
        t2 = time.perf_counter()
        first.append(t1 - t0)
        again.append(t2 - t1)
    return statistics.median(first), statistics.median(again)


def pgd_call(model, x, y, steps: int, norm: str, eps: float, random_start: bool = True) -> torch.Tensor:
    return attacks.pgd(
        model, x, y, eps, norm=norm, steps=steps, random_start=random_start, generator=torch.Generator().manual_seed(0)
    )


def eager_floor(model, x, y, steps: int, norm: str, eps: float) -> torch.Tensor:
    """The fewest eager operations a PGD iteration can take, written out: the floor for :func:`pgd_call`.

    Same forward and backward as the reference; then the update alone, with everything a
    call prepares once (the iterate, the bounds, the step size) made before the loop and
    no checks, no thread switching, no per-sample tensors: 3 operations for L-inf
    (sign, step, clamp to the precomputed box) and 8 for L2 (two per-sample norms and their
    floors, the normalised step, the offset, its projection onto the ball, the clamp). Its
    iterates are :func:`lib.attacks.pgd`'s, bit for bit (checked before timing). What a
    :func:`lib.attacks.pgd` iteration costs above this line is the library's; what this line
    costs above the reference is the price of eager elementwise operations on this machine.
    """
    x0, step = x.detach(), 2.5 * eps / steps
    if norm == "linf":
        lo, hi = (x0 - eps).clamp_(0.0, 1.0), (x0 + eps).clamp_(0.0, 1.0)

        def update(xa, g):
            return xa.add_(g.sign_(), alpha=step).clamp_(lo, hi)
    else:

        def update(xa, g):
            delta = xa.addcdiv_(g, attacks._norms(g).clamp_min_(1e-12), value=step).sub_(x0)
            return torch.addcdiv(x0, delta, attacks._norms(delta).clamp_min_(eps), value=eps, out=g).clamp_(0.0, 1.0)

    return floor_iterations(model, x0, y, steps, update)


def fused_floor(kernels, model, x, y, steps: int, norm: str, eps: float) -> torch.Tensor:
    """:func:`eager_floor`'s iterations with each update compiled (``benchmarks/_fused.py``): one pass for
    L-inf, two around the two per-sample norms for L2."""
    x0, step = x.detach().contiguous(), 2.5 * eps / steps
    if norm == "linf":

        def update(xa, g):
            kernels.linf_update(xa, g, x0, step, eps)
            return xa
    else:

        def update(xa, g):
            kernels.l2_step(xa, g, attacks._norms(g), x0, step)
            kernels.l2_project(g, xa, attacks._norms(xa), x0, eps)  # g is spent: it takes the new iterate
            return g

    return floor_iterations(model, x0, y, steps, update)


def floor_iterations(model, x0, y, steps: int, update) -> torch.Tensor:
    """``steps`` iterations of the floors from ``x0`` clamped to [0, 1]: the reference's forward and
    backward pass, then ``xa = update(xa, g)``."""
    xa = x0.clamp(0.0, 1.0)
    with attacks.eval_mode(model):
        for _ in range(steps):
            xr = xa.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
            xa = update(xa, g)
    return xa


def pgd_parallel_update(model, x, y, steps: int, norm: str, eps: float) -> None:
    """:func:`pgd_call` without a start, its update at every thread (as before the one-thread update)."""
    kept, attacks.SERIAL_UPDATE_MAX = attacks.SERIAL_UPDATE_MAX, 0
    try:
        pgd_call(model, x, y, steps, norm, eps, False)
    finally:
        attacks.SERIAL_UPDATE_MAX = kept


def bench(
    name: str, model, x, y, a, kernels=None, over_fb: float | None = None, over_floor: float | None = None
) -> None:
    variants = {
        "forward+backward": (bare_steps, ()),
        # The iterations: the target is on these.
        "PGD L-inf": (pgd_call, ("linf", 0.1, False)),
        "PGD L2": (pgd_call, ("l2", 1.5, False)),
        # Whole calls with the random start, once per call (one draw from a CPU torch.Generator).
        "PGD L-inf, random start": (pgd_call, ("linf", 0.1)),
        "PGD L2, random start": (pgd_call, ("l2", 1.5)),
        # The floor: the same iterations with the fewest eager operations, written out.
        "PGD L-inf, eager floor": (eager_floor, ("linf", 0.1)),
        "PGD L2, eager floor": (eager_floor, ("l2", 1.5)),
    }
    floors = {"eager": eager_floor}
    if kernels is not None:  # the same iterations with each update one compiled pass (two for L2)
        floors["fused"] = functools.partial(fused_floor, kernels)
        variants["PGD L-inf, fused floor"] = (floors["fused"], ("linf", 0.1))
        variants["PGD L2, fused floor"] = (floors["fused"], ("l2", 1.5))
    if a.device == "cpu" and torch.get_num_threads() > 1:  # what the one-thread update saves
        variants["PGD L-inf, parallel update"] = (pgd_parallel_update, ("linf", 0.1))
        variants["PGD L2, parallel update"] = (pgd_parallel_update, ("l2", 1.5))
    model = model.to(a.device)
    calls = {
        k: (lambda fn=fn, extra=extra: lambda: fn(model, x, y, a.steps, *extra)) for k, (fn, extra) in variants.items()
    }
    for fn, extra in variants.values():  # warm-up: first calls allocate and pick kernels
        fn(model, x, y, 2, *extra)
    for norm, eps in (("linf", 0.1), ("l2", 1.5)):  # a floor does a PGD iteration's work, no less
        expected = pgd_call(model, x, y, a.steps, norm, eps, False)
        for kind, floor in floors.items():
            if not torch.equal(floor(model, x, y, a.steps, norm, eps), expected):
                raise SystemExit(
                    f"the {kind} floor's {norm} iterates differ from lib.attacks.pgd's: the floor is wrong"
                )
    times = interleaved(calls, a.repeats)
    ref = times["forward+backward"]
    print(
        f"{name}, batch {len(x)} ({a.device}, {torch.get_num_threads()} threads): forward+backward {best(ref) / a.steps * 1e3:.2f} ms wall, "
        f"{best(ref, CPU) / a.steps * 1e3:.2f} ms CPU per iteration"
    )

    def line(k: str, tail: str = "", target: float | None = None) -> None:
        """One variant: its time per iteration and its ratio to the reference, then ``tail``."""
        print(
            f"  {k:26s} {best(times[k]) / a.steps * 1e3:7.2f} ms/iteration   ratio "
            f"{judged(times[k], ref, at_most=target)} wall, {judged(times[k], ref, CPU, at_most=target)} CPU time{tail}"
        )

    for k in list(variants)[1:3]:
        line(k, target=over_fb)
    for k, norm, eps in zip(list(variants)[3:5], ("linf", "l2"), (0.1, 1.5)):
        g = torch.Generator().manual_seed(0)
        start = statistics.median(timed(lambda: attacks._random_start(x, eps, norm, g))[CPU] for _ in range(50))
        line(k, f"; the start alone: {start * 1e3:.2f} ms CPU per call")
    for k in list(variants)[5:7]:  # the floors: what the library's iterations add to them
        lib_k = k.split(",")[0]
        line(k, f"; {lib_k} over it: {judged(times[lib_k], times[k], CPU, at_most=over_floor)} CPU time")
    for k in [k for k in variants if k.endswith("fused floor")]:  # what fusing each update saves
        eager = k.replace("fused", "eager")
        line(k, f"; eager floor over it: {judged(times[eager], times[k], CPU)} CPU time")
    for k in [k for k in variants if k.endswith("parallel update")]:
        line(k, f"; over the one-thread update: {judged(times[k], times[k.split(',')[0]], CPU)} CPU time")
    if a.device == "cpu":
        cold, warm = dispatch_after_backward(model, x, y)
        print(
            f"  one tiny operation right after a forward+backward: {cold * 1e6:.1f} us, the same again: "
            f"{warm * 1e6:.1f} us (each operation of an update costs at least the first)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="CPU thread counts to run at, one after another (default: torch's choice, then 1, the "
        "count chapters 1 and 5 attack with)",
    )
    ap.add_argument("--models", nargs="+", choices=("mlp", "conv"), default=["mlp", "conv"])
    ap.add_argument(
        "--fused",
        action="store_true",
        help="also time the updates as compiled one-pass C++ kernels (CPU only; needs a C++ compiler, "
        "about 45 s to build the first time)",
    )
    a = ap.parse_args()
    kernels = None
    if a.fused:
        if a.device != "cpu":
            ap.error(f"--fused runs on CPU only; got --device {a.device}")
        try:
            kernels = _fused.load()
        except Exception as err:  # no compiler, no ninja: say so and time the rest
            print(
                f"fused floor skipped: the C++ kernels did not build ({type(err).__name__}: {str(err).splitlines()[0]})"
            )
    default = torch.get_num_threads()
    threads = a.threads or ([default, 1] if a.device == "cpu" and default > 1 else [default])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 784, generator=g).to(a.device)
    y = torch.randint(0, 10, (a.batch,), generator=g).to(a.device)
    for n in threads:
        torch.set_num_threads(n)
        torch.manual_seed(0)
        if "mlp" in a.models:
            bench("MLP 784-256-256-10", models.MLP(784, [256, 256], 10), x, y, a, kernels, over_floor=MLP_OVER_FLOOR)
        if "conv" in a.models:
            bench(
                "SmallConvNet 28x28 (16, 32 channels)",
                models.SmallConvNet((28, 28), 10),
                x,
                y,
                a,
                kernels,
                over_fb=CONV_OVER_FB,
            )
    print(
        f"targets: MLP, the library's iteration <= {MLP_OVER_FLOOR}x the eager floor's; conv net, a PGD iteration "
        f"<= {CONV_OVER_FB}x forward+backward (median of {a.repeats} interleaved rounds with its 95% interval; the "
        "CPU-time ratio is the steadier one when other processes share the cores)"
    )


if __name__ == "__main__":
    main()
