"""Adversarial codes: which codes FGSM and PGD change, layer by layer, and where successful attacks land."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import torch

from ... import attacks, data, som, train
from .networks import activations
from .params import MODEL_TITLES

__all__ = ["adversarial_codes", "attack_set", "budget_to_show", "run_attack"]


def attack_set(cfg: SimpleNamespace, net: torch.nn.Module, ds: data.Dataset) -> torch.Tensor:
    """Indices of the test inputs the chapter attacks: a seeded subset of size n_attack, correctly classified."""
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(ds.x_test), generator=g)[: cfg.n_attack].sort().values.to(ds.x_test.device)
    pred = train.predict(net, ds.x_test[idx]).argmax(1)
    return idx[pred == ds.y_test[idx]]


def run_attack(
    cfg: SimpleNamespace, net: torch.nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor, eps, clamp
) -> torch.Tensor:
    """FGSM or PGD (L-inf) at budget ``eps`` (a float or a per-sample tensor)."""
    if kind == "fgsm":
        return attacks.fgsm(net, x, y, eps, clamp=clamp)
    return attacks.pgd(net, x, y, eps, steps=cfg.pgd_steps, generator=cfg.generator, clamp=clamp)


def adversarial_codes(
    cfg: SimpleNamespace, net: torch.nn.Module, res: SimpleNamespace, ds: data.Dataset
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per attack, budget and layer: how many codes change, and where successful adversarial codes land.

    Returns ``changes`` (fraction of attacked inputs whose code changes, the attack's
    success rate, mean grid distance moved) and ``landing`` (fractions of the successful
    adversarial inputs in each category of :data:`lib.som.LANDING`).
    """
    idx = attack_set(cfg, net, ds)
    x, y = ds.x_test[idx], ds.y_test[idx]
    k, c = cfg.som_grid**2, ds.n_classes
    refs = [som.contingency(ct, ds.y_train, k, c) for ct in res.codes_train]
    clean = [ct[idx] for ct in res.codes_test]
    coords = som.grid(cfg.som_grid, cfg.som_grid, device=x.device)
    changes, landing = [], []
    for kind in ("fgsm", "pgd"):
        for eps in cfg.epsilons:
            xa = run_attack(cfg, net, kind, x, y, eps, ds.value_range)
            pa = train.predict(net, xa).argmax(1)
            ok = pa != y
            for layer, m, ref, cc, a in zip(res.layers, res.maps, refs, clean, activations(net, xa)):
                ca = m.codes(a)
                moved = (coords[ca] - coords[cc]).norm(dim=1)
                base = {"model": MODEL_TITLES[res.name], "attack": kind.upper(), "eps": eps, "layer": layer}
                changes.append(
                    {
                        **base,
                        "code changed": (ca != cc).float().mean().item(),
                        "grid distance": moved.mean().item(),
                        "success rate": ok.float().mean().item(),
                        "n attacked": len(y),
                    }
                )
                if ok.any():
                    where = som.landing(ca[ok], y[ok], pa[ok], ref)
                    frac = torch.bincount(where, minlength=len(som.LANDING)).double() / ok.sum()
                    landing += [
                        {**base, "lands in": cat, "fraction": f.item(), "n successful": int(ok.sum())}
                        for cat, f in zip(som.LANDING, frac)
                    ]
    return pd.DataFrame(changes), pd.DataFrame(landing)


def budget_to_show(changes: pd.DataFrame, share: float = 0.5) -> float:
    """The smallest budget at which PGD flips at least ``share`` of the attacked inputs of every model."""
    pgd = changes[changes.attack == "PGD"].groupby("eps")["success rate"].min()
    enough = pgd[pgd >= share]
    return float(enough.index.min() if len(enough) else pgd.index.max())
