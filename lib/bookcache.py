"""Keep the book's execution cache honest, and fill it from a test run.

jupyter-book caches notebook outputs keyed by the notebooks' code alone, so a
change in ``lib`` would leave stale outputs in the book. :func:`invalidate_if_stale`
wipes the cache when the hash of ``lib`` differs from the one it was built with;
:func:`import_executed` stores notebooks that were executed elsewhere (by the
nbval run of ``make test``) so the book build does not execute them a second time;
:func:`execution_times` reads how long each chapter of the book took to execute.

Run as ``python -m lib.bookcache check``, ``python -m lib.bookcache import DIR`` or
``python -m lib.bookcache times [--since EPOCH_SECONDS]``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"
STAMP = ROOT / "_build" / ".lib-hash"
TOC = ROOT / "_toc.yml"


def lib_hash() -> str:
    """SHA-256 over the source of ``lib`` and the book's Sphinx extensions."""
    h = hashlib.sha256()
    files = sorted([*ROOT.glob("lib/**/*.py"), *ROOT.glob("book/_ext/*.py")])
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def invalidate_if_stale() -> bool:
    """Delete the execution cache when ``lib`` changed since it was filled; True if deleted."""
    current = lib_hash()
    stale = CACHE.exists() and (not STAMP.exists() or STAMP.read_text().strip() != current)
    if stale:
        shutil.rmtree(CACHE)
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(current)
    return stale


def import_executed(folder: Path) -> list[str]:
    """Add every executed notebook under ``folder`` (mirroring book/) to the cache."""
    cache = get_cache(str(CACHE))
    done = []
    for nb in sorted(Path(folder).rglob("*.ipynb")):
        source = ROOT / nb.relative_to(folder)
        if not source.exists():
            continue
        cache.cache_notebook_file(path=str(nb), uri=str(source), check_validity=False, overwrite=True)
        done.append(str(source.relative_to(ROOT)))
    return done


@dataclass(frozen=True)
class ExecutionTime:
    """How the cached outputs of one notebook of the book were obtained."""

    notebook: str
    seconds: float | None  # None: not in the cache, or imported without a timing
    executed: datetime | None  # when the cached outputs were stored (UTC); None: not in the cache


def book_notebooks(toc: Path = TOC) -> list[Path]:
    """The notebooks named in the book's table of contents, in reading order."""
    found: list[Path] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    nb = (toc.parent / node[key]).with_suffix(".ipynb")
                    if nb.exists() and nb not in found:
                        found.append(nb)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(toc.read_text()))
    return found


def execution_times(notebooks: list[Path], cache_path: Path = CACHE, root: Path = ROOT) -> list[ExecutionTime]:
    """For each notebook, the execution record in the cache that matches its current code."""
    cache = get_cache(str(cache_path)) if Path(cache_path).exists() else None
    rows = []
    for nb in notebooks:
        name = str(nb.relative_to(root)) if nb.is_relative_to(root) else str(nb)
        try:
            record = cache.match_cache_file(str(nb)) if cache is not None else None
        except KeyError:
            record = None
        if record is None:
            rows.append(ExecutionTime(name, None, None))
            continue
        seconds = (record.data or {}).get("execution_seconds")
        created = record.created if record.created.tzinfo else record.created.replace(tzinfo=timezone.utc)
        rows.append(ExecutionTime(name, None if seconds is None else float(seconds), created))
    return rows


def format_times(rows: list[ExecutionTime], since: datetime | None = None) -> str:
    """A plain-text table of :func:`execution_times`, with the total of the timed chapters.

    With ``since``, each row says whether its outputs were executed at or after that
    moment (this build) or taken from an earlier run.
    """
    width = max([len("notebook"), *(len(r.notebook) for r in rows)])
    lines = [f"{'notebook':{width}s}  {'seconds':>8s}  outputs"]
    for r in rows:
        if r.executed is None:
            how = "not in the cache (not executed or failed)"
        elif since is not None and r.executed >= since:
            how = "executed in this build"
        else:
            how = f"cached, stored {r.executed.astimezone().strftime('%Y-%m-%d %H:%M')}"
        if r.executed is not None and r.seconds is None:
            how += " (imported from the test run, no timing)"
        secs = "-" if r.seconds is None else f"{r.seconds:.1f}"
        lines.append(f"{r.notebook:{width}s}  {secs:>8s}  {how}")
    timed = [r.seconds for r in rows if r.seconds is not None]
    lines.append(f"{'total':{width}s}  {sum(timed):8.1f}  ({len(timed)} of {len(rows)} notebooks timed)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.bookcache", description="The book's execution cache.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="clear the cache if lib changed since it was filled")
    imp = sub.add_parser("import", help="store the executed notebooks under DIR in the cache")
    imp.add_argument("dir", type=Path)
    times = sub.add_parser("times", help="print how long each chapter took to execute")
    times.add_argument(
        "--since", type=float, default=None, help="UNIX time the build started: marks the chapters executed by it"
    )
    times.add_argument("--cache", type=Path, default=CACHE)
    times.add_argument("--toc", type=Path, default=TOC)
    a = ap.parse_args(argv)
    if a.command == "check":
        if invalidate_if_stale():
            print("lib changed: cleared the book's execution cache")
    elif a.command == "import":
        for name in import_executed(a.dir):
            print(f"cached outputs of {name}")
    else:
        since = None if a.since is None else datetime.fromtimestamp(a.since, timezone.utc)
        print("Execution time per notebook:")
        print(format_times(execution_times(book_notebooks(a.toc), a.cache, a.toc.resolve().parent), since))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
