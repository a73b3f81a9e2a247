"""The image chapters' recorded pages: the evidence ledger's own run of each chapter on real images, in the book.

``make evidence`` runs every chapter over seeds x conditions (:mod:`lib.sweep`, ``sweeps/evidence/``)
and builds the ledger. :func:`copy_pages` (``python -m lib.bookcache pages``, which ``make evidence``
calls after the build) copies, for every chapter the ledger has on :data:`lib.pages.PAGE_DATASET`,
the executed notebook of the ledger's run at seed :data:`lib.pages.PAGE_SEED` into ``evidence/pages/``:
cleaned (no stderr, no widget state, no execution metadata) and with the run's provenance in its
metadata (:data:`RUN_KEY`: point, parameters, ``run_sha256``, ``code_sha256``, commit, date, device).
It refuses, naming what is missing, when a run's executed notebook is not there or is not the
ledger's run, and then writes nothing.

:func:`page_notebook` makes what the book renders from a recorded page: the chapter's notebook as
it is now, with the recorded outputs of the cells that have not changed (papermill's injected
parameters dropped), its banner naming the run (a warning when the page is stale, as stale evidence
is: its code or notebook changed since, or the ledger records another run now) and every cell tagged
:data:`FROM_LEDGER` evaluated again against the current ledger. :func:`import_pages`
(``python -m lib.bookcache import-pages``) stores those in the book's execution cache, where the
book build takes them instead of executing the chapter.
"""

from __future__ import annotations

import ast
import base64
import difflib
import html
import io
import json
import math
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat

from . import claims, evidence, pages, results, sweep
from .bookcache import RECORDED_KEY
from .verdicts import BOOK, EVIDENCE_DIR, current_hashes, is_stale, replicated, shown

ROOT = Path(__file__).resolve().parent.parent
PAGES = EVIDENCE_DIR / "pages"
RUN_KEY = RECORDED_KEY  # notebook metadata: the provenance of the run a recorded page is (and the cache's note)
DONE = ("copied", "provenance updated", "up to date")  # what copy_pages did for a chapter it could do
FROM_LEDGER = "from-ledger"  # a cell showing the current ledger: one expression over lib.pages
BANNER = "page-banner"  # the cell whose output names the run the page shows
INJECTED = "injected-parameters"  # papermill's cell of the run's parameters
# What identifies a run: another execution of the same point differs in its date at least.
IDENTITY = ("point", "date", "code_sha256", "notebook_sha256")
WIDGET_TYPES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
CELL_METADATA_DROPPED = ("papermill", "execution", "collapsed", "scrolled", "widgets")
# A recorded figure is stored with a 256-colour palette at its full resolution when that changes a pixel's
# colour by at most this root-mean-square (of 255) over the figure; it makes a chapter's figures about 3x smaller.
PALETTE_RMS = 2.0


class PageError(ValueError):
    """A recorded page that cannot be made or shown; the message names the page and what is missing."""


# ------------------------------------------------------------------ from the recording to evidence/pages


def _value(v: Any) -> Any:
    """A ledger cell as JSON: NaN as None, numpy scalars as Python's."""
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def ledger_runs(ledger, dataset: str = pages.PAGE_DATASET, seed: int = pages.PAGE_SEED) -> dict[str, dict[str, Any]]:
    """Per notebook, the provenance of the ledger's run on ``dataset`` at ``seed`` (the run its page shows).

    A notebook with two such runs (conditions that differ by more than the dataset) is refused.
    """
    rows = ledger[(ledger.dataset.astype(str) == dataset) & (ledger.seed.astype(float) == float(seed))]
    out: dict[str, dict[str, Any]] = {}
    for notebook, runs in rows.groupby("notebook", sort=True):
        first = runs.drop_duplicates("point")
        if len(first) > 1:
            raise PageError(
                f"{notebook}: the ledger has {len(first)} runs on {dataset} at seed {seed} "
                f"({', '.join(first.point)}): which one the page shows is not defined"
            )
        row = first.iloc[0]
        out[str(notebook)] = {
            "chapter": str(row.chapter),
            "notebook": str(notebook),
            "point": str(row.point),
            "parameters": json.loads(row.parameters),
            evidence.RUN_DIGEST: _value(row[evidence.RUN_DIGEST]),
            **{k: _value(row[k]) for k in evidence.PROVENANCE},
        }
    return out


def _same(a: Any, b: Any) -> bool:
    return str(_value(a)) == str(_value(b))


def same_run(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two provenance records describe one execution (:data:`IDENTITY`)."""
    return all(_same(a.get(k), b.get(k)) for k in IDENTITY)


def _widget(output: Mapping[str, Any]) -> bool:
    return any(k in output.get("data", {}) for k in WIDGET_TYPES)


def compact_png(data: bytes, rms: float = PALETTE_RMS) -> bytes:
    """A PNG with a 256-colour palette at the same size, its text (alt text, smallest font) and dpi kept, when
    that is smaller and within ``rms`` of the original's colours; else the original."""
    import numpy as np
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode == "RGBA" and im.getchannel("A").getextrema() != (255, 255):
            return data  # transparency: left as it is
        rgb = im.convert("RGB")
        text, dpi = dict(getattr(im, "text", {})), im.info.get("dpi")
    paletted = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
    error = np.asarray(paletted.convert("RGB"), float) - np.asarray(rgb, float)
    if float(np.sqrt((error**2).mean())) > rms:
        return data
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    out = io.BytesIO()
    paletted.save(out, "PNG", optimize=True, pnginfo=info, **({"dpi": dpi} if dpi else {}))
    return out.getvalue() if out.tell() < len(data) else data


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A recorded notebook as the repository keeps it: no stderr, no widget state, no execution metadata,
    figures in a palette (:func:`compact_png`)."""
    nb.metadata = nbformat.from_dict({k: nb.metadata[k] for k in ("kernelspec", "language_info") if k in nb.metadata})
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k not in CELL_METADATA_DROPPED})
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            if _widget(out):
                continue  # a progress bar's view: its text/plain is its repr, nothing to read
            if "image/png" in out.get("data", {}):
                png = base64.b64decode(out.data["image/png"])
                out.data["image/png"] = base64.b64encode(compact_png(png)).decode("ascii")
            kept.append(out)
        cell.outputs = kept
    return nb


def _read_page(path: Path) -> nbformat.NotebookNode | None:
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError):
        return None


def page_run(path: Path) -> dict[str, Any] | None:
    """The provenance a recorded page carries, or None (no page, or not a recorded one)."""
    nb = _read_page(path)
    return None if nb is None else nb.metadata.get(RUN_KEY)


def spec_outputs(specs: Iterable[str | Path]) -> dict[str, Path]:
    """Notebook name -> the folder its evidence spec writes its runs to (as the spec says: relative to the root)."""
    out = {}
    for s in specs:
        spec = sweep.load_spec(s)
        out[spec.notebook.name] = spec.output
    return out


@dataclass(frozen=True)
class Copied:
    """What :func:`copy_pages` did for one chapter."""

    notebook: str
    action: str  # "copied", "provenance updated", "up to date", or why it could not
    size: int = 0  # bytes of the page written


def _recorded_notebook(run: Mapping[str, Any], folder: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The cleaned executed notebook of ``run`` in a sweep's ``folder`` (its points), or why there is none."""
    point = run["point"]
    record = sweep.read_record(folder / f"{point}.json")
    if record is None:
        return None, f"the ledger's run {point} has no record in {folder} (not recorded on this machine?)"
    damage = sweep.executed_damage(folder, record)
    if damage:
        return None, f"the ledger's run {point}: {damage} ({folder})"
    prov = {"point": record.get("point"), **(record.get("provenance") or {})}
    if not same_run(prov, run):
        differs = ", ".join(
            f"{k} {prov.get(k)!r} vs {run.get(k)!r}" for k in IDENTITY if not _same(prov.get(k), run.get(k))
        )
        return None, f"the run in {folder / (point + '.ipynb')} is not the ledger's ({differs})"
    nb = clean(nbformat.read(str(folder / f"{point}.ipynb"), as_version=4))
    nb.metadata[RUN_KEY] = dict(run)
    return nb, ""


def _write(path: Path, nb: nbformat.NotebookNode) -> int:
    text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    sweep.atomic_write(path, lambda p: p.write_text(text))
    return len(text.encode())


def copy_pages(
    specs: Iterable[str | Path] | None = None,
    *,
    evidence_dir: str | Path = EVIDENCE_DIR,
    runs: str | Path = ROOT,
    out: str | Path | None = None,
    partial: bool = False,
) -> list[Copied]:
    """Copy the ledger's run of every image chapter (its executed notebook, cleaned, with provenance) to ``out``.

    ``runs`` is the folder the specs' outputs are relative to (the repository root). A page that
    already holds the ledger's run is left as it is (its provenance refreshed if the ledger's
    digest of the run changed). When a run's executed notebook is missing, damaged or another
    run than the ledger's, :class:`PageError` names every such chapter and nothing is written
    (with ``partial``, the others are written and those are reported). Nothing is ever deleted.
    """
    specs = list(specs if specs is not None else sorted(evidence.SPECS.glob("*.yaml")))
    out = Path(out) if out is not None else Path(evidence_dir) / "pages"
    ledger = evidence.read(evidence.LEDGER, evidence_dir)
    if ledger is None or ledger.empty:
        raise PageError(f"no evidence ledger in {evidence_dir}: run `make evidence` first; {out} left as it is")
    wanted = ledger_runs(ledger)
    if not wanted:
        raise PageError(
            f"the ledger in {evidence_dir} has no run on {pages.PAGE_DATASET} at seed {pages.PAGE_SEED}; {out} left as it is"
        )
    folders = spec_outputs(specs)
    done: list[Copied] = []
    to_write: list[tuple[str, nbformat.NotebookNode, str]] = []
    problems: list[Copied] = []
    for notebook, run in wanted.items():
        old = _read_page(out / notebook)
        if old is not None and same_run(old.metadata.get(RUN_KEY) or {}, run):
            if old.metadata[RUN_KEY] == run:
                done.append(Copied(notebook, "up to date"))
            else:
                old.metadata[RUN_KEY] = dict(run)
                to_write.append((notebook, old, "provenance updated"))
            continue
        if notebook not in folders:
            problems.append(Copied(notebook, f"no evidence spec runs {notebook}"))
            continue
        nb, why = _recorded_notebook(run, Path(runs) / folders[notebook] / "points")
        if nb is None:
            problems.append(Copied(notebook, why))
        else:
            to_write.append((notebook, nb, "copied"))
    if problems and not partial:
        raise PageError(
            "cannot copy the recorded pages:\n"
            + "\n".join(f"  {p.notebook}: {p.action}" for p in problems)
            + f"\n{out} left as it is. Record the runs (`make evidence`) on this machine, or pass --partial "
            "to copy the others"
        )
    out.mkdir(parents=True, exist_ok=True)
    for notebook, nb, action in to_write:
        done.append(Copied(notebook, action, _write(out / notebook, nb)))
    return sorted(done + problems, key=lambda c: c.notebook)


# ------------------------------------------------------------------ from evidence/pages to the book


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def display_output(value: Any) -> list[dict[str, Any]]:
    """The output a notebook shows for ``value``: its HTML (or Markdown) and its text; none for None."""
    if value is None:
        return []
    data = {"text/plain": repr(value)}
    for mime, method in (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_")):
        shown = getattr(value, method, None)
        shown = shown() if callable(shown) else None
        if shown is not None:
            data[mime] = shown
            break
    return [nbformat.v4.new_output("display_data", data=data)]


def from_ledger(source: str, where: str = "") -> list[dict[str, Any]]:
    """The output of a :data:`FROM_LEDGER` cell now: its source, one expression over ``pages`` (lib.pages), evaluated."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise PageError(
            f"{where}: a cell tagged {FROM_LEDGER!r} must be one expression over `pages` "
            f"(e.g. pages.verdict_box('ch02')), got {source!r}"
        ) from err
    try:
        value = eval(compile(tree, where or FROM_LEDGER, "eval"), {"pages": pages})  # noqa: S307  (the book's own cell)
    except Exception as err:
        raise PageError(f"{where}: {source.strip()!r} failed: {type(err).__name__}: {err}") from err
    return display_output(value)


def staleness(run: Mapping[str, Any], notebook_dir: str | Path = BOOK) -> str:
    """Why a recorded page is stale, as its banner says it ("" when it is current), by the ledger's rule."""
    now = current_hashes(str(run["notebook"]), notebook_dir)
    if not is_stale(run.get("code_sha256"), run.get("notebook_sha256"), now):
        return ""
    return (
        "<strong>Stale page.</strong> The code this chapter executes, or its notebook, changed since this run "
        "was recorded: the outputs below are the recorded ones and may differ from what the chapter computes now "
        "(cells changed since show no output). <code>make evidence</code> records it again."
    )


class _Cells(HTMLParser):
    """The header and body cells of the HTML table pandas draws for a DataFrame, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[str] = []
        self.rows: list[list[str]] = []
        self._in: str | None = None
        self._part = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("thead", "tbody"):
            self._part = tag
        elif tag == "tr" and self._part == "tbody":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._in = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._in is not None:
            (self.head if self._part == "thead" else self.rows[-1]).append(self._in.strip())
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._in += data


def replicated_now(outputs: list[dict[str, Any]], chapter: str, verdicts_path: str | Path | None = None) -> bool:
    """Give a recorded claims table (:func:`lib.claims.table`) the replicated verdicts of the ledger now.

    The run that made the page ran with the ledger before its own recording (older verdicts, or none
    for a claim new then). The cell's recorded claim values give the table's rows in order (by rank,
    mechanism checks left out, as the table shows them); each row's last cell and the stale warning
    above the table are made again from ``verdicts.csv``, and the HTML and text of the output are drawn
    again. Returns whether ``outputs`` held such a table (changed in place)."""
    record = next((o["data"][results.MIME_TYPE] for o in outputs if results.MIME_TYPE in o.get("data", {})), None)
    out = next(
        (o for o in outputs if "replicated verdict</th>" in "".join(o.get("data", {}).get("text/html", ""))), None
    )
    if record is None or out is None:
        return False
    ranked = sorted((v, k.split(":")[1]) for k, v in record.items() if k.startswith("claim:") and k.endswith(":rank"))
    ids = [cid for _, cid in ranked if record.get(f"claim:{cid}:kind") != claims.CHECK]
    body = "".join(out["data"]["text/html"])
    checks = body.split('<p class="mechanism-checks">', 1)
    parser = _Cells()
    parser.feed(checks[0])
    if len(parser.rows) != len(ids) or parser.head[-1] != "replicated verdict":
        raise PageError(f"{chapter}: the recorded claims table has {len(parser.rows)} rows for {len(ids)} claims")
    rep = replicated(verdicts_path, chapter=chapter)
    now = [
        shown(rep.at[c, "replicated"], bool(rep.at[c, "stale"])) if c in rep.index else claims.NOT_REPLICATED
        for c in ids
    ]
    table = claims.ClaimsTable([row[1:-1] + [v] for row, v in zip(parser.rows, now)], columns=parser.head[1:])
    table.index = [int(row[0]) for row in parser.rows]
    if len(checks) > 1:
        table.attrs["checks"] = html.unescape(checks[1].rsplit("</p>", 1)[0])
    if any(c in rep.index and bool(rep.at[c, "stale"]) for c in ids):
        table.attrs["warning"] = claims.STALE_WARNING
    out["data"]["text/html"], out["data"]["text/plain"] = table._repr_html_(), repr(table)
    return True


def page_notebook(
    source: str | Path,
    page: nbformat.NotebookNode,
    *,
    ledger_run: Mapping[str, Any] | None = None,
    notebook_dir: str | Path = BOOK,
    verdicts_path: str | Path | None = None,
) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """The chapter notebook ``source`` with the recorded outputs of ``page``: what the book renders.

    Code cells are matched by their source (papermill's injected cell left out); a cell
    changed since the recording gets no output. The :data:`BANNER` cell shows
    :func:`lib.pages.recorded_banner` (stale or another run than ``ledger_run``, the
    ledger's run now, flagged), each :data:`FROM_LEDGER` cell its expression evaluated now;
    the first of those, when it comes before the banner (a chapter's verdict box), also names
    the run, and a stale page's warning, above its output: the top of the page says it. A claims
    table shows the replicated verdicts of ``verdicts_path`` (default: the committed ledger's) now
    (:func:`replicated_now`), not those of the ledger the run itself saw.
    Returns the notebook and what was done (``run``, ``stale``, ``changed`` cells).
    """
    run = page.metadata.get(RUN_KEY)
    if not run:
        raise PageError(f"{source}: the page has no {RUN_KEY!r} metadata: not a recorded page")
    nb = nbformat.read(str(source), as_version=4)
    recorded = [c for c in page.cells if c.cell_type == "code" and INJECTED not in _tags(c)]
    code = [c for c in nb.cells if c.cell_type == "code"]
    match = difflib.SequenceMatcher(a=[c.source for c in recorded], b=[c.source for c in code], autojunk=False)
    matched = 0
    for block in match.get_matching_blocks():
        for k in range(block.size):
            new, old = code[block.b + k], recorded[block.a + k]
            new.outputs, new.execution_count = old.outputs, old.execution_count
            matched += 1
    stale = staleness(run, notebook_dir)
    other = ""
    if ledger_run is None:
        other = "The evidence ledger has no run of this condition now: this page's numbers are not in it."
    elif not same_run(run, ledger_run):
        other = (
            f"The evidence ledger now records another run of this condition ({ledger_run['point']}, "
            f"{str(ledger_run.get('date'))[:10]}): this page's numbers may differ from the ledger's. "
            "<code>make evidence</code> copies the ledger's run here."
        )
    top = None  # the first cell showing the ledger above the banner: the run is named there too
    for i, cell in enumerate(code):
        tags = _tags(cell)
        if BANNER in tags:
            cell.outputs = display_output(pages.recorded_banner(run, stale=stale, other_run=other))
            if top is not None:
                note = pages.recorded_banner(run, stale=stale, other_run=other, short=True)
                top.outputs = display_output(note) + top.outputs
            top = False
        elif FROM_LEDGER in tags:
            cell.outputs = from_ledger(cell.source, f"{Path(source).name}, code cell {i}")
            top = cell if top is None else top
        elif cell.outputs and run.get("chapter"):
            replicated_now(cell.outputs, str(run["chapter"]), verdicts_path)
    return nb, {"run": run, "stale": bool(stale or other), "changed": len(code) - matched}


def import_pages(
    cache_path: str | Path,
    pages_dir: str | Path = PAGES,
    notebook_dir: str | Path = BOOK,
    evidence_dir: str | Path = EVIDENCE_DIR,
) -> list[tuple[str, dict[str, Any]]]:
    """Store every recorded page whose chapter the book has in the execution cache, as :func:`page_notebook` makes it."""
    from jupyter_cache import get_cache

    found = sorted(Path(pages_dir).glob("*.ipynb"))
    if not found:
        return []
    ledger = evidence.read(evidence.LEDGER, evidence_dir)
    now = ledger_runs(ledger) if ledger is not None and not ledger.empty else {}
    cache = get_cache(str(cache_path))
    done = []
    with tempfile.TemporaryDirectory(prefix="recorded-pages-") as tmp:
        for path in found:
            source = Path(notebook_dir) / path.name
            if not source.exists():
                continue
            nb, info = page_notebook(
                source,
                nbformat.read(str(path), as_version=4),
                ledger_run=now.get(path.name),
                notebook_dir=notebook_dir,
                verdicts_path=Path(evidence_dir) / evidence.VERDICTS,
            )
            merged = Path(tmp) / path.name
            nbformat.write(nb, str(merged))
            cache.cache_notebook_file(
                path=str(merged),
                uri=str(source),
                data={RUN_KEY: info["run"]["point"]},
                check_validity=False,
                overwrite=True,
            )
            done.append((str(source), info))
    return done
