"""Per-chapter parameter specs and the experiment steps each chapter calls.

:data:`NOTEBOOKS` says which chapter module each book notebook runs: the module whose
``PARAMS`` the notebook hands to ``config.resolve`` and whose checks it registers with
``config.register`` under the same name. ``lib.sweep`` reads it to check a sweep's values,
and ``tests/test_parameters.py`` requires each notebook's ``parameters`` cell to be
:func:`parameters_cell` of its chapter. Importing this package imports no chapter (nor torch):
:func:`chapter` imports the one asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

# notebook file name (in book/) -> chapter name: the module lib.chapters.<name>
NOTEBOOKS: dict[str, str] = {
    "00_toolkit.ipynb": "toolkit",
    "01_local_errors.ipynb": "ch01",
    "02_dimpled_manifold.ipynb": "ch02",
    "03_som_codes.ipynb": "ch03",
    "04_two_layer_subspace.ipynb": "ch04",
    "05_four_lenses.ipynb": "ch05",
    "sweeps.ipynb": "sweeps",
}

# The first two lines of every chapter's parameters cell: the profile, from the environment by default.
PROFILE_LINES = ("import os", 'profile = os.environ.get("BOOK_PROFILE", "quick")')


def chapter_name(notebook: str | Path) -> str | None:
    """The chapter a notebook runs, by its file name (``"ch03"`` for ``book/03_som_codes.ipynb``), or None."""
    return NOTEBOOKS.get(Path(notebook).name)


def chapter(notebook: str | Path) -> ModuleType | None:
    """The chapter module a notebook runs (imported now), or None for a notebook outside the book's chapters."""
    name = chapter_name(notebook)
    return None if name is None else importlib.import_module(f"{__name__}.{name}")


def parameter_names(name: str) -> list[str]:
    """The names a chapter's parameters cell sets to None: its ``PARAMS`` in order, then ``config.COMMON``'s."""
    from .. import config

    spec = importlib.import_module(f"{__name__}.{name}").PARAMS
    return [*spec, *(n for n in config.COMMON if n not in spec)]


def parameters_cell(name: str) -> str:
    """The source of the ``parameters`` cell of chapter ``name`` (``"ch03"``), generated from its ``PARAMS``."""
    return "\n".join([*PROFILE_LINES, *(f"{n} = None" for n in parameter_names(name))])
