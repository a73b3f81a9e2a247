"""Chapter 3's claims, declared once (four per network), the rows of this run, and its key numbers."""

from __future__ import annotations

import pandas as pd

from ...claims import CONTROL, PAPER, Claim, Declared, declared
from .params import MODEL_TITLES, MODELS

__all__ = ["DECISION_AGREEMENT", "DECLARED", "claims", "scalars"]

# The book's threshold for "the codes reveal the network's decisions" (claim 1).
DECISION_AGREEMENT = 0.9

# The book-chosen settings the claims depend on: the maps, and the search for each input's flipping budget.
MAPS = ("som_grid", "som_sigma", "som_lr", "som_epochs")
FLIP_SEARCH = ("flip_attack", "flip_eps_max", "bisection_steps", "pgd_steps")


def _per_model(short: str, kind: str, claim: str, statistic: str, **decision) -> list[Declared]:
    """One declaration per network (ids ``ch03.<model>_<short>``); ``{title}`` is filled with its title."""
    return [Declared(f"ch03.{name}_{short}", kind, claim, statistic, **decision) for name in MODELS]


DECLARED = declared(
    *_per_model(
        "decisions",
        PAPER,
        "{title}: SOM codes reveal the network's decisions",
        "share of test inputs predicted as their {layer} code's majority prediction "
        f"(holds if CI > {DECISION_AGREEMENT})",
        threshold=DECISION_AGREEMENT,
        settings=MAPS,
    ),
    *_per_model(
        "shallow_homogeneous_deep_diverse",
        PAPER,
        "{title}: shallow codes homogeneous, deep codes diverse",
        "homogeneity {shallow} minus {deep} (paired bootstrap; holds if CI > 0)",
        settings=MAPS,
    ),
    *_per_model(
        "homogeneity_vulnerability",
        PAPER,
        "{title}: homogeneous shallow codes go with vulnerability",
        "Spearman rho, {layer} homogeneity vs smallest flipping eps (holds if CI < 0)",
        above=False,
        settings=MAPS + FLIP_SEARCH,
    ),
    *_per_model(
        "homogeneity_vulnerability_beyond_margin",
        CONTROL,
        "{title}: ... beyond what the clean logit margin explains",
        "the same rho, partial on the logit margin (holds if CI < 0)",
        above=False,
        settings=MAPS + FLIP_SEARCH,
    ),
)


def claims(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame) -> list[Claim]:
    """The claims, four per model in declaration order, verdicts computed from the intervals (no side effect)."""
    out = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        deep = r.table.iloc[-1]
        out.append(
            DECLARED[f"{name}_decisions"].interval(
                deep["decision agreement"], deep["agreement lo"], deep["agreement hi"], title=title, layer=deep.layer
            )
        )
        d = diffs[diffs.model == title].iloc[0]
        out.append(
            DECLARED[f"{name}_shallow_homogeneous_deep_diverse"].interval(
                d.difference, d.lo, d.hi, title=title, shallow=d.shallow, deep=d.deep
            )
        )
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.append(
            DECLARED[f"{name}_homogeneity_vulnerability"].interval(c.rho, c.lo, c.hi, title=title, layer=c.layer)
        )
        out.append(
            DECLARED[f"{name}_homogeneity_vulnerability_beyond_margin"].interval(
                c["partial rho (margin)"], c["partial lo"], c["partial hi"], title=title
            )
        )
    return out


def scalars(res: dict, diffs: pd.DataFrame, corr: pd.DataFrame, accuracy: pd.DataFrame) -> dict:
    """The run's key numbers, named for ``lib.results.record`` (the claims are recorded by ``claims.table``)."""
    out = {"pixel_logreg_test_accuracy": float(accuracy["pixel logistic regression (test)"].iloc[0])}
    for name, r in res.items():
        title = MODEL_TITLES[name]
        out.update(
            {
                f"{name}_train_accuracy": accuracy.loc[title, "train accuracy"],
                f"{name}_test_accuracy": accuracy.loc[title, "test accuracy"],
                f"{name}_final_train_loss": accuracy.loc[title, "final train loss"],
            }
        )
        d = diffs[diffs.model == title].iloc[0]
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.update(
            {
                f"{name}_homogeneity_shallow": r.table.homogeneity.iloc[1],
                f"{name}_homogeneity_deep": r.table.homogeneity.iloc[-1],
                f"{name}_homogeneity_difference": d.difference,
                f"{name}_decision_agreement": r.table["decision agreement"].iloc[-1],
                f"{name}_rho_shallow_flip_eps": c.rho,
                f"{name}_partial_rho_margin": c["partial rho (margin)"],
            }
        )
    return out
