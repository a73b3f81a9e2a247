"""HTML fixes for the book: offline MathJax, no duplicated inline scripts, no parameter
cells, figures with alt text and a link to their full size, honest repository buttons.

MathJax 3 is served from the built book itself, so math renders with no network.
The files come from the ``django-static-mathjax`` wheel (MathJax 3.2.2, no
dependencies); only what ``tex-chtml.js`` loads is copied into ``_static/mathjax``.

sphinx-thebe's inline configuration script is registered twice under jupyter-book
1.x, which declares ``const THEBE_JS_URL`` twice: a JavaScript error on every page.
Identical script entries are dropped from each page's context.

A notebook's ``parameters`` cell (and the ``injected-parameters`` cell papermill adds
in a run with parameters) is for whoever re-runs the notebook: it is left out of the
page, as a ``remove-cell`` tag would; jupyter-book 1.x has no setting that removes
cells by a tag of their own.

A figure's PNG carries its alt text (``Description``) when it was rendered by
:func:`lib.plots.figure_png`; an image of a notebook's output without alt text gets it
from there, and one without a width gets its size in inches (its PNG's dpi), so that
Sphinx links it to the image at full size (``html_scaled_image_link``).

Repository and launch buttons appear only when a repository URL is given: the
``BOOK_REPOSITORY_URL`` environment variable at build time (with
``BOOK_REPOSITORY_BRANCH``, default ``main``) turns on the repository button and
Binder's launch button, which builds the repository's ``environment.yml``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from docutils import nodes

PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors")
PARAMETER_TAGS = {"tag_parameters", "tag_injected-parameters"}
CSS_PX_PER_INCH = 96


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


def _drop_parameter_cells(app, doctree):
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") == "cell_code" and PARAMETER_TAGS & set(cell["classes"]):
            cell.parent.remove(cell)


def _png_facts(path: Path) -> tuple[str, float | None, int]:
    """A PNG's description, dpi (None if it records none) and width in pixels."""
    from PIL import Image

    with Image.open(path) as im:
        dpi = im.info.get("dpi")
        return str(getattr(im, "text", {}).get("Description", "")), (float(dpi[0]) if dpi else None), im.width


def _figure_images(app, doctree):
    docname = app.env.docname
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        if not uri.lower().endswith(".png") or "://" in uri:
            continue
        # Sphinx's image collector may already have made the URI relative to the source folder
        path = Path(app.srcdir) / image.get("candidates", {}).get("*", uri.lstrip("/"))
        if not path.is_file():
            path = Path(app.env.relfn2path(uri, docname)[1])
        if not path.is_file():
            continue
        description, dpi, width = _png_facts(path)
        if not image.get("alt"):
            image["alt"] = description or "Figure"
        if not any(k in image for k in ("width", "height", "scale")) and dpi:
            image["width"] = f"{round(width * CSS_PX_PER_INCH / dpi)}px"


def _buttons(app, config):
    """Repository and Binder buttons from ``BOOK_REPOSITORY_URL``, else as ``_config.yml`` has them."""
    url = os.environ.get("BOOK_REPOSITORY_URL", "").strip()
    if not url:
        return
    options = dict(config.html_theme_options or {})
    options.update(
        repository_url=url,
        repository_branch=os.environ.get("BOOK_REPOSITORY_BRANCH", "").strip() or "main",
        path_to_docs="",
        use_repository_button=True,
        launch_buttons={**options.get("launch_buttons", {}), "binderhub_url": "https://mybinder.org"},
    )
    config.html_theme_options = options


def setup(app):
    _source()  # fail early, with an ImportError naming the package, if it is missing
    app.config.mathjax_path = "mathjax/tex-chtml.js"
    app.connect("config-inited", _buttons)
    app.connect("build-finished", _copy)
    app.connect("html-page-context", _dedupe_scripts)
    app.connect("doctree-read", _drop_parameter_cells)
    app.connect("doctree-read", _figure_images)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
