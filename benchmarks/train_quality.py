"""Quality of the course's recipe on the synthetic benchmark: old-label pretraining, then ball-action
fine-tuning, from the shipped vision checkpoint, scored on held-out games by Team-mAP@1, over several
training seeds, on held-out games of the training league and of the other league.

    python benchmarks/train_quality.py                       # the tiny profile, seeds 0 and 1
    python benchmarks/train_quality.py --seeds 0 1 2         # three seeds
    python benchmarks/train_quality.py --pretrain-epochs 0   # fine-tuning only (no pretraining)
    python benchmarks/train_quality.py --set model.pretrained=   # from random weights

Missing data folders are generated first (the exact `synthesize` calls are below): 7 training-league
games of 4 minutes with rare labels boosted and at least 2 events of every label-team pair each, 6 old-label
games, and 2 held-out games of each league that hold at least 3 events of every label-team pair (so that
every team AP is defined). The data are the same for every seed; the seed (`seed`, the configuration's seed of every random generator) changes the
initialisation of the heads, the clips drawn and the augmentations. Each seed's scores are kept in
`RUN/seed<S>/scores.json`, so a rerun skips the seeds that finished.
Prints a per-label table (mean and range over the seeds) and, last, one JSON line with everything.
"""
import argparse, json, sys, time
from pathlib import Path

import numpy as np

from dudek.annotations import find_games
from dudek.labels import BALL_LABELS, get_codec
from dudek.files import json_ready
from dudek.synthetic import synthesize
from dudek.infer import evaluate_games, load_trained
from dudek.train import train_stage
from dudek.ablations import spread
from dudek.pipeline import SIZES

DATA = {  # folder -> synthesize(...) keyword arguments
    "train": dict(n_games=7, minutes=4.0, seed=0, rare_boost=3.0, min_events_per_class=2),
    "old": dict(n_games=6, minutes=4.0, seed=2, kind="old"),
    "test": dict(n_games=2, minutes=6.0, seed=1, min_events_per_class=3),
    "other": SIZES["tiny"]["sets"]["test-other"],  # the tiny reproduction's other-league games
}


def ensure(folder: Path, kwargs: dict) -> Path:
    if not (folder.exists() and find_games(folder)):
        t0 = time.perf_counter()
        synthesize(folder, **kwargs)
        print(f"generated {folder} in {time.perf_counter() - t0:.0f} s: {kwargs}", file=sys.stderr)
    return folder


def one_seed(seed: int, run: Path, data, old, tests: dict, a, cache) -> dict:
    "Train (or resume) the recipe with `train.seed=seed` into `run`, score it on every test set; cached in `run/scores.json`."
    done = run / "scores.json"
    if done.is_file(): return json.loads(done.read_text())
    common = [*a.set, f"seed={seed}"]
    stages, init = {}, None
    if a.pretrain_epochs:
        stages["pretrain"] = train_stage("pretrain", run / "pretrain", data=old, overrides=[*common, f"train.epochs={a.pretrain_epochs}"],
                                         quiet=True, cache_dir=cache, resume=(run / "pretrain" / "last.pt").exists())
        init = run / "pretrain" / "best.pt"
    stages["finetune"] = train_stage("finetune", run / "finetune", data=data, init=init, quiet=True, cache_dir=cache,
                                     resume=(run / "finetune" / "last.pt").exists(),
                                     overrides=[*common, f"train.epochs={a.finetune_epochs}"])
    model, cfg = load_trained(run / "finetune" / "best.pt")
    out = {"seed": seed, "train_seconds": {k: round(s["train_seconds"], 1) for k, s in stages.items()},
           "best_epoch": stages["finetune"]["best"]["epoch"], "leagues": {}}
    for name, folder in tests.items():
        t0 = time.perf_counter()
        s = evaluate_games(model, find_games(folder, kind="ball"), cfg, get_codec(cfg.model.head), cache_dir=cache, per_label=True)
        out["leagues"][name] = {"team_map": s["team_map"], "map": s["map"], "team_ap": s["team_ap"], "ap": s["ap"],
                                "test_seconds": round(time.perf_counter() - t0, 1)}
    done.write_text(json.dumps(json_ready(out)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synthetic")
    p.add_argument("--old-data", default="data/synthetic-old")
    p.add_argument("--test", default="data/synthetic-test")
    p.add_argument("--other-test", default="data/synthetic-test-other", help="held-out games of the other league ('' = none)")
    p.add_argument("--run", default="runs/quality")
    p.add_argument("--cache", default="data/cache", help="decoded-frame cache folder ('' = none)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (at least 2 for a comparison)")
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=9)
    p.add_argument("--set", action="append", default=[], help="override for both stages, e.g. train.lr=1e-3")
    a = p.parse_args(argv)
    data, old = ensure(Path(a.data), DATA["train"]), ensure(Path(a.old_data), DATA["old"])
    tests = {"training league": ensure(Path(a.test), DATA["test"])}
    if a.other_test: tests["other league"] = ensure(Path(a.other_test), DATA["other"])
    cache, run = a.cache or None, Path(a.run)
    results = [one_seed(s, run / f"seed{s}", data, old, tests, a, cache) for s in a.seeds]
    summary = {}
    for name in tests:
        per = [r["leagues"][name] for r in results]
        summary[name] = {"team_map": spread([r["team_map"] for r in per]), "map": spread([r["map"] for r in per]),
                         "team_ap": {lb: spread([r["team_ap"][lb] for r in per]) for lb in BALL_LABELS},
                         "ap": {lb: spread([r["ap"][lb] for r in per]) for lb in BALL_LABELS}}
        print(f"\n{name}: mean [min, max] over seeds {a.seeds}")
        print(f"{'label':26s} {'team AP':>22s} {'AP':>22s}")
        fmt = lambda s: "-" if s is None else f"{s['mean']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
        for lb in BALL_LABELS: print(f"{lb:26s} {fmt(summary[name]['team_ap'][lb]):>22s} {fmt(summary[name]['ap'][lb]):>22s}")
        print(f"{'Team-mAP@1':26s} {fmt(summary[name]['team_map']):>22s}   mAP@1 {fmt(summary[name]['map'])}")
    minutes = [sum(r["train_seconds"].values()) / 60 for r in results]
    print(f"training {np.mean(minutes):.1f} min per seed ({', '.join(f'{m:.1f}' for m in minutes)})")
    print(json.dumps(json_ready({"seeds": a.seeds, "summary": summary, "per_seed": results, "pretrain_epochs": a.pretrain_epochs,
                                 "finetune_epochs": a.finetune_epochs, "set": a.set})))


if __name__ == "__main__":
    main()
