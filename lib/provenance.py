"""Where a result came from: the code (git commit, hashes of ``lib/``, of the code a chapter executes,
of its notebook) and the machine.

``lib.sweep`` stores :func:`collect`'s dict as ``record["provenance"]`` with every point,
and compares :func:`code_sha256` and :func:`notebook_sha256` with a finished point's to
tell a result recorded with other code (stale) from a current one: only a change to code
the chapter executes counts, not comments, docstrings, layout or figures.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Set by lib.sweep in each point's kernel: the file where config.resolve writes the device it
# picked and torch's CPU thread count.
RUN_INFO_ENV = "BOOK_RUN_INFO"


def lib_sha256(root: str | Path = ROOT) -> str:
    """SHA-256 over every ``lib/**/*.py`` file under ``root``: relative path and bytes, in path order."""
    h = hashlib.sha256()
    lib = Path(root) / "lib"
    for path in sorted(lib.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


# Figure code draws what a run computed and never computes a claim: it makes no run stale. So does
# lib/pages.py, which lays out the ledger's tables in the pages (verdict boxes, the landing page's
# answer): a run records nothing it shows.
FIGURE_FILES = ("plots.py", "figures.py", "pages.py")


def normalised_source(source: str) -> str:
    """The code of a Python source as its syntax tree, without docstrings, comments or layout."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _module_file(root: Path, name: str) -> Path | None:
    """The file of module ``name`` (``lib.x.y``) under ``root``, or None when it is not there."""
    base = root.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _imported(tree: ast.AST, package: str) -> set[str]:
    """The modules an ``ast`` imports anywhere (functions included), ``from . import x`` as ``package.x`` too."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rsplit(".", 1)[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def _notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines dropped)."""
    nb = json.loads(path.read_text())
    cells = ["".join(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    keep = []
    for cell in cells:
        text = "\n".join(line for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            ast.parse(text)
        except SyntaxError:
            continue
        keep.append(text)
    return "\n".join(keep)


def code_files(notebook: str | Path, root: str | Path = ROOT) -> list[Path]:
    """The ``lib`` files a chapter's notebook executes: the modules it imports, theirs in turn, and their packages.

    Found by reading the code (imports inside functions count too). Figure code
    (:data:`FIGURE_FILES`) is left out, and so is what only it imports.
    """
    root = Path(root)
    todo = [(m, "") for m in _imported(ast.parse(_notebook_code(Path(notebook))), "")]
    seen: dict[str, Path] = {}
    while todo:
        name, _ = todo.pop()
        if not (name == "lib" or name.startswith("lib.")) or name in seen:
            continue
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing lib.a.b runs lib/__init__.py and lib/a/__init__.py
            todo.append((".".join(parts[:i]), ""))
        path = _module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        if path.name in FIGURE_FILES:
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        todo += [(m, "") for m in _imported(ast.parse(path.read_text()), package)]
    return sorted({p for p in seen.values() if p.name not in FIGURE_FILES})


def code_sha256(notebook: str | Path, root: str | Path = ROOT) -> str:
    """SHA-256 of the code a chapter's notebook executes in ``lib`` (:func:`code_files`), as syntax trees.

    Comments, docstrings, layout and figure code do not count, so a run goes stale only
    when code that computes it changed. The notebook's own cells are :func:`notebook_sha256`'s.
    """
    root = Path(root)
    h = hashlib.sha256()
    for path in code_files(notebook, root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(normalised_source(path.read_text()).encode() + b"\0")
    return h.hexdigest()


def notebook_sha256(path: str | Path) -> str:
    """SHA-256 of a notebook's cells (type and source), so clearing outputs or metadata changes nothing."""
    nb = json.loads(Path(path).read_text())
    cells = [[c.get("cell_type"), "".join(c.get("source", ""))] for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=True).encode()).hexdigest()


def git_commit(root: str | Path = ROOT) -> str | None:
    """The checked-out commit of ``root``, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def torch_version() -> str | None:
    """The installed torch version, read from its metadata (without importing torch)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


# Instruction sets that pick different kernels in torch's CPU libraries (MKL, oneDNN, ATen's
# vectorised code), and so different rounding: a run of the book's code recorded on one CPU
# gave other numbers, with the same torch and thread count, on a CPU with AVX-512 FP16 and AMX.
KERNEL_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
)


def cpu_id(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The processor, as far as it decides the rounding of CPU results: model name, family and model
    numbers, and which of :data:`KERNEL_FLAGS` it has; ``platform``'s description where there is no
    ``/proc/cpuinfo``."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()}".strip() or "unknown"
    first: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if first:
                break  # the first processor describes them all
            continue
        key, _, value = line.partition(":")
        first.setdefault(key.strip(), value.strip())
    flags = set((first.get("flags") or first.get("Features") or "").split())
    name = first.get("model name") or first.get("CPU part") or platform.processor() or platform.machine()
    ids = f"family {first['cpu family']} model {first['model']}" if "cpu family" in first and "model" in first else ""
    have = " ".join(f for f in KERNEL_FLAGS if f in flags)
    return "; ".join(part for part in (name, ids, have) if part)


def collect(
    notebook: str | Path, *, device: str | None, wall_s: float, threads: int | None = None, root: str | Path = ROOT
) -> dict[str, Any]:
    """The provenance of one run of ``notebook`` that took ``wall_s`` seconds on ``device`` with ``threads`` CPU threads."""
    return {
        "git_commit": git_commit(root),
        "lib_sha256": lib_sha256(root),
        "code_sha256": code_sha256(notebook, root),
        "notebook_sha256": notebook_sha256(notebook),
        "torch": torch_version(),
        "device": device,
        "threads": threads,
        "cpu": cpu_id(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "wall_s": round(wall_s, 3),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def stale(record: dict[str, Any], *, code: str, notebook: str) -> list[str]:
    """What differs between a record's provenance and the current code: ``"code"`` (what the chapter
    executes in ``lib``, :func:`code_sha256`), ``"notebook"``, or nothing."""
    prov = record.get("provenance") or {}
    return [name for name, current in (("notebook", notebook), ("code", code)) if prov.get(f"{name}_sha256") != current]
