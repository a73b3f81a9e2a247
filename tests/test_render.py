"""Open every page of the built book in headless Chromium and check what a reader sees.

Fails on raw, untypeset TeX, an image that does not load, a failed request for a
file of the book itself, or a JavaScript error. Needs ``_build/html`` (run after the
book build: ``make test`` does) and Debian's ``chromium``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.render

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
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


@dataclass
class Seen:
    """What a reader's browser showed of one page, or the error that stopped it from loading."""

    errors: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    text: str = ""
    broken: list = field(default_factory=list)
    math_nodes: tuple = (0, 0)
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
            profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
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
