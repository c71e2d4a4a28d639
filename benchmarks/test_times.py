"""How long the README's two test commands take: the whole suite and the quick subset (`-m "not slow"`), each run here
as the README gives it, timed from the outside. Each measured command's seconds and pytest's summary line go into the
results file (kept for the commands not run this time), which `python scripts/results_tables.py test_times` prints.

    python benchmarks/test_times.py quick whole --out benchmarks/results/test_times.json
"""
from __future__ import annotations

import argparse, json, subprocess, sys, time
from pathlib import Path

from dudek.config import provenance
from dudek.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"whole": ["-m", "pytest", "-q", "-n", "2", "tests"], "quick": ["-m", "pytest", "-q", "-n", "2", "-m", "not slow", "tests"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", nargs="+", choices=sorted(COMMANDS))
    p.add_argument("--out", type=Path, help="results file (JSON), updated command by command")
    a = p.parse_args(argv)
    results = json.loads(a.out.read_text())["runs"] if a.out and a.out.is_file() else {}
    for name in a.which:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, *COMMANDS[name]], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        summary = (r.stdout.strip().splitlines() or [""])[-1]
        print(f"{name}: {seconds:.0f} s, {summary}", flush=True)
        if r.returncode != 0: sys.exit(f"error: {name}: the tests failed (exit {r.returncode}); nothing written")
        results[name] = {"command": "python " + " ".join(COMMANDS[name]), "seconds": round(seconds, 1), "summary": summary,
                         **provenance(" ".join(["python", "benchmarks/test_times.py", *map(str, argv or sys.argv[1:])]))}
        if a.out: atomic_write(a.out, json.dumps({"benchmark": "test_times", "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
