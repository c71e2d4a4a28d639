"""Does tuning Soft-NMS pay on held-out games? Tuned against untuned parameters, per trained model, on games nobody tuned on.

For each fine-tuned checkpoint (by default the two seeds of `benchmarks/train_quality.py`: `runs/quality/seed*/finetune/
best.pt`), this runs the chain a practitioner runs:

    dudek infer VAL  --checkpoint C --out ... --raw RAW_VAL       # validation games, scores saved
    dudek tune --raw RAW_VAL --labels VAL --trials N --out P       # an Optuna study on them
    dudek infer TEST --checkpoint C --out ... --raw RAW_TEST      # held-out games, scores saved

and scores the held-out games' saved scores with the checkpoint's own Soft-NMS parameters and with the tuned ones
(`dudek.tune.score_post`, the official Team-mAP@1). Prints a table per checkpoint and the mean and range over them.
Each checkpoint works in its own folder under `--out` (named by what tells its path from the others': `seed0`,
`seed1`), which a rerun continues: the saved scores are kept and the study is topped up to `--trials`.

    python benchmarks/tune_gain.py                                  # after benchmarks/train_quality.py
    python benchmarks/tune_gain.py --checkpoints a/best.pt b/best.pt --trials 300
    python benchmarks/tune_gain.py --checkpoints runs/r0/train/finetune/best.pt runs/r1/train/finetune/best.pt \
        --val runs/r0/data/val --test runs/r0/data/test --results benchmarks/results/tune_gain.json

`--results` writes the results file: per checkpoint its untuned (the checkpoint's own) and tuned Soft-NMS parameters,
Team-mAP@1 on the validation and held-out games with each, the trials and seconds; the held-out gain's mean, min and
max; the games; and the date, commit, machine and command.

Missing validation games are generated: 2 six-minute games of the training league (seed 4, at least 3 events of every
label-team pair, so that every team AP is defined), made like the quality benchmark's test games but with another seed.
"""
import argparse, glob, json, sys, time
from pathlib import Path

import numpy as np

from dudek.annotations import find_games
from dudek.config import PostConfig, provenance
from dudek.files import atomic_write, json_ready
from dudek.infer import infer, load_spotter
from dudek.synthetic import synthesize
from dudek.tune import score_post, tune, tuning_games
from dudek.video import video_info

VAL = dict(n_games=2, minutes=6.0, seed=4, min_events_per_class=3)


def one(ck: Path, val: Path, test: Path, out: Path, trials: int) -> dict:
    "Infer (with raw scores) on the validation and test games, tune on validation, score test with both parameter sets."
    t0 = time.perf_counter()
    if not (out / "raw-test").exists():
        infer(val, ck, out / "pred-val", raw=out / "raw-val", workers=1)
        infer(test, ck, out / "pred-test", raw=out / "raw-test", workers=1)
    infer_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tuned = tune(out / "raw-val", val, out / "params.json", trials=trials)
    tune_s = time.perf_counter() - t0
    _, cfg = load_spotter(ck)
    held = tuning_games(out / "raw-test", test)
    return {"checkpoint": str(ck), "default_post": cfg.post.__dict__, "tuned_post": tuned["post"],
            "val": {"default": tuned["default"]["team_map_present"], "tuned": tuned["team_map_present"]},
            "test": {"default": score_post(held, cfg.post), "tuned": score_post(held, PostConfig(**tuned["post"]))},
            "trials": tuned["trials"], "infer_s": round(infer_s, 1), "tune_s": round(tune_s, 1)}


def work_names(cks: list[Path]) -> list[str]:
    "A folder name per checkpoint: the parts of its path that differ from the others' (runs/quality/seed0/finetune/best.pt -> seed0)."
    parts = [ck.resolve().parts for ck in cks]
    if len(cks) == 1: return [cks[0].resolve().parent.parent.name]
    head = next((i for i in range(min(map(len, parts))) if len({q[i] for q in parts}) > 1), min(map(len, parts)))
    tail = next((i for i in range(1, min(map(len, parts)) - head + 1) if len({q[-i] for q in parts}) > 1), 1)
    names = ["-".join(q[head:len(q) - tail + 1]) or q[-1] for q in parts]
    if len(set(names)) < len(names): sys.exit(f"error: --checkpoints: the same checkpoint twice ({', '.join(map(str, cks))})")
    return names


def games_of(folder: Path) -> dict:
    "The folder, its games and their minutes of video."
    games = find_games(folder, kind="ball")
    return {"folder": str(folder), "games": [g.rel for g in games],
            "minutes": [round(video_info(g.video).grid_frames / 25 / 60, 2) for g in games if g.video is not None]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", nargs="+", default=None, help="fine-tuned checkpoints (default: runs/quality/seed*/finetune/best.pt)")
    p.add_argument("--val", default="data/synthetic-val", help="validation games (generated if missing)")
    p.add_argument("--test", default="data/synthetic-test", help="held-out games (those of the quality benchmark)")
    p.add_argument("--out", default="runs/tune-gain", help="work folder: each checkpoint's saved scores, study and params.json")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--results", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    cks = [Path(c) for c in (a.checkpoints or sorted(glob.glob("runs/quality/seed*/finetune/best.pt")))]
    if not cks: sys.exit("no checkpoints: run benchmarks/train_quality.py first, or pass --checkpoints")
    val, test = Path(a.val), Path(a.test)
    if not (val.exists() and find_games(val)): synthesize(val, **VAL)
    names = work_names(cks)
    results = [{"name": n, **one(ck, val, test, Path(a.out) / n, a.trials)} for n, ck in zip(names, cks)]
    for r in results:
        r["gain"] = r["test"]["tuned"]["team_map_present"] - r["test"]["default"]["team_map_present"]
        print(f"{r['checkpoint']}: validation Team-mAP@1 {r['val']['default']:.3f} -> {r['val']['tuned']:.3f} (tuned); held-out "
              f"{r['test']['default']['team_map_present']:.3f} -> {r['test']['tuned']['team_map_present']:.3f}; "
              f"tuned {r['tuned_post']}, {r['trials']} trials in {r['tune_s']:.0f} s")
    d = np.array([r["gain"] for r in results])
    gain = {"mean": float(d.mean()), "min": float(d.min()), "max": float(d.max()), "n": len(d)}
    print(f"held-out gain of tuning, Team-mAP@1: mean {d.mean():+.3f} [{d.min():+.3f}, {d.max():+.3f}] over {len(d)} model(s)")
    print(json.dumps({"results": results, "gain": gain}))
    if a.results:
        out = {"benchmark": "tune_gain", **provenance(" ".join(["python", "benchmarks/tune_gain.py", *map(str, argv or sys.argv[1:])])),
               "trials": a.trials, "val": games_of(val), "test": games_of(test), "results": results, "gain": gain,
               "seconds": round(time.perf_counter() - t_start)}
        atomic_write(a.results, json.dumps(json_ready(out), indent=1) + "\n")


if __name__ == "__main__":
    main()
