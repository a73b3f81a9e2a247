"""HTML fixes for the book: offline MathJax and no duplicated inline scripts.

MathJax 3 is served from the built book itself, so math renders with no network.
The files come from the ``django-static-mathjax`` wheel (MathJax 3.2.2, no
dependencies); only what ``tex-chtml.js`` loads is copied into ``_static/mathjax``.

sphinx-thebe's inline configuration script is registered twice under jupyter-book
1.x, which declares ``const THEBE_JS_URL`` twice: a JavaScript error on every page.
Identical script entries are dropped from each page's context.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors")


def _source() -> Path:
    import mathjax  # the django-static-mathjax package

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _copy(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    src, dest = _source(), Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        s, d = src / part, dest / part
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # same file (None and "" both mean an inline body) and attributes, whatever the priority
        key = (getattr(js, "filename", None) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    _source()  # fail early, with an ImportError naming the package, if it is missing
    app.config.mathjax_path = "mathjax/tex-chtml.js"
    app.connect("build-finished", _copy)
    app.connect("html-page-context", _dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
