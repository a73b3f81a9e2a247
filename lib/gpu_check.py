"""One call on a lent GPU: every chapter at the paper profile (a stated cut of it), in one output folder.

A lent GPU machine gives a session about 15 minutes in all, start-up included, and reaches no network:
``make gpu-check`` runs each chapter once (seed 0) within a time slice of the budget, and writes into
``--out``: the executed notebooks (``points/``), the sweep specs it ran (``specs/``), a timing table
(``timings.csv``, also printed) and the ledger rows of those runs (``evidence/``), whose provenance names
the device. MNIST cannot be had there, so the image chapters run on Fashion-MNIST (carry
``data/fashion-mnist`` to the machine; see the README).

``--smoke`` is the CPU run that keeps this script from rotting (``make test`` runs it): the toolkit
chapter at the quick profile, and a dry run of every chapter's paper cut (its parameters checked against
the chapter, nothing computed).

    python -m lib.gpu_check --out gpu-check --budget 480
    python -m lib.gpu_check --out /tmp/gpu-smoke --smoke
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from . import evidence, sweep

ROOT = Path(__file__).resolve().parent.parent
# The paper profile of each chapter, cut to fit the budget: seed 0; Fashion-MNIST at a subset of the
# paper's sizes for the image chapters (the cut is stated in the timing table). The shares are the parts of
# the budget each chapter may take (its slice); a chapter past its slice is stopped and reported.
IMAGES = {"dataset": "fashion-mnist", "n_train": 20000, "n_test": 5000}
CUTS: dict[str, tuple[dict[str, Any], float]] = {
    "01_local_errors.ipynb": (IMAGES, 0.2),
    "02_dimpled_manifold.ipynb": (IMAGES, 0.25),
    "03_som_codes.ipynb": (IMAGES, 0.2),
    "04_two_layer_subspace.ipynb": ({}, 0.1),
    "05_four_lenses.ipynb": (IMAGES, 0.25),
}
SMOKE = {"00_toolkit.ipynb": ({"profile": "quick"}, 1.0)}
TIMINGS = "timings.csv"


def spec_for(notebook: str, parameters: dict[str, Any], out: Path, profile: str) -> dict[str, Any]:
    """The sweep spec of one chapter's single run: seed 0 at ``profile`` with ``parameters``."""
    return {
        "notebook": str(ROOT / "book" / notebook),
        "output": str(out),
        "name": Path(notebook).stem,
        "parameters": {"profile": profile, **parameters},
        "seeds": [0],
    }


def write_specs(out: Path, cuts: dict[str, tuple[dict[str, Any], float]], profile: str) -> list[Path]:
    """One spec file per chapter in ``out/specs``, each run writing into ``out`` (the paths a ledger reads)."""
    folder = out / "specs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for notebook, (parameters, _) in cuts.items():
        params = dict(parameters)
        prof = params.pop("profile", profile)
        path = folder / f"{Path(notebook).stem}.yaml"
        path.write_text(yaml.safe_dump(spec_for(notebook, params, out, prof), sort_keys=False))
        paths.append(path)
    return paths


def run_chapter(spec: Path, seconds: float) -> tuple[str, float]:
    """Run one chapter's spec in its own process, stopped after ``seconds``; (status, wall seconds)."""
    start = time.time()
    try:
        done = subprocess.run([sys.executable, "-m", "lib.sweep", str(spec)], cwd=ROOT, timeout=seconds)
        status = "done" if done.returncode == 0 else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired:
        status = f"stopped at its slice of {seconds:.0f} s"
    return status, time.time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder (executed notebooks, timings, ledger rows)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all chapters (default 480)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CPU smoke run: the toolkit chapter at quick, and a dry run of every chapter's paper cut",
    )
    args = parser.parse_args(argv)
    if args.budget <= 0:
        print(f"gpu_check: error: --budget must be a positive number of seconds, got {args.budget}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    try:
        specs = write_specs(out, CUTS, "paper")
        for spec in specs:  # every cut is checked against its chapter before anything runs
            sweep.validate(sweep.load_spec(spec), check_device=False)
        if args.smoke:
            specs = write_specs(out, SMOKE, "quick")
    except sweep.SpecError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    cuts = SMOKE if args.smoke else CUTS
    rows = []
    for spec, (notebook, (parameters, share)) in zip(specs, cuts.items()):
        status, wall = run_chapter(spec, share * args.budget)
        cut = ", ".join(f"{k}={v}" for k, v in parameters.items()) or "none"
        rows.append({"notebook": notebook, "status": status, "wall_s": round(wall, 1), "cut": cut})
        print(f"{notebook}: {status} in {wall:.1f} s (cut: {cut})", flush=True)
    with open(out / TIMINGS, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    try:
        ledger, missing = evidence.build(specs, out / "evidence", partial=True)
        devices = sorted(set(ledger.device.astype(str)))
        print(
            f"ledger rows: {len(ledger)} from {ledger.point.nunique()} runs on {', '.join(devices)} "
            f"({out / 'evidence' / evidence.LEDGER}); runs missing: {len(missing)}"
        )
    except evidence.EvidenceError as err:
        print(f"no ledger rows: {err}")
    print(f"timings: {out / TIMINGS}; total {sum(r['wall_s'] for r in rows):.0f} s of a {args.budget:.0f} s budget")
    return 0 if all(r["status"] == "done" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
