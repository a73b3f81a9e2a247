"""pytest plugin: keep the outputs nbval produced, so the book build can reuse them.

For every notebook whose cells all passed under nbval, an executed copy is
written to ``$NBVAL_CAPTURE_DIR/<path relative to the repo>``; ``python -m
lib.bookcache import`` then stores it in the book's execution cache.
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from pathlib import Path

import nbformat
from IPython.core.displayhook import DisplayHook

_outputs: dict[Path, dict[int, list]] = defaultdict(dict)
_failed: set[Path] = set()
_nbs: dict[Path, object] = {}


# Under pytest-xdist (make test, --dist loadfile --no-loadscope-reorder), each file runs whole
# in one process and the files are handed out in collection order, each to the first process
# with almost nothing left to do. Longest first (LPT) keeps the two processes busy to the end:
# these are the files that took over 25 s in a measured `make test` (seconds in one process,
# two processes sharing two cores), longest first; every other file follows, in collection order.
LONGEST_FIRST = (
    "book/05_four_lenses.ipynb",  # ~85 s
    "book/02_dimpled_manifold.ipynb",  # ~62 s
    "book/04_two_layer_subspace.ipynb",  # ~48 s
    "book/01_local_errors.ipynb",  # ~44 s
    "tests/test_sweep.py",  # ~35 s
    "book/03_som_codes.ipynb",  # ~33 s
    "tests/test_evidence.py",  # ~30 s
    "book/sweeps.ipynb",  # ~27 s
)


def pytest_collection_modifyitems(session, config, items):
    root = Path(str(config.rootpath)).resolve()

    def rank(item) -> int:
        path = Path(str(item.fspath)).resolve()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        return LONGEST_FIRST.index(rel) if rel in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: cells keep their order, other files theirs


def pytest_runtest_makereport(item, call):
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell_num"):
        return
    path = Path(str(item.parent.fspath)).resolve()
    _nbs[path] = item.parent.nb
    if call.excinfo is not None:  # failed or skipped: not a complete, clean execution
        _failed.add(path)
    _outputs[path][item.cell_num] = list(item.test_outputs or [])


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("NBVAL_CAPTURE_DIR")
    if not target:
        return
    root = Path(str(session.config.rootpath)).resolve()
    for path, cells in _outputs.items():
        if path in _failed:
            continue
        nb = copy.deepcopy(_nbs[path])
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        if len(cells) != len(code_cells):
            continue  # not every cell ran (deselected or skipped): not a complete execution
        for i, cell in enumerate(code_cells):
            outs = []
            # nbval executes with store_history=False, so IPython cannot see a trailing ';'
            # and publishes the value a notebook run would suppress: drop it, as Jupyter would.
            quiet = DisplayHook.semicolon_at_end_of_expression(cell.source)
            for o in cells[i]:
                o = nbformat.from_dict(dict(o))
                if o.output_type == "execute_result" and quiet:
                    continue
                if o.output_type == "execute_result":
                    o.setdefault("execution_count", i + 1)
                outs.append(o)
            cell.outputs = outs
            cell.execution_count = i + 1
        out = Path(target) / path.relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, out)
