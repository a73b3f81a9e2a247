"""Open every page of the built book in headless Chromium and check what a reader sees.

Fails on raw, untypeset TeX, an image that does not load, a failed request for a
file of the book itself, or a JavaScript error. Needs ``_build/html`` (run after the
book build: ``make test`` does) and Debian's ``chromium``.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.render

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
]
# TeX that MathJax should have typeset: $...$, $$...$$, \( \), \[ \] around a command or ^/_
RAW_TEX = re.compile(r"(\$\$?[^$\n]*(\\[a-zA-Z]+|[\^_])[^$\n]*\$\$?)|\\\(|\\\[")


def pages() -> list[Path]:
    if not HTML.exists():
        return []
    return sorted(p for p in HTML.rglob("*.html")
                  if not (set(p.relative_to(HTML).parts) & SKIP_DIRS) and p.name not in ("genindex.html", "search.html"))


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium not found: install Debian's `chromium` package (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="book-render-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True,
                                                    args=CHROMIUM_ARGS)
        yield ctx
        ctx.close()


def test_book_was_built():
    assert (HTML / "index.html").exists(), "no _build/html/index.html: build the book first"
    assert len(pages()) >= 2


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(HTML)))
def test_page_renders(browser, page):
    tab = browser.new_page()
    errors, failed = [], []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("requestfailed", lambda req: failed.append(req.url) if req.url.startswith("file:") else None)
    tab.goto(page.as_uri(), wait_until="load")
    # MathJax typesets asynchronously: wait for it when the page loads it
    tab.wait_for_function("() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise ||"
                          " MathJax.startup.promise.then(() => true)", timeout=30_000)
    tab.wait_for_timeout(200)
    text = tab.evaluate("""() => {
        const main = document.querySelector('main') || document.body;
        const clone = main.cloneNode(true);
        clone.querySelectorAll('pre, code, script, style, mjx-container, .MathJax, mjx-assistive-mml')
             .forEach(e => e.remove());
        return clone.innerText;
    }""")
    broken = tab.evaluate("""() => Array.from(document.images)
        .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)""")
    math_nodes = tab.evaluate("() => [document.querySelectorAll('.math').length,"
                              " document.querySelectorAll('mjx-container').length]")
    tab.close()
    raw = [m.group(0) for m in RAW_TEX.finditer(text)]
    assert not raw, f"{page.name}: untypeset TeX: {raw[:5]}"
    assert not broken, f"{page.name}: images that did not load: {broken[:5]}"
    assert not failed, f"{page.name}: failed requests: {failed[:5]}"
    assert not errors, f"{page.name}: JavaScript errors: {errors[:5]}"
    marked, typeset = math_nodes
    assert typeset >= marked, f"{page.name}: {marked} math elements but only {typeset} typeset by MathJax"
