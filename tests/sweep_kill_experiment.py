"""Kill a sweep at random moments and count what ran: every point must execute exactly once in total.

Run from the repository root (it takes a few minutes; not part of the test suite)::

    python -m tests.sweep_kill_experiment --kills 10 --workers 2          # local worker processes
    python -m tests.sweep_kill_experiment --kills 10 --workers 2 --dask   # a Dask LocalCluster

A tiny notebook written here logs ``start``, a heartbeat every 0.1 s and ``end`` for
every execution. The sweep (``python -m lib.sweep``) is SIGKILLed at random moments
and started again each time, then run once to completion. Counted: executions started,
executions finished (``end`` lines) per point, pairs of executions of one point that
overlapped in time, processes of the killed sweep still alive 3 s after each kill and
how long the last of them took to exit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = """\
import os, time
from lib import results
def line(kind):
    with open(log, "a") as f:
        f.write(f"{kind} {x} {os.getpid()} {time.time():.3f}\\n")
line("start")
for _ in range(int(duration / 0.1)):
    time.sleep(0.1)
    line("beat")
line("end")
results.record(y=x)
"""


def write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell('x = 0\nlog = ""\nduration = 1.5', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY),
    ]
    path = folder / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def tagged(tag: str) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose environment carries ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = next((ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("State")), "")
                if "zombie" not in state:
                    found.append((int(entry.name), cmd.strip()))
        except OSError:
            continue
    return found


def survivors(tag: str, ctag: str | None) -> tuple[list[tuple[int, str]], float]:
    """The killed sweep's processes alive 3 s after the kill, and when the last was gone (30 s at most)."""

    def alive() -> list[tuple[int, str]]:
        found = tagged(tag.split("=")[1])
        if ctag is not None:  # the cluster's own processes stay; its kernels must not
            found += [p for p in tagged(ctag.split("=")[1]) if "ipykernel" in p[1]]
        return found

    start = time.time()
    at_3s, gone = None, None
    while time.time() - start < 30:
        now = alive()
        if at_3s is None and time.time() - start >= 3:
            at_3s = now
        if not now and gone is None:
            gone = time.time() - start
        if at_3s is not None and gone is not None:
            break
        time.sleep(0.1)
    return at_3s or [], gone if gone is not None else float("inf")


def executions(log: Path) -> dict[tuple[int, int], dict]:
    """Per (point x, kernel pid): first and last time seen, and whether it ended."""
    runs: dict[tuple[int, int], dict] = {}
    for ln in log.read_text().splitlines() if log.exists() else []:
        kind, x, pid, t = ln.split()
        r = runs.setdefault((int(x), int(pid)), {"first": float(t), "last": float(t), "ended": False})
        r["last"] = float(t)
        r["ended"] |= kind == "end"
    return runs


def overlaps(runs: dict[tuple[int, int], dict]) -> int:
    by_point = collections.defaultdict(list)
    for (x, _), r in runs.items():
        by_point[x].append((r["first"], r["last"]))
    n = 0
    for spans in by_point.values():
        spans.sort()
        n += sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--dask", action="store_true", help="run the points on a Dask LocalCluster")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=1.5, help="seconds each execution of the notebook takes")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        help="each kill comes uniformly between 2 s and this many seconds after the start",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="sweep-kill-"))
    notebook, log = write_notebook(folder), folder / "runs.log"
    spec = folder / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "notebook": str(notebook),
                "output": str(folder / "out"),
                "parameters": {"log": str(log), "duration": args.duration},
                "grid": {"x": list(range(args.points))},
            }
        )
    )
    tag = f"SWEEP_KILL_TAG={uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), tag.split("=")[0]: tag.split("=")[1]}
    command = [sys.executable, "-m", "lib.sweep", str(spec)]
    cluster, ctag = None, None
    if args.dask:
        ctag = f"SWEEP_KILL_CLUSTER={uuid.uuid4().hex}"
        code = (
            "import time; from distributed import LocalCluster; "
            f"c = LocalCluster(n_workers={args.workers}, threads_per_worker=1, processes=True, "
            "dashboard_address=None); print(c.scheduler_address, flush=True); time.sleep(10**6)"
        )
        cluster = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), ctag.split("=")[0]: ctag.split("=")[1]},
            cwd=ROOT,
        )
        command += ["--scheduler", cluster.stdout.readline().strip()]
    else:
        command += ["--workers", str(args.workers)]
    leftovers, kernels_left, vanish = [], [], []
    try:
        for k in range(args.kills):
            sweep = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            waited = rng.uniform(2.0, args.max_wait)
            time.sleep(waited)
            if sweep.poll() is not None:
                print(f"kill {k + 1}: the sweep had already finished", flush=True)
                continue
            sweep.send_signal(signal.SIGKILL)
            sweep.wait()
            alive, gone_after = survivors(tag, ctag if cluster is not None else None)
            leftovers.append(len(alive))
            kernels_left += alive
            vanish.append(gone_after)
            print(
                f"kill {k + 1} after {waited:.1f} s: processes left 3 s later {len(alive)}, "
                f"all gone {gone_after:.1f} s after the kill",
                flush=True,
            )
        final = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        print(final.stdout.strip())
    finally:
        if cluster is not None:
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(30)
    runs = executions(log)
    ended = collections.Counter(x for (x, _), r in runs.items() if r["ended"])
    started = collections.Counter(x for (x, _) in runs)
    table = json.loads((folder / "out" / "sweep.json").read_text())
    records = [json.loads(p.read_text()) for p in (folder / "out" / "points").glob("*.json")]
    report = {
        "mode": "dask LocalCluster" if args.dask else f"{args.workers} local workers",
        "kills": args.kills,
        "points": args.points,
        "executions_started": sum(started.values()),
        "executions_finished": sum(ended.values()),
        "finished_per_point": [ended.get(x, 0) for x in range(args.points)],
        "overlapping_executions_of_one_point": overlaps(runs),
        "processes_left_3s_after_kills": sum(leftovers),
        "slowest_exit_after_a_kill_s": round(max(vanish, default=0.0), 1),
        "records_done": sum(r["status"] == "done" for r in records),
        "points_in_spec": len(table["points"]),
    }
    print(json.dumps(report, indent=1))
    if kernels_left:
        print("left:", kernels_left[:5])
    ok = (
        report["finished_per_point"] == [1] * args.points
        and report["overlapping_executions_of_one_point"] == 0
        and report["slowest_exit_after_a_kill_s"] < 30
        and report["records_done"] == args.points
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
