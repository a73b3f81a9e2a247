"""Every benchmark runs to the end at a tiny size, on data that is always at hand (no dataset installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# The smallest arguments that still run every part of each benchmark.
TINY = {
    "attack_step.py": ["--batch", "4", "--steps", "2", "--repeats", "2", "--threads", "1"],
    "flip_search.py": ["--n", "8", "--epochs", "1", "--repeats", "1"],
    "flip_chapters.py": [
        "--n-train",
        "200",
        "--networks",
        "1",
        "--repeats",
        "1",
        *("--set", "epochs=2", "--set", "epoch_grid=[1]", "--set", "widths=[16, 16]", "--set", "at_steps=1"),
        *("--set", "ae_epochs=1", "--set", "ae_channels=[4, 8]", "--set", "n_attacked=10", "--set", "n_eval=10"),
        *("--set", "synth_epochs=1", "--set", "synth_n_train=50", "--set", "synth_n_eval=10"),
        *("--set", "synth_checkpoints=3", "--set", "picture_steps=[0, 5]", "--set", "alpha_window=[3, 8]"),
    ],
    "ensemble_train.py": ["--members", "4", "--steps", "5", "--d", "8", "--width", "8", "--max-steps", "50"],
    "som_fit.py": [
        "--n",
        "200",
        "--dim",
        "16",
        "--grid",
        "4",
        "--passes",
        "1",
        "--pca-n",
        "64",
        "--pca-channels",
        "2",
        "--skip-offline",
    ],
    "stack_train.py": ["--epochs", "2", "--repeats", "1"],
    "tangent_jacobian.py": ["--codes", "4", "--repeats", "1"],
    "train_throughput.py": ["--n", "256", "--dim", "64", "--widths", "16", "--epochs", "1", "--repeats", "1"],
}


def test_every_benchmark_has_a_tiny_run():
    found = sorted(p.name for p in BENCHMARKS.glob("[!_]*.py"))
    assert sorted(TINY) == found, "give each benchmark its tiny arguments in TINY"


@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_runs_at_a_tiny_size_without_datasets(name, tmp_path):
    env = {**os.environ, "BOOK_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}  # no dataset in reach but digits
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *TINY[name]], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
