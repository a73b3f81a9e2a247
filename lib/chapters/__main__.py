"""``python -m lib.chapters parameters-cell ch03``: print a chapter's parameters cell, generated from its PARAMS.

Paste the output into the notebook's cell tagged ``parameters``; ``tests/test_parameters.py``
fails while the two differ. A notebook's path or file name works too.
"""

from __future__ import annotations

import argparse

from . import NOTEBOOKS, chapter_name, parameters_cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.chapters", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cell = sub.add_parser("parameters-cell", help="print the parameters cell generated from a chapter's PARAMS")
    names = sorted(set(NOTEBOOKS.values()))
    cell.add_argument("chapter", help=f"a chapter ({', '.join(names)}) or its notebook")
    args = parser.parse_args(argv)
    name = args.chapter if args.chapter in names else chapter_name(args.chapter)
    if name is None:
        parser.error(f"{args.chapter!r} is no chapter nor a chapter's notebook; chapters: {', '.join(names)}")
    print(parameters_cell(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
