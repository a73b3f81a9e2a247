"""lib.sweep on a tiny notebook the tests write: grids, workers, Dask, resuming, failures, validation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from lib import config, locks, provenance, sweep
from lib.chapters import sweeps

PARAMETERS = 'a = 1\nb = 0.5\nlog = ""\n'
BODY = """\
import os
import lib
from lib import results
if log:
    with open(log, "a") as f:
        f.write(f"{a} {b}\\n")
if a < 0:
    raise ValueError(f"a must be >= 0, got {a}")
results.record(total=a + b, product=a * b, cwd=os.getcwd(), lib_dir=os.path.dirname(lib.__file__))
"""


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY),
    ]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def spec(notebook: Path, **extra) -> dict:
    log = notebook.parent / "runs.log"
    return {
        "notebook": str(notebook),
        "output": str(notebook.parent / "out"),
        "parameters": {"log": str(log)},
        "grid": {"a": [1, 2], "b": [0.5, 3]},
        **extra,
    }


def runs(notebook: Path) -> list[str]:
    """One line per execution of the notebook (it appends to this file)."""
    log = notebook.parent / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def check_grid_table(table: pd.DataFrame) -> None:
    assert len(table) == 4 and table.point.is_unique
    assert (table.status == "done").all()
    assert sorted(zip(table.a, table.b)) == [(1, 0.5), (1, 3.0), (2, 0.5), (2, 3.0)]
    assert (table.total == table.a + table.b).all() and (table["product"] == table.a * table.b).all()


def test_grid_with_two_local_workers(notebook):
    summary = sweep.run(spec(notebook), workers=2, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (4, 0, 0)
    check_grid_table(summary.table)
    out = notebook.parent / "out"
    # The same table in both formats on disk, and one executed notebook per point.
    check_grid_table(sweep.load(out))
    check_grid_table(pd.read_csv(out / "results.csv"))
    assert sorted(p.stem for p in (out / "points").glob("*.ipynb")) == sorted(summary.table.point)
    assert len(runs(notebook)) == 4
    # Each kernel ran in the notebook's folder and imported this checkout's lib.
    assert set(summary.table.cwd) == {str(notebook.parent)}
    assert set(summary.table.lib_dir) == {str(sweep.ROOT / "lib")}


def test_grid_on_a_dask_local_cluster(notebook):
    distributed = pytest.importorskip("distributed")
    # A point run first in this thread leaves jupyter_core's event loop in its context, which
    # the cluster's threads inherit: points must still not share that loop.
    first = sweep.run(
        spec(notebook, output=str(notebook.parent / "first"), grid={"a": [1], "b": [0.5]}), progress=False
    )
    assert first.done == 1
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        summary = sweep.run(spec(notebook), client=client, progress=False)
    assert (summary.done, summary.failed) == (4, 0)
    check_grid_table(summary.table)


def test_interrupted_sweep_resumes_without_redoing_finished_points(notebook):
    class Interrupt(Exception):
        pass

    def stop(record):
        raise Interrupt

    with pytest.raises(Interrupt):
        sweep.run(spec(notebook), progress=False, on_point=stop)
    out = notebook.parent / "out"
    first = sweep.load(out)
    assert len(first) == 1 and len(runs(notebook)) == 1
    first_record = out / "points" / f"{first.point[0]}.json"
    stamp = first_record.stat().st_mtime_ns
    # A half-written notebook of a point that was killed mid-run must not count as finished.
    (out / "points" / ".deadbeef.partial.ipynb").write_text("{")

    summary = sweep.run(spec(notebook), progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (3, 1, 0)
    check_grid_table(summary.table)
    check_grid_table(sweep.load(out))
    assert len(runs(notebook)) == 4  # the finished point ran once
    assert first_record.stat().st_mtime_ns == stamp

    again = sweep.run(spec(notebook), progress=False)
    assert (again.done, again.skipped) == (0, 4) and len(runs(notebook)) == 4


def test_resume_runs_again_a_point_whose_executed_notebook_is_damaged_or_missing(notebook):
    first = sweep.run(spec(notebook), progress=False)
    assert first.done == 4 and len(runs(notebook)) == 4
    points = notebook.parent / "out" / "points"
    cut, gone, edited, *_ = first.table.point.tolist()
    nb = points / f"{cut}.ipynb"
    nb.write_text(nb.read_text()[: len(nb.read_text()) // 2])  # cut in half
    (points / f"{gone}.ipynb").unlink()
    nb = points / f"{edited}.ipynb"
    nb.write_text(nb.read_text().replace('"a = 1', '"a = 1 ') if '"a = 1' in nb.read_text() else nb.read_text() + " ")
    again = sweep.run(spec(notebook), progress=False)
    assert (again.done, again.skipped) == (3, 1) and len(runs(notebook)) == 7
    assert dict(again.damaged) == {
        cut: "its executed notebook differs from the one it recorded",
        gone: "its executed notebook is missing",
        edited: "its executed notebook differs from the one it recorded",
    }
    assert f"run again {gone}: finished before, but its executed notebook is missing" in str(again)
    record = json.loads((points / f"{cut}.json").read_text())
    assert record["executed_sha256"] == sweep._file_sha256(points / f"{cut}.ipynb")
    assert sweep.run(spec(notebook), progress=False).skipped == 4


def test_ctrl_c_stops_the_running_points_keeps_the_finished_ones_and_says_how_to_resume(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("a = 1\nwait = 0.0\n", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\nfrom lib import results\ntime.sleep(wait)\nresults.record(a=a)\n"),
    ]
    nbformat.write(nb, str(tmp_path / "slow.ipynb"))
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "notebook": str(tmp_path / "slow.ipynb"),
                "output": str(tmp_path / "out"),
                "points": [{"a": 1}, {"a": 2, "wait": 120.0}, {"a": 3, "wait": 120.0}],
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib.sweep", str(path), "--workers", "2"],
        cwd=sweep.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    points = tmp_path / "out" / "points"
    deadline = time.time() + 120

    def finished() -> list[Path]:
        return [p for p in points.glob("*.json") if not p.name.startswith(".")]

    while time.time() < deadline and not (finished() and len(list(points.glob(".*.partial.ipynb"))) == 2):
        time.sleep(0.2)
    time.sleep(2.0)  # the slow points' kernels are executing their cells
    assert len(list(points.glob(".*.partial.ipynb"))) == 2, "two slow points should be running"
    stopped = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # show where it hangs (faulthandler), then stop it all
        os.kill(proc.pid, signal.SIGABRT)
        out, err = proc.communicate()
        os.killpg(proc.pid, signal.SIGKILL)
    assert time.time() - stopped < 30 and proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted: 1 of 3 points" in err and "Run the same command again to resume" in err
    assert len(finished()) == 1
    resumed = sweep.run(
        sweep.load_spec(path).__class__.from_dict(
            {**yaml.safe_load(path.read_text()), "points": [{"a": 1}, {"a": 2}, {"a": 3}]}
        ),
        progress=False,
    )
    assert resumed.skipped == 1 and resumed.done == 2


def test_failing_point_is_recorded_and_others_finish(notebook):
    summary = sweep.run(spec(notebook, grid={"a": [-1, 3]}), progress=False)
    assert (summary.done, summary.failed) == (1, 1)
    table = summary.table.set_index("a")
    assert table.loc[-1, "status"] == "failed" and "a must be >= 0, got -1" in table.loc[-1, "error"]
    assert table.loc[3, "status"] == "done" and table.loc[3, "total"] == 3.5
    record = json.loads((notebook.parent / "out" / "points" / f"{table.loc[-1, 'point']}.json").read_text())
    assert record["status"] == "failed" and "ValueError" in record["error"]
    # A re-run retries the failed point only.
    summary = sweep.run(spec(notebook, grid={"a": [-1, 3]}), progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (0, 1, 1)


@pytest.mark.parametrize(
    "change, culprit",
    [
        ({"grid": {"c": [1, 2]}}, "'c'"),  # not in the parameters cell
        ({"points": [{"a": 1, "zz": 2}]}, "'zz'"),
        ({"grid": {"a": ["one", 2]}}, "'a'"),  # default is an int
        ({"grid": {"b": [True]}}, "'b'"),
        ({"grid": {"a": []}}, "'a'"),  # empty axis
        ({"grid": {}}, "grid is empty"),
        ({"seeds": [0, 1]}, "'seed'"),  # the notebook has no seed
        ({"notebook": "missing.ipynb"}, "missing.ipynb"),
        ({"kernell": "python3"}, "'kernell'"),
    ],
)
def test_bad_spec_fails_before_any_point_runs(notebook, change, culprit):
    with pytest.raises(sweep.SpecError, match=culprit):
        sweep.run({**spec(notebook), **change}, progress=False)
    assert runs(notebook) == [] and not (notebook.parent / "out").exists()


def test_chapter_spec_checks_types_and_ranges_without_running(notebook):
    """For a chapter, values are checked with its lib.config PARAMS (lib.chapters.NOTEBOOKS names the chapter)."""
    book = Path(sweep.ROOT) / "book" / "00_toolkit.ipynb"
    assert {"epochs", "widths", "seed", "device"} <= set(sweep.chapter_params(book))
    assert sweep.chapter_spec(Path(sweep.ROOT) / "book" / "sweeps.ipynb") is sweeps.PARAMS
    assert sweep.chapter_spec(notebook) is None and sweep.chapter_params(notebook) is None  # no chapter's
    base = {"notebook": str(book), "output": "unused"}
    for grid, culprit in (
        ({"epochs": ["ten"]}, "'epochs' must be int"),
        ({"widths": [[0]]}, "'widths' must be > 0"),
        ({"dataset": ["cifar"]}, "'dataset'"),
    ):
        with pytest.raises(sweep.SpecError, match=culprit):
            sweep.validate(sweep.Spec.from_dict({**base, "grid": grid}))
    points = sweep.validate(sweep.Spec.from_dict({**base, "grid": {"lr": [1, 1.0]}, "seeds": 2}))
    # 1 and 1.0 are the same float learning rate: one point per seed, the profile pinned.
    assert [p.parameters for p in points] == [
        {"profile": "quick", "lr": 1.0, "seed": 0},
        {"profile": "quick", "lr": 1.0, "seed": 1},
    ]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old")

    def half_then_crash(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        sweep.atomic_write(target, half_then_crash)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_point_id_is_a_stable_hash_of_the_parameters():
    assert sweep.point_id("x.ipynb", {"a": 1, "b": [2, 3]}) == sweep.point_id("dir/x.ipynb", {"b": [2, 3], "a": 1})
    assert sweep.point_id("x.ipynb", {"a": 1}) != sweep.point_id("x.ipynb", {"a": 2})
    assert sweep.point_id("x.ipynb", {"a": 1}) != sweep.point_id("y.ipynb", {"a": 1})


def test_worker_envs_give_one_gpu_each(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    envs = sweep.worker_envs(3)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "5", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert all("CUDA_VISIBLE_DEVICES" not in e for e in sweep.worker_envs(2))


def test_plot_draws_finished_points():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame(
        {
            "point": list("abcd"),
            "status": ["done", "done", "done", "failed"],
            "x": [1, 1, 2, 2],
            "seed": [0, 1, 0, 0],
            "y": [0.5, 0.7, 0.9, None],
        }
    )
    ax = sweep.plot(table, "x", "y", xlabel="x (units)")
    assert ax.get_xlabel() == "x (units)" and ax.get_ylabel() == "y"
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == pytest.approx([0.6, 0.9])


# ------------------------------------------------------------------ reliability


def test_records_carry_provenance_and_a_changed_notebook_is_stale(notebook):
    first = sweep.run(spec(notebook, grid={"a": [1, 2]}), progress=False)
    record = json.loads((notebook.parent / "out" / "points" / f"{first.table.point[0]}.json").read_text())
    prov = record["provenance"]
    assert set(prov) == {
        "git_commit",
        "lib_sha256",
        "code_sha256",
        "notebook_sha256",
        "torch",
        "device",
        "threads",
        "cpu",
        "python",
        "host",
        "wall_s",
        "date",
    }
    assert prov["lib_sha256"] == provenance.lib_sha256() and prov["notebook_sha256"] == provenance.notebook_sha256(
        notebook
    )
    assert prov["code_sha256"] == provenance.code_sha256(notebook)
    # The same name, other code: the old results are reported as stale, kept, then redone on request.
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("total=a + b", "total=a + b + 100")
    nbformat.write(nb, str(notebook))
    kept = sweep.run(spec(notebook, grid={"a": [1, 2]}), progress=False)
    assert (kept.done, kept.skipped) == (0, 2) and len(kept.stale) == 2 and kept.stale[0][1] == ["notebook"]
    assert "--rerun-stale" in str(kept) and list(kept.table.total) == [1.5, 2.5]
    redone = sweep.run(spec(notebook, grid={"a": [1, 2]}), progress=False, rerun_stale=True)
    assert (redone.done, redone.skipped) == (2, 0) and list(redone.table.total) == [101.5, 102.5]
    assert sweep.run(spec(notebook, grid={"a": [1, 2]}), progress=False).stale == []


def test_stale_code_is_detected(notebook, tmp_path):
    record = {"provenance": {"code_sha256": "0" * 64, "notebook_sha256": provenance.notebook_sha256(notebook)}}
    assert provenance.stale(
        record, code=provenance.code_sha256(notebook), notebook=provenance.notebook_sha256(notebook)
    ) == ["code"]
    # Clearing outputs or metadata does not change a notebook's hash; its code does.
    nb = nbformat.read(str(notebook), as_version=4)
    nb.metadata["foo"] = 1
    nbformat.write(nb, str(tmp_path / "copy.ipynb"))
    assert provenance.notebook_sha256(tmp_path / "copy.ipynb") == provenance.notebook_sha256(notebook)


def test_default_null_and_omitted_values_are_one_point(notebook):
    book = Path(sweep.ROOT) / "book" / "00_toolkit.ipynb"
    planned = sweep.plan(
        sweep.Spec.from_dict(
            {"notebook": str(book), "output": "unused", "points": [{"epochs": 15}, {"epochs": None}, {"lr": 0.001}]}
        )
    )
    assert len(planned.points) == 1 and len(planned.duplicates) == 2
    assert planned.points[0].resolved["epochs"] == 15
    assert {pid for _, pid in planned.duplicates} == {planned.points[0].id}
    # A notebook without a chapter spec: the literal default stands for an omitted value.
    tiny = sweep.plan(sweep.Spec.from_dict({**spec(notebook), "grid": {"a": [1, 2]}, "points": [{"b": 0.5}]}))
    assert len(tiny.points) == 2 and len(tiny.duplicates) == 1


def test_the_whole_split_and_all_are_one_point_and_more_is_refused():
    book = Path(sweep.ROOT) / "book" / "03_som_codes.ipynb"
    planned = sweep.plan(
        sweep.Spec.from_dict(
            {"notebook": str(book), "output": "unused", "points": [{"n_test": 0}, {"n_test": 450}, {"n_test": None}]}
        )
    )
    assert len(planned.points) == 1 and len(planned.duplicates) == 2
    with pytest.raises(sweep.SpecError, match=r"'n_test' is 100000 but the test set of digits has 450 points"):
        sweep.plan(sweep.Spec.from_dict({"notebook": str(book), "output": "unused", "points": [{"n_test": 100000}]}))


@pytest.mark.parametrize(
    "path",
    sorted(Path(sweep.ROOT).glob("sweeps/*.yaml")) + sorted(Path(sweep.ROOT).glob("sweeps/evidence/*.yaml")),
    ids=lambda p: p.name,
)
def test_every_example_and_evidence_spec_passes_its_dry_run(path, capsys):
    assert sweep.main([str(path), "--dry-run"]) == 0, capsys.readouterr().err


def test_dry_run_reports_merged_duplicates(notebook, capsys):
    path = notebook.parent / "spec.yaml"
    path.write_text(yaml.safe_dump({**spec(notebook), "grid": {"a": [1, 1, 2]}}))
    assert sweep.main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 points" in out and "1 parameter set(s) resolve to a point already in the sweep" in out


@pytest.mark.parametrize(
    "notebook_name, grid, culprit",
    [
        ("04_two_layer_subspace.ipynb", {"k": [64]}, "'k' must be < d"),  # ch04.validate
        ("01_local_errors.ipynb", {"n_train": [3]}, "'n_train' gives a train set of 3 points"),  # minimum size
        ("03_som_codes.ipynb", {"n_attack": [100000]}, "'n_attack' is 100000 but the test set"),
    ],
)
def test_dry_run_runs_the_chapters_cross_parameter_and_size_checks(tmp_path, capsys, notebook_name, grid, culprit):
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {"notebook": str(Path(sweep.ROOT) / "book" / notebook_name), "output": str(tmp_path / "out"), "grid": grid}
        )
    )
    assert sweep.main([str(path), "--dry-run"]) == 2
    assert culprit in capsys.readouterr().err


def test_point_lock_is_held_by_a_live_process_and_freed_by_its_death(tmp_path):
    lock = tmp_path / "p.lock"
    code = (
        "import sys, time; from lib import locks; h = locks.claim(sys.argv[1]); "
        "print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(lock)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(sweep.ROOT)},
    )
    try:
        assert child.stdout.readline().strip() == "held"
        assert locks.held(lock) and locks.claim(lock) is None
        assert locks.holder(lock)["pid"] == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not locks.held(lock)
    mine = locks.claim(lock)  # taken over from the dead owner
    assert mine is not None and locks.holder(lock)["pid"] == os.getpid()
    assert locks.claim(lock) is None  # one holder at a time, also within a process
    mine.release()
    assert not lock.exists()


def test_point_waits_for_a_live_holder_and_reuses_its_result(notebook):
    """A sweep reaching a point that another process is running waits for it instead of running it too."""
    s = sweep.Spec.from_dict(spec(notebook, grid={"a": [7]}))
    point = sweep.validate(s)[0]
    points = notebook.parent / "out" / "points"
    points.mkdir(parents=True)
    other = locks.claim(points / f"{point.id}.lock")  # the other process's claim
    done = {}
    runner = threading.Thread(target=lambda: done.update(summary=sweep.run(s, progress=False)))
    runner.start()
    time.sleep(4 * sweep.POLL_S)
    assert runner.is_alive() and runs(notebook) == []  # waiting, not running
    # The other process finishes the point with the current code, then lets go.
    prov = {"code_sha256": provenance.code_sha256(notebook), "notebook_sha256": provenance.notebook_sha256(notebook)}
    (points / f"{point.id}.ipynb").write_bytes(notebook.read_bytes())  # its executed notebook, intact
    (points / f"{point.id}.json").write_text(
        json.dumps(
            {
                "point": point.id,
                "parameters": point.parameters,
                "status": "done",
                "error": None,
                "results": {"total": 7.5},
                "seconds": 1.0,
                "provenance": prov,
                "executed_sha256": sweep._file_sha256(points / f"{point.id}.ipynb"),
            }
        )
    )
    other.release()
    runner.join(60)
    summary = done["summary"]
    assert (summary.done, summary.skipped, summary.failed) == (0, 1, 0) and runs(notebook) == []
    assert list(summary.table.total) == [7.5]


def test_owner_gone_means_the_point_is_not_run(notebook, tmp_path):
    task = {
        "id": "x" * 16,
        "parameters": {"a": 1},
        "notebook": str(notebook),
        "notebook_name": notebook.name,
        "output": str(tmp_path),
        "kernel": "python3",
        "root": str(sweep.ROOT),
        "owner": str(tmp_path / "gone.lock"),
    }
    (tmp_path / "points").mkdir()
    assert sweep.run_point(task)["status"] == "abandoned"
    assert runs(notebook) == [] and not (tmp_path / "points" / f"{task['id']}.json").exists()


def test_stale_temporary_files_of_dead_processes_are_removed(notebook):
    out = notebook.parent / "out"
    (out / "points").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = locks.HOST.split(".")[0]
    leftovers = [
        out / f".results.csv.{dead_pid}.tmp",
        out / f".results.parquet.{host}-{dead_pid}.tmp",
        out / "points" / f".abc.json.{host}-{dead_pid}.tmp",
    ]
    live = out / f".results.csv.{host}-{os.getppid()}.tmp"  # its writer (pytest's parent) is alive
    for p in (*leftovers, live):
        p.write_text("half")
    sweep.run(spec(notebook, grid={"a": [1]}), progress=False)
    assert not any(p.exists() for p in leftovers) and live.exists()


def test_unusable_output_and_unreachable_scheduler_give_one_error_line(notebook, capsys, monkeypatch):
    blocker = notebook.parent / "a-file"
    blocker.write_text("")
    path = notebook.parent / "spec.yaml"
    path.write_text(yaml.safe_dump({**spec(notebook), "output": str(blocker)}))
    assert sweep.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: the output folder") and "Traceback" not in err
    pytest.importorskip("distributed")
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", "1s")
    path.write_text(yaml.safe_dump(spec(notebook)))
    assert sweep.main([str(path), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("sweep: error: cannot reach the Dask scheduler 'tcp://127.0.0.1:9'") and "Traceback" not in err
    )


def test_summary_check_names_failed_points(notebook):
    summary = sweep.run(spec(notebook, grid={"a": [-1, 3]}), progress=False)
    with pytest.raises(sweep.SweepError, match=r"(?s)1 of 2 points .* failed.*a must be >= 0, got -1"):
        summary.check()
    assert sweep.run(spec(notebook, grid={"a": [3]}), progress=False).check().done == 0


def test_sweeps_page_passes_its_device_to_the_points():
    cfg = config.resolve(sweeps.PARAMS, device="cpu")
    assert sweeps.example_spec(cfg, "out")["parameters"]["device"] == "cpu"


def test_dry_run_refuses_a_point_whose_dataset_cannot_be_had(tmp_path, capsys, monkeypatch):
    from lib import data

    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")  # no data/mnist, no system copy, offline
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "_host_resolves", lambda host: False)
    monkeypatch.delenv("BOOK_DATA_DIR", raising=False)
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "notebook": str(Path(sweep.ROOT) / "book" / "03_som_codes.ipynb"),
                "output": str(tmp_path / "out"),
                "grid": {"dataset": ["digits", "mnist"]},
            }
        )
    )
    assert sweep.main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "sweep: error: parameter 'dataset' is 'mnist', but mnist is not on this machine and cannot be downloaded"
    )
    assert f"\n  {tmp_path / 'system' / 'mnist'}\n" in err and "dataset='mnist')" in err
    assert not (tmp_path / "out").exists()


def test_figures_first_seed_draws_figures_in_the_first_seeds_runs_only(tmp_path):
    """``figures: first-seed``: the run with the spec's first seed shows its figure; the others run
    with Agg and show none, and record the same numbers."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    body = (
        "import matplotlib\nimport matplotlib.pyplot as plt\nfrom lib import results\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2], [seed, 1])\nplt.show()\n"
        "results.record(backend=matplotlib.get_backend(), value=seed % 2)\n"
    )
    nb.cells = [
        nbformat.v4.new_code_cell("seed = 0\n", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    path = tmp_path / "fig.ipynb"
    nbformat.write(nb, str(path))
    base = {"notebook": str(path), "output": str(tmp_path / "out"), "seeds": [3, 5]}
    with pytest.raises(sweep.SpecError, match="'figures' is 'some'; allowed values: 'every-seed', 'first-seed'"):
        sweep.run({**base, "figures": "some"}, progress=False)
    summary = sweep.run({**base, "figures": "first-seed"}, progress=False)
    table = summary.table.set_index("seed")
    assert "inline" in table.loc[3, "backend"] and table.loc[5, "backend"].lower() == "agg"
    assert table.loc[3, "value"] == table.loc[5, "value"] == 1

    def pngs(seed: int) -> int:
        executed = nbformat.read(str(tmp_path / "out" / "points" / f"{table.loc[seed, 'point']}.ipynb"), 4)
        return sum("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))

    assert pngs(3) == 1 and pngs(5) == 0
