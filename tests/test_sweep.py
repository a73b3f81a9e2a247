"""lib.sweep on a tiny notebook the tests write: grids, workers, Dask, resuming, failures, validation."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from lib import sweep

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
    nb.cells = [nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(BODY)]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


def spec(notebook: Path, **extra) -> dict:
    log = notebook.parent / "runs.log"
    return {"notebook": str(notebook), "output": str(notebook.parent / "out"),
            "parameters": {"log": str(log)}, "grid": {"a": [1, 2], "b": [0.5, 3]}, **extra}


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
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
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


@pytest.mark.parametrize("change, culprit", [
    ({"grid": {"c": [1, 2]}}, "'c'"),                          # not in the parameters cell
    ({"points": [{"a": 1, "zz": 2}]}, "'zz'"),
    ({"grid": {"a": ["one", 2]}}, "'a'"),                      # default is an int
    ({"grid": {"b": [True]}}, "'b'"),
    ({"grid": {"a": []}}, "'a'"),                              # empty axis
    ({"grid": {}}, "grid is empty"),
    ({"seeds": [0, 1]}, "'seed'"),                              # the notebook has no seed
    ({"notebook": "missing.ipynb"}, "missing.ipynb"),
    ({"kernell": "python3"}, "'kernell'"),
])
def test_bad_spec_fails_before_any_point_runs(notebook, change, culprit):
    with pytest.raises(sweep.SpecError, match=culprit):
        sweep.run({**spec(notebook), **change}, progress=False)
    assert runs(notebook) == [] and not (notebook.parent / "out").exists()


def test_chapter_spec_checks_types_and_ranges_without_running():
    """For a chapter, values are checked with its lib.config PARAMS (found from the notebook's code)."""
    book = Path(sweep.ROOT) / "book" / "00_toolkit.ipynb"
    assert {"epochs", "widths", "seed", "device"} <= set(sweep.chapter_params(book))
    base = {"notebook": str(book), "output": "unused"}
    for grid, culprit in (({"epochs": ["ten"]}, "'epochs' must be int"), ({"widths": [[0]]}, "'widths' must be > 0"),
                          ({"dataset": ["cifar"]}, "'dataset'")):
        with pytest.raises(sweep.SpecError, match=culprit):
            sweep.validate(sweep.Spec.from_dict({**base, "grid": grid}))
    points = sweep.validate(sweep.Spec.from_dict({**base, "grid": {"lr": [1, 1.0]}, "seeds": 2}))
    # 1 and 1.0 are the same float learning rate: one point per seed, the profile pinned.
    assert [p.parameters for p in points] == [{"profile": "quick", "lr": 1.0, "seed": 0},
                                              {"profile": "quick", "lr": 1.0, "seed": 1}]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old")

    def half_then_crash(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        sweep._atomic_write(target, half_then_crash)
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
    table = pd.DataFrame({"point": list("abcd"), "status": ["done", "done", "done", "failed"],
                          "x": [1, 1, 2, 2], "seed": [0, 1, 0, 0], "y": [0.5, 0.7, 0.9, None]})
    ax = sweep.plot(table, "x", "y", xlabel="x (units)")
    assert ax.get_xlabel() == "x (units)" and ax.get_ylabel() == "y"
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == pytest.approx([0.6, 0.9])
