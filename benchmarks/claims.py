"""The write-up's claims at the recipe's schedule: every row of the ablation table (`dudek.ablations.ROWS`) trains what
`dudek reproduce` trains (the `tiny` profile and its sizes, colour jitter included) with each seed, and is scored on
held-out games of the training league and of the other league. It is `dudek reproduce --ablations` for the README's
table: rows and seeds are resumable one by one, also from the rows of an earlier results file (`--resume-from`), and
`--variants` limits a sitting to some rows (the baseline's always among them), so that the table, 18 trainings of
minutes each on a 2-core CPU (the results file's `train_minutes`), can be measured over several sittings. The
results file is written again after each variant and seed, so a sitting cut short keeps every row it finished.
The rows train as `dudek reproduce` trains, in its precision (`train.amp`: bf16 on a CPU that has it, float32 on
one that does not), so that on the same kind of CPU the baseline's models are the headline's own, seed for seed.
Precision and vector unit (AVX2, AVX512: the same seed in float32 trains another model) change what a seed gives,
so a row compares with the baseline only on the seeds trained alike (`dudek.ablations.row_precision`), and a table
is continued on the same kind of CPU.

    python benchmarks/claims.py runs/r0/data --work runs/claims --out benchmarks/results/ablations_tiny.json \\
        --resume-from benchmarks/results/ablations_tiny.json
"""
from __future__ import annotations

import argparse, json, sys
from pathlib import Path

from dudek import ablations as A
from dudek.config import provenance
from dudek.files import atomic_write, json_ready
from dudek.pipeline import ABLATION_SIZES


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="a `dudek reproduce` run's data folder (train, old, val, test, test-other)")
    p.add_argument("--seeds", type=int, nargs="+", default=ABLATION_SIZES["tiny"]["seeds"])
    p.add_argument("--variants", nargs="+", choices=sorted({r.variant for r in A.ROWS}), help="only the rows of these variants (default: all)")
    p.add_argument("--work", type=Path, default=Path("runs/claims"), help="folder of the trained rows (resumable)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    p.add_argument("--resume-from", type=Path, help="an earlier results file of this benchmark: its finished rows are not trained again")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="configuration fields of every row (default: none, the reproduction's own; train.amp=false: float32 everywhere)")
    a = p.parse_args(argv)
    keep = {A.ROWS[0].variant, *(a.variants or (r.variant for r in A.ROWS))}
    rows = [r for r in A.ROWS if r.variant in keep]
    tests = {"training_league": a.data / "test", "other_league": A.held_out_games(a.data / "test-other", ABLATION_SIZES["tiny"]["other"])}
    stamp = provenance(" ".join(["python", "benchmarks/claims.py", *map(str, argv or sys.argv[1:])]))
    held = a.resume_from is not None and a.resume_from.is_file()
    results = json.loads(a.resume_from.read_text())["results"] if held else {}  # the rows of earlier sittings stay, measured here or not

    def save(m: dict) -> dict:  # the rows of earlier variants and this one's so far, written after every row and seed
        merged = {**results, **{k: {**results.get(k, {}), **v} for k, v in m["results"].items() if v}}  # seed by seed
        m = {**m, "results": merged, "table": A.ablation_table(merged, [r for r in A.ROWS if merged.get(r.variant)], m["sizes"])}
        if a.out: atomic_write(a.out, json.dumps(json_ready({"benchmark": "claims", **stamp, **m}), indent=1) + "\n")
        return m

    for name in dict.fromkeys(r.variant for r in rows):  # variant by variant, all its seeds, so that each claim gets its seeds early
        m = save(A.measure(a.work, a.data, tests, [r for r in rows if r.variant in (rows[0].variant, name)], "tiny", {"seeds": a.seeds},
                           a.set, a.resume_from, on_row=save))
        results = m["results"]
    print(A.table_markdown(m["table"]))


if __name__ == "__main__":
    main()
