"""Parameters declared once: each chapter notebook's ``parameters`` cell is the one generated from its PARAMS."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lib import chapters, config
from lib.chapters import NOTEBOOKS, parameter_names, parameters_cell
from lib.chapters.__main__ import main

BOOK = Path(__file__).resolve().parent.parent / "book"


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def parameters_source(path: Path) -> str:
    cells = [c for c in code_cells(path) if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters', not one"
    return "".join(cells[0]["source"])


def differences(source: str, name: str) -> str:
    """What keeps ``source`` from being chapter ``name``'s generated parameters cell ('' if nothing)."""
    want = parameters_cell(name)
    if source == want:
        return ""
    lines = source.splitlines()
    assigned = [m.group(1) for m in (re.match(r"(\w+) = None$", line) for line in lines[2:]) if m]
    expected = parameter_names(name)
    missing = [n for n in expected if n not in assigned]
    extra = [n for n in assigned if n not in expected]
    what = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"not parameters of {name}: {', '.join(extra)}"] if extra else []
    )
    if not what:
        what = [
            "the names are in another order than PARAMS (then seed, device)"
            if assigned != expected
            else "other lines than the generated ones"
        ]
    return (
        f"the parameters cell differs from the one generated from {name}.PARAMS: {'; '.join(what)}. "
        f"Paste the output of `python -m lib.chapters parameters-cell {name}`"
    )


def test_every_notebook_that_resolves_a_chapter_is_mapped_to_it():
    resolved = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in code_cells(path))
        found = set(re.findall(r"config\.resolve\((\w+)\.PARAMS", source))
        assert len(found) <= 1, f"{path.name} resolves several chapters: {found}"
        if found:
            resolved[path.name] = found.pop()
    assert resolved == NOTEBOOKS


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_parameters_cell_is_generated_from_params(notebook):
    assert not (problem := differences(parameters_source(BOOK / notebook), NOTEBOOKS[notebook])), problem


def test_a_drifted_parameters_cell_fails_naming_the_names():
    lines = parameters_cell("ch03").splitlines()
    drifted = "\n".join(line for line in lines if not line.startswith(("lr_schedule", "lr_drops"))) + "\nepoch = None"
    assert re.search(
        r"missing lr_schedule, lr_drops; not parameters of ch03: epoch\. Paste the output of "
        r"`python -m lib\.chapters parameters-cell ch03`",
        differences(drifted, "ch03"),
    )
    swapped = "\n".join([*lines[:2], lines[3], lines[2], *lines[4:]])
    assert "in another order" in differences(swapped, "ch03")
    assert "other lines" in differences(parameters_cell("ch03") + "\n", "ch03")
    assert differences(parameters_cell("ch03"), "ch03") == ""


def test_the_generated_cell_sets_the_profile_then_params_then_common():
    cell = parameters_cell("toolkit").splitlines()
    assert cell[:2] == ["import os", 'profile = os.environ.get("BOOK_PROFILE", "quick")']
    toolkit = importlib.import_module("lib.chapters.toolkit")
    assert cell[2:] == [f"{n} = None" for n in (*toolkit.PARAMS, *config.COMMON)]


def test_the_command_prints_the_cell(capsys):
    assert main(["parameters-cell", "ch03"]) == 0
    assert capsys.readouterr().out == parameters_cell("ch03") + "\n"
    assert main(["parameters-cell", "book/04_two_layer_subspace.ipynb"]) == 0
    assert capsys.readouterr().out == parameters_cell("ch04") + "\n"
    with pytest.raises(SystemExit):
        main(["parameters-cell", "ch9"])
    assert "'ch9' is no chapter nor a chapter's notebook" in capsys.readouterr().err


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_a_chapter_is_found_by_its_notebook_and_its_checks_by_its_name(notebook):
    name = NOTEBOOKS[notebook]
    module = chapters.chapter(BOOK / notebook)
    assert module is importlib.import_module(f"lib.chapters.{name}") and chapters.chapter_name(notebook) == name
    if hasattr(module, "check"):  # registered under the chapter's name, with the chapter's own PARAMS object
        spec, checks = config._CHECKS_OF[name]
        assert spec is module.PARAMS and module.check in checks.hooks
    assert [n for n, (spec, _) in config._CHECKS_OF.items() if spec is module.PARAMS] in ([], [name])


def test_a_notebook_outside_the_chapters_has_none():
    assert chapters.chapter("my_study.ipynb") is None and chapters.chapter(BOOK / "evidence.ipynb") is None


def test_importing_the_mapping_imports_no_chapter():
    code = (
        "import sys, lib.chapters as c; c.chapter_name('book/03_som_codes.ipynb'); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('lib.chapters.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=BOOK.parent
    ).stdout
    assert out.strip() == "[]"
