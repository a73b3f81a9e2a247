"""Chapter 5's seeds trained as one stack (lib.stack) vs one network after another, one process.

For each training method of chapter 5 (backprop, local errors, PGD adversarial
training), the base configuration's seeds are trained twice from the same initial
weights and batch orders: one after another with :func:`lib.local_errors.fit_annealed`
(as the chapter trained them before), and together with :func:`lib.stack.fit_annealed`
through :func:`lib.chapters.ch05.train_configuration`. Parameters are chapter 5's
``quick`` profile on digits (``--epochs`` shortens the runs); one CPU thread, as the
chapter trains. Prints the seconds of each, their ratio (median over interleaved
rounds), and the clean test accuracies of both sets of networks, which must agree up to
float round-off (adversarial training's random starts are drawn differently).

Usage: python benchmarks/stack_train.py [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch
from _timing import best, interleaved, judged

from lib import attacks, config, train
from lib import local_errors as le
from lib.chapters import ch05


def one_by_one(cfg, ds, specs) -> list:
    """The seeds trained one after another, each with its own generators (the chapter's former loop)."""
    nets = []
    for spec in specs:
        net = ch05.build(cfg, ds, spec)
        kw = dict(
            epochs=spec.epochs,
            anneal_epochs=ch05.anneal_epochs(cfg, spec.epochs),
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=spec.weight_decay,
            generator=config.generator(spec.seed + 2),
            progress=False,
        )
        if spec.method == "local":
            kw["loss_fn"] = le.local_loss
        elif spec.method == "adversarial":
            kw["transform"] = attacks.pgd_training(
                cfg.at_eps,
                norm="l2",
                steps=cfg.at_steps,
                generator=config.generator(spec.seed + 3),
                clamp=ds.value_range,
            )
        le.fit_annealed(net, ds.x_train, ds.y_train, **kw)
        nets.append(net.eval())
    return nets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5, help="epochs per network (the chapter's quick profile: 20)")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config.resolve(ch05.PARAMS, {"profile": "quick"}, device="cpu", epochs=a.epochs, epoch_grid=[1])
    ds = ch05.load_data(cfg)
    specs = ch05.population(cfg)
    print(
        f"chapter 5 quick, digits: {cfg.n_seeds} seeds x {a.epochs} epochs, widths {cfg.widths}, "
        f"batch {cfg.batch_size}, 1 thread"
    )
    for method in ch05.METHODS:
        group = [s for s in specs if s.method == method and s.condition == "base"]
        out = {}

        def run(fn, key):
            return lambda: out.__setitem__(key, fn(cfg, ds, group))

        times = interleaved(
            {
                "one by one": lambda: run(one_by_one, "one by one"),
                "stacked": lambda: run(ch05.train_configuration, "stacked"),
            },
            a.repeats,
        )
        acc = {k: [round(train.accuracy(n, ds.x_test, ds.y_test), 3) for n in v] for k, v in out.items()}
        print(
            f"  {ch05.METHOD_TITLES[method]:25s} one by one {best(times['one by one']):6.2f} s, stacked "
            f"{best(times['stacked']):6.2f} s: ratio {judged(times['one by one'], times['stacked'])}; "
            f"test accuracy {acc['one by one']} vs {acc['stacked']}"
        )


if __name__ == "__main__":
    main()
