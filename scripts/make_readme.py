"""Write README.md from nbs/index.ipynb without Quarto (nbdev-readme needs Quarto, not installable offline).

Markdown cells are copied as they are, code cells become ```python blocks; outputs are left out.
Run from the repository root: `python scripts/make_readme.py [--check]` (--check: exit 1 if README.md is stale).
"""
import sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent


def readme_text() -> str:
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code": cell.outputs = []
    body, _ = MarkdownExporter(exclude_output=True).from_notebook_node(nb)
    note = "<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file -->\n\n"
    return note + body.strip() + "\n"


if __name__ == "__main__":
    text, target = readme_text(), ROOT / "README.md"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run python scripts/make_readme.py")
    else:
        target.write_text(text)
