"""Parameter sweeps over a chapter: every point of a grid runs the notebook through papermill.

A *spec* (a YAML file or a dict) names a chapter notebook, fixed parameters, a grid
(cartesian product) and/or explicit points, seeds and an output folder::

    notebook: book/00_toolkit.ipynb
    output: sweep-results/toolkit-width
    parameters: {profile: quick, epochs: 10}
    grid: {widths: [[32], [128], [512]]}
    points: [{widths: [64, 64], lr: 0.003}]
    seeds: [0, 1, 2]

Every parameter set is checked before anything runs: names against the notebook's
``parameters`` cell (``papermill.inspect_notebook``), values against the chapter's
``PARAMS`` spec (the ``lib.chapters`` module whose ``PARAMS`` the notebook passes to
``config.resolve``) or, for a notebook without one, against the type of the literal
default in its parameters cell; the chapter's registered cross-parameter and
dataset-size checks (``config.register``) run too. A point's id is a hash of the
notebook's name and its *resolved* parameters (every parameter, ``None`` and omitted
ones replaced by the profile's value), so one computation has one id; duplicates are
merged and reported. Its executed notebook and a JSON record (status, error, the
scalars the chapter stored with :func:`lib.results.record`, and its ``provenance``:
git commit, hash of ``lib/``, hash of the notebook, torch, device, host, wall time,
date) land in ``OUTPUT/points/``, each written to a temporary name and moved into
place, so a killed sweep leaves no half-written file and a re-run skips exactly the
points that finished. A finished point recorded with another notebook or ``lib`` is
reported as stale, and redone with ``--rerun-stale``. The records of the spec's points
form one tidy table, ``OUTPUT/results.csv`` and ``OUTPUT/results.parquet``.

A point is claimed with a lock file (``lib.locks``) that its process holds while it
runs and that dies with it, so no point runs twice at the same time; workers and
kernels die with the sweep that started them, and a Dask task whose sweep is gone
stops its kernel and records nothing.

Run as ``python -m lib.sweep SPEC.yaml [--workers N] [--scheduler ADDRESS] [--rerun-stale]``.

Heavy imports (torch, pandas, papermill, Dask, matplotlib) stay inside the functions that
need them, the one place in ``lib`` that does so: ``--help`` answers in a fraction of a
second, the process that only dispatches points never loads torch, and a worker process
(which imports this module first) ties itself to the sweep within a fraction of a second.
"""

from __future__ import annotations

import argparse
import ast
import contextvars
import hashlib
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from . import locks, provenance

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SPEC_KEYS = ("notebook", "output", "parameters", "grid", "points", "seeds", "kernel", "timeout", "name", "figures")
# ``figures``: which runs render their figures. "every-seed" (the default) or "first-seed": only the
# run of each point with the spec's first seed; the others execute with matplotlib's Agg backend,
# so figures are built but never drawn into the notebook (drawing them was 10-30% of a chapter's
# run). Figures compute nothing a run records: its numbers are the same either way.
FIGURES = ("every-seed", "first-seed")
TABLE = "results"
POLL_S = 0.5  # how often a running point checks that its sweep is alive, and a waiting one its lock
CONNECT_TIMEOUT = "10s"  # to reach a Dask scheduler


class SweepError(RuntimeError):
    """A sweep that cannot run or whose points failed; the message says why."""


class SweepInterrupted(SweepError):
    """The user stopped a sweep (Ctrl-C): what finished is kept, the message says how to resume."""


class SpecError(SweepError, ValueError):
    """A sweep spec that cannot run; the message names the culprit."""


# --------------------------------------------------------------------------- spec


@dataclass
class Spec:
    """What to sweep: a notebook, fixed parameters, grid and/or explicit points, seeds."""

    notebook: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] | None = None
    kernel: str = "python3"
    timeout: float | None = None  # seconds per cell; None: no limit
    name: str = "sweep"
    figures: str = FIGURES[0]  # see FIGURES

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], name: str | None = None) -> "Spec":
        """A spec from a mapping (the parsed YAML); relative paths are taken from the current directory."""
        if not isinstance(raw, Mapping):
            raise SpecError(f"a sweep spec must be a mapping, got {type(raw).__name__}")
        unknown = [k for k in raw if k not in SPEC_KEYS]
        if unknown:
            raise SpecError(
                f"unknown key(s) in the spec: {', '.join(map(repr, unknown))}; allowed: {', '.join(SPEC_KEYS)}"
            )
        if not raw.get("notebook"):
            raise SpecError("the spec names no 'notebook'")
        notebook = Path(raw["notebook"])
        name = str(raw.get("name") or name or notebook.stem)
        output = Path(raw.get("output") or Path("sweep-results") / name)
        parameters = _mapping(raw.get("parameters"), "parameters")
        grid = _mapping(raw.get("grid"), "grid")
        if "grid" in raw and not grid:
            raise SpecError("the grid is empty: give 'grid' at least one parameter with values")
        for k, values in grid.items():
            if not isinstance(values, list):
                raise SpecError(f"grid entry {k!r} must be a list of values, got {values!r}")
            if not values:
                raise SpecError(f"grid entry {k!r} is empty: the grid would have no points")
        points = raw.get("points") or []
        if not isinstance(points, list) or not all(isinstance(p, Mapping) for p in points):
            raise SpecError("'points' must be a list of mappings (parameter: value)")
        if "points" in raw and not points:
            raise SpecError("'points' is empty: give at least one point or leave it out")
        seeds = _seeds(raw.get("seeds"))
        figures = raw.get("figures", FIGURES[0])
        if figures not in FIGURES:
            raise SpecError(f"'figures' is {figures!r}; allowed values: {', '.join(map(repr, FIGURES))}")
        timeout = raw.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise SpecError(f"'timeout' must be a positive number of seconds, got {timeout!r}")
        return cls(
            notebook=notebook,
            output=output,
            parameters=dict(parameters),
            grid={k: list(v) for k, v in grid.items()},
            points=[dict(p) for p in points],
            seeds=seeds,
            kernel=str(raw.get("kernel") or "python3"),
            timeout=timeout,
            name=name,
            figures=figures,
        )

    def combinations(self) -> list[dict[str, Any]]:
        """Every parameter set: fixed parameters + (grid product and explicit points) x seeds."""
        clash = sorted(set(self.parameters) & set(self.grid))
        if clash:
            raise SpecError(f"parameter {clash[0]!r} is both fixed and in the grid; keep one")
        varied = list(itertools.product(*self.grid.values())) if self.grid else []
        combos = [dict(zip(self.grid, values)) for values in varied] + [dict(p) for p in self.points]
        if not combos:
            if self.seeds is None:
                raise SpecError("nothing to sweep: the spec has no 'grid', 'points' or 'seeds'")
            combos = [{}]
        full = [{**self.parameters, **c} for c in combos]
        if self.seeds is None:
            return full
        for c in full:
            if "seed" in c:
                raise SpecError("'seed' is set in the parameters, grid or points and 'seeds' is given; keep one")
        return [{**c, "seed": s} for c in full for s in self.seeds]


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"'{key}' must be a mapping (parameter: value), got {value!r}")
    return value


def _seeds(value: Any) -> list[int] | None:
    """``seeds: [0, 1, 2]`` or ``seeds: 3`` (meaning 0, 1, 2)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SpecError(f"'seeds' must be a positive count or a list of seeds, got {value!r}")
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
    ):
        return list(dict.fromkeys(value))
    raise SpecError(f"'seeds' must be a positive count or a non-empty list of non-negative ints, got {value!r}")


def load_spec(path: str | Path) -> Spec:
    """Read a YAML spec; its file name (without suffix) names the sweep unless it says otherwise."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"spec file {str(path)!r} is not valid YAML: {err}") from None
    return Spec.from_dict(raw or {}, name=path.stem)


# --------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Point:
    """One run of the notebook: its id (hash of notebook name and resolved parameters) and its parameters.

    ``parameters`` are the values the spec gives (what papermill injects); ``resolved``
    every parameter as the run will use it, which the id hashes.
    """

    id: str
    parameters: dict[str, Any]
    resolved: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """The checked points of a spec and the parameter sets merged into them as duplicates."""

    points: list[Point]
    duplicates: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (parameters, id merged into)


def point_id(notebook: str | Path, parameters: Mapping[str, Any]) -> str:
    """Stable id: SHA-256 of the canonical JSON of the notebook's file name and the parameters."""
    canon = json.dumps(
        {"notebook": Path(notebook).name, "parameters": parameters},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def chapter_params(notebook: str | Path) -> dict[str, Any] | None:
    """The ``lib.config.Param`` spec the notebook validates with (``seed`` and ``device`` included), or None."""
    from . import config

    spec = chapter_spec(notebook)
    return None if spec is None else {**config.COMMON, **spec}


def chapter_spec(notebook: str | Path) -> Mapping[str, Any] | None:
    """The ``PARAMS`` of the chapter the notebook runs (``lib.chapters.NOTEBOOKS``), or None outside the chapters.

    It is the chapter's object itself, so the checks its chapter registers (``config.register``)
    apply. A notebook that is no chapter's is checked against its parameters cell only.
    """
    from .chapters import chapter

    module = chapter(notebook)
    return None if module is None else module.PARAMS


def _check_by_default(name: str, default: str, value: Any) -> Any:
    """Check ``value`` against the type of the literal default in the parameters cell."""
    try:
        expected = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value  # not a literal (an expression): nothing to compare with
    if expected is None or value is None:
        return value
    kind = type(expected)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (list, tuple) and isinstance(value, (list, tuple)):
        return value
    if kind is bool or isinstance(value, bool):
        ok = kind is bool and isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise SpecError(
            f"parameter {name!r} must be {kind.__name__} (its default is {default}), "
            f"got {value!r} ({type(value).__name__})"
        )
    return value


def _literal(default: str) -> Any:
    """The value of a parameters-cell default when it is a literal, else its text."""
    try:
        return ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return f"<expression: {default}>"


def validate(spec: Spec, *, check_device: bool = True) -> list[Point]:
    """Check every parameter set of ``spec`` before any compute; return the points (duplicates merged).

    See :func:`plan`, which also says which parameter sets were merged.
    """
    return plan(spec, check_device=check_device).points


def plan(spec: Spec, *, check_device: bool = True) -> Plan:
    """Check every parameter set of ``spec`` before any compute; return its points and merged duplicates.

    Raises :class:`SpecError` naming the notebook, parameter or value at fault, including
    the chapter's cross-parameter and dataset-size checks. ``check_device=False`` leaves
    ``device`` values to the workers (a cluster may have GPUs the submitting machine lacks).
    """
    import papermill

    from . import config

    nb_path = Path(spec.notebook)
    if nb_path.suffix != ".ipynb" or not nb_path.is_file():
        raise SpecError(f"notebook {str(spec.notebook)!r} not found (a .ipynb file is needed)")
    declared = papermill.inspect_notebook(str(nb_path))
    if not declared:
        raise SpecError(f"notebook {str(spec.notebook)!r} has no cell tagged 'parameters'")
    if spec.seeds is not None and "seed" not in declared:
        raise SpecError(f"'seeds' is given but notebook {str(spec.notebook)!r} has no parameter 'seed'")
    combos = spec.combinations()
    for where, names in (
        ("parameters", spec.parameters),
        ("grid", spec.grid),
        *((f"points[{i}]", p) for i, p in enumerate(spec.points)),
    ):
        for n in names:
            if n not in declared:
                raise SpecError(
                    f"parameter {n!r} (in {where}) is not a parameter of {str(spec.notebook)!r}; "
                    f"its parameters are: {', '.join(declared)}"
                )
    chapter = chapter_spec(nb_path)
    params = None if chapter is None else {**config.COMMON, **chapter}
    points: dict[str, Point] = {}
    duplicates: list[tuple[dict[str, Any], str]] = []
    for combo in combos:
        if "profile" in declared and "profile" not in combo:
            # Pin the profile so the point's id (and its results) do not depend on the environment.
            combo = {"profile": os.environ.get("BOOK_PROFILE", "quick"), **combo}
        clean = {}
        try:
            for n, v in combo.items():
                if v is None:
                    clean[n] = None
                elif n == "profile" and params is not None:
                    if v not in config.PROFILES:
                        raise config.ParameterError(
                            f"parameter 'profile' is {v!r}; allowed values: {', '.join(map(repr, config.PROFILES))}"
                        )
                    clean[n] = v
                elif params is not None and n in params and not (n == "device" and not check_device):
                    clean[n] = config.validate_value(n, params[n], v)
                else:
                    clean[n] = _check_by_default(n, declared[n]["default"], v)
            resolved = {n: clean.get(n, _literal(d["default"])) for n, d in declared.items()}
            if chapter is not None:
                cfg = config.resolve_values(
                    chapter,
                    {n: v for n, v in clean.items() if n in params or n == "profile"},
                    check_device=check_device,
                )
                resolved.update({n: getattr(cfg, n) for n in (*params, "profile")})
        except (config.ParameterError, SpecError) as err:
            raise SpecError(f"{err} (point {short(combo)})") from None
        pid = point_id(nb_path, resolved)
        if pid in points:
            duplicates.append((clean, pid))
        else:
            points[pid] = Point(pid, clean, resolved)
    return Plan(list(points.values()), duplicates)


def short(params: Mapping[str, Any]) -> str:
    """Parameters as ``name=value, ...`` for messages."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


# ------------------------------------------------------------- one point (a worker)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder (named after this process), then move it into place."""
    tmp = locks.temp_name(path)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str)))


def figures_env(spec: Spec, resolved: Mapping[str, Any]) -> dict[str, str]:
    """The kernel environment a point needs for the spec's ``figures``: Agg (no figure drawn) for a
    run whose seed is not the spec's first under "first-seed", else nothing."""
    if spec.figures == "first-seed" and spec.seeds and resolved.get("seed", spec.seeds[0]) != spec.seeds[0]:
        return {"MPLBACKEND": "agg"}
    return {}


def kernel_env(root: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: this process's, with ``root`` first on PYTHONPATH so ``import lib`` works."""
    env = {**os.environ, **(extra or {})}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def _kernel_manager(env: Mapping[str, str], log: Any, started: dict[str, int]) -> type:
    """A kernel manager starting the kernel with ``env``, its own output going to ``log``.

    ``log`` is an open binary file. Passing the environment per kernel (not through
    ``os.environ``) keeps points that run in threads of one process (a threaded Dask
    worker) from seeing each other's. The kernel dies with the process that starts it
    (PDEATHSIG), and its pid goes into ``started`` so a watchdog can stop it.
    """
    from jupyter_client import AsyncKernelManager

    class SweepKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("env", dict(env))
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            kw.setdefault("preexec_fn", partial(locks.die_with_parent, os.getpid()))
            await super().start_kernel(**kw)
            started["pid"] = self.provisioner.pid

    return SweepKernelManager


def _owner_alive(task: Mapping[str, Any]) -> bool:
    """Whether the sweep that queued ``task`` still runs (it holds its owner lock while it does)."""
    return not task.get("owner") or locks.held(task["owner"])


def _watch(task: Mapping[str, Any], started: dict[str, int], stop: threading.Event, abandoned: threading.Event) -> None:
    """Until ``stop``: when the point's sweep is gone, mark the point abandoned and kill its kernel."""
    while not stop.wait(POLL_S):
        if not abandoned.is_set() and not _owner_alive(task):
            abandoned.set()
        if abandoned.is_set() and started.get("pid"):
            try:
                os.kill(started["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


def _abandoned(task: Mapping[str, Any]) -> dict[str, Any]:
    """What a point returns when its sweep is gone: nothing is recorded on disk."""
    return {
        "point": task["id"],
        "notebook": task["notebook_name"],
        "parameters": task["parameters"],
        "status": "abandoned",
        "error": "the sweep that queued this point is gone",
        "results": {},
    }


def _claim_point(task: Mapping[str, Any]) -> locks.Held | None:
    """Wait for the point's lock (a live holder is running it); None if the sweep is gone meanwhile."""
    path = Path(task["output"]) / "points" / f"{task['id']}.lock"
    while True:
        if not _owner_alive(task):
            return None
        held = locks.claim(path, {"point": task["id"]})
        if held is not None:
            return held
        time.sleep(POLL_S)


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Execute one point's notebook and save its record; never raises for a failing notebook.

    The point is claimed first (its lock), so it never runs twice at the same time; if
    another process finished it meanwhile with the same code, its record is returned
    with ``reused`` set. If the sweep that queued it dies, the kernel is stopped and
    nothing is recorded (status ``abandoned``).
    """
    if not _owner_alive(task):
        return _abandoned(task)
    held = _claim_point(task)
    if held is None:
        return _abandoned(task)
    with held:
        return _run_claimed(task)


def _run_claimed(task: Mapping[str, Any]) -> dict[str, Any]:
    import papermill

    from . import results

    out = Path(task["output"]) / "points"
    pid = task["id"]
    final, partial_nb, log = out / f"{pid}.ipynb", out / f".{pid}.partial.ipynb", out / f"{pid}.log"
    info = out / f".{pid}.run.json"
    before = read_record(out / f"{pid}.json")
    if (
        before
        and before.get("status") == "done"
        and task.get("code_sha256")
        and not provenance.stale(before, code=task["code_sha256"], notebook=task["notebook_sha256"])
        and not executed_damage(out, before)
    ):
        return {**before, "reused": True}  # another process finished it while this one waited
    partial_nb.unlink(missing_ok=True)  # a leftover of a killed run of this point
    info.unlink(missing_ok=True)
    env = kernel_env(task["root"], {**(task.get("env") or {}), provenance.RUN_INFO_ENV: str(info)})
    start = time.time()
    status, error, values = "done", None, {}
    started: dict[str, int] = {}
    stop, abandoned = threading.Event(), threading.Event()
    watchdog = threading.Thread(target=_watch, args=(task, started, stop, abandoned), daemon=True)
    watchdog.start()
    # The kernel's own output (not the cells') goes to the point's log, for post-mortems.
    with open(log, "wb") as log_file:
        try:
            # In a fresh context: jupyter_core keeps its event loop in a context variable, which
            # threads (Dask's, when it runs tasks in threads) inherit; two points sharing one
            # loop fail with "This event loop is already running".
            nb = contextvars.Context().run(
                papermill.execute_notebook,
                task["notebook"],
                str(partial_nb),
                parameters=task["parameters"],
                kernel_name=task["kernel"],
                progress_bar=False,
                log_output=False,
                execution_timeout=task.get("timeout"),
                kernel_manager_class=_kernel_manager(env, log_file, started),
                # Stop the kernel at once after the last cell: the shorter the time between the
                # end of the computation and its record, the rarer a kill in between (which reruns it).
                shutdown_kernel="immediate",
                # The kernel starts in the notebook's folder, as in the book build (no chdir here).
                resources={"metadata": {"path": str(Path(task["notebook"]).parent)}},
            )
            values = results.from_notebook(nb)
        except papermill.PapermillExecutionError as err:
            status, error = "failed", f"{err.ename}: {err.evalue}"
        except Exception as err:  # kernel died, timeout, unknown kernel...: record it, go on
            status, error = "failed", f"{type(err).__name__}: {err}"
        finally:
            stop.set()
            watchdog.join()
    run_info = read_record(info) or {}
    ran_on = run_info.get("device")
    info.unlink(missing_ok=True)
    if abandoned.is_set():
        partial_nb.unlink(missing_ok=True)
        return _abandoned(task)
    executed = None
    if partial_nb.exists():
        os.replace(partial_nb, final)  # the executed notebook, also kept when it failed
        executed = _file_sha256(final)
    wall = time.time() - start
    record = {
        "point": pid,
        "notebook": task["notebook_name"],
        "parameters": task["parameters"],
        "resolved": task.get("resolved"),
        "status": status,
        "error": error,
        "results": values,
        "executed_sha256": executed,
        "seconds": round(wall, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": socket.gethostname(),
        "gpu": env.get("CUDA_VISIBLE_DEVICES"),
        "provenance": provenance.collect(
            task["notebook"], device=ran_on, threads=run_info.get("threads"), wall_s=wall, root=task["root"]
        ),
    }
    _write_json(out / f"{pid}.json", record)
    return record


# ------------------------------------------------------------------ the results table


def _cell(v: Any) -> Any:
    """Lists and dicts become compact JSON text, so CSV and Parquet hold the same value."""
    return json.dumps(v) if isinstance(v, (list, tuple, dict)) else v


def make_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per point: id, status, parameters, recorded results, error, seconds."""
    import pandas as pd

    rows = []
    for r in records:
        row = {"point": r["point"], "status": r["status"]}
        row.update({k: _cell(v) for k, v in r["parameters"].items()})
        for k, v in (r.get("results") or {}).items():
            row[k if k not in row else f"result.{k}"] = v
        row.update(error=r.get("error"), seconds=r.get("seconds"))
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:  # keep error and seconds last whatever the order of the keys
        table = table[[c for c in table.columns if c not in ("error", "seconds")] + ["error", "seconds"]]
    return table


def write_table(table: pd.DataFrame, output: str | Path) -> None:
    """Write ``results.csv`` and ``results.parquet`` atomically."""
    output = Path(output)
    atomic_write(output / f"{TABLE}.csv", lambda p: table.to_csv(p, index=False))
    atomic_write(output / f"{TABLE}.parquet", lambda p: table.to_parquet(p, index=False))


def load(output: str | Path) -> pd.DataFrame:
    """The results table of a sweep's output folder."""
    import pandas as pd

    return pd.read_parquet(Path(output) / f"{TABLE}.parquet")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def executed_damage(points: Path, record: Mapping[str, Any]) -> str:
    """What is wrong with a finished point's executed notebook in ``points`` (``""`` when it is intact).

    A record states the SHA-256 of the notebook it executed; a notebook that is missing,
    cut short or edited since does not match it (a record without a hash needs a notebook
    that reads as one).
    """
    path = points / f"{record['point']}.ipynb"
    if not path.is_file():
        return "its executed notebook is missing"
    recorded = record.get("executed_sha256")
    if recorded:
        return "" if _file_sha256(path) == recorded else "its executed notebook differs from the one it recorded"
    try:
        json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its executed notebook is damaged"
    return ""


def read_record(path: Path) -> dict[str, Any] | None:
    """A point's JSON record, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------- execution


@dataclass
class Summary:
    """What a sweep did: counts, wall time, the results table and where it lives.

    ``stale`` lists the finished points recorded with another notebook or ``lib`` (each
    with what differs); they were redone when ``rerun_stale``, else kept and counted as
    skipped. ``duplicates`` lists the parameter sets merged into another point.
    """

    name: str
    output: Path
    points: int
    done: int
    skipped: int
    failed: int
    wall_s: float
    table: pd.DataFrame
    failures: list[dict[str, Any]] = field(default_factory=list)
    stale: list[tuple[str, list[str]]] = field(default_factory=list)
    rerun_stale: bool = False
    duplicates: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (point, what was wrong): run again

    def __str__(self) -> str:
        lines = [
            f"sweep {self.name!r}: {self.points} points: {self.done} done, {self.skipped} skipped "
            f"(finished before), {self.failed} failed; wall time {self.wall_s:.1f} s",
            f"  table: {self.output / TABLE}.csv and .parquet",
        ]
        lines += _duplicate_lines(self.duplicates)
        if self.stale:
            what = sorted({w for _, ws in self.stale for w in ws})
            verb = "redone" if self.rerun_stale else "kept; run with --rerun-stale to redo them"
            lines.append(
                f"  {len(self.stale)} finished point(s) were recorded with another "
                f"{' and '.join(what)} than the current one: {verb}"
            )
            lines += [f"    stale {pid} ({', '.join(ws)} changed)" for pid, ws in self.stale]
        lines += [f"  run again {pid}: finished before, but {why}" for pid, why in self.damaged]
        lines += [f"  failed {r['point']} ({short(r['parameters'])}): {r['error']}" for r in self.failures]
        return "\n".join(lines)

    def check(self) -> "Summary":
        """Raise :class:`SweepError` listing the failed points and their errors, if any; else return self."""
        if self.failed:
            failed = "\n".join(f"  {r['point']} ({short(r['parameters'])}): {r['error']}" for r in self.failures)
            raise SweepError(
                f"{self.failed} of {self.points} points of sweep {self.name!r} failed "
                f"(their executed notebooks and logs are in {self.output / 'points'}):\n{failed}"
            )
        return self


def _duplicate_lines(duplicates: list[tuple[dict[str, Any], str]]) -> list[str]:
    if not duplicates:
        return []
    return [f"  {len(duplicates)} parameter set(s) resolve to a point already in the sweep and were merged:"] + [
        f"    {short(params)} -> {pid}" for params, pid in duplicates
    ]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def worker_envs(workers: int) -> list[dict[str, str]]:
    """One environment per local worker: its own GPU when several are visible, a fair share of CPU threads."""
    gpus = visible_gpus()
    threads = max(1, (os.cpu_count() or 1) // workers)
    current = os.environ.get("OMP_NUM_THREADS", "")
    if current.isdigit() and int(current) > 0:
        threads = min(threads, int(current))
    envs = []
    for i in range(workers):
        env = {"OMP_NUM_THREADS": str(threads)}
        if len(gpus) > 1:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        envs.append(env)
    return envs


def _sequential(tasks: list[dict]) -> Iterator[dict]:
    for task in tasks:
        yield run_point(task)


def _local_pool(tasks: list[dict], workers: int) -> Iterator[dict]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")  # no fork of a process that may hold torch/CUDA state
    queue = ctx.Queue()
    for env in worker_envs(workers):
        queue.put(env)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=locks.worker_start, initargs=(os.getpid(), queue))
    closed_early = False
    try:
        futures = {pool.submit(run_point, t): t for t in tasks}
        for fut in as_completed(futures):
            yield _result_or_failure(fut, futures[fut])
    except (GeneratorExit, KeyboardInterrupt):  # the sweep stops (Ctrl-C, an error): running points are not waited for
        closed_early = True
        raise
    finally:
        if closed_early:
            # Each worker's kernel dies with it (PDEATHSIG); a killed point records nothing and is run again
            # on resume. The executor has no public way to stop running calls.
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.kill()
        pool.shutdown(wait=not closed_early, cancel_futures=True)


def _dask(tasks: list[dict], client: Any) -> Iterator[dict]:
    from distributed import as_completed

    futures = {}
    try:
        for t in tasks:
            futures[client.submit(run_point, t, key=f"sweep-point-{t['id']}-{time.time_ns()}", pure=False)] = t
        for fut in as_completed(list(futures)):
            yield _result_or_failure(fut, futures[fut])
    finally:
        client.cancel(list(futures))


def _connect(scheduler: str) -> Any:
    """A client of the Dask scheduler at ``scheduler``, or a SweepError saying why there is none."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise SweepError(f"cannot reach the Dask scheduler {scheduler!r}: {type(err).__name__}: {err}") from None


def _result_or_failure(fut: Any, task: Mapping[str, Any]) -> dict:
    """The worker's record, or a failure record when the worker itself died."""
    try:
        return fut.result()
    except Exception as err:
        record = {
            "point": task["id"],
            "notebook": task["notebook_name"],
            "parameters": task["parameters"],
            "status": "failed",
            "error": f"worker lost: {type(err).__name__}: {err}",
            "results": {},
            "seconds": None,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "host": None,
            "gpu": None,
        }
        points = Path(task["output"]) / "points"
        held = locks.claim(points / f"{task['id']}.lock")
        if held is not None:  # else another process runs the point now: its record will say
            with held:
                _write_json(points / f"{task['id']}.json", record)
        return record


def _prepare_output(out: Path, spec: Spec, points: list[Point]) -> None:
    """Create the output folder, remove what dead runs left there, write ``sweep.json``; SweepError if impossible."""
    try:
        (out / "points").mkdir(parents=True, exist_ok=True)
        for folder in (out, out / "points"):
            locks.remove_stale_temps(folder)
            for lock in folder.glob("*.lock"):
                if not locks.held(lock):
                    lock.unlink(missing_ok=True)
        for partial_nb in (out / "points").glob(".*.partial.ipynb"):
            if not locks.held(out / "points" / f"{partial_nb.name[1:].split('.')[0]}.lock"):
                partial_nb.unlink(missing_ok=True)
        _write_json(
            out / "sweep.json",
            {"name": spec.name, "notebook": str(spec.notebook), "points": {p.id: p.parameters for p in points}},
        )
    except OSError as err:
        raise SweepError(
            f"the output folder {str(spec.output)!r} cannot be used: "
            f"{err.strerror or err}{f' ({err.filename})' if err.filename else ''}"
        ) from None


def run(
    spec: Spec | Mapping[str, Any] | str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = True,
    on_point: Callable[[dict], None] | None = None,
    rerun_stale: bool = False,
) -> Summary:
    """Run every point of ``spec`` not finished before; return the summary with the results table.

    ``workers`` > 1 runs points in that many local processes; ``scheduler`` (an address)
    or ``client`` (a ``distributed.Client``) runs them on a Dask cluster instead.
    ``on_point(record)`` is called after each point's record is saved. A finished point
    recorded with another notebook or ``lib`` is reported (``Summary.stale``) and kept,
    or redone when ``rerun_stale``. Raises :class:`SweepError` (or :class:`SpecError`)
    when the sweep cannot run at all.
    """
    from tqdm.auto import tqdm

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif not isinstance(spec, Spec):
        spec = Spec.from_dict(spec)
    if workers < 1:
        raise SpecError(f"workers must be >= 1, got {workers}")
    remote = scheduler is not None or client is not None
    planned = plan(spec, check_device=not remote)
    points = planned.points
    start = time.time()
    out = Path(spec.output).resolve()
    _prepare_output(out, spec, points)
    nb = Path(spec.notebook).resolve()
    code_hash, nb_hash = provenance.code_sha256(nb, ROOT), provenance.notebook_sha256(nb)
    records: dict[str, dict] = {}
    stale: list[tuple[str, list[str]]] = []
    damaged: list[tuple[str, str]] = []
    for p in points:
        rec = read_record(out / "points" / f"{p.id}.json")
        if rec and rec.get("status") == "done":
            damage = executed_damage(out / "points", rec)
            if damage:  # run again: a point counts as finished only with its executed notebook intact
                damaged.append((p.id, damage))
                continue
            changed = provenance.stale(rec, code=code_hash, notebook=nb_hash)
            if changed:
                stale.append((p.id, changed))
                if rerun_stale:
                    continue
            records[p.id] = rec
    skipped = len(records)
    # Held while the sweep runs: its points stop (and record nothing) when it is gone.
    owner = locks.claim(out / f".sweep.{locks.HOST.split('.')[0]}-{os.getpid()}.lock", {"sweep": spec.name})
    tasks = [
        {
            "id": p.id,
            "parameters": p.parameters,
            "resolved": p.resolved,
            "notebook": str(nb),
            "notebook_name": nb.name,
            "output": str(out),
            "kernel": spec.kernel,
            "timeout": spec.timeout,
            "root": str(ROOT),
            "owner": str(owner.path),
            "code_sha256": code_hash,
            "notebook_sha256": nb_hash,
            "env": figures_env(spec, p.resolved),
        }
        for p in points
        if p.id not in records
    ]
    order = {p.id: i for i, p in enumerate(points)}

    def table() -> pd.DataFrame:
        return make_table(sorted(records.values(), key=lambda r: order[r["point"]]))

    own_client = None
    try:
        if remote:
            if client is None:
                client = own_client = _connect(scheduler)
            stream = _dask(tasks, client)
        elif workers > 1 and len(tasks) > 1:
            stream = _local_pool(tasks, min(workers, len(tasks)))
        else:
            stream = _sequential(tasks)
        done = failed = 0
        failures: list[dict] = []
        last_write = 0.0
        bar = tqdm(
            total=len(points),
            initial=skipped,
            desc=spec.name,
            unit="point",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            for rec in stream:
                if rec.get("reused"):
                    rec = {k: v for k, v in rec.items() if k != "reused"}
                    skipped += 1
                elif rec["status"] == "done":
                    done += 1
                else:
                    failed += 1
                    failures.append(rec)
                records[rec["point"]] = rec
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
                if time.time() - last_write > 2.0:  # keep the table current without rewriting it per point
                    write_table(table(), out)
                    last_write = time.time()
                if on_point is not None:
                    on_point(rec)
        except KeyboardInterrupt:
            # Let go of the sweep first: each running point sees it gone within POLL_S, stops its
            # kernel and records nothing, so closing the workers below does not wait for them.
            owner.release()
            bar.close()
            stream.close()
            write_table(table(), out)
            finished = sum(r.get("status") == "done" for r in records.values())
            raise SweepInterrupted(
                f"interrupted: {finished} of {len(points)} points of sweep {spec.name!r} are finished and kept in "
                f"{out / 'points'} ({done} of them in this run); the running points were stopped and record "
                "nothing. Run the same command again to resume where it stopped."
            ) from None
        finally:
            bar.close()
            stream.close()
            write_table(table(), out)
    finally:
        if own_client is not None:
            own_client.close()
        owner.release()
    return Summary(
        spec.name,
        out,
        len(points),
        done,
        skipped,
        failed,
        time.time() - start,
        table(),
        failures,
        stale,
        rerun_stale,
        planned.duplicates,
        damaged,
    )


# ------------------------------------------------------------------------- plotting


def plot(
    table: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    ax: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = False,
) -> Any:
    """Mean of ``y`` over seeds against ``x`` (one line per ``hue``), each run as a faint dot.

    Only finished points are drawn. Numeric ``x`` gives a line plot, other ``x`` a point
    plot in the table's order; error bars are one standard deviation over the seeds.
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    data = table[table["status"] == "done"] if "status" in table else table
    for col in (x, y, hue):
        if col is not None and col not in data:
            raise KeyError(f"column {col!r} is not in the table; columns: {', '.join(data.columns)}")
    if ax is None:
        _, ax = plt.subplots()
    numeric = pd.api.types.is_numeric_dtype(data[x])
    kw = dict(data=data, x=x, y=y, hue=hue, ax=ax, errorbar="sd")
    if numeric:
        sns.lineplot(**kw, marker="o")
        sns.scatterplot(data=data, x=x, y=y, hue=hue, ax=ax, alpha=0.35, legend=False, s=18)
    else:
        sns.pointplot(**kw, order=list(dict.fromkeys(data[x])), dodge=0.2 if hue else False)
        sns.stripplot(
            data=data,
            x=x,
            y=y,
            hue=hue,
            ax=ax,
            alpha=0.35,
            legend=False,
            size=4,
            order=list(dict.fromkeys(data[x])),
            dodge=bool(hue),
        )
    if logx and numeric:
        from matplotlib.ticker import NullLocator

        ax.set_xscale("log")
        values = sorted(data[x].dropna().unique())
        ax.set_xticks(values, labels=[f"{v:g}" for v in values])  # the swept values, not powers of 10
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title or f"{y} against {x}")
    return ax


# ---------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="sweep spec (YAML)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the points on this Dask distributed scheduler (e.g. tcp://host:8786)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the spec and list its points; run nothing")
    parser.add_argument(
        "--rerun-stale",
        action="store_true",
        help="redo finished points recorded with another notebook or lib/ than the current one",
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.dry_run:
            planned = plan(spec, check_device=args.scheduler is None)
            for p in planned.points:
                print(p.id, short(p.parameters))
            print(
                "\n".join(
                    [f"{len(planned.points)} points, output {spec.output}", *_duplicate_lines(planned.duplicates)]
                )
            )
            return 0
        summary = run(spec, workers=args.workers, scheduler=args.scheduler, rerun_stale=args.rerun_stale)
    except SweepInterrupted as err:
        print(f"sweep: {err}", file=sys.stderr)
        return 130
    except SweepError as err:
        print(f"sweep: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before any point started: nothing to keep
        print("sweep: interrupted before any point ran; nothing was recorded", file=sys.stderr)
        return 130
    print(summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
