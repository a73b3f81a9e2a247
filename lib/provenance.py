"""Where a result came from: the code (git commit, a hash of ``lib/``, the notebook) and the machine.

``lib.sweep`` stores :func:`collect`'s dict as ``record["provenance"]`` with every point,
and compares :func:`lib_sha256` and :func:`notebook_sha256` with a finished point's to
tell a result recorded with other code (stale) from a current one.
"""
from __future__ import annotations

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
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")


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


def collect(notebook: str | Path, *, device: str | None, wall_s: float, threads: int | None = None,
            root: str | Path = ROOT) -> dict[str, Any]:
    """The provenance of one run of ``notebook`` that took ``wall_s`` seconds on ``device`` with ``threads`` CPU threads."""
    return {"git_commit": git_commit(root), "lib_sha256": lib_sha256(root),
            "notebook_sha256": notebook_sha256(notebook), "torch": torch_version(), "device": device,
            "threads": threads, "cpu": cpu_id(),
            "python": platform.python_version(), "host": socket.gethostname(), "wall_s": round(wall_s, 3),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def stale(record: dict[str, Any], *, lib: str, notebook: str) -> list[str]:
    """What differs between a record's provenance and the current code: ``"lib"``, ``"notebook"`` or nothing."""
    prov = record.get("provenance") or {}
    return [name for name, current in (("notebook", notebook), ("lib", lib))
            if prov.get(f"{name}_sha256") != current]
