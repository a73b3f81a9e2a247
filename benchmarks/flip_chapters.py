"""The flip-distance step of chapters 2 and 5: the minimal-norm attack (their method) against the budget search.

Each chapter's own code runs, and every call it makes to ``lib.flip.flip_norms`` (the one
entry point of its smallest-flip distances) is timed and its gradient evaluations counted,
once as the chapter makes it (FMN, ``fmn_steps`` steps per target class) and once redirected
to the budget search the chapters used before (L2 PGD at doubling budgets, then geometric
bisection: ``--budget-steps`` 10 PGD steps per trial budget, ``--bisection`` 4 rounds in
chapter 2 and 6 in chapter 5, the same ``flip_eps_max``), in one process, the two methods
taking turns (``--repeats`` rounds).

- Chapter 2: the synthetic settings' geometry at every checkpoint of their training
  (``run_synthetic``, reseeded so that every run trains the same networks; the training
  itself is not counted) and ``image_geometry`` on the
  standard and the adversarially trained image classifier (five restricted searches on the
  ``n_attacked`` test images, the tangent spaces of an autoencoder trained as the chapter
  trains it).
- Chapter 5: ``robustness_flips`` and ``restricted_flips`` (the unrestricted search on the
  robustness images; six restricted ones on the lens images) on ``--networks`` networks of
  its population (the base backprop network, then the adversarially trained one, ...);
  the chapter measures every network of its population alike.

Prints, per chapter and method: seconds spent in the flip step (per round; the ratio FMN /
budget is the median over rounds of the ratio within a round), gradient evaluations and
forward passes per point (rows: points x restrictions), and how the two methods' distances
compare (quantiles of FMN / budget over the rows both flip; the share flipped by each).

The chapters' Fashion-MNIST setting (real images, when installed):
    OMP_NUM_THREADS=1 python benchmarks/flip_chapters.py --dataset fashion-mnist --n-train 8000 --n-test 2000
Defaults: digits (always at hand), quick profile, seed 0. ``--set NAME=VALUE`` overrides a
parameter of the chapters that have it (a tiny run: see tests/test_benchmarks.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
import yaml
from flip_search import Counted

from lib import config, flip, manifold
from lib.chapters import ch02, ch05, common
from lib.config import ParameterError

METHODS = ("budget", "fmn")


class Tally:
    """What the flip calls of one chapter step cost under one method, and what they found."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = self.rows = self.gradients = self.forwards = 0
        self.norms: list[torch.Tensor] = []


@contextmanager
def redirected(method: str, tally: Tally, budget: dict):
    """``lib.flip.flip_norms`` timed and counted into ``tally``; with ``method="budget"`` each call is made to the
    budget search with the options ``budget`` instead of the attack the chapter asks for."""
    original = flip.flip_norms

    def flip_norms(model, x, y, restrictions, *, eps_max, steps=None, **kw):
        counted = Counted(model)
        if method == "budget":
            steps, kw = budget["steps"], {"method": "budget", "bisection_steps": budget["bisection_steps"]}
        start = time.perf_counter()
        found = original(counted, x, y, restrictions, eps_max=eps_max, steps=steps, **kw)
        tally.seconds += time.perf_counter() - start
        tally.calls += 1
        tally.rows += len(x) * len(restrictions)
        tally.gradients += counted.gradients
        tally.forwards += counted.forwards
        tally.norms.append(torch.cat([r.norm.detach().cpu().double() for r in found.values()]))
        return found

    flip.flip_norms = flip_norms
    try:
        yield tally
    finally:
        flip.flip_norms = original


def chapter_config(spec: dict, args, overrides: dict):
    """The chapter's configuration at the quick profile for the chosen data, with the overrides it knows."""
    given = {"dataset": args.dataset, "seed": 0, "device": "cpu"}
    if args.n_train is not None:
        given["n_train"] = args.n_train
    if args.n_test is not None:
        given["n_test"] = args.n_test
    given.update({k: v for k, v in overrides.items() if k in spec})
    return config.resolve(spec, {"profile": "quick"}, **given)


def chapter2_steps(args, overrides: dict) -> dict:
    """Chapter 2's networks, data and subspaces, and the two parts of its flip step as functions (each run under a
    redirection): the synthetic settings, the images."""
    cfg = chapter_config(ch02.PARAMS, args, overrides)
    ds = common.load_data(cfg)
    print(f"chapter 2: {ds}")
    nets = {
        "standard": ch02.train_classifier(cfg, ds, ds.x_train, ds.y_train, desc="standard")[0],
        "adversarial": ch02.train_classifier(cfg, ds, ds.x_train, ds.y_train, adversarial=True, desc="adversarial")[0],
    }
    x = ds.x_test[: cfg.n_attacked]
    probes = {kind: ch02.probes(cfg, net, ds, x) for kind, net in nets.items()}
    ae = ch02.train_autoencoder(cfg, ds, x, {k: probes["standard"][k] for k in ("pgd", "normal")})[0]
    bases = manifold.autoencoder_bases(ae, x)
    rand = manifold.random_bases(len(x), ds.n_features, cfg.latent_dim, generator=cfg.generator, device=cfg.device)
    settings = ch02.synthetic_settings(cfg)

    def synthetic() -> None:
        cfg.generator = config.seed_everything(cfg.seed)  # the same synthetic networks in every run
        ch02.run_synthetic(cfg, settings)

    def images() -> None:
        for kind, net in nets.items():
            ch02.image_geometry(cfg, net, x, probes[kind], bases, rand, ds.value_range)

    return {"chapter 2, synthetic settings": synthetic, "chapter 2, images": images}


def chapter5_steps(args, overrides: dict) -> dict:
    """Chapter 5's probe and ``--networks`` networks of its population, and its flip step as a function."""
    cfg = chapter_config(ch05.PARAMS, args, overrides)
    ds = ch05.load_data(cfg)
    print(f"chapter 5: {ds}")
    probe = ch05.make_probe(cfg, ds)
    population = ch05.population(cfg)
    base = [n for n in population if n.condition == "base" and n.method == "backprop"]
    adversarial = [n for n in population if n.method == "adversarial"]
    specs = [s for pair in zip(base, adversarial) for s in pair][: args.networks]
    nets = [ch05.train_network(cfg, ds, spec) for spec in specs]
    print(
        f"chapter 5 measures {len(population)} networks; here {len(nets)}: "
        + ", ".join(f"{s.method} {s.condition} seed {s.seed}" for s in specs)
    )

    def step() -> None:
        for net in nets:
            ch05.robustness_flips(cfg, net, probe)
            ch05.restricted_flips(cfg, net, probe)

    return {"chapter 5": step}


def report(name: str, tallies: dict[str, list[Tally]]) -> None:
    """Seconds, gradients and forwards per point of each method, their ratios, and the distances compared."""
    old, new = tallies["budget"], tallies["fmn"]
    rows = new[0].rows
    print(f"\n== {name}: {new[0].calls} flip calls, {rows} rows (points x restrictions) per round")
    for label, runs in (("budget search", old), ("FMN", new)):
        t = runs[0]
        print(
            f"{label}: {', '.join(f'{r.seconds:.2f}' for r in runs)} s; per point {t.gradients / t.rows:.1f} "
            f"gradient evaluations, {t.forwards / t.rows:.1f} forward passes"
        )
    ratios = [n.seconds / o.seconds for n, o in zip(new, old)]
    grad = (new[0].gradients / rows) / (old[0].gradients / old[0].rows)
    print(
        f"FMN / budget search: time {statistics.median(ratios):.3f}x (rounds: "
        f"{', '.join(f'{r:.3f}' for r in ratios)}), gradient evaluations {grad:.3f}x"
    )
    a, b = torch.cat(old[0].norms), torch.cat(new[0].norms)
    both = torch.isfinite(a) & torch.isfinite(b) & (a > 0)
    ratio = b[both] / a[both]
    qs = (0.0, 0.05, 0.5, 0.95, 1.0)
    values = ratio.quantile(torch.tensor(qs, dtype=torch.float64)).tolist() if len(ratio) else [float("nan")] * 5
    print(
        "distance FMN / budget search over the rows both flip: "
        + ", ".join(f"q{q:g} {v:.3f}" for q, v in zip(qs, values))
        + f"; at most 1.10x: {(ratio <= 1.10).double().mean().item():.1%}; flipped: budget search "
        f"{torch.isfinite(a).double().mean().item():.1%}, FMN {torch.isfinite(b).double().mean().item():.1%}"
    )


def overrides_of(pairs: list[str]) -> dict:
    """``NAME=VALUE`` pairs as a dict, the values read as YAML (numbers, lists)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ParameterError(f"--set takes NAME=VALUE, got {pair!r}")
        out[name] = yaml.safe_load(value)
    unknown = sorted(set(out) - set(ch02.PARAMS) - set(ch05.PARAMS))
    if unknown:
        raise ParameterError(f"--set names no parameter of chapter 2 or 5: {', '.join(unknown)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits", choices=config.DATASETS)
    ap.add_argument("--n-train", type=int, default=None, help="training images, a seeded subset")
    ap.add_argument("--n-test", type=int, default=None, help="test images, a seeded subset")
    ap.add_argument("--chapters", nargs="+", default=["ch02", "ch05"], choices=["ch02", "ch05"])
    ap.add_argument("--networks", type=int, default=2, help="chapter 5: networks whose flip step is timed")
    ap.add_argument("--repeats", type=int, default=2, help="rounds, each running both methods")
    ap.add_argument("--budget-steps", type=int, default=10, help="PGD steps per trial budget of the budget search")
    ap.add_argument(
        "--bisection", nargs=2, type=int, default=[4, 6], help="bisection rounds of chapters 2 and 5's budget search"
    )
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a chapter parameter")
    args = ap.parse_args()
    overrides = overrides_of(args.set)
    print(f"{torch.get_num_threads()} thread(s); budget search: {args.budget_steps} PGD steps per trial budget")
    build = {"ch02": chapter2_steps, "ch05": chapter5_steps}
    for name in args.chapters:
        budget = {"steps": args.budget_steps, "bisection_steps": args.bisection[0 if name == "ch02" else 1]}
        parts = build[name](args, overrides)
        seconds = {m: [0.0] * args.repeats for m in METHODS}
        for part, step in parts.items():
            tallies: dict[str, list[Tally]] = {m: [] for m in METHODS}
            for r in range(args.repeats):
                for method in METHODS if r % 2 == 0 else METHODS[::-1]:
                    with redirected(method, Tally(), budget) as tally:
                        step()
                    tallies[method].append(tally)
                    seconds[method][r] += tally.seconds
            report(part, tallies)
        if len(parts) > 1:
            ratios = [n / o for n, o in zip(seconds["fmn"], seconds["budget"])]
            print(
                f"\n== chapter {name[2:].lstrip('0')} in all: budget search "
                f"{', '.join(f'{t:.2f}' for t in seconds['budget'])} s, FMN {', '.join(f'{t:.2f}' for t in seconds['fmn'])}"
                f" s; FMN / budget search {statistics.median(ratios):.3f}x"
            )


if __name__ == "__main__":
    main()
