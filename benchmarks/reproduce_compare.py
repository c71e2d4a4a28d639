"""Finished reproductions side by side: quality on both leagues and time per stage, by group (e.g. float32 against bf16).

Each group is a name and the `dudek reproduce` run folders of its seeds. For every run it reads `metrics.json` (the
held-out test games of the training league, tuned Soft-NMS) and `pipeline.json` (the seconds of each stage); the other
league's figures come from `metrics.json` too where the run scored it (`other_league`), else the run's fine-tuned model
is scored here on held-out games of the other league (`--other`, generated if missing, with the run's tuned Soft-NMS).
With `--overlap`, both leagues are scored here at that inference overlap, so that runs made with different overlaps
compare at one. It prints, per group, the mean and range over the seeds of Team-mAP@1 and mAP@1 on both
leagues, the per-label team AP, and the seconds of each stage; the results file holds the same with the date, commit,
machine and command.

    python benchmarks/reproduce_compare.py --group float32 runs/f32-s0 runs/f32-s1 --group bf16 runs/bf16-s0 runs/bf16-s1 \\
        --other data/synthetic-test-other --out benchmarks/results/precision_quality.json
"""
from __future__ import annotations

import argparse, json, sys
from pathlib import Path

from dudek.ablations import spread
from dudek.annotations import find_games
from dudek.infer import evaluate_games, load_spotter, read_params
from dudek.labels import BALL_LABELS, get_codec
from dudek.config import provenance
from dudek.files import atomic_write, json_ready
from dudek.pipeline import SIZES
from dudek.synthetic import synthesize

OTHER = SIZES["tiny"]["sets"]["test-other"]  # the tiny reproduction's own other-league games (runs since it scores them: metrics.json)


def one_run(run: Path, other: Path, overlap: int | None) -> dict:
    "The figures of one finished reproduction: both leagues' scores (at `overlap`, or the run's own) and its stage seconds."
    metrics = json.loads((run / "metrics.json").read_text())
    stages = {k: v["seconds"] for k, v in json.loads((run / "pipeline.json").read_text())["stages"].items()}
    model, cfg = load_spotter(run / "train" / "finetune" / "best.pt")
    params = run / "tune" / "params.json"
    if params.is_file(): cfg.post = read_params(params, cfg.post)
    if overlap is not None: cfg.data.overlap = overlap
    leagues = {}
    for league, folder in (("training_league", run / "data" / "test"), ("other_league", other)):
        own = metrics if league == "training_league" else metrics.get("other_league")
        if own is not None and overlap is None:  # the reproduction's own figures
            leagues[league] = {"team_map_at1": own["team_map_at1"], "map_at1": own["map_at1"],
                               "team_ap": {r["label"]: r["team_ap"] for r in own["per_label"]}}
            continue
        s = evaluate_games(model, find_games(folder, kind="ball"), cfg, get_codec(cfg.model.head), cache_dir=run / "cache", per_label=True)
        leagues[league] = {"team_map_at1": s["team_map"], "map_at1": s["map"], "team_ap": s["team_ap"]}
    validation = metrics.get("validation") or {}
    return {"run": str(run), **leagues, "reported": {"team_map_at1": metrics["team_map_at1"], "map_at1": metrics["map_at1"]},
            "validation": {"default": (validation.get("default") or {}).get("team_map"), "tuned": validation.get("team_map_at1_tuned")},
            "overlap": cfg.data.overlap, "stage_seconds": stages, "seconds": sum(stages.values())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
                   help="a group's name, then its reproduction run folders (one per seed)")
    p.add_argument("--other", type=Path, default=Path("data/synthetic-test-other"), help="held-out games of the other league")
    p.add_argument("--overlap", type=int, help="score both leagues at this inference overlap (default: the training league's figures "
                                               "as the run reported them, the other league at the run's own overlap)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    if not (a.other.exists() and find_games(a.other)): synthesize(a.other, **OTHER)
    groups = {}
    for name, *runs in a.group:
        per = [one_run(Path(r), a.other, a.overlap) for r in runs]
        summary = {league: {"team_map_at1": spread([r[league]["team_map_at1"] for r in per]),
                            "map_at1": spread([r[league]["map_at1"] for r in per]),
                            "team_ap": {lb: spread([r[league]["team_ap"][lb] for r in per]) for lb in BALL_LABELS}}
                   for league in ("training_league", "other_league")}
        stages = {k: spread([r["stage_seconds"][k] for r in per]) for k in per[0]["stage_seconds"]}
        groups[name] = {"runs": per, "summary": summary, "stage_seconds": stages, "seconds": spread([r["seconds"] for r in per])}
    fmt = lambda s: f"{s['mean']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
    for league in ("training_league", "other_league"):
        print(f"\n{league.replace('_', ' ')}: mean [min, max] over the seeds")
        print(f"{'':28s}" + "".join(f"{n:>26s}" for n in groups))
        for key in ("team_map_at1", "map_at1"): print(f"{key:28s}" + "".join(f"{fmt(g['summary'][league][key]):>26s}" for g in groups.values()))
        for lb in BALL_LABELS: print(f"{'team AP ' + lb:28s}" + "".join(f"{fmt(g['summary'][league]['team_ap'][lb]):>26s}" for g in groups.values()))
    print(f"\n{'seconds per stage':28s}" + "".join(f"{n:>26s}" for n in groups))
    for k in next(iter(groups.values()))["stage_seconds"]:
        print(f"{k:28s}" + "".join(f"{g['stage_seconds'][k]['mean']:>15.0f} [{g['stage_seconds'][k]['min']:.0f}, {g['stage_seconds'][k]['max']:.0f}]"
                                   if k in g["stage_seconds"] else f"{'-':>26s}" for g in groups.values()))
    print(f"{'all stages':28s}" + "".join(f"{g['seconds']['mean']:>15.0f} [{g['seconds']['min']:.0f}, {g['seconds']['max']:.0f}]" for g in groups.values()))
    results = json_ready({"benchmark": "reproduce_compare", **provenance(" ".join(["python", "benchmarks/reproduce_compare.py", *(argv or sys.argv[1:])])),
                          "groups": groups})
    if a.out: atomic_write(a.out, json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
