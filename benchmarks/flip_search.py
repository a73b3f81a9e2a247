"""Flip norms by the minimal-norm attack FMN (lib.flip.fmn_flip_norms) vs the budget search (min_flip_norms).

Both answer, per point and restriction, the smallest L2 perturbation that moves the
prediction off the predicted label. The budget search, the reference, runs L2 PGD at
doubling budgets, then bisects (as chapters 2 and 5 did before they used FMN: ``eps_max``
8, 10 PGD steps per budget, 4 bisection rounds, unclamped); FMN adapts its norm bound
within one run (``--steps`` steps for each of ``--candidates`` target classes, after one
gradient per class to choose them). The model
is chapter 2's quick MLP (784 or 64 inputs, widths 128-128, 30 epochs of Adam) on digits,
always at hand (``--dataset`` takes another when installed); the points are ``--n`` test
images. Two settings: the unrestricted search, and five restrictions searched as one
batch as chapter 2 does (unrestricted; on and off a per-point random 10-dim subspace, a
stand-in for the tangent spaces; on and off one shared random 10-dim subspace).

Prints, per setting, one process:
- gradient evaluations per point (backward passes that reach the input, counted per row;
  FMN's choice of classes takes one per class from a single forward pass) and forward
  passes per point, of each search and their ratios;
- the wall time of each (``--repeats`` interleaved rounds; median ratio of the rounds
  with its 95% interval);
- quantiles over points of the distance ratio FMN / budget search (below 1: FMN found a
  smaller flipping perturbation), and the share of points where FMN's is at most 1.01x.

Usage: python benchmarks/flip_search.py [--n 200] [--repeats 5] [--steps 30] [--candidates 2]
       [--dataset digits] [--n-train N] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
from _timing import best, interleaved, judged
from torch import nn

from lib import data, flip, manifold, models, train

SEARCH = dict(eps_max=8.0, steps=10, bisection_steps=4)  # chapters 2 and 5 (quick) before they used FMN


class Counted(nn.Module):
    """``net`` counting the rows it evaluates: forward passes, and backward passes that reach its input."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.forwards = self.gradients = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards += len(x)
        if x.requires_grad:
            x.register_hook(self._count)
        return self.net(x)

    def _count(self, g: torch.Tensor) -> None:
        self.gradients += len(g)

    def reset(self) -> None:
        self.forwards = self.gradients = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits", choices=data.DATASETS)
    ap.add_argument("--n", type=int, default=200, help="points searched (chapter 2's quick n_attacked: 200)")
    ap.add_argument("--n-train", type=int, default=None, help="training images, a seeded subset (default: all)")
    ap.add_argument("--epochs", type=int, default=30, help="training epochs of the MLP")
    ap.add_argument(
        "--steps", type=int, default=30, help="FMN steps per candidate class (the chapters' quick fmn_steps)"
    )
    ap.add_argument("--candidates", type=int, default=2, help="FMN target classes per point")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (chapters 2 and 5 attack with 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = data.load(args.dataset, seed=0, n_train=args.n_train)
    torch.manual_seed(0)
    net = models.MLP(ds.n_features, [128, 128], ds.n_classes)
    train.fit(
        net, ds.x_train, ds.y_train, epochs=args.epochs, generator=torch.Generator().manual_seed(0), progress=False
    )
    net.eval()
    model = Counted(net)
    x = ds.x_test[: args.n]
    y = train.predict(net, x).argmax(1)
    g = torch.Generator().manual_seed(1)
    per_point = manifold.random_bases(len(x), ds.n_features, 10, generator=g)
    shared = manifold.random_bases(1, ds.n_features, 10, generator=g)[0]
    settings = {
        "unrestricted": {"full": (None, "on")},
        "five restrictions": {
            "full": (None, "on"),
            "on": (per_point, "on"),
            "off": (per_point, "off"),
            "shared on": (shared, "on"),
            "shared off": (shared, "off"),
        },
    }
    print(
        f"{args.dataset}: MLP {ds.n_features}-128-128-{ds.n_classes}, {len(ds.x_train)} training images, "
        f"{args.epochs} epochs, "
        f"test accuracy {train.accuracy(net, ds.x_test, ds.y_test):.3f}; {len(x)} points; "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(f"budget search: {SEARCH}; FMN: steps={args.steps}, candidates={args.candidates}")
    for name, restrictions in settings.items():
        searches = {
            "budget search": lambda r=restrictions: flip.min_flip_norms(model, x, y, r, **SEARCH),
            "FMN": lambda r=restrictions: flip.fmn_flip_norms(
                model, x, y, r, eps_max=SEARCH["eps_max"], steps=args.steps, candidates=args.candidates
            ),
        }
        counts, norms = {}, {}
        for label, search in searches.items():
            model.reset()
            found = search()
            rows = len(x) * len(restrictions)
            counts[label] = (model.gradients / rows, model.forwards / rows)
            norms[label] = torch.cat([found[k].norm for k in restrictions])
        times = interleaved({label: (lambda s=search: s) for label, search in searches.items()}, args.repeats)
        (g_old, f_old), (g_new, f_new) = counts["budget search"], counts["FMN"]
        print(f"\n== {name} ({len(restrictions)} restriction(s) x {len(x)} points)")
        print(f"gradient evaluations per point: budget search {g_old:.1f}, FMN {g_new:.1f}: {g_new / g_old:.3f}x")
        print(f"forward passes per point: budget search {f_old:.1f}, FMN {f_new:.1f}: {f_new / f_old:.3f}x")
        print(
            f"wall time: budget search {best(times['budget search']):.3f} s, FMN {best(times['FMN']):.3f} s (best); "
            f"FMN / budget search {judged(times['FMN'], times['budget search'])}"
        )
        old, new = norms["budget search"], norms["FMN"]
        both = torch.isfinite(old) & torch.isfinite(new)
        ratio = (new[both] / old[both]).double()
        qs = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
        values = ratio.quantile(torch.tensor(qs, dtype=torch.float64)).tolist() if len(ratio) else [float("nan")] * 7
        print(
            "distance FMN / budget search, quantiles "
            + ", ".join(f"{q:g}: {v:.3f}" for q, v in zip(qs, values))
            + f"; at most 1.01x: {(ratio <= 1.01).double().mean().item():.1%}"
            + f"; flipped: budget search {torch.isfinite(old).double().mean().item():.1%}, "
            + f"FMN {torch.isfinite(new).double().mean().item():.1%}"
        )


if __name__ == "__main__":
    main()
