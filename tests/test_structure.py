"""The shape of the code: no import cycle in lib, chapter kernels without the book machinery, small files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"
CHAPTERS = ("toolkit", "ch01", "ch02", "ch03", "ch04", "ch05")
MACHINERY = ("lib.sweep", "lib.evidence", "lib.bookcache")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The lib modules ``path`` imports at module level (imports inside functions are lazy, not edges)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for a in node.names:  # `from . import x` imports the module x, not only its package
                out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target)
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(LIB.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): module_imports(f, modules) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle (as a path that returns to its start), found by depth-first search."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_lib_has_no_import_cycle():
    graph = import_graph()
    assert "lib.claims" in graph and "lib.verdicts" in graph["lib.claims"]  # the graph sees relative imports
    assert cycles(graph) == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_kernel_loads_no_book_machinery(chapter):
    code = f"import sys, lib.chapters.{chapter}; print(sorted(m for m in sys.modules if m in {MACHINERY!r}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=LIB.parent
    ).stdout.strip()
    assert loaded == "[]", f"lib.chapters.{chapter} loads {loaded}"


def test_no_chapter_imports_another_chapter():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("lib.chapters.ch"):
            own = ".".join(name.split(".")[:3])
            others = sorted(d for d in deps if d.startswith("lib.chapters.ch") and not d.startswith(own))
            assert not others, f"{name} imports {others}"


def test_no_module_uses_another_modules_private_names():
    found = []
    for path in sorted(LIB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found += [
                    f"{path.name}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in {module_name(p).rsplit(".", 1)[-1] for p in LIB.rglob("*.py")}
            ):
                found.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not found, found


def test_chapter_files_stay_small():
    big = {
        str(p.relative_to(LIB)): n
        for p in (LIB / "chapters").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert not big, f"chapter files over 450 lines: {big}"
