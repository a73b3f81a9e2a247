"""The GPU run's script, on the CPU: its smoke run works and every chapter's paper cut passes its checks."""

from __future__ import annotations

import csv

from lib import gpu_check


def test_smoke_run_executes_the_toolkit_and_checks_every_paper_cut(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path), "--smoke", "--budget", "300"]) == 0
    rows = list(csv.DictReader(open(tmp_path / gpu_check.TIMINGS)))
    assert [(r["notebook"], r["status"]) for r in rows] == [("00_toolkit.ipynb", "done")]
    assert float(rows[0]["wall_s"]) > 0 and list((tmp_path / "points").glob("*.ipynb"))
    assert {p.name for p in (tmp_path / "specs").glob("*.yaml")} >= {f"{n[:-6]}.yaml" for n in gpu_check.CUTS}
    assert "timings:" in capsys.readouterr().out


def test_a_cut_its_chapter_refuses_stops_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "CUTS", {"01_local_errors.ipynb": ({"no_such_parameter": 1}, 1.0)})
    assert gpu_check.main(["--out", str(tmp_path), "--smoke"]) == 2
    assert "no_such_parameter" in capsys.readouterr().err and not (tmp_path / "points").exists()
    assert gpu_check.main(["--out", str(tmp_path), "--budget", "0"]) == 2
