"""Mutation testing of the science modules and the claim code: ``make mutation`` (``python -m tests.mutation``).

mutmut (pinned in pyproject's ``mutation`` extra) plants one small bug at a time (an operator,
a constant, a condition, an argument) in a copy of the repository under ``--workdir`` (never in
``lib/``: others run that code) and runs, for each mutant, the unit tests that execute the mutated
function. ``MODULES`` maps each measured file to its unit test files; mutmut's coverage stats
pick, per mutant, the tests among all of those files that call the mutated function. Files
that share no test file run as separate mutmut runs, one copy each (:func:`groups`): mutmut's
trampolines then slow only the mutated group's functions, and its stats and clean runs cover
that group's tests only (one run over all files spent 36 minutes there before its first
mutant). No notebook (nbval) and no sweep test is run. ``lib/evidence.py`` is measured on its verdict
functions only (``ONLY_FUNCTIONS``).

Every file has far more mutants than two cores can test in half an hour, so ``--per-module``
mutants are drawn from each file (the same ones for the same code: ``random.Random(seed)`` over
the sorted mutant names), and the score is killed / (killed + survived + untested) over the
sample, a timeout or crash counting as killed. Mutants judged equivalent (no test can tell them
apart from the original) are listed in ``EQUIVALENT`` by file and mutated line, with the reason,
and left out of the score. The report prints the score per file, over all, and each surviving
mutant as a diff; ``report.json`` in the work folder holds the same.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# measured file -> its unit test files (no notebook, no sweep test)
MODULES: dict[str, tuple[str, ...]] = {
    "lib/attacks.py": ("tests/test_attacks.py", "tests/test_flip.py"),  # fmn: held against foolbox in test_flip
    "lib/spectrum.py": ("tests/test_spectrum.py",),
    "lib/som.py": ("tests/test_som.py",),
    "lib/ensemble.py": ("tests/test_ensemble.py",),
    "lib/local_errors.py": ("tests/test_local_errors.py",),
    "lib/train.py": ("tests/test_models_train.py",),
    "lib/models.py": ("tests/test_models_train.py",),
    "lib/intrinsic_dim.py": ("tests/test_monotonicity.py",),
    "lib/monotonicity.py": ("tests/test_monotonicity.py",),
    "lib/stats.py": ("tests/test_stats.py",),
    "lib/subspace.py": ("tests/test_subspace.py",),
    "lib/manifold.py": ("tests/test_manifold.py",),
    "lib/flip.py": ("tests/test_flip.py",),
    "lib/stack.py": ("tests/test_stack.py",),
    "lib/data.py": ("tests/test_data.py",),
    "lib/claims.py": ("tests/test_claims.py",),
    "lib/verdicts.py": ("tests/test_claims.py", "tests/test_evidence.py"),
    "lib/evidence.py": ("tests/test_evidence.py",),
    "lib/chapters/ch01/claims.py": ("tests/test_ch01.py",),
    "lib/chapters/ch02/claims.py": ("tests/test_ch02.py",),
    "lib/chapters/ch03/claims.py": ("tests/test_ch03.py",),
    "lib/chapters/ch04/claims.py": ("tests/test_ch04.py",),
    "lib/chapters/ch05/claims.py": ("tests/test_ch05.py",),
}

# files measured on some functions only: the ledger's verdict functions of lib.evidence
ONLY_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "lib/evidence.py": (
        "mean_interval",
        "condition_votes",
        "replicated_verdict",
        "measured_nothing",
        "condition_null",
        "judge",
        "combine",
    ),
}

# (file, the mutated line as the mutant reads, stripped) -> why no test can kill it
_CPU = "differs only on a GPU (a tensor's device), where the unit tests do not run"
_BAR = "changes only the progress bar (its label, its postfix, whether it shows)"
_NAN = "float('NAN') is float('nan')"
_ZERO_GRAD = "every parameter gets a new gradient each step: zeroed or unset gradients give the same step"
EQUIVALENT: dict[tuple[str, str], str] = {
    ("lib/train.py", "bar = tqdm(range(1, epochs + 1), desc=None, disable=not progress, leave=False)"): _BAR,
    ("lib/train.py", "bar = tqdm(range(1, epochs + 1), disable=not progress, leave=False)"): _BAR,
    ("lib/train.py", "bar.set_postfix(acc=f\"{row['train_acc']:.3f}\")"): _BAR,
    ("lib/train.py", "bar.set_postfix(loss=f\"{row['loss']:.3f}\", )"): _BAR,
    ("lib/train.py", "progress: bool = False,"): _BAR,
    ("lib/train.py", "order = torch.randperm(n, generator=generator).to(None)"): _CPU,
    ("lib/train.py", "opt.zero_grad(set_to_none=False)"): _ZERO_GRAD,
    (
        "lib/train.py",
        "fused = bool(tensors) and all(p.device.type in FUSED_DEVICES or p.is_floating_point() for p in tensors)",
    ): "parameters are floating point: differs only for integer tensors on a device without fused kernels",
    (
        "lib/train.py",
        "fused = bool(tensors) or all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in tensors)",
    ): "differs only with no parameters, which torch.optim refuses either way",
    ("lib/intrinsic_dim.py", "idx = torch.arange(i, min(i + block, len(x)), device=None)"): _CPU,
    ("lib/intrinsic_dim.py", "idx = torch.arange(i, min(i + block, len(x)), )"): _CPU,
    (
        "lib/intrinsic_dim.py",
        'd[torch.arange(len(idx), device=None), idx] = float("inf")  # not its own neighbour',
    ): _CPU,
    ("lib/intrinsic_dim.py", 'd[torch.arange(len(idx), ), idx] = float("inf")  # not its own neighbour'): _CPU,
    (
        "lib/intrinsic_dim.py",
        'd[torch.arange(len(idx), device=x.device), idx] = float("INF")  # not its own neighbour',
    ): "float('INF') is float('inf')",
    ("lib/intrinsic_dim.py", "out.append(d.topk(3, dim=1, largest=False).values)"): (
        "a third neighbour's distance is computed but never read (only columns 0 and 1 are)"
    ),
    ("lib/data.py", "return torch.as_tensor(np.asarray(a, dtype=np.int64)).to(None)"): _CPU,
    ("lib/data.py", 'payload = payload_sha256(path) if (path.suffix == ".gz") or True else digest'): (
        "for a file that is not .gz, payload_sha256 is its sha256, the digest: the file is only hashed twice"
    ),
    ("lib/train.py", "total = torch.zeros((), device=None)"): _CPU,
    ("lib/spectrum.py", "ranks = np.arange(lo, hi + 1, )"): (
        "integer ranks give the same float logs, 1/rank weights and design matrix"
    ),
    ("lib/spectrum.py", "return int(np.sum(eigs > rtol * top)) if (top > 0) or True else 0"): (
        "with a largest eigenvalue <= 0 nothing exceeds rtol * top for 0 <= rtol < 1: the count is 0 either way"
    ),
    ("lib/som.py", "ref = reference.to(None).double()"): _CPU,
    (
        "lib/manifold.py",
        'for epoch in tqdm(range(1, epochs + 1), desc="autoencoder", disable=not progress, leave=True):',
    ): _BAR,
    ("lib/manifold.py", "opt.zero_grad(set_to_none=None)"): _ZERO_GRAD,
    ("lib/manifold.py", "opt.zero_grad(set_to_none=False)"): _ZERO_GRAD,
    (
        "lib/manifold.py",
        "q = q / torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(1)  # Haar, not QR-sign biased",
    ): "the signs are +-1 (0 needs an exactly singular Gaussian draw): dividing is multiplying",
    ("lib/monotonicity.py", 'return float("NAN"), float("nan"), float("nan")'): _NAN,
    ("lib/monotonicity.py", "a = np.stack([mom[..., 0:3], mom[..., 1:4], mom[..., 2:5]], +2)"): (
        "the moment matrix is symmetric: stacking along the other axis gives its transpose, the same matrix"
    ),
    (
        "lib/monotonicity.py",
        "rng = rng if (isinstance(rng, np.random.Generator)) and False else np.random.default_rng(rng)",
    ): "np.random.default_rng returns a Generator it is given unchanged (the same object)",
    ("lib/ensemble.py", "self.use_wd = bool((wd >= 0).any())"): (
        "with weight decay 0 the shrink factor is exactly 1 (GD) and the added term exactly 0 (Adam)"
    ),
    (
        "lib/ensemble.py",
        "n = y.shape[+1]",
    ): "fit expands y to (E, n) before the workspace is built: shape[1] is shape[-1]",
    ("lib/ensemble.py", "self.gw = None"): "bmm(..., out=None) returns a new tensor of the same values",
    (
        "lib/attacks.py",
        "return torch.where(((xa <= clamp[0]) & (g < 0)) | ((xa >= clamp[1]) & (g >= 0)), 0.0, g)",
    ): "differs only where g == 0, where both give zero",
    ("lib/attacks.py", "return _clamp(x.detach() - s * noise, clamp)"): (
        "N(0, s^2) noise is symmetric: x - s z has the distribution of x + s z"
    ),
    ("lib/flip.py", "eps = budget_search(flips, len(x), eps_max, bisection_steps=bisection_steps, )"): _CPU,
    ("lib/train.py", "bar.set_postfix(loss=f\"{row['loss']:.3f}\", acc=None)"): _BAR,
    ("lib/train.py", "bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=None)"): _BAR,
    ("lib/spectrum.py", "if p < n:"): (
        "at p = n the covariance and the Gram matrix are both n x n with the same eigenvalues and no zero tail"
    ),
    ("lib/spectrum.py", 'r2 = 1.0 - np.sum(w * resid**2) / ss_tot if ss_tot > 0 else float("NAN")'): _NAN,
    ("lib/som.py", "covs = [torch.zeros(len(m), len(m), dtype=torch.float64, ) for m in means]"): _CPU,
    ("lib/stats.py", 'with np.errstate(invalid="ignore", ):'): (
        "no invalid operation can happen: the denominator is np.where(den > 0, den, 1)"
    ),
    ("lib/stats.py", "c = None if control is None else np.asarray(control, None)"): (
        "only the ranks of control are read, and they do not depend on its numeric dtype"
    ),
    ("lib/subspace.py", "u, s, _ = torch.linalg.svd(span.double(), full_matrices=True)"): (
        "only the first rank <= min(d, k) columns of u are kept; they and s equal the reduced SVD's"
    ),
    ("lib/stack.py", "self.act = copy.copy(first.act)"): (
        "the allowed activations (ReLU, Tanh, GELU) hold no parameters or buffers: a shallow copy is a deep one"
    ),
    ("lib/claims.py", 'with pd.option_context("DISPLAY.MAX_COLWIDTH", None):'): "pandas reads option names case-blind",
    ("lib/claims.py", 'chapter = self.id.split(".", 2)[0]'): "a split's first piece does not depend on its limit",
    ("lib/claims.py", "sesoi=math.nan if (self.sesoi is None) and False else self.sesoi,"): (
        "only Claim(...) reads it, and Claim turns a None sesoi into NaN itself"
    ),
    ("lib/manifold.py", "top2 = logits.topk(2, ).values"): "logits are (N, C): topk's default dim -1 is dim 1",
    ("lib/manifold.py", "return q.to(device=None, dtype=dtype)"): _CPU,
    ("lib/manifold.py", "return q.to(dtype=dtype)"): _CPU,
    ("lib/monotonicity.py", 'return float("nan"), float("NAN"), float("nan")'): _NAN,
    (
        "lib/monotonicity.py",
        "return np.where(np.isfinite(v), np.clip(np.nan_to_num(v), lo_q, hi_q), np.where(c > 1, hi_q, lo_q))",
    ): (
        "with finite inputs the vertex is not finite only where the fitted curvature c is exactly 0, "
        "where c > 0 and c > 1 are both false"
    ),
}

# fixtures that run a sweep (papermill kernels): their tests are sweep tests, left out like the notebooks (under
# mutmut's copy they fail on the unmutated code, and each would cost a restart of its stats run)
SWEEP_FIXTURES = ("tiny_sweep",)

SEED = 34
PER_MODULE = 40
RETRIES = 4
KILLED = {"killed", "timeout", "segfault", "suspicious"}
COUNTED = KILLED | {"survived", "no tests"}
# mutmut's exit codes (mutmut.stats.status_by_exit_code)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious"}
STATUS |= {36: "timeout", 37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
STATUS |= {-11: "segfault", -9: "segfault", None: "not checked"}


def status(exit_code: int | None) -> str:
    return STATUS.get(exit_code, "suspicious")


def module_file(mutant: str) -> str:
    """``lib.chapters.ch01.claims.x_clean__mutmut_3`` -> ``lib/chapters/ch01/claims.py``."""
    return mutant.rsplit(".", 1)[0].replace(".", "/") + ".py"


def function_of(mutant: str) -> str:
    """The mutated function's name: ``x_fit__mutmut_3`` -> ``fit``; a method ``xǁSOMǁcodes__mutmut_1`` -> ``SOM.codes``."""
    name = mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    if name.startswith("xǁ"):
        return ".".join(name[2:].split("ǁ"))
    return name[2:] if name.startswith("x_") else name


def measured(mutant: str) -> bool:
    only = ONLY_FUNCTIONS.get(module_file(mutant))
    return only is None or function_of(mutant) in only


def sample(names: list[str], per_module: int, seed: int = SEED) -> dict[str, list[str]]:
    """Up to ``per_module`` mutants of each measured file, drawn with ``seed`` from its sorted mutant names."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for n in names:
        if module_file(n) in MODULES and measured(n):
            by_file[module_file(n)].append(n)
    out = {}
    for f in sorted(by_file):
        pool = sorted(by_file[f])
        out[f] = sorted(random.Random(f"{seed}:{f}").sample(pool, min(per_module, len(pool))))
    return out


def mutmut_config(files: list[str], tests: list[str], also_copy: list[str], deselect: list[str] = ()) -> str:
    """The ``[tool.mutmut]`` table for the copy's pyproject.toml."""

    def arr(xs):
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["lib"]\n'
        f"only_mutate = {arr(files)}\n"
        f"also_copy = {arr(also_copy)}\n"
        f"pytest_add_cli_args_test_selection = {arr(tests)}\n"
        f"pytest_add_cli_args = {arr(['-p', 'no:cacheprovider', '-W', 'ignore', *deselect_args(deselect)])}\n"
        # forked from mutmut's process (torch single-threaded: OMP_NUM_THREADS=1), 10x faster than "forkserver"
        'process_isolation = "fork"\n'
        "use_git_change_detection = false\n"
    )


def sweep_tests(test_files: list[str], root: Path = ROOT) -> list[str]:
    """The tests of ``test_files`` that take a :data:`SWEEP_FIXTURES` fixture, as pytest ids."""
    out = []
    for f in test_files:
        text = (root / f).read_text()
        for name, params in re.findall(r"^def (test_\w+)\(([^)]*)\)", text, flags=re.M):
            if any(re.search(rf"\b{fx}\b", params) for fx in SWEEP_FIXTURES):
                out.append(f"{f}::{name}")
    return out


def deselect_args(tests) -> list[str]:
    return [a for t in tests for a in ("--deselect", t)]


def copy_tree(workdir: Path, rev: str | None) -> None:
    """The repository at commit ``rev`` (``git archive``), or the working tree's files (tracked and untracked,
    less what git ignores) when ``rev`` is None, copied to ``workdir``."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if rev is not None:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, workdir / rel)


def failed_tests(log: str) -> list[str]:
    """The test ids pytest's short summary (``-ra``) names as failed or in error."""
    return sorted(set(re.findall(r"^(?:FAILED|ERROR) (tests/\S+::\S+)", log, flags=re.M)))


GENERATE = """
import os, sys
from pathlib import Path
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
from mutmut.mutation.trampoline import set_mutant_under_test
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths()
create_mutants(int(sys.argv[1]))
"""


def meta_results(workdir: Path) -> dict[str, int | None]:
    """Every mutant's name and mutmut exit code (None: not run) from the copy's ``mutants/**/*.py.meta``."""
    out: dict[str, int | None] = {}
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def mutated_line(diff: str) -> str:
    """The first added line of a mutant's diff, stripped (how ``EQUIVALENT`` names a mutant)."""
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""


def show(workdir: Path, mutmut: str, mutant: str) -> str:
    r = subprocess.run([mutmut, "show", mutant], cwd=workdir, capture_output=True, text=True)
    return r.stdout.strip()


def summarise(chosen: dict[str, list[str]], results: dict[str, int | None], equivalent: set[str]) -> dict:
    """Per file and overall: counts by status and the score killed / counted (equivalents left out)."""
    rows, total = {}, Counter()
    for f, names in chosen.items():
        c = Counter("equivalent" if n in equivalent else status(results.get(n)) for n in names)
        counted = sum(c[s] for s in COUNTED)
        killed = sum(c[s] for s in KILLED)
        rows[f] = {"sampled": len(names), **c, "score": killed / counted if counted else float("nan")}
        total.update(c)
    counted = sum(total[s] for s in COUNTED)
    killed = sum(total[s] for s in KILLED)
    return {"files": rows, "total": {**total, "score": killed / counted if counted else float("nan")}}


def groups(files: list[str]) -> list[list[str]]:
    """``files`` in groups that share no test file (files joined by a test file they share), in ``MODULES`` order.

    Each group is one mutmut run over its own test files: mutmut's trampolines then slow only the
    functions of that group's files, and its stats and clean runs cover that group's tests only.
    """
    out: list[list[str]] = []
    for f in sorted(files, key=list(MODULES).index):
        joined = [g for g in out if any(set(MODULES[f]) & set(MODULES[h]) for h in g)]
        for g in joined:
            out.remove(g)
        out.append([h for g in joined for h in g] + [f])
    return sorted(out, key=lambda g: list(MODULES).index(g[0]))


def run_group(files: list[str], workdir: Path, rev: str | None, args, mutmut: str) -> dict:
    """One mutmut run over ``files`` in a copy at ``workdir``: the sampled mutants, their results and diffs."""
    copy_tree(workdir, rev)
    pristine = (workdir / "pyproject.toml").read_text()
    tests = sorted({t for f in files for t in MODULES[f]})
    also_copy = sorted(p.name for p in workdir.iterdir() if p.name not in ("lib", "tests", "pyproject.toml"))
    broken: list[str] = sweep_tests(tests, workdir)
    (workdir / "pyproject.toml").write_text(pristine + mutmut_config(files, tests, also_copy, broken))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("CI", None)
    subprocess.run(
        [sys.executable, "-c", GENERATE, str(args.workers)], cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL
    )
    everything = list(meta_results(workdir))
    chosen = sample(everything, args.per_module if args.per_module > 0 else len(everything), args.seed)
    names = [n for ns in chosen.values() for n in ns]
    totals = Counter(module_file(n) for n in everything if measured(n))
    t0 = time.monotonic()
    print(f"  {', '.join(files)}: {len(names)} of {sum(totals.values())} mutants; tests: {' '.join(tests)}", flush=True)
    log = workdir / "mutmut.log"
    # mutmut stops its stats run at the first failing test: a test that fails on the unmutated code cannot
    # tell mutants apart, so it is left out (and named) and the run starts again, up to RETRIES times
    for attempt in range(RETRIES + 1):
        with open(log, "w") as fh:
            r = subprocess.run(
                [mutmut, "run", "--max-children", str(args.workers), *names],
                cwd=workdir,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        text = log.read_text()
        new = [t for t in failed_tests(text) if t not in broken]
        if "failed to collect stats" not in text and "Failed to run clean test" not in text or not new:
            break
        broken += new
        print(f"  left out, failing on the unmutated code: {' '.join(new)}", flush=True)
        (workdir / "pyproject.toml").write_text(pristine + mutmut_config(files, tests, also_copy, broken))
        (workdir / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    results = meta_results(workdir)
    if r.returncode not in (0, 1) or all(results.get(n) is None for n in names):
        print(f"mutmut run failed (exit {r.returncode}); its output: {log}")
        print(re.sub(r"[^\n]*\r", "", log.read_text())[-3000:])
        raise SystemExit(2)
    diffs = {n: show(workdir, mutmut, n) for n in names if status(results.get(n)) in ("survived", "no tests")}
    print(f"  {time.monotonic() - t0:.0f} s", flush=True)
    return dict(chosen=chosen, results=results, diffs=diffs, totals=totals, broken=broken)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/advgeom-mutation"))
    ap.add_argument("--per-module", type=int, default=PER_MODULE, help="mutants drawn per file (0: all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="measure these files only (paths as in MODULES)")
    ap.add_argument(
        "--rev", default="HEAD", help="the commit measured (default HEAD); 'worktree': the files as they are"
    )
    args = ap.parse_args(argv)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    files = sorted(args.only or MODULES)
    unknown = [f for f in files if f not in MODULES]
    if unknown:
        ap.error(f"not measured: {unknown}; choose from {sorted(MODULES)}")
    workdir = args.workdir.resolve()
    if ROOT in [workdir, *workdir.parents]:
        ap.error(f"--workdir {workdir} is inside the repository: mutants must never be written there")
    start = time.monotonic()
    rev = None if args.rev == "worktree" else args.rev
    if rev is not None:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    parts = groups(files)
    print(
        f"mutmut over {len(files)} files at {rev or 'the working tree'} in {len(parts)} runs (files that share "
        f"no test file run apart); up to {args.per_module} mutants per file, seed {args.seed}",
        flush=True,
    )
    if workdir.exists():
        shutil.rmtree(workdir)
    chosen, results, diffs, totals, broken = {}, {}, {}, Counter(), []
    for i, part in enumerate(parts):
        got = run_group(part, workdir / f"{i:02d}-{Path(part[0]).stem}", rev, args, mutmut)
        chosen |= got["chosen"]
        results |= got["results"]
        diffs |= got["diffs"]
        totals += got["totals"]
        broken += got["broken"]
    chosen = {f: chosen[f] for f in sorted(chosen)}
    names = [n for ns in chosen.values() for n in ns]
    equivalent = {}
    for n, d in diffs.items():
        why = EQUIVALENT.get((module_file(n), mutated_line(d)))
        if why:
            equivalent[n] = why
    report = summarise(chosen, results, set(equivalent))
    head = ("file", "sampled", "of", "killed", "timeout", "survived", "untested", "equiv", "score")
    print("\n{:34} {:>7} {:>5} {:>6} {:>7} {:>8} {:>8} {:>5} {:>6}".format(*head))
    for f, row in [*report["files"].items(), ("all", {**report["total"], "sampled": len(names)})]:
        n_all = totals[f] if f != "all" else sum(totals.values())
        cells = (row["sampled"], n_all, row.get("killed", 0), sum(row.get(s, 0) for s in KILLED - {"killed"}))
        cells += (row.get("survived", 0), row.get("no tests", 0), row.get("equivalent", 0), row["score"])
        print("{:34} {:7} {:5} {:6} {:7} {:8} {:8} {:5} {:6.1%}".format(f, *cells))
    print(f"\nsurviving mutants ({len(diffs) - len(equivalent)}; 'no tests': no unit test runs the function):")
    for n, d in diffs.items():
        if n not in equivalent:
            print(f"\n## {n} [{status(results.get(n))}]\n{d}")
    if equivalent:
        print("\nequivalent mutants, left out of the score:")
        for n, why in equivalent.items():
            print(f"  {n}: {why}")
    report.update(
        seed=args.seed,
        rev=rev or "worktree",
        left_out_tests=broken,
        per_module=args.per_module,
        mutants_total=dict(totals),
        wall_s=round(time.monotonic() - start),
        survivors={n: d for n, d in diffs.items() if n not in equivalent},
        equivalent=equivalent,
    )
    (workdir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"\n{time.monotonic() - start:.0f} s; report: {workdir / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
