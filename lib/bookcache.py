"""Keep the book's execution cache honest, and fill it from a test run.

jupyter-book caches notebook outputs keyed by the notebooks' code alone, so a
change in ``lib`` would leave stale outputs in the book. :func:`invalidate_if_stale`
wipes the cache when the hash of ``lib`` differs from the one it was built with;
:func:`import_executed` stores notebooks that were executed elsewhere (by the
nbval run of ``make test``) so the book build does not execute them a second time.

Run as ``python -m lib.bookcache check`` or ``python -m lib.bookcache import DIR``.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"
STAMP = ROOT / "_build" / ".lib-hash"


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
    from jupyter_cache import get_cache

    cache = get_cache(str(CACHE))
    done = []
    for nb in sorted(Path(folder).rglob("*.ipynb")):
        source = ROOT / nb.relative_to(folder)
        if not source.exists():
            continue
        cache.cache_notebook_file(path=str(nb), uri=str(source), check_validity=False, overwrite=True)
        done.append(str(source.relative_to(ROOT)))
    return done


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        if invalidate_if_stale():
            print("lib changed: cleared the book's execution cache")
        return 0
    if len(argv) == 2 and argv[0] == "import":
        for name in import_executed(Path(argv[1])):
            print(f"cached outputs of {name}")
        return 0
    print("usage: python -m lib.bookcache check | import DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
