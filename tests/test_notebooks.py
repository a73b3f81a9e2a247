"""The book's notebooks as committed: valid nbformat 4.5 (every cell has an id) and never executed."""

from __future__ import annotations

import warnings
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def test_the_book_has_notebooks():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_valid_and_clean(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cell without an id warns (MissingIDFieldWarning) and will fail
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    ids = [c.get("id") for c in nb.cells]
    assert all(ids), f"cells without an id: {[i for i, c in enumerate(ids) if not c]}"
    assert len(set(ids)) == len(ids), "cell ids repeat"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [i for i, c in enumerate(code) if c.outputs or c.execution_count], "executed cells are committed"
