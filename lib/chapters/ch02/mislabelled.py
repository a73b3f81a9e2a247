"""Chapter 2, experiment 3: training on mislabelled adversarial examples (Ilyas et al., 2019), by budget and set size."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ... import attacks, data, train
from ...claims import INCONCLUSIVE, by_interval
from ...stats import wilson
from .images import train_classifier
from .params import MIN_SUCCESS, MOST


def mislabelled_set(
    cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module, rms: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Ilyas et al. (2019), deterministic variant: every training image attacked (targeted L2 PGD on
    ``source``) towards class ``y + 1 mod C`` and labelled with that target.

    The L2 budget is ``rms * sqrt(pixels)`` (the book's rule: the same typical change per pixel
    whatever the image size). Returns the images, their target labels and the attack success.
    """
    target = (ds.y_train + 1) % ds.n_classes
    x_adv = attacks.pgd(
        source,
        ds.x_train,
        target,
        mislabel_budget(rms, ds.n_features),
        norm="l2",
        steps=cfg.mislabel_steps,
        targeted=True,
        generator=cfg.generator,
        clamp=ds.value_range,
    )
    success = (train.predict(source, x_adv).argmax(1) == target).float().mean().item()
    return x_adv, target, success


def mislabel_budget(rms: float, n_pixels: int) -> float:
    """The L2 budget of a per-pixel RMS budget on ``n_pixels``-pixel images: ``rms * sqrt(n_pixels)``."""
    return rms * math.sqrt(n_pixels)


def clean_scores(net: torch.nn.Module, ds: data.Dataset) -> dict[str, float]:
    """Clean test accuracy (true labels) and the share predicting ``y + 1`` (the mislabelled rule)."""
    pred = train.predict(net, ds.x_test).argmax(1)
    return {
        "clean_accuracy": (pred == ds.y_test).float().mean().item(),
        "shifted_accuracy": (pred == (ds.y_test + 1) % ds.n_classes).float().mean().item(),
    }


def mislabelled_sweep(
    cfg: SimpleNamespace, ds: data.Dataset, source: torch.nn.Module
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fresh network trained on each mislabelled set of ``cfg.mislabel_rms``; and a data-size check.

    The first table has one row per budget: attack success, clean and shifted accuracy, the
    Wilson interval of the clean accuracy and the verdict the claim would get if judged at
    that budget (inconclusive where fewer than :data:`MIN_SUCCESS` of the attacks reached
    their target). ``judged`` marks the smallest budget whose attacks reach ``MIN_SUCCESS``
    (the largest budget if none does). The second table retrains on seeded random shares
    ``mislabel_fractions`` (and all) of the judged set: clean accuracy against its size.
    """
    rows, sets = [], {}
    n_test = len(ds.y_test)
    for rms in tqdm(cfg.mislabel_rms, leave=False, desc="mislabelled sets"):
        x_adv, target, success = mislabelled_set(cfg, ds, source, rms)
        net, _ = train_classifier(cfg, ds, x_adv, target, desc=f"mislabelled, rms={rms:g}")
        scores = clean_scores(net, ds)
        lo, hi = wilson(scores["clean_accuracy"], n_test)
        rows.append(
            {
                "rms": rms,
                "l2_budget": mislabel_budget(rms, ds.n_features),
                "attack_success": success,
                **scores,
                "clean_lo": lo,
                "clean_hi": hi,
                "mean_norm": (x_adv - ds.x_train).norm(dim=1).mean().item(),
                "verdict here": mislabelled_verdict(success, lo, hi),
            }
        )
        sets[rms] = (x_adv, target)
    df = pd.DataFrame(rows)
    ok = df.index[df.attack_success >= MIN_SUCCESS]
    j = ok[0] if len(ok) else len(df) - 1
    df["judged"] = df.index == j
    x_adv, target = sets[df.rms[j]]
    sizes = []
    gen = torch.Generator().manual_seed(cfg.seed + 4)
    for frac in cfg.mislabel_fractions:
        keep = torch.randperm(len(x_adv), generator=gen)[: max(ds.n_classes, round(frac * len(x_adv)))].to(x_adv.device)
        net, _ = train_classifier(cfg, ds, x_adv[keep], target[keep], desc=f"mislabelled, {frac:.0%} of the set")
        sizes.append({"share of the set": frac, "images": len(keep), **clean_scores(net, ds)})
    sizes.append(
        {
            "share of the set": 1.0,
            "images": len(x_adv),
            "clean_accuracy": df.clean_accuracy[j],
            "shifted_accuracy": df.shifted_accuracy[j],
        }
    )
    return df, pd.DataFrame(sizes)


def mislabelled_verdict(success: float, lo: float, hi: float) -> str:
    """The mislabelled claim's verdict from one budget: clean accuracy's interval against :data:`MOST`,
    inconclusive when the attacks reached their target on fewer than :data:`MIN_SUCCESS` of the images."""
    return by_interval(lo, hi, MOST, above=True) if success >= MIN_SUCCESS else INCONCLUSIVE


def size_slope(sizes: pd.DataFrame) -> float:
    """Least-squares slope of clean accuracy against log2 of the training-set size (gain per doubling)."""
    return float(np.polyfit(np.log2(sizes.images.to_numpy(float)), sizes.clean_accuracy.to_numpy(float), 1)[0])


def judged(mis: pd.DataFrame) -> pd.Series:
    """The row of :func:`mislabelled_sweep`'s table at the budget the claim is judged at."""
    return mis[mis.judged].iloc[0]
