"""Open every page of the built book in headless Chromium and check what a reader sees.

At a 1280-pixel window, fails on raw, untypeset TeX, an image that does not load, a
failed request for a file of the book itself, a JavaScript error; a figure whose
smallest text shows under 9 points, that is shrunk below its size, has no alt text or
no link to its full size; a table whose last column cannot be reached, or that
overflows its box without its first column staying in view, or that pandas cut short;
anything painted black; a temporary path; a parameters cell; a sidebar that lists
Evidence before the chapters; a repository or launch button where no repository URL
was given (``BOOK_REPOSITORY_URL``); a landing page without its results table (every
chapter, every claim with its verdict); a chapter whose verdict box does not start in
the first screen (800 px) or links to no section of its page. Needs ``_build/html`` (``BOOK_HTML`` names
another; run after the book build: ``make test`` does) and Debian's ``chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.render

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("BOOK_HTML") or ROOT / "_build" / "html")
VIEWPORT = {"width": 1280, "height": 900}
MIN_PT = 9.0  # smallest figure text a reader should meet, at the size the page shows it
CSS_PX_PER_INCH = 96
MIN_FONT_KEY = "min font pt"  # written by lib.plots.figure_png, with the alt text (Description)
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
# TeX that MathJax should have typeset: $...$, $$...$$, \( \), \[ \] around a command or ^/_
RAW_TEX = re.compile(r"(\$\$?[^$\n]*(\\[a-zA-Z]+|[\^_])[^$\n]*\$\$?)|\\\(|\\\[")


def pages() -> list[Path]:
    if not HTML.exists():
        return []
    return sorted(
        p
        for p in HTML.rglob("*.html")
        if not (set(p.relative_to(HTML).parts) & SKIP_DIRS) and p.name not in ("genindex.html", "search.html")
    )


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium not found: install Debian's `chromium` package (apt-get install chromium)")


# MathJax typesets asynchronously: wait for it when the page loads it
MATHJAX_DONE = (
    "() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise || MathJax.startup.promise.then(() => true)"
)
VISIBLE_TEXT = """() => {
    const main = document.querySelector('main') || document.body;
    const clone = main.cloneNode(true);
    clone.querySelectorAll('pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml')
         .forEach(e => e.remove());
    return clone.innerText;
}"""
BROKEN_IMAGES = "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
MATH_NODES = "() => [document.querySelectorAll('.math').length, document.querySelectorAll('mjx-container').length]"
# What a reader meets on the page, as plain data: figures, tables, black boxes, text, cells, sidebar, buttons
LAYOUT = """() => {
    const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    const box = e => e.getBoundingClientRect();
    const right = box(article).right + 1;
    const images = Array.from(article.querySelectorAll('img')).map(i => ({
        src: i.currentSrc || i.src, natural: i.naturalWidth, shown: box(i).width,
        alt: i.getAttribute('alt') || '', output: !!i.closest('.cell_output'),
        column: (i.closest('.cell_output') || article).clientWidth,
        link: (i.closest('a.image-reference') || {}).href || ''}));
    const tables = Array.from(article.querySelectorAll('table')).filter(t => t.rows.length).map(t => {
        let scroller = null;
        for (let e = t.parentElement; e && e !== document.body; e = e.parentElement) {
            if (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) { scroller = e; break; }
        }
        const body = t.tBodies.length && t.tBodies[0].rows.length ? t.tBodies[0].rows[0] : t.rows[t.rows.length - 1];
        return {head: t.rows[0].innerText.replace(/\\s+/g, ' ').slice(0, 80), fits: box(t).right <= right,
                scrolls: !!scroller && box(scroller).right <= right,
                sticky: body.cells.length ? getComputedStyle(body.cells[0]).position : ''};
    });
    const cut = Array.from(article.querySelectorAll('td, th')).filter(c => ['...', '…'].includes(c.innerText.trim()))
        .length + (article.innerText.match(/\\d+ rows × \\d+ columns/g) || []).length;
    const black = Array.from(article.querySelectorAll('*')).filter(e => {
        const c = getComputedStyle(e).backgroundColor; const b = box(e);
        return (c === 'rgb(0, 0, 0)' || c === 'rgba(0, 0, 0, 1)') && b.width > 0 && b.height > 0;
    }).map(e => e.tagName + (e.id ? '#' + e.id : '') + ': ' + e.innerText.slice(0, 30));
    const within = e => ({top: box(e).top + window.scrollY, bottom: box(e).bottom + window.scrollY});
    const verdict = Array.from(article.querySelectorAll('.verdict-box')).map(e => {
        const links = Array.from(e.querySelectorAll('li a')).map(a => a.getAttribute('href'));
        return {...within(e), items: e.querySelectorAll('li:not(.verdict-more)').length,
                chips: e.querySelectorAll('.verdict-chip').length,
                links, missing: links.filter(h => !h.startsWith('#') || !document.getElementById(h.slice(1)))};
    });
    const landing = Array.from(article.querySelectorAll('table.landing-results')).map(t => ({...within(t),
        rows: t.tBodies[0].rows.length, chapters: t.querySelectorAll('tr.landing-chapter').length,
        claims: Array.from(t.tBodies[0].rows).filter(r => !r.classList.contains('landing-chapter'))
            .map(r => ({chip: !!r.querySelector('.verdict-chip'), link: (r.querySelector('a') || {}).href || ''})),
        fits: box(t).right <= right}));
    return {images, tables, cut, black, text: document.body.innerText, verdict, landing,
            parameters: document.querySelectorAll('.tag_parameters, .tag_injected-parameters').length,
            sidebar: Array.from(document.querySelectorAll('.bd-sidebar-primary a.reference'))
                .map(a => a.getAttribute('href')),
            buttons: Array.from(document.querySelectorAll('.article-header-buttons a, .header-article-items a'))
                .map(a => a.href).filter(h => /^https?:/.test(h))};
}"""


@dataclass
class Seen:
    """What a reader's browser showed of one page, or the error that stopped it from loading."""

    errors: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    text: str = ""
    broken: list = field(default_factory=list)
    math_nodes: tuple = (0, 0)
    layout: dict = field(default_factory=dict)
    crash: Exception | None = None


@contextmanager
def _crash_into(seen: Seen):
    """An error in the block becomes ``seen.crash``: reported by this page's test, not by every test."""
    try:
        yield
    except Exception as exc:
        seen.crash = exc


def _open(ctx, page: Path) -> tuple:
    """A new tab navigating to ``page``, with its errors and failed file requests collected into a :class:`Seen`."""
    seen, tab = Seen(), ctx.new_page()
    tab.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    tab.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
    tab.on("requestfailed", lambda req: seen.failed.append(req.url) if req.url.startswith("file:") else None)
    with _crash_into(seen):
        tab.goto(page.as_uri(), wait_until="commit")  # returns at once: the pages load side by side
    return tab, seen


@pytest.fixture(scope="module")
def rendered() -> dict[Path, Seen]:
    """Every page opened at once, each in its own tab of one headless Chromium, and read once typeset.

    The pages load side by side: the whole render check of 12 pages took 17.4 s one page
    after another and 11-12 s so (measured on the 2-core machine).
    """
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="book-render-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        tabs = {page: _open(ctx, page) for page in pages()}
        for tab, seen in tabs.values():  # loaded, and typeset when the page uses MathJax
            if seen.crash is None:
                with _crash_into(seen):
                    tab.wait_for_load_state("load")
                    tab.wait_for_function(MATHJAX_DONE, timeout=30_000)
        if tabs:  # a moment for late script errors and images, as each page had before it was read
            next(iter(tabs.values()))[0].wait_for_timeout(200)
        for tab, seen in tabs.values():
            if seen.crash is None:
                with _crash_into(seen):
                    seen.text = tab.evaluate(VISIBLE_TEXT)
                    seen.broken = tab.evaluate(BROKEN_IMAGES)
                    seen.math_nodes = tuple(tab.evaluate(MATH_NODES))
                    seen.layout = tab.evaluate(LAYOUT)
        ctx.close()
    return {page: seen for page, (_, seen) in tabs.items()}


def test_book_was_built():
    assert (HTML / "index.html").exists(), "no _build/html/index.html: build the book first"
    assert len(pages()) >= 2


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(HTML)))
def test_page_renders(rendered, page):
    seen = rendered[page]
    if seen.crash is not None:
        raise seen.crash
    raw = [m.group(0) for m in RAW_TEX.finditer(seen.text)]
    assert not raw, f"{page.name}: untypeset TeX: {raw[:5]}"
    assert not seen.broken, f"{page.name}: images that did not load: {seen.broken[:5]}"
    assert not seen.failed, f"{page.name}: failed requests: {seen.failed[:5]}"
    assert not seen.errors, f"{page.name}: JavaScript errors: {seen.errors[:5]}"
    marked, typeset = seen.math_nodes
    assert typeset >= marked, f"{page.name}: {marked} math elements but only {typeset} typeset by MathJax"


def _laid_out(rendered) -> dict[str, dict]:
    """Each page's layout facts, by its path in the book; a page that crashed fails here."""
    out = {}
    for page, seen in rendered.items():
        if seen.crash is not None:
            raise seen.crash
        out[str(page.relative_to(HTML))] = seen.layout
    return out


def png_record(path: Path) -> tuple[float | None, float]:
    """The size in points of a figure's smallest text, as lib.plots recorded it in the PNG (None if it
    did not), and the PNG's dots per inch."""
    from PIL import Image

    with Image.open(path) as im:
        recorded, dpi = getattr(im, "text", {}).get(MIN_FONT_KEY), im.info.get("dpi")
    return (None if recorded is None else float(recorded)), float(dpi[0]) if dpi else CSS_PX_PER_INCH


def test_figures_are_legible_described_and_open_at_full_size(rendered):
    problems = []
    for name, layout in _laid_out(rendered).items():
        for img in layout["images"]:
            path = Path(unquote(urlparse(img["src"]).path))
            label = f"{name}: {path.name[:12]}"
            alt = img["alt"].strip()
            if not alt or alt.endswith((".png", ".svg", ".jpg")) or "_images/" in alt:
                problems.append(f"{label}: alt text is {alt!r}, not a description")
            if not img["output"]:
                continue
            if not img["link"].endswith(path.name):
                problems.append(f"{label}: not a link to the image at full size")
            smallest, dpi = png_record(path)
            scale = dpi * img["shown"] / (img["natural"] * CSS_PX_PER_INCH)  # shown size over size in inches
            if smallest is None:
                problems.append(f"{label}: the PNG records no text size: not rendered with lib.plots.set_theme()")
            elif smallest * scale < MIN_PT - 0.05:
                problems.append(
                    f"{label}: smallest text shows at {smallest * scale:.1f} pt (< {MIN_PT:g}), "
                    f"{img['shown']:.0f} px wide"
                )
            size = img["natural"] * CSS_PX_PER_INCH / dpi  # CSS px at its size in inches
            if img["shown"] < min(size, img["column"]) - 2:
                problems.append(f"{label}: shown {img['shown']:.0f} px wide, below its size ({size:.0f} px)")
    assert not problems, "figures a reader cannot read:\n" + "\n".join(problems)


def test_every_table_column_is_reachable_with_the_first_in_view(rendered):
    problems = []
    for name, layout in _laid_out(rendered).items():
        for t in layout["tables"]:
            if t["fits"]:
                continue
            if not t["scrolls"]:
                problems.append(f"{name}: table {t['head']!r} runs off the page: its last columns cannot be reached")
            elif t["sticky"] != "sticky":
                problems.append(f"{name}: table {t['head']!r} scrolls sideways but its first column does not stay")
        if layout["cut"]:
            problems.append(f"{name}: {layout['cut']} marks of a table pandas cut short ('...', 'N rows × M columns')")
    assert not problems, "\n".join(problems)


def test_nothing_is_painted_black(rendered):
    black = {name: layout["black"] for name, layout in _laid_out(rendered).items() if layout["black"]}
    assert not black, f"elements painted black (an empty table cell reads as empty): {black}"


# The Evidence page, read alone: the verdict column in view, no cell painted black, forest plots with captions.
EVIDENCE_PAGE = HTML / "book" / "evidence.html"
EVIDENCE_LAYOUT = """() => {
    const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
    const right = Math.min(article.getBoundingClientRect().right + 1, window.innerWidth);
    const inView = e => {  // the right edge a reader sees of e's box: the article's, or a scrolling box's
        let r = right;
        for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
            if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) {
                r = Math.min(r, p.getBoundingClientRect().right);
            }
        }
        return r;
    };
    const tables = Array.from(article.querySelectorAll('table.evidence-claims')).map(t => {
        const head = t.querySelector('th.verdict');
        return {head: !!head, right: head ? head.getBoundingClientRect().right : 0, seen: head ? inView(head) : 0,
                rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
                chips: t.querySelectorAll('td.verdict .verdict-chip').length};
    });
    const black = Array.from(article.querySelectorAll('td, th, td *, th *')).filter(c =>
        ['rgb(0, 0, 0)', 'rgba(0, 0, 0, 1)'].includes(getComputedStyle(c).backgroundColor))
        .map(c => c.tagName + ': ' + c.innerText.slice(0, 40));
    const notRun = Array.from(article.querySelectorAll('.not-run')).map(c => getComputedStyle(c).backgroundColor);
    const figures = Array.from(article.querySelectorAll('.cell_output img')).map(i => {
        const caption = i.closest('figure') && i.closest('figure').querySelector('figcaption');
        return {image: i.src.split('/').pop(), caption: caption ? caption.innerText.trim() : ''};
    });
    return {tables, black, notRun, figures};
}"""


@pytest.fixture(scope="module")
def evidence_page() -> dict:
    """What a reader's 1280-pixel browser shows of the Evidence page (:data:`EVIDENCE_LAYOUT`)."""
    from playwright.sync_api import sync_playwright

    if not EVIDENCE_PAGE.exists():
        pytest.fail(f"no {EVIDENCE_PAGE.relative_to(HTML)} in {HTML}: build the book first")
    with tempfile.TemporaryDirectory(prefix="book-render-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        tab = ctx.new_page()
        tab.goto(EVIDENCE_PAGE.as_uri(), wait_until="load")
        seen = tab.evaluate(EVIDENCE_LAYOUT)
        ctx.close()
    return seen


def test_the_evidence_verdict_column_is_in_view_without_scrolling_sideways(evidence_page):
    tables = evidence_page["tables"]
    assert tables, "the Evidence page shows no table of claims with their verdicts"
    for i, t in enumerate(tables):
        assert t["head"], f"Evidence table {i + 1} has no verdict column"
        assert t["right"] <= t["seen"] + 0.5, (
            f"Evidence table {i + 1}: its verdict column ends at {t['right']:.0f} px, past what the page shows "
            f"({t['seen']:.0f} px) at 1280 px"
        )
        assert t["rows"] and t["chips"] == t["rows"], f"Evidence table {i + 1}: a claim has no verdict"


def test_no_evidence_table_cell_is_painted_black(evidence_page):
    assert not evidence_page["black"], f"Evidence table cells painted black: {evidence_page['black'][:5]}"

    def light(colour: str) -> bool:
        values = [float(v) for v in re.findall(r"[\d.]+", colour)[:3]]
        return len(values) == 3 and min(values) >= 200

    dark = [c for c in evidence_page["notRun"] if not light(c)]
    assert not dark, f"conditions a claim was not run in should read 'not run' on light grey, not on {dark[:3]}"


def test_the_forest_plots_have_numbered_captions(evidence_page):
    figures = evidence_page["figures"]
    assert figures, "the Evidence page shows no forest plot"
    bare = [f["image"] for f in figures if not re.match(r"Fig\. \d+", f["caption"])]
    assert not bare, f"Evidence figures without a numbered caption: {bare}"
    numbers = [int(re.match(r"Fig\. (\d+)", f["caption"]).group(1)) for f in figures]
    assert numbers == sorted(set(numbers)), f"figure numbers out of order or repeated: {numbers}"


def test_no_temporary_paths_or_parameter_cells(rendered):
    problems = []
    for name, layout in _laid_out(rendered).items():
        if "/tmp/" in layout["text"]:
            at = layout["text"].index("/tmp/")
            problems.append(f"{name}: a temporary path: {layout['text'][max(0, at - 40) : at + 40]!r}")
        if layout["parameters"]:
            problems.append(f"{name}: {layout['parameters']} parameters cell(s) shown")
    assert not problems, "\n".join(problems)


def test_sidebar_lists_the_chapters_before_evidence(rendered):
    for name, layout in _laid_out(rendered).items():
        links = [h.split("#")[0].rsplit("/", 1)[-1] for h in layout["sidebar"]]
        chapters = [i for i, h in enumerate(links) if re.match(r"0[1-9]_", h)]
        evidence = [i for i, h in enumerate(links) if h.startswith("evidence")]
        if chapters and evidence:
            assert max(chapters) < min(evidence), f"{name}: the sidebar lists Evidence before a chapter: {links}"
            return
    pytest.fail("no page's sidebar lists both the chapters and the Evidence page")


def test_repository_and_launch_buttons_only_for_a_given_repository(rendered):
    url = os.environ.get("BOOK_REPOSITORY_URL", "").strip().rstrip("/")
    repo = urlparse(url).path.strip("/") if url else ""
    for name, layout in _laid_out(rendered).items():
        wrong = [h for h in layout["buttons"] if not (repo and repo in h)]
        assert not wrong, f"{name}: buttons to {wrong}, " + (
            f"not to {url}" if url else "but no repository was given (BOOK_REPOSITORY_URL)"
        )


RECORDED_PAGES = ROOT / "evidence" / "pages"


def test_a_recorded_page_shows_its_run_in_its_banner(rendered):
    recorded = sorted(RECORDED_PAGES.glob("*.ipynb"))
    if not recorded:
        pytest.skip("evidence/pages/ holds no recorded page yet: `make evidence` copies them")
    import json

    laid_out = _laid_out(rendered)
    for path in recorded:
        run = json.loads(path.read_text())["metadata"]["recorded_run"]
        name = f"book/{path.stem}.html"
        assert name in laid_out, f"{path.name} is recorded but the book has no page {name}"
        text = laid_out[name]["text"]
        assert "Recorded run on" in text and run["point"] in text, f"{name}: no banner naming the recorded run"
        assert "Quick run on 8x8 digits" not in text, f"{name}: shows the executed digits run, not the recorded one"
        # its claims table gives the ledger's verdicts now, not those the run saw before its own recording
        from lib.verdicts import STALE, replicated

        if not replicated(chapter=run["chapter"]).stale.any():
            assert STALE not in text and "Stale evidence" not in text, f"{name}: current evidence shown as stale"


FIRST_SCREEN = 800  # px: what a 1280 x 800 window shows before any scrolling
CHAPTER_PAGE = re.compile(r"^book/0[1-5]_\w+\.html$")


def test_the_landing_page_has_the_results_table(rendered):
    laid_out = _laid_out(rendered)
    assert "book/intro.html" in laid_out, "the book has no landing page book/intro.html"
    tables = laid_out["book/intro.html"]["landing"]
    assert len(tables) == 1, f"the landing page shows {len(tables)} results tables, not one"
    t = tables[0]
    chapters = sorted(n for n in laid_out if CHAPTER_PAGE.match(n))
    assert t["chapters"] == len(chapters) == 5, f"{t['chapters']} chapter groups in the results table"
    assert t["claims"] and all(c["chip"] for c in t["claims"]), "a claim of the results table has no verdict"
    linked = {Path(urlparse(c["link"]).path).name for c in t["claims"]}
    assert linked == {Path(n).name for n in chapters}, f"the results table links to {sorted(linked)}"
    assert t["fits"], "the results table runs off the page"


def test_each_chapter_opens_with_its_verdict_box(rendered):
    ends = {}
    for name, layout in sorted(_laid_out(rendered).items()):
        if not CHAPTER_PAGE.match(name):
            continue
        boxes = layout["verdict"]
        assert len(boxes) == 1, f"{name}: {len(boxes)} verdict boxes, not one"
        box = boxes[0]
        assert box["top"] < FIRST_SCREEN, (
            f"{name}: the verdict box starts at {box['top']:.0f} px, below the first screen"
        )
        assert box["items"] and box["chips"] >= box["items"], f"{name}: a claim of the verdict box has no verdict"
        assert not box["missing"], f"{name}: verdict-box links to no section of the page: {box['missing']}"
        ends[name] = round(box["bottom"])
    assert len(ends) == 5, f"verdict boxes on {sorted(ends)}: not every chapter"
    print("verdict boxes end at (px from the top of the page):", ends)
