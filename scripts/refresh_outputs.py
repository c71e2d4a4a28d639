"""Execute chapter notebooks in place at their default parameters, so that GitHub and a freshly opened notebook show
each chapter's printed examples and figures; then `nbdev-clean` keeps only what nbdev allows.

    python scripts/refresh_outputs.py                  # every chapter (it prints each one's seconds)
    python scripts/refresh_outputs.py 05_explore 06_metrics --jobs 2

Cells tagged `skip-execution` are left out, as under the tests and papermill. A chapter that raises is left as it was
and named at the end (exit 1). Outputs are kept reviewable: figures as JPEG at 72 dpi, a text output cut at `MAX_CHARS`.
`tests/test_chapters.py` fails when a committed output is an error, or when a chapter that draws has no figure.
"""
from __future__ import annotations

import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
MAX_CHARS = 4000  # of one text output
SETUP = "%config InlineBackend.figure_formats = ['jpeg']\n%config InlineBackend.rc = {'figure.dpi': 72}"  # (video frames: a PNG is 5x the size)


def chapters() -> list[Path]:
    "Every chapter notebook (the index is the README: it stays as written)."
    return [p for p in sorted(NBS.glob("*.ipynb")) if not p.name.startswith("_") and p.stem != "index"]


def trim(nb) -> None:
    "Cut long text outputs, so that a chapter stays reviewable."
    for c in nb.cells:
        for o in c.get("outputs", []):
            text = o.get("text") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain")
            if isinstance(text, str) and len(text) > MAX_CHARS:
                cut = text[:MAX_CHARS] + f"\n... ({len(text) - MAX_CHARS} more characters)\n"
                if o.get("output_type") == "stream": o["text"] = cut
                else: o["data"]["text/plain"] = cut


def refresh(path: Path) -> tuple[str, float, str | None]:
    "Execute `path` in place; its name, seconds and the error (None if it ran)."
    t0 = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    setup = nbformat.v4.new_code_cell(SETUP)
    nb.cells.insert(0, setup)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", skip_cells_with_tag="skip-execution",
                            resources={"metadata": {"path": str(NBS)}})
    try: client.execute(env={**os.environ, "DUDEK_QUIET": "1"})
    except Exception as e: return path.stem, time.perf_counter() - t0, f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
    nb.cells.remove(setup)
    trim(nb)
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    return path.stem, time.perf_counter() - t0, None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="chapters (file stems) to refresh; default: all")
    p.add_argument("--jobs", type=int, default=1, help="chapters executed at once")
    a = p.parse_args(argv)
    todo = [NBS / f"{n}.ipynb" for n in a.names] if a.names else chapters()
    missing = [str(t) for t in todo if not t.is_file()]
    if missing: sys.exit(f"error: no chapter {missing[0]}")
    with ThreadPoolExecutor(a.jobs) as pool:
        done = []
        for name, seconds, error in pool.map(refresh, todo):
            print(f"{name:20} {seconds:6.1f} s  {error or 'ok'}", flush=True)
            done.append((name, error))
    subprocess.run([str(Path(sys.executable).with_name("nbdev-clean"))], cwd=ROOT, check=True)  # (the venv's)
    failed = [n for n, e in done if e]
    if failed: print(f"left as they were (they raised): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
