"""Quality of the course's recipe on the synthetic benchmark: old-label pretraining, then ball-action
fine-tuning, from the shipped vision checkpoint, scored on held-out games by Team-mAP@1.

    python benchmarks/train_quality.py                       # the tiny profile, this machine
    python benchmarks/train_quality.py --pretrain-epochs 0   # fine-tuning only (no pretraining)
    python benchmarks/train_quality.py --set model.pretrained=   # from random weights

Missing data folders are generated first (the exact `synthesize` calls are below): 7 training-league
games of 4 minutes with rare labels boosted and at least 2 events of every label-team pair each, 6 old-label games, and 2 held-out games of the same league
that hold at least 3 events of every label-team pair (so that every team AP is defined).
Prints a per-label table and, last, one JSON line with the scores and the training seconds.
"""
import argparse, json, sys, time
from pathlib import Path

from dudek.annotations import find_games
from dudek.labels import BALL_LABELS, get_codec
from dudek.metrics import json_ready
from dudek.synthetic import synthesize
from dudek.train import evaluate_games, load_trained, train_stage

DATA = {  # folder -> synthesize(...) keyword arguments
    "train": dict(n_games=7, minutes=4.0, seed=0, rare_boost=3.0, min_events_per_class=2),
    "old": dict(n_games=6, minutes=4.0, seed=2, kind="actions"),
    "test": dict(n_games=2, minutes=6.0, seed=1, min_events_per_class=3),
}


def ensure(folder: Path, kwargs: dict) -> Path:
    if not (folder.exists() and find_games(folder)):
        t0 = time.perf_counter()
        synthesize(folder, **kwargs)
        print(f"generated {folder} in {time.perf_counter() - t0:.0f} s: {kwargs}", file=sys.stderr)
    return folder


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synthetic")
    p.add_argument("--old-data", default="data/synthetic-actions")
    p.add_argument("--test", default="data/synthetic-test")
    p.add_argument("--run", default="runs/quality")
    p.add_argument("--cache", default="data/cache", help="decoded-frame cache folder ('' = none)")
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=9)
    p.add_argument("--set", action="append", default=[], help="override for both stages, e.g. train.lr=1e-3")
    a = p.parse_args(argv)
    data, old, test = (ensure(Path(f), DATA[k]) for f, k in ((a.data, "train"), (a.old_data, "old"), (a.test, "test")))
    cache, run = a.cache or None, Path(a.run)
    stages = {}
    init = None
    if a.pretrain_epochs:
        stages["pretrain"] = train_stage("pretrain", run / "pretrain", data=old, overrides=[*a.set, f"train.epochs={a.pretrain_epochs}"],
                                         quiet=True, cache_dir=cache, resume=True)
        init = run / "pretrain" / "best.pt"
    stages["finetune"] = train_stage("finetune", run / "finetune", data=data, init=init, quiet=True, cache_dir=cache, resume=True,
                                     overrides=[*a.set, f"train.epochs={a.finetune_epochs}"])
    model, cfg = load_trained(run / "finetune" / "best.pt")
    t0 = time.perf_counter()
    scores = evaluate_games(model, find_games(test, kind="ball"), cfg, get_codec(cfg.model.head), cache_dir=cache, per_label=True)
    test_seconds = time.perf_counter() - t0
    print(f"{'label':26s} {'team AP':>8s} {'AP':>8s}")
    for label in BALL_LABELS: print(f"{label:26s} {scores['team_ap'][label]:8.3f} {scores['ap'][label]:8.3f}")
    train_seconds = {k: round(s["train_seconds"], 1) for k, s in stages.items()}
    print(f"Team-mAP@1 {scores['team_map']:.3f}   mAP@1 {scores['map']:.3f}   "
          f"training {sum(train_seconds.values()) / 60:.1f} min {train_seconds}")
    print(json.dumps(json_ready({"team_map": scores["team_map"], "team_map_present": scores["team_map_present"], "map": scores["map"],
                                 "team_ap": scores["team_ap"], "ap": scores["ap"], "train_seconds": train_seconds,
                                 "wall_seconds": {k: round(s["wall_seconds"], 1) for k, s in stages.items()},
                                 "test_seconds": round(test_seconds, 1), "best_epoch": stages["finetune"]["best"]["epoch"],
                                 "pretrain_epochs": a.pretrain_epochs, "finetune_epochs": a.finetune_epochs, "set": a.set})))


if __name__ == "__main__":
    main()
