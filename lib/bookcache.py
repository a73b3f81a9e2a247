"""Keep the book's execution cache honest, and fill it from a test run and from the recorded pages.

jupyter-book caches notebook outputs keyed by the notebooks' code alone, so a
change in ``lib`` would leave stale outputs in the book, and a new ledger outdated
verdicts. :func:`invalidate_if_stale` wipes the cache when the hash of what the
outputs depend on besides the notebooks (:func:`lib_hash`: ``lib``, the book's
extensions, the evidence tables and recorded pages, the profile) differs from the
one it was built with; :func:`import_executed` stores notebooks that were executed
elsewhere (by the nbval run of ``make test``) so the book build does not execute them
a second time; ``import-pages`` stores the image chapters' recorded pages
(:mod:`lib.recorded`), which the book shows instead of executing those chapters;
:func:`execution_times` reads how long each chapter of the book took to execute.

Run as ``python -m lib.bookcache check``, ``python -m lib.bookcache import DIR``,
``python -m lib.bookcache pages`` (copy the recorded pages into ``evidence/pages/``:
``make evidence`` does), ``python -m lib.bookcache import-pages`` or
``python -m lib.bookcache times [--since EPOCH_SECONDS]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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
RECORDED_KEY = "recorded_run"  # the cache record's data of a recorded page (lib.recorded.RUN_KEY)


# What cached outputs depend on besides the notebooks: the code, the book's Sphinx extensions, the
# evidence ledger's tables (the verdicts pages show) and the recorded pages the book shows.
CACHE_INPUTS = ("lib/**/*.py", "book/_ext/*.py", "evidence/*.csv", "evidence/pages/*.ipynb")


def lib_hash(root: Path = ROOT) -> str:
    """SHA-256 over the files of :data:`CACHE_INPUTS` under ``root`` and the profile (``BOOK_PROFILE``)."""
    h = hashlib.sha256(os.environ.get("BOOK_PROFILE", "quick").encode() + b"\0")
    files = sorted(f for pattern in CACHE_INPUTS for f in root.glob(pattern))
    for f in files:
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def invalidate_if_stale(cache: Path = CACHE, stamp: Path = STAMP, root: Path = ROOT) -> bool:
    """Delete the execution cache when :func:`lib_hash` changed since it was filled; True if deleted."""
    current = lib_hash(root)
    stale = cache.exists() and (not stamp.exists() or stamp.read_text().strip() != current)
    if stale:
        shutil.rmtree(cache)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current)
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
    recorded: str | None = None  # the recorded run (point) whose outputs these are, for a recorded page


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
        recorded = (record.data or {}).get(RECORDED_KEY)
        rows.append(ExecutionTime(name, None if seconds is None else float(seconds), created, recorded))
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
        if r.recorded:
            how = f"recorded page (run {r.recorded} of the evidence recording)"
        elif r.executed is not None and r.seconds is None:
            how += " (imported from the test run, no timing)"
        secs = "-" if r.seconds is None else f"{r.seconds:.1f}"
        lines.append(f"{r.notebook:{width}s}  {secs:>8s}  {how}")
    timed = [r.seconds for r in rows if r.seconds is not None]
    lines.append(f"{'total':{width}s}  {sum(timed):8.1f}  ({len(timed)} of {len(rows)} notebooks timed)")
    return "\n".join(lines)


def recorded_pages(a: argparse.Namespace) -> int:
    """``pages``: copy the recorded pages (lib.recorded.copy_pages); ``import-pages``: put them in the cache."""
    from . import recorded  # loads the evidence machinery: only these two commands need it

    try:
        if a.command == "pages":
            where = {"evidence_dir": a.evidence} if a.evidence else {}
            copied = recorded.copy_pages(**where, runs=a.runs, out=a.out, partial=a.partial)
            for c in copied:
                print(f"{c.notebook}: {c.action}" + (f" ({c.size:,} bytes)" if c.size else ""))
            return 1 if any(c.action not in recorded.DONE for c in copied) else 0
        profile = os.environ.get("BOOK_PROFILE", "quick")
        if profile != "quick":
            print(f"BOOK_PROFILE={profile}: the recorded pages are quick-profile runs; the chapters execute instead")
            return 0
        for source, info in recorded.import_pages(CACHE):
            flag = " [stale: flagged on the page]" if info["stale"] else ""
            print(f"recorded page of {Path(source).relative_to(ROOT)}: run {info['run']['point']}{flag}")
    except recorded.PageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.bookcache", description="The book's execution cache.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="clear the cache if lib changed since it was filled")
    imp = sub.add_parser("import", help="store the executed notebooks under DIR in the cache")
    imp.add_argument("dir", type=Path)
    pages = sub.add_parser("pages", help="copy the ledger's run of each image chapter into evidence/pages/")
    pages.add_argument("--evidence", type=Path, default=None, help="the ledger's folder (default: evidence/)")
    pages.add_argument("--runs", type=Path, default=ROOT, help="the folder the specs' outputs are in (default: .)")
    pages.add_argument("--out", type=Path, default=None, help="where the pages go (default: <evidence>/pages)")
    pages.add_argument("--partial", action="store_true", help="copy the pages whose runs are here, report the others")
    sub.add_parser("import-pages", help="store the recorded pages in the cache: the book shows them")
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
    elif a.command in ("pages", "import-pages"):
        return recorded_pages(a)
    else:
        since = None if a.since is None else datetime.fromtimestamp(a.since, timezone.utc)
        print("Execution time per notebook:")
        print(format_times(execution_times(book_notebooks(a.toc), a.cache, a.toc.resolve().parent), since))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
