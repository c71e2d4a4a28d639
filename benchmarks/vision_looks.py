"""A vision stage that saw many looks: does it carry the spotting model to another league? The first vision stage
(ImageNet's stand-in) learned to see on 24 games of the training league's look: a white ball, six kits, one green. It
has none of ImageNet's variety, and the other league's yellow ball is where the model breaks (`league_factors.py`).
This benchmark continues that stage for 8 epochs on 24 games whose every look is drawn wide (`--league
varied_looks`: any two kits, any bright ball, greens from dull to deep, zoom, light and shadow; 30 epochs from scratch
take 95 min in float32 on a 2-core AVX2 CPU, 8 more take a quarter of that), then trains the recipe on each encoder
with the same seeds, in float32, and scores both on held-out games of three looks: the training league and the other
league (the reproduction's test games) and the third league, whose validation games decide what to adopt. The spotting
model still trains on one league's games; only what its backbone learned to see before changes. Everything resumes:
the vision stage from its last epoch, the rows seed by seed, also from an earlier results file (`--resume-from`).

Its encoder is the shipped one since 2026-12-07 (`dudek/assets/vision_backbone.pt`, provenance beside it). The stage
it starts from, shipped before, is kept as `benchmarks/results/vision_base_backbone.pt`, so that this benchmark still
measures the same two encoders.

    python benchmarks/vision_looks.py runs/r0/data --seeds 0 1 --work runs/vision-looks --out benchmarks/results/vision_looks.json
"""
from __future__ import annotations

import argparse, json, sys, time
from pathlib import Path

from dudek import ablations as A
from dudek.config import provenance
from dudek.files import atomic_write, json_ready
from dudek.pipeline import ABLATION_SIZES
from dudek.looks import VARIED

VISION_GAMES = dict(n_games=24, minutes=4.0, seed=4, rare_boost=3.0, min_events_per_class=1)  # the shipped stage's (its provenance)
BASE = Path(__file__).resolve().parent / "results" / "vision_base_backbone.pt"  # the training league's vision stage (shipped until 2026-12-07)
VISION_SET = ["train.threads=2", "train.epochs=8", "train.amp=false", f"model.pretrained={BASE}"]  # from it, in float32 on every machine


def varied_encoder(work: Path) -> tuple[Path, dict]:
    "The training league's vision stage, 8 epochs more on 24 games of varied looks (resumable); its path and seconds."
    out, t0, made = work / "backbone.pt", time.perf_counter(), not (work / "games").is_dir()
    data = A.held_out_games(work / "games", {**VISION_GAMES, "league": VARIED})  # (made if missing)
    synth = time.perf_counter() - t0 if made else None  # (None: made by an earlier sitting)
    if not out.is_file(): A.resumable_train("vision", work / "run", data=data, overrides=VISION_SET, cache_dir=work / "cache", export=out)
    return out, {"synthesize": synth, "vision_stage": json.loads((work / "run" / "summary.json").read_text())["wall_seconds"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="a `dudek reproduce` run's data folder (train, old, val, test, test-other)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--work", type=Path, default=Path("runs/vision-looks"), help="folder of the vision stage and the trained rows (resumable)")
    p.add_argument("--third", type=Path, default=Path("data/third-league-val"), help="the third look's validation games (made if missing)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write, again after every row and seed")
    p.add_argument("--resume-from", type=Path, help="an earlier results file of this benchmark: its finished rows are not trained again")
    a = p.parse_args(argv)
    encoder, seconds = varied_encoder(a.work / "vision")
    A.VARIANTS["base_vision"] = A.Variant("base_vision", weights=str(BASE))  # pretrained and fine-tuned from it
    A.VARIANTS["varied_vision"] = A.Variant("varied_vision", weights=str(encoder.resolve()))
    rows = (A.Row("baseline", "the recipe (the vision stage of the training league's look)", "base_vision"),
            A.Row("vision stage", "the vision stage 8 epochs more on 24 games of varied looks", "varied_vision"))
    tests = {"training_league": a.data / "test", "other_league": A.held_out_games(a.data / "test-other", ABLATION_SIZES["tiny"]["other"]),
             "third_league": A.held_out_games(a.third, A.THIRD_LEAGUE_VAL)}
    stamp = provenance(" ".join(["python", "benchmarks/vision_looks.py", *map(str, argv or sys.argv[1:])]))
    save = lambda m: a.out and atomic_write(a.out, json.dumps(json_ready({"benchmark": "vision_looks", **stamp, "vision_games": VISION_GAMES,
                                                                           "vision_set": VISION_SET, "vision_seconds": seconds, "third": A.THIRD_LEAGUE_VAL, **m}), indent=1) + "\n")
    m = A.measure(a.work / "rows", a.data, tests, rows, "tiny", {"seeds": a.seeds}, ["train.amp=false"], a.resume_from, on_row=save)
    save(m)
    print(A.table_markdown(m["table"]))


if __name__ == "__main__":
    main()
