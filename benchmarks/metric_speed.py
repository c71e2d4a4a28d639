"""Team-mAP@1 and mAP@1: dudek.metrics against the official SoccerNet scorer, side by side.

Two games of a 90-minute match (135,000 frames at 25 fps), each with 2,000 events (3% not shown) and
100,000 detections (jittered copies of most events, on the right or the wrong team, plus low-confidence
false alarms, as Soft-NMS with a low threshold leaves them). Two comparisons:

- scorer: from parsed cells to the numbers. Official = the team kit's dense 180,000 x 24 matrices
  written cell by cell + `SoccerNet.Evaluation.ActionSpotting.average_mAP` + the team weighting
  (`dudek.metrics.official_scores`), for Team-mAP@1 and mAP@1; ours = `spotting_scores`.
- files: from Labels-ball.json / results_spotting.json on disk. Official = json.load and the kit's
  reading rules (the `files_oracle` of tests/test_metrics.py) + the above; ours = `evaluate`, which
  validates every field through dudek.annotations.

Both must agree (to 1e-9; they agree exactly); the script prints the timings, the ratios and one JSON line.

    python benchmarks/metric_speed.py [--events 2000] [--detections 100000] [--games 2] [--seed 0]
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_metrics import files_oracle  # the independent raw-JSON reader of the tests

from dudek.labels import MERGED
from dudek.annotations import (Annotation, BallLabels, Prediction, Predictions, write_ball_labels, write_game_predictions,
                               frame_to_position, game_time_of)
from dudek.metrics import Spots, spotting_scores, official_scores, evaluate
from dudek.postprocess import LABEL_MIX

N_FRAMES = 90 * 60 * 25


def game(rng, n_events: int, n_dets: int):
    "Ground truth and detections of one game, as spots."
    mix = np.repeat(LABEL_MIX / LABEL_MIX.sum() / 2, 2)
    ef = np.sort(rng.choice(N_FRAMES, n_events, replace=False))
    ec = rng.choice(24, n_events, p=mix / mix.sum())
    ev = np.where(rng.random(n_events) < 0.03, -1.0, 1.0)
    n_copies = min(n_dets // 2, 3 * n_events)
    src = rng.integers(0, n_events, n_copies)
    df = np.concatenate([np.clip(ef[src] + np.rint(rng.normal(0, 6, n_copies)).astype(int), 0, N_FRAMES - 1),
                         rng.integers(0, N_FRAMES, n_dets - n_copies)])
    dc = np.concatenate([np.where(rng.random(n_copies) < 0.85, ec[src], ec[src] ^ 1), rng.choice(24, n_dets - n_copies, p=mix / mix.sum())])
    dv = np.concatenate([rng.beta(5, 2, n_copies), rng.beta(1, 12, n_dets - n_copies)])
    return Spots(ef, ec, ev), Spots(df, dc, dv)


def to_files(root: Path, games):
    "Write the games as Labels-ball.json files and a folder of results_spotting.json files."
    names = [MERGED.decode(c + 1) for c in range(24)]
    for g, (ev, det) in enumerate(games):
        rel = f"league/season/game {g}"
        anns = [Annotation(game_time_of(frame_to_position(int(f))), names[c][0], frame_to_position(int(f)), names[c][1],
                           "not shown" if v < 0 else "visible") for f, c, v in zip(ev.frame, ev.column, ev.value)]
        write_ball_labels(root / "labels" / rel / "Labels-ball.json", BallLabels(rel, None, anns))
        preds = [Prediction.at_frame(int(f), *names[c], float(v)) for f, c, v in zip(det.frame, det.column, det.value)]
        write_game_predictions(root / "preds", Predictions(rel, preds), rel)
    return [root / "labels" / f"league/season/game {g}" / "Labels-ball.json" for g in range(len(games))]


def best_of(fn, repeat: int):
    "Result of `fn()` and its best wall time over `repeat` runs."
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t0)
    return out, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000, help="events per game")
    ap.add_argument("--detections", type=int, default=100_000, help="detections per game")
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours (best kept); the official scorer runs once")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    games = [game(rng, args.events, args.detections) for _ in range(args.games)]
    events, dets = [g[0] for g in games], [g[1] for g in games]

    spotting_scores(events[:1], dets[:1])  # numba: compile or load the cached kernel before timing
    ours, t_ours = best_of(lambda: spotting_scores(events, dets), args.repeat)
    ref, t_official = best_of(lambda: official_scores(events, dets), 1)
    for a, b in ((ours.team_ap, ref["team_ap"]), (ours.ap, ref["ap"]), ([ours.team_map, ours.map], [ref["team_map"], ref["map"]])):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)

    with tempfile.TemporaryDirectory() as d:
        label_files = to_files(Path(d), games)
        res, t_files_ours = best_of(lambda: evaluate(Path(d) / "labels", Path(d) / "preds"), args.repeat)

        def official_files():
            objs = [json.loads((Path(d) / "preds" / f"league/season/game {g}" / "results_spotting.json").read_text())
                    for g in range(args.games)]
            return files_oracle(label_files, objs)
        ref_files, t_files_official = best_of(official_files, 1)
        np.testing.assert_allclose([res["team_map_at1"], res["map_at1"]], [ref_files["team_map"], ref_files["map"]],
                                   rtol=0, atol=1e-9, equal_nan=True)

    print(f"{args.games} games x {args.events} events x {args.detections} detections; "
          f"Team-mAP@1 {ours.team_map:.6f}, mAP@1 {ours.map:.6f} (both equal to the official scorer's)")
    print(f"{'':<8}{'official (s)':>14}{'dudek (s)':>12}{'speed-up':>10}")
    print(f"{'scorer':<8}{t_official:>14.3f}{t_ours:>12.4f}{t_official / t_ours:>9.0f}x")
    print(f"{'files':<8}{t_files_official:>14.3f}{t_files_ours:>12.4f}{t_files_official / t_files_ours:>9.1f}x"
          "   (ours validates every field of every file)")
    print(json.dumps({"benchmark": "metric_speed", "games": args.games, "events": args.events, "detections": args.detections,
                      "official_s": round(t_official, 4), "dudek_s": round(t_ours, 5), "ratio": round(t_official / t_ours, 1),
                      "files_official_s": round(t_files_official, 4), "files_dudek_s": round(t_files_ours, 4),
                      "files_ratio": round(t_files_official / t_files_ours, 2)}))


if __name__ == "__main__":
    main()
