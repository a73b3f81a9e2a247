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


# Under pytest-xdist (make test), each notebook runs whole in one process, in collection
# order: the longest chapter goes first, so it does not start when the other process is
# almost done, then the other notebooks, then the unit tests.
LONGEST_FIRST = ("05_four_lenses.ipynb",)


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> tuple[int, int]:
        path = Path(str(item.fspath))
        if path.name in LONGEST_FIRST:
            return 0, LONGEST_FIRST.index(path.name)
        return (1, 0) if path.suffix == ".ipynb" else (2, 0)
    items.sort(key=rank)  # stable: cells keep their order


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
