"""Where the other league breaks the model: Team-mAP@1 on the training league's test games with one factor of the
other league's look at a time (kits, keepers, grass, ball, zoom, light, shadow, stripes), all of them at once, and on
the other league's own test games, for the fine-tuned model of each finished `dudek reproduce` run (one per seed).

The factor sets are the reproduction's test games (`SIZES["tiny"]["sets"]["test"]`) made again with `--mix
other_league:<factor>`: the same games, events and camera, only that factor's look changed (`mixed_look`), so each
row's drop from the `none` row is that factor's cost alone. Scores use each run's tuned Soft-NMS (`tune/params.json`).
The results file holds, per set, each run's Team-mAP@1 and mAP@1, their mean and range, and the per-label team AP.

    python benchmarks/league_factors.py runs/r0 runs/r1 --games data/league-factors --out benchmarks/results/league_factors.json
"""
from __future__ import annotations

import argparse, json, sys, time
from pathlib import Path

from dudek.ablations import held_out_games, spread
from dudek.annotations import find_games
from dudek.infer import evaluate_games, load_spotter, read_params
from dudek.labels import BALL_LABELS, get_codec
from dudek.config import provenance
from dudek.files import atomic_write, json_ready
from dudek.pipeline import SIZES
from dudek.looks import FACTORS

TEST = SIZES["tiny"]["sets"]["test"]  # the games every factor set remakes


def factor_sets(games: Path) -> dict[str, Path]:
    "`{set: folder}`: `none` (the test games as they are), each factor, `all` factors, and the other league's own games; made where missing."
    specs = {"none": {**TEST, "mix": ""}, **{f: {**TEST, "mix": f"other_league:{f}"} for f in FACTORS},
             "all": {**TEST, "mix": "other_league:" + ",".join(FACTORS)}, "other_league": SIZES["tiny"]["sets"]["test-other"]}
    return {name: held_out_games(games / name, spec) for name, spec in specs.items()}


def one_run(run: Path, sets: dict[str, Path]) -> dict:
    "Team-mAP@1, mAP@1 and team AP per label of `run`'s fine-tuned model (its tuned Soft-NMS) on every set."
    model, cfg = load_spotter(run / "train" / "finetune" / "best.pt")
    if (run / "tune" / "params.json").is_file(): cfg.post = read_params(run / "tune" / "params.json", cfg.post)
    out = {}
    for name, folder in sets.items():
        t0 = time.perf_counter()
        s = evaluate_games(model, find_games(folder, kind="ball"), cfg, get_codec(cfg.model.head), cache_dir=run / "cache", per_label=True)
        out[name] = {"team_map_at1": s["team_map"], "map_at1": s["map"], "team_ap": s["team_ap"]}
        print(f"{run.name} {name:>13s}: Team-mAP@1 {s['team_map']:.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="finished `dudek reproduce` run folders (one per seed)")
    p.add_argument("--games", type=Path, default=Path("data/league-factors"), help="folder of the factor sets (made where missing)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    sets = factor_sets(a.games)
    per = {str(r): one_run(r, sets) for r in a.runs}
    table = {}
    for name in sets:
        tm = [r[name]["team_map_at1"] for r in per.values()]
        base = [r["none"]["team_map_at1"] for r in per.values()]
        table[name] = {"team_map_at1": spread(tm), "map_at1": spread([r[name]["map_at1"] for r in per.values()]),
                       "cost": spread([b - t for b, t in zip(base, tm)]),  # the drop from the unchanged games, run by run
                       "team_ap": {lb: spread([r[name]["team_ap"][lb] for r in per.values()]) for lb in BALL_LABELS}}
    fmt = lambda s: f"{s['mean']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
    print(f"\n{'set':14s}{'Team-mAP@1':>26s}{'cost':>26s}{'mAP@1':>26s}   (mean [min, max] over {len(per)} runs)")
    for name, row in table.items(): print(f"{name:14s}{fmt(row['team_map_at1']):>26s}{fmt(row['cost']):>26s}{fmt(row['map_at1']):>26s}")
    results = json_ready({"benchmark": "league_factors", **provenance(" ".join(["python", "benchmarks/league_factors.py", *map(str, argv or sys.argv[1:])])),
                          "factors": {f: list(fields) for f, (fields, _) in FACTORS.items()}, "games": TEST, "runs": per, "table": table})
    if a.out: atomic_write(a.out, json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
