"""Fixtures shared by the test files."""

import pytest

from lib import data


@pytest.fixture
def mnist_here(tmp_path, monkeypatch):
    """MNIST's four files in BOOK_DATA_DIR (empty: resolve only looks at which files exist)."""
    (tmp_path / "mnist").mkdir()
    for name in data.IDX_FILES["mnist"]:
        (tmp_path / "mnist" / name).touch()
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path))
