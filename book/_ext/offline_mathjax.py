"""Serve MathJax 3 from the built book itself, so math renders with no network.

The files come from the ``django-static-mathjax`` wheel (MathJax 3.2.2, no
dependencies); only what ``tex-chtml.js`` loads is copied into ``_static/mathjax``.
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


def setup(app):
    _source()  # fail early, with an ImportError naming the package, if it is missing
    app.config.mathjax_path = "mathjax/tex-chtml.js"
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
