"""The image chapters' recorded pages (lib.recorded): the copy from a sweep's layout, and what the book shows."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import nbformat as nbf
import pandas as pd
import pytest
from IPython.display import HTML

from lib import bookcache, claims, evidence, pages, recorded, results
from lib.provenance import code_sha256, notebook_sha256

NOTEBOOK = "02_dimpled_manifold.ipynb"  # a real chapter's name: the banner names its commands
POINT = "abcdef0123456789"
PARAMS = {"dataset": "fashion-mnist", "n_train": 8000, "n_test": 2000, "profile": "quick", "seed": 0}
BANNER_SOURCE = 'pages.banner(cfg, "ch02")'
TOP_SOURCE = 'pages.probe(" at the top")'


def _source_notebook() -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbf.v4.new_code_cell("dataset = None")
    params.metadata["tags"] = ["parameters"]
    banner = nbf.v4.new_code_cell(BANNER_SOURCE)
    banner.metadata["tags"] = ["remove-input", recorded.BANNER]
    verdicts = nbf.v4.new_code_cell("pages.probe()")
    verdicts.metadata["tags"] = [recorded.FROM_LEDGER]
    box = nbf.v4.new_code_cell(TOP_SOURCE)  # a verdict box at the top of the page, above the banner
    box.metadata["tags"] = ["remove-input", recorded.FROM_LEDGER]
    nb.cells = [
        nbf.v4.new_markdown_cell("# A chapter"),
        box,
        params,
        banner,
        nbf.v4.new_code_cell("print('accuracy 0.8412')"),
        verdicts,
        nbf.v4.new_code_cell("print('the end')"),
    ]
    return nb


def _executed(source: nbf.NotebookNode) -> nbf.NotebookNode:
    """``source`` as papermill executes it: injected parameters, outputs, stderr, widgets, execution metadata."""
    nb = nbf.from_dict(json.loads(json.dumps(source)))
    nb.metadata["papermill"] = {"input_path": "/tmp/x/in.ipynb", "parameters": PARAMS, "duration": 12.0}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"a": 1}}}
    injected = nbf.v4.new_code_cell('# Parameters\ndataset = "fashion-mnist"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(3, injected)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.metadata["papermill"] = {"duration": 1.5, "status": "completed"}
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00"}
    box, _, _, banner, result, verdicts, end = [c for c in nb.cells if c.cell_type == "code"]
    box.outputs = [nbf.v4.new_output("display_data", data={"text/html": "<p>the old ledger at the top</p>"})]
    banner.outputs = [nbf.v4.new_output("display_data", data={"text/html": "<p>banner at execution</p>"})]
    result.outputs = [
        nbf.v4.new_output("stream", name="stderr", text="epoch 3/10 ...\n"),
        nbf.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": "m1"}, "text/plain": "HBox()"},
        ),
        nbf.v4.new_output("stream", name="stdout", text="accuracy 0.8412\n"),
        nbf.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(_figure_png()).decode(), "text/plain": "<Figure>"},
            metadata={"width": 384},
        ),
    ]
    verdicts.outputs = [nbf.v4.new_output("display_data", data={"text/html": "<p>verdicts of the old ledger</p>"})]
    end.outputs = [nbf.v4.new_output("stream", name="stdout", text="the end\n")]
    return nb


def _sweep_layout(root: Path, source_path: Path, date: str = "2026-01-02T03:04:05+0000") -> dict:
    """A recorded run laid out as lib.sweep leaves it, its spec, and a ledger holding it: the provenance."""
    points = root / "sweep-results" / "evidence" / "ch02" / "points"
    points.mkdir(parents=True)
    executed = points / f"{POINT}.ipynb"
    nbf.write(_executed(nbf.read(str(source_path), as_version=4)), str(executed))
    prov = {
        "git_commit": "1234567890abcdef1234567890abcdef12345678",
        "lib_sha256": "f" * 64,
        "code_sha256": code_sha256(source_path),
        "notebook_sha256": notebook_sha256(source_path),
        "torch": "2.13.0",
        "device": "cpu",
        "threads": 2,
        "cpu": "a processor",
        "python": "3.12.0",
        "host": "recorder",
        "wall_s": 240.5,
        "date": date,
    }
    record = {
        "point": POINT,
        "notebook": NOTEBOOK,
        "parameters": PARAMS,
        "status": "done",
        "executed_sha256": hashlib.sha256(executed.read_bytes()).hexdigest(),
        "provenance": prov,
    }
    (points / f"{POINT}.json").write_text(json.dumps(record))
    specs = root / "specs"
    specs.mkdir()
    (specs / "ch02.yaml").write_text(
        f"notebook: book/{NOTEBOOK}\noutput: sweep-results/evidence/ch02\nparameters: {{profile: quick}}\n"
        "points:\n  - {dataset: fashion-mnist, n_train: 8000, n_test: 2000}\nseeds: [0]\n"
    )
    _write_ledger(root / "evidence", prov)
    return prov


def _write_ledger(folder: Path, prov: dict, point: str = POINT, digest: str = "d" * 64) -> None:
    rows = []
    for dataset, seed, pid in (
        ("fashion-mnist", 0, point),
        ("fashion-mnist", 1, "1111111111111111"),
        ("digits", 0, "2222"),
    ):
        rows.append(
            {
                "claim_id": "ch02.a_claim",
                "chapter": "ch02",
                "dataset": dataset,
                "seed": seed,
                "point": pid,
                "notebook": NOTEBOOK,
                "parameters": json.dumps({**PARAMS, "dataset": dataset, "seed": seed}, sort_keys=True),
                **prov,
                evidence.RUN_DIGEST: digest,
            }
        )
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=list(evidence.LEDGER_COLUMNS)).to_csv(folder / evidence.LEDGER, index=False)


@pytest.fixture
def layout(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nbf.write(_source_notebook(), str(book / NOTEBOOK))
    prov = _sweep_layout(tmp_path, book / NOTEBOOK)
    return tmp_path, prov


def _copy(root: Path, **kw):
    return recorded.copy_pages(
        sorted((root / "specs").glob("*.yaml")), evidence_dir=root / "evidence", runs=root, out=root / "pages", **kw
    )


def test_copy_keeps_the_outputs_without_stderr_widgets_or_execution_metadata(layout):
    root, prov = layout
    (copied,) = _copy(root)
    assert copied.notebook == NOTEBOOK and copied.action == "copied"
    page = nbf.read(str(root / "pages" / NOTEBOOK), as_version=4)
    assert copied.size == (root / "pages" / NOTEBOOK).stat().st_size
    assert set(page.metadata) == {"kernelspec", recorded.RUN_KEY}  # papermill's and the widget state gone
    outputs = [o for c in page.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert [o.text for o in outputs if o.get("name") == "stdout"] == ["accuracy 0.8412\n", "the end\n"]
    assert all(set(c.metadata) <= {"tags"} for c in page.cells)
    (figure,) = [o for o in outputs if "image/png" in o.get("data", {})]
    assert figure.metadata == {"width": 384}  # shown at the size it was drawn for
    assert base64.b64decode(figure.data["image/png"]) == recorded.compact_png(_figure_png())
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in page.cells)  # kept: dropped at import


def test_copy_carries_the_ledger_s_provenance(layout):
    root, prov = layout
    _copy(root)
    run = recorded.page_run(root / "pages" / NOTEBOOK)
    assert run["point"] == POINT and run["chapter"] == "ch02" and run["parameters"] == PARAMS
    assert run[evidence.RUN_DIGEST] == "d" * 64
    assert {k: run[k] for k in prov} == prov  # every provenance field, as the ledger has it


def test_copy_refuses_when_the_run_is_missing_and_keeps_the_committed_page(layout):
    root, prov = layout
    _copy(root)
    before = (root / "pages" / NOTEBOOK).read_bytes()
    _write_ledger(root / "evidence", {**prov, "date": "2026-02-01T00:00:00+0000"}, point="9999999999999999")
    with pytest.raises(recorded.PageError, match=r"(?s)run 9999999999999999 has no record .*left as it is"):
        _copy(root)
    assert (root / "pages" / NOTEBOOK).read_bytes() == before
    (partial,) = _copy(root, partial=True)
    assert partial.action not in recorded.DONE and (root / "pages" / NOTEBOOK).read_bytes() == before


def test_copy_refuses_another_run_than_the_ledger_s(layout):
    root, prov = layout
    _write_ledger(root / "evidence", {**prov, "date": "2026-03-01T00:00:00+0000"})
    with pytest.raises(recorded.PageError, match="is not the ledger's .*date"):
        _copy(root)
    assert not (root / "pages").exists()


def test_copy_refuses_a_damaged_run_and_without_a_ledger(layout, tmp_path):
    root, _ = layout
    executed = root / "sweep-results" / "evidence" / "ch02" / "points" / f"{POINT}.ipynb"
    executed.write_text(executed.read_text().replace("accuracy 0.8412", "accuracy 0.9999"))
    with pytest.raises(recorded.PageError, match="differs from the one it recorded"):
        _copy(root)
    with pytest.raises(recorded.PageError, match="no evidence ledger"):
        recorded.copy_pages([], evidence_dir=tmp_path / "none", out=tmp_path / "pages")


def test_a_copied_page_is_not_copied_again_its_provenance_follows_the_ledger(layout):
    root, prov = layout
    _copy(root)
    (root / "sweep-results").rename(root / "gone")  # the runs are not needed for a page that holds the run
    assert [c.action for c in _copy(root)] == ["up to date"]
    _write_ledger(root / "evidence", prov, digest="e" * 64)
    assert [c.action for c in _copy(root)] == ["provenance updated"]
    assert recorded.page_run(root / "pages" / NOTEBOOK)[evidence.RUN_DIGEST] == "e" * 64


def _shown(nb) -> dict[str, list]:
    return {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}


def _html(outputs) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs)


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setattr(
        pages, "probe", lambda where="": HTML(f"<p>verdicts of the current ledger{where}</p>"), raising=False
    )


def test_the_book_gets_the_source_notebook_with_the_recorded_outputs(layout, probe):
    root, _ = layout
    _copy(root)
    page = nbf.read(str(root / "pages" / NOTEBOOK), as_version=4)
    ledger_run = recorded.ledger_runs(evidence.read(evidence.LEDGER, root / "evidence"))[NOTEBOOK]
    nb, info = recorded.page_notebook(root / "book" / NOTEBOOK, page, ledger_run=ledger_run, notebook_dir=root / "book")
    source = nbf.read(str(root / "book" / NOTEBOOK), as_version=4)
    assert [(c.cell_type, c.source, c.metadata) for c in nb.cells] == [
        (c.cell_type, c.source, c.metadata) for c in source.cells
    ]  # the code the cache is keyed by: the chapter's, without papermill's cell
    shown = _shown(nb)
    assert shown["print('accuracy 0.8412')"][0].text == "accuracy 0.8412\n"
    assert not info["stale"] and info["changed"] == 0
    banner = _html(shown[BANNER_SOURCE])
    assert "Recorded run on Fashion-MNIST" in banner and POINT in banner and "8,000 training / 2,000 test" in banner
    assert "papermill book/02_dimpled_manifold.ipynb" in banner and "-p n_train 8000" in banner
    assert "1234567" in banner and "2026-01-02" in banner and "stale" not in banner.lower()
    assert _html(shown["pages.probe()"]) == "<p>verdicts of the current ledger</p>"  # not the recorded verdicts
    note, box = shown[TOP_SOURCE]  # the run named at the top of the page too, above the first verdicts
    assert 'class="admonition note"' in _html([note]) and POINT in _html([note]) and "stale" not in _html([note])
    assert _html([box]) == "<p>verdicts of the current ledger at the top</p>"


def test_a_page_recorded_with_other_code_is_flagged_stale(layout, probe):
    root, _ = layout
    _copy(root)
    src = nbf.read(str(root / "book" / NOTEBOOK), as_version=4)
    src.cells[4].source = "print('accuracy', round(0.84123, 3))"  # the chapter changed since the recording
    nbf.write(src, str(root / "book" / NOTEBOOK))
    page = nbf.read(str(root / "pages" / NOTEBOOK), as_version=4)
    ledger_run = recorded.ledger_runs(evidence.read(evidence.LEDGER, root / "evidence"))[NOTEBOOK]
    nb, info = recorded.page_notebook(root / "book" / NOTEBOOK, page, ledger_run=ledger_run, notebook_dir=root / "book")
    assert info["stale"] and info["changed"] == 1
    shown = _shown(nb)
    assert shown["print('accuracy', round(0.84123, 3))"] == []  # a changed cell shows no recorded output
    assert shown["print('the end')"][0].text == "the end\n"  # the unchanged cells keep theirs
    banner = _html(shown[BANNER_SOURCE])
    assert 'class="admonition warning"' in banner and "Stale page" in banner
    top = _html(shown[TOP_SOURCE][:1])  # and at the top of the page
    assert 'class="admonition warning"' in top and "Stale page:</strong> recorded with other code" in top
    assert POINT in top and "changed since this run" not in top  # one line at the top; the banner explains


def test_a_page_that_is_not_the_ledger_s_run_now_is_flagged(layout, probe):
    root, prov = layout
    _copy(root)
    page = nbf.read(str(root / "pages" / NOTEBOOK), as_version=4)
    later = {**page.metadata[recorded.RUN_KEY], "point": "ffff", "date": "2026-05-05T00:00:00+0000"}
    nb, info = recorded.page_notebook(root / "book" / NOTEBOOK, page, ledger_run=later, notebook_dir=root / "book")
    assert info["stale"]
    assert "now records another run of this condition (ffff, 2026-05-05)" in _html(_shown(nb)[BANNER_SOURCE])


def test_a_page_whose_run_the_ledger_no_longer_has_is_flagged(layout, probe):
    root, _ = layout
    _copy(root)
    page = nbf.read(str(root / "pages" / NOTEBOOK), as_version=4)
    nb, _ = recorded.page_notebook(root / "book" / NOTEBOOK, page, ledger_run=None, notebook_dir=root / "book")
    banner = _html(_shown(nb)[BANNER_SOURCE])
    assert "banner at execution" not in banner and "has no run of this condition now" in banner


def test_a_from_ledger_cell_must_be_one_expression():
    with pytest.raises(recorded.PageError, match="must be one expression over `pages`"):
        recorded.from_ledger("x = pages.heat()", "ch02, code cell 4")
    with pytest.raises(recorded.PageError, match="ch02, code cell 4: 'pages.no_such_thing..' failed: AttributeError"):
        recorded.from_ledger("pages.no_such_thing()", "ch02, code cell 4")
    assert recorded.from_ledger("None") == []


def test_import_puts_the_recorded_page_in_the_cache_under_the_chapter_s_code(layout, probe):
    from jupyter_cache import get_cache

    root, _ = layout
    _copy(root)
    cache = root / "cache"
    (done,) = recorded.import_pages(cache, root / "pages", root / "book", root / "evidence")
    assert done[0] == str(root / "book" / NOTEBOOK) and done[1]["run"]["point"] == POINT
    record = get_cache(str(cache)).match_cache_file(str(root / "book" / NOTEBOOK))
    assert record.data == {recorded.RUN_KEY: POINT}
    (row,) = bookcache.execution_times([root / "book" / NOTEBOOK], cache, root)
    assert row.recorded == POINT and "recorded page (run abcdef0123456789" in bookcache.format_times([row])
    cached = get_cache(str(cache)).get_cache_bundle(record.pk).nb
    assert "accuracy 0.8412" in json.dumps(cached.cells)


def test_without_a_recorded_page_nothing_is_imported_and_the_chapter_executes(tmp_path):
    assert recorded.import_pages(tmp_path / "cache", tmp_path / "pages") == []
    assert not (tmp_path / "cache").exists()


def _figure_png() -> bytes:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from lib import plots

    plots.set_theme()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(10), [x**2 for x in range(10)], label="squares")
    ax.set_title("a figure")
    ax.legend()
    data, _ = plots.figure_png(fig)
    plt.close(fig)
    return base64.b64decode(data)


def test_a_recorded_figure_is_stored_in_a_palette_with_its_alt_text_and_dpi():
    import io

    import numpy as np
    from PIL import Image

    original = _figure_png()
    small = recorded.compact_png(original)
    assert len(small) < len(original) / 2
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(small)) as b:
        assert b.mode == "P" and b.size == a.size
        assert b.text == a.text and b.text["Description"].startswith("Figure: a figure")
        assert np.allclose(b.info["dpi"], a.info["dpi"], atol=0.01)
        diff = np.asarray(b.convert("RGB"), float) - np.asarray(a.convert("RGB"), float)
        assert np.sqrt((diff**2).mean()) <= recorded.PALETTE_RMS


def test_a_figure_a_palette_would_change_is_kept_as_it_is():
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    noise = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(noise, "PNG")
    assert recorded.compact_png(noise.getvalue()) == noise.getvalue()
    clear = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 255, 255, 0)).save(clear, "PNG")
    assert recorded.compact_png(clear.getvalue()) == clear.getvalue()  # transparency left alone


def _command_parameters(command: str) -> dict:
    """The parameters a papermill command line gives (-p NAME VALUE, -y YAML), read as papermill reads them."""
    import shlex

    import yaml

    words, out = shlex.split(command), {}
    for i, word in enumerate(words):
        if word == "-p":
            out[words[i + 1]] = yaml.safe_load(words[i + 2])
        elif word == "-y":
            out.update(yaml.safe_load(words[i + 1]))
    return out


def test_the_banner_of_a_digits_run_says_it_is_the_smoke_test():
    from lib import config
    from lib.chapters import ch05

    cfg = config.resolve_values(ch05.PARAMS, {"profile": "quick"}, check_device=False)
    shown = repr(pages.banner(cfg, "ch05"))
    assert shown.startswith("Quick run on 8x8 digits") and "make test" in shown and "not evidence" in shown
    assert "1,347 training / 450 test images, seed 0" in shown
    (command,) = [line for line in shown.splitlines() if "papermill" in line]
    assert _command_parameters(command) == {"profile": "quick", "seed": 0, "dataset": "digits"}  # nothing derived


def test_the_banner_of_another_run_names_its_parameters_and_the_command_that_runs_it_again():
    from lib import config
    from lib.chapters import ch05

    given = {"dataset": "fashion-mnist", "n_train": 8000, "n_test": 2000, "epochs": 10, "epoch_grid": [3], "seed": 3}
    cfg = config.resolve_values(ch05.PARAMS, {"profile": "quick", **given}, check_device=False)
    banner = pages.banner(cfg, "ch05")
    assert banner.title == "Run on Fashion-MNIST (28x28 images)" and banner.kind == "note"
    (command,) = [line for line in repr(banner).splitlines() if "papermill" in line]
    assert command.startswith("Run it again: papermill book/05_four_lenses.ipynb 05_four_lenses.executed.ipynb")
    assert _command_parameters(command) == {"profile": "quick", **given}
    with pytest.raises(ValueError, match="chapter must be one of ch01, .*ch05, got 'ch9'"):
        pages.banner(cfg, "ch9")


def test_the_command_refuses_with_a_message_and_copies_when_the_runs_are_there(layout, capsys):
    root, _ = layout
    args = [
        "pages",
        "--evidence",
        str(root / "evidence"),
        "--runs",
        str(root / "nowhere"),
        "--out",
        str(root / "pages"),
    ]
    assert bookcache.main(args) == 1
    assert "cannot copy the recorded pages" in capsys.readouterr().err and not (root / "pages").exists()
    args[4] = str(root)  # the sweep layout is under the root
    assert bookcache.main(args) == 0 and f"{NOTEBOOK}: copied" in capsys.readouterr().out


def test_another_profile_than_quick_shows_the_chapters_own_execution(monkeypatch, capsys):
    monkeypatch.setenv("BOOK_PROFILE", "paper")
    monkeypatch.setattr(recorded, "import_pages", lambda *a, **k: pytest.fail("imported at the paper profile"))
    assert bookcache.main(["import-pages"]) == 0
    assert "the chapters execute instead" in capsys.readouterr().out


def _claims_table_outputs(ids: list[str], shown_then: list[str]) -> list[dict]:
    """The outputs of a chapter's claims-table cell as a run records them: its claim values (ranks, kinds; a
    mechanism check in the middle) and the table with the replicated verdicts of the ledger the run saw."""
    rows = [
        claims.Claim(f"claim {i}", "a statistic", "0.5 [0.4, 0.6]", claims.HOLDS, id=cid) for i, cid in enumerate(ids)
    ]
    check = claims.Claim("an identity", "it", "exact", claims.HOLDS, id=ids[0] + "_check", kind=claims.CHECK)
    ordered = [rows[0], check, *rows[1:]]
    record = {f"claim:{c.id}:rank": r for r, c in enumerate(ordered, start=1)}
    record.update({f"claim:{c.id}:kind": c.kind for c in ordered if c.kind})
    table = claims.table(ordered)
    table["replicated verdict"] = shown_then
    table.attrs["warning"] = claims.STALE_WARNING
    return [
        {"output_type": "display_data", "data": {results.MIME_TYPE: record, "text/plain": "(recorded)"}},
        {"output_type": "execute_result", "data": {"text/html": table._repr_html_(), "text/plain": repr(table)}},
    ]


def test_a_recorded_claims_table_shows_the_ledger_s_verdicts_now(tmp_path):
    """The run behind a page saw the ledger before its own recording: its table's replicated column is made
    again from verdicts.csv now, row by row in the table's order (the mechanism check is not a row)."""
    from tests.test_pages import _planted_ledger

    ids = ["ch02.pgd_share_over_random", "ch02.tiny_vs_same_class", "ch02.mislabelled_accuracy"]
    now = {ids[0]: "opposite", ids[1]: "holds"}  # the third has no replicated verdict in the ledger
    _planted_ledger(tmp_path, "ch02", now, current=True)
    outputs = _claims_table_outputs(ids, ["holds (stale: recorded with other code)", "no majority", "weak"])
    assert recorded.replicated_now(outputs, "ch02", tmp_path / evidence.VERDICTS)
    shown = outputs[1]["data"]["text/html"]
    assert re.findall(r"<td>([^<]*)</td>\s*</tr>", shown) == ["opposite", "holds", "not replicated yet"]
    assert "evidence-stale" not in shown and "0.5 [0.4, 0.6]" in shown and "claim 2" in shown
    assert "not replicated yet" in outputs[1]["data"]["text/plain"]
    # recorded with other code than the chapter's now: each cell and the warning above the table say so
    _planted_ledger(tmp_path, "ch02", now, current={ids[1]})
    outputs = _claims_table_outputs(ids, ["x", "y", "z"])
    recorded.replicated_now(outputs, "ch02", tmp_path / evidence.VERDICTS)
    shown = outputs[1]["data"]["text/html"]
    assert "evidence-stale" in shown and "opposite (stale" in shown and "<td>holds</td>" in shown
    # a table whose rows do not match the recorded claims is refused; a cell without a table is left alone
    broken = _claims_table_outputs(ids, ["x", "y", "z"])
    broken[0]["data"][results.MIME_TYPE].pop(f"claim:{ids[2]}:rank")
    with pytest.raises(recorded.PageError, match="2 claims"):
        recorded.replicated_now(broken, "ch02", tmp_path / evidence.VERDICTS)
    assert not recorded.replicated_now(broken[1:], "ch02", tmp_path / evidence.VERDICTS)
