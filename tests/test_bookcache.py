from datetime import datetime, timedelta, timezone

import nbformat as nbf
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from lib import bookcache

TOC = """format: jb-book
root: intro
parts:
  - caption: Part
    chapters:
      - file: book/a
      - file: book/b
      - file: book/c
      - file: book/missing
"""


def _notebook(path, code, executed):
    nb = nbf.v4.new_notebook()
    cell = nbf.v4.new_code_cell(code)
    if executed:
        cell.execution_count = 1
        cell.outputs = [nbf.v4.new_output("stream", name="stdout", text="out\n")]
    nb.cells = [nbf.v4.new_markdown_cell("# title"), cell]
    nbf.write(nb, str(path))
    return nb


def _small_book(tmp_path):
    """A book of three notebooks: a executed by the book build, b imported from a test run, c never run."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text(TOC)
    (tmp_path / "intro.md").write_text("# intro\n")
    cache = get_cache(str(tmp_path / "cache"))
    a = _notebook(tmp_path / "book" / "a.ipynb", "print(1)", executed=True)
    cache.cache_notebook_bundle(
        CacheBundleIn(a, str(tmp_path / "book" / "a.ipynb"), data={"execution_seconds": 12.5}), check_validity=False
    )
    _notebook(tmp_path / "b_run.ipynb", "print(2)", executed=True)
    cache.cache_notebook_file(
        str(tmp_path / "b_run.ipynb"), uri=str(tmp_path / "book" / "b.ipynb"), check_validity=False
    )
    _notebook(tmp_path / "book" / "b.ipynb", "print(2)", executed=False)
    _notebook(tmp_path / "book" / "c.ipynb", "print(3)", executed=False)
    return tmp_path


def test_book_notebooks_follow_the_toc(tmp_path):
    root = _small_book(tmp_path)
    names = [p.relative_to(root).as_posix() for p in bookcache.book_notebooks(root / "_toc.yml")]
    assert names == ["book/a.ipynb", "book/b.ipynb", "book/c.ipynb"]  # intro is markdown, missing absent


def test_execution_times_read_the_matching_records(tmp_path):
    root = _small_book(tmp_path)
    rows = bookcache.execution_times(bookcache.book_notebooks(root / "_toc.yml"), root / "cache", root)
    by_name = {r.notebook: r for r in rows}
    assert by_name["book/a.ipynb"].seconds == 12.5
    assert by_name["book/b.ipynb"].seconds is None and by_name["book/b.ipynb"].executed is not None
    assert by_name["book/c.ipynb"].seconds is None and by_name["book/c.ipynb"].executed is None
    now = datetime.now(timezone.utc)
    assert abs(by_name["book/a.ipynb"].executed - now) < timedelta(minutes=5)


def test_changed_code_no_longer_matches(tmp_path):
    root = _small_book(tmp_path)
    _notebook(root / "book" / "a.ipynb", "print('changed')", executed=False)
    (row,) = bookcache.execution_times([root / "book" / "a.ipynb"], root / "cache", root)
    assert row.seconds is None and row.executed is None


def test_format_times_marks_this_build_and_totals(tmp_path):
    root = _small_book(tmp_path)
    rows = bookcache.execution_times(bookcache.book_notebooks(root / "_toc.yml"), root / "cache", root)
    before = bookcache.format_times(rows, since=datetime.now(timezone.utc) - timedelta(hours=1)).splitlines()
    after = bookcache.format_times(rows, since=datetime.now(timezone.utc) + timedelta(hours=1)).splitlines()
    assert before[1].split()[:2] == ["book/a.ipynb", "12.5"] and "executed in this build" in before[1]
    assert "cached, stored" in after[1]
    assert "no timing" in before[2] and "not in the cache" in before[3]
    assert before[-1].split()[:2] == ["total", "12.5"] and "1 of 3 notebooks timed" in before[-1]


def test_missing_cache_reads_as_not_executed(tmp_path):
    root = _small_book(tmp_path)
    rows = bookcache.execution_times(bookcache.book_notebooks(root / "_toc.yml"), tmp_path / "none", root)
    assert all(r.seconds is None and r.executed is None for r in rows)
    assert not (tmp_path / "none").exists()


def test_the_cache_is_cleared_when_lib_the_evidence_the_recorded_pages_or_the_profile_change(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOK_PROFILE", raising=False)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "evidence" / "pages").mkdir(parents=True)
    (tmp_path / "evidence" / "verdicts.csv").write_text("id,replicated\nch01.a,holds\n")
    cache, stamp = tmp_path / "cache", tmp_path / "stamp"

    def cleared() -> bool:
        cache.mkdir(exist_ok=True)
        return bookcache.invalidate_if_stale(cache, stamp, tmp_path) and not cache.exists()

    assert cleared()  # filled before any stamp: nothing says what it was built with
    assert not cleared()
    (tmp_path / "evidence" / "README.md").write_text("not read by any page\n")
    assert not cleared()
    (tmp_path / "evidence" / "verdicts.csv").write_text("id,replicated\nch01.a,does not hold\n")
    assert cleared()  # a new ledger: the verdicts the pages show changed
    (tmp_path / "evidence" / "pages" / "02_x.ipynb").write_text("{}")
    assert cleared()
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")
    assert cleared()
    monkeypatch.setenv("BOOK_PROFILE", "paper")
    assert cleared()
    assert not cleared()
