"""Run every chapter notebook top to bottom: one pytest test per notebook.

A thin wrapper over nbdev's runner (`nbdev.test.test_nb`) that also leaves out the cells tagged
`skip-execution`, the tag papermill's executor honours, so tests and the pipeline skip the same cells.
"""
import json
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_notebook

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))


def without_skipped_cells(src: Path, dst: Path) -> Path:
    "Copy notebook `src` to `dst` without its `skip-execution` cells."
    nb = json.loads(src.read_text())
    nb["cells"] = [c for c in nb["cells"] if "skip-execution" not in c.get("metadata", {}).get("tags", [])]
    dst.write_text(json.dumps(nb))
    return dst


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("DUDEK_QUIET", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runnable = without_skipped_cells(notebook, tmp_path / notebook.name)
    ok, seconds = run_notebook(runnable, skip_flags=["notest"], profile=False, showerr=True)
    assert ok, f"{notebook.name} failed (see the traceback above)"
