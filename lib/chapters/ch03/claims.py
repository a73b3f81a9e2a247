"""Chapter 3's claims, declared once (four per network, and the mechanism checks), the rows of this run, key numbers.

Each paper claim is tested against its null: the decisions against the same agreement
at the input layer's map, the depth trend against zero (the paper's statement) with an
untrained network of the same architecture as the book's control, and the link of
homogeneous codes to vulnerability given the clean logit margin (inputs near the
boundary are both easy to flip and class-mixed; the raw rank correlation is shown, not
tested). The mechanism checks (the maps against MiniSom, the bisection's budgets) are
asserted in the notebook and never counted among the findings.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...claims import CHECK, CONTROL, FISHER_Z, PAPER, Claim, Declared, by_test, declared
from .params import MODEL_TITLES, MODELS

__all__ = ["DECLARED", "QE_TOLERANCE", "claims", "scalars"]

# The batch map's quantization error may exceed MiniSom's online map's by at most this factor (a check).
QE_TOLERANCE = 1.05

# The book-chosen settings the claims depend on: the maps, and the search for each input's flipping budget.
MAPS = ("som_grid", "som_sigma", "som_lr", "som_epochs")
FLIP_SEARCH = ("flip_attack", "flip_eps_max", "bisection_steps", "pgd_steps")


def _per_model(short: str, kind: str, claim: str, statistic: str, **decision) -> list[Declared]:
    """One declaration per network (ids ``ch03.<model>_<short>``); ``{title}`` is filled with its title."""
    return [Declared(f"ch03.{name}_{short}", kind, claim, statistic, **decision) for name in MODELS]


DECLARED = declared(
    *_per_model(
        "decisions_beyond_input",
        PAPER,
        "{title}: SOM codes of the last hidden layer reveal the network's decisions beyond the input's own map",
        "share of test inputs predicted as their {layer} code's majority prediction minus the same share at "
        "the input layer's map (paired bootstrap; holds if CI > 0)",
        settings=MAPS,
        sesoi=0.01,
        depends=False,
        why="0.01 of a share: a percentage point is the smallest gap of shares the book reports",
        section="ch03-decisions",
    ),
    *_per_model(
        "shallow_homogeneous_deep_diverse",
        PAPER,
        "{title}: shallow codes homogeneous, deep codes diverse",
        "homogeneity {shallow} minus {deep} (paired bootstrap; holds if CI > 0)",
        settings=MAPS,
        sesoi=0.01,
        depends=False,
        why="0.01 of a share: a percentage point is the smallest gap of shares the book reports",
        section="ch03-homogeneity",
    ),
    *_per_model(
        "deep_diverse_beyond_untrained",
        CONTROL,
        "{title}: ... more than in the untrained network (training made the deep codes diverse)",
        "homogeneity {shallow} minus {deep}, trained minus untrained (same architecture at its initial "
        "weights, maps fitted alike; paired bootstrap; holds if CI > 0)",
        settings=MAPS,
        sesoi=0.01,
        depends=False,
        why="0.01 of a share: a percentage point is the smallest gap of shares the book reports",
        section="ch03-homogeneity",
    ),
    *_per_model(
        "homogeneity_vulnerability_beyond_margin",
        PAPER,
        "{title}: homogeneous shallow codes go with vulnerability beyond the clean logit margin",
        "partial Spearman rho of {layer} homogeneity and the smallest flipping eps given the clean logit "
        "margin (holds if CI < 0)",
        above=False,
        settings=MAPS + FLIP_SEARCH,
        sesoi=0.1,
        scale=FISHER_Z,
        depends=False,
        why="0.1 of a rank correlation: below it homogeneity explains under 1% of the rank variance",
        section="ch03-vulnerability",
    ),
    Declared(
        "ch03.codes_equal_minisom",
        CHECK,
        "the batched codes equal MiniSom's winner on the same weights",
        "share of the {n} inputs checked whose code equals MiniSom's winner (holds if 1)",
        threshold=1.0,
        section="ch03-maps",
    ),
    Declared(
        "ch03.batch_map_matches_minisom",
        CHECK,
        "the batch map fits as well as MiniSom's online map",
        f"quantization error of the batch map over MiniSom's online map on {{n}} inputs (holds if <= {QE_TOLERANCE})",
        threshold=QE_TOLERANCE,
        above=False,
        section="ch03-maps",
    ),
    *_per_model(
        "bisection_flips",
        CHECK,
        "{title}: the attack flips every input at the budget the bisection returned",
        "share of the {n} inputs flipped in the search that the attack flips at their bisected budget (holds if 1)",
        threshold=1.0,
        section="ch03-vulnerability",
    ),
)


def _row(table: pd.DataFrame, title: str) -> pd.Series:
    return table[table.model == title].iloc[0]


def _check_rows(check: dict | None, flips: dict | None) -> list[Claim]:
    """The mechanism checks' rows (none for a missing input)."""
    out = []
    if check is not None:
        share = check["share of codes equal"]
        out.append(
            DECLARED["codes_equal_minisom"].tested(
                by_test(share == 1, share < 1), f"{share:.3f}", share, share, share, n=check["inputs checked"]
            )
        )
        ratio = check["QE lib.som (batch)"] / check["QE MiniSom train (online)"]
        ok = ratio <= QE_TOLERANCE
        out.append(
            DECLARED["batch_map_matches_minisom"].tested(
                by_test(ok, not ok), f"{ratio:.3f}", ratio, ratio, ratio, n=check["inputs fitted"]
            )
        )
    for name, flipped in (flips or {}).items():
        flipped = np.asarray(flipped, bool)
        share = float(flipped.mean()) if len(flipped) else math.nan
        ok = bool(flipped.all())
        out.append(
            DECLARED[f"{name}_bisection_flips"].tested(
                by_test(ok, not ok), f"{share:.3f}", share, share, share, title=MODEL_TITLES[name], n=len(flipped)
            )
        )
    return out


def claims(
    res: dict,
    decisions: pd.DataFrame,
    diffs: pd.DataFrame,
    untrained: pd.DataFrame,
    corr: pd.DataFrame,
    check: dict | None = None,
    flips: dict | None = None,
) -> list[Claim]:
    """The claims, four per model in declaration order, then the mechanism checks (no side effect).

    ``decisions`` holds :func:`~.controls.decisions_vs_input` rows, ``diffs``
    :func:`~.codes.shallow_vs_deep` rows, ``untrained`` :func:`~.controls.beyond_untrained`
    rows, ``corr`` the tables of :func:`~.vulnerability.vulnerability`; ``check`` is
    :func:`~.codes.minisom_check`'s result and ``flips`` maps a model to
    :func:`~.vulnerability.flips_at`'s result (their check rows are left out when missing).
    """
    out = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        d = _row(decisions, title)
        out.append(
            DECLARED[f"{name}_decisions_beyond_input"].interval(d.difference, d.lo, d.hi, title=title, layer=d.layer)
        )
        d = _row(diffs, title)
        out.append(
            DECLARED[f"{name}_shallow_homogeneous_deep_diverse"].interval(
                d.difference, d.lo, d.hi, title=title, shallow=d.shallow, deep=d.deep
            )
        )
        u = _row(untrained, title)
        out.append(
            DECLARED[f"{name}_deep_diverse_beyond_untrained"].interval(
                u.difference, u.lo, u.hi, title=title, shallow=u.shallow, deep=u.deep
            )
        )
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        out.append(
            DECLARED[f"{name}_homogeneity_vulnerability_beyond_margin"].interval(
                c["partial rho (margin)"], c["partial lo"], c["partial hi"], title=title, layer=c.layer
            )
        )
    return out + _check_rows(check, flips)


def scalars(
    res: dict,
    decisions: pd.DataFrame,
    diffs: pd.DataFrame,
    untrained: pd.DataFrame,
    corr: pd.DataFrame,
    accuracy: pd.DataFrame,
) -> dict:
    """The run's key numbers, named for ``lib.results.record`` (the claims are recorded by ``claims.table``).

    The descriptive numbers are here: the agreements themselves (last hidden layer, input
    layer, k-means), the untrained network's depth trend, and the raw rank correlation of
    shallow homogeneity with the flipping budget (with its interval) beside the margin's.
    """
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
        dec, d, u = _row(decisions, title), _row(diffs, title), _row(untrained, title)
        c = corr[(corr.model == title) & (corr.layer == r.layers[1])].iloc[0]
        m = corr[(corr.model == title) & (corr.layer == "logit margin (control)")].iloc[0]
        out.update(
            {
                f"{name}_homogeneity_shallow": r.table.homogeneity.iloc[1],
                f"{name}_homogeneity_deep": r.table.homogeneity.iloc[-1],
                f"{name}_homogeneity_difference": d.difference,
                f"{name}_homogeneity_difference_untrained": u["untrained difference"],
                f"{name}_decision_agreement": dec.agreement,
                f"{name}_decision_agreement_input": dec["input agreement"],
                f"{name}_decision_agreement_kmeans": dec["k-means agreement"],
                f"{name}_rho_shallow_flip_eps": c.rho,
                f"{name}_rho_shallow_flip_eps_lo": c.lo,
                f"{name}_rho_shallow_flip_eps_hi": c.hi,
                f"{name}_rho_margin_flip_eps": m.rho,
                f"{name}_partial_rho_margin": c["partial rho (margin)"],
            }
        )
    return out
