"""dudek.metrics against the official SoccerNet scorer, on random games and on the edge cases of its rules.

Two oracles: `official_scores` (the package's wrapper: dense matrices + `average_mAP` + team weighting)
for array-level checks, and `files_oracle` below, which reads the JSON files on its own the way the
team-spotting kit does (json.load, half from the first character of gameTime, no validation), so that
the reading rules of `dudek.metrics.evaluate` are checked independently of its own code.
"""
import json, math, subprocess, sys, zipfile
from pathlib import Path

import numpy as np
import pytest
import fastcore.test as ft

from dudek.labels import BALL_LABELS, TEAMS
from dudek.files import InputError, json_ready
from dudek.annotations import (Annotation, BallLabels, Prediction, Predictions, write_ball_labels,
                               write_game_predictions, write_submission, frame_to_position, game_time_of)
from dudek.metrics import (Spots, spotting_scores, official_scores, evaluate, simulate_predictions,
                           match_cells, cells, n_rows)

ROWS = n_rows()


def same(a, b, tol=1e-9):
    "Equal to `tol`, NaN equal to NaN and infinities equal to themselves."
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol, equal_nan=True)


def check_against_official(events, detections, tolerance=1):
    ours, ref = spotting_scores(events, detections, tolerance), official_scores(events, detections, tolerance)
    same(ours.team_ap, ref["team_ap"]); same(ours.ap, ref["ap"])
    same([ours.team_map, ours.map], [ref["team_map"], ref["map"]])
    return ours, ref


def random_game(rng, n_events=120, n_dets=1200, n_frames=20_000, n_cols=24):
    ef, ec = rng.integers(0, n_frames, n_events), rng.integers(0, n_cols, n_events)
    ev = np.where(rng.random(n_events) < 0.1, -1.0, 1.0)
    near = rng.integers(0, n_events, n_dets // 2)
    df = np.concatenate([np.maximum(ef[near] + rng.integers(-14, 15, len(near)), 0), rng.integers(0, n_frames, n_dets - len(near))])
    dc = np.concatenate([np.where(rng.random(len(near)) < 0.8, ec[near], rng.integers(0, 24, len(near))),
                         rng.integers(0, 24, n_dets - len(near))])
    return Spots(ef, ec, ev), Spots(df, dc, np.round(rng.random(n_dets), 2))  # rounded: many ties


# ---------------------------------------------------------------- array level, against average_mAP

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_games(seed):
    rng = np.random.default_rng(seed)
    games = [random_game(rng, n_cols=24 if seed else 20) for _ in range(2)]  # seed 0: labels 10, 11 without events
    ours, _ = check_against_official(*zip(*games))
    ft.test_eq(math.isnan(ours.team_map), seed == 0)


def test_tolerances():
    rng = np.random.default_rng(7)
    games = [random_game(rng, n_events=60, n_dets=600) for _ in range(2)]
    for t in (2, 5):
        check_against_official(*zip(*games), tolerance=t)


def test_12_frames_match_13_do_not():
    gt = Spots([1000, 5000], [0, 0], [1, 1])
    for offsets, hits in (([12, -12], [True, True]), ([13, -13], [False, False]), ([12, -13], [True, False])):
        det = Spots([1000 + offsets[0], 5000 + offsets[1]], [0, 0], [0.5, 0.5])
        ft.test_eq(match_cells(*cells(gt)[:1], *cells(det)).tolist(), hits)
        ours, _ = check_against_official([gt], [det])
        ft.test_eq(ours.columns["ap"][0] > 0, any(hits))


def test_greedy_and_ties():
    gt = Spots([100, 110, 400, 401], [2, 2, 2, 2], [1, 1, 1, 1])
    det = Spots([95, 105, 400, 401, 402], [2, 2, 2, 2, 2], [0.5, 0.9, 0.7, 0.7, 0.7])
    ft.test_eq(match_cells(cells(gt)[0], *cells(det)).tolist(), [False, True, True, True, False])
    check_against_official([gt], [det])


def test_duplicates_on_one_frame():
    gt = Spots([500, 800], [4, 5], [1, 1])
    # same cell three times (the last written wins), and a left and a right prediction on one frame
    det = Spots([500, 500, 500, 800, 800], [4, 4, 4, 4, 5], [0.9, 0.1, 0.6, 0.7, 0.3])
    k, v = cells(det)
    ft.test_eq(v.tolist(), [0.6, 0.7, 0.3])
    ft.test_eq(cells(det, team=False)[1].tolist(), [0.6, 0.3])  # team ignored: right's 0.3 overwrote left's 0.7
    check_against_official([gt], [det])


def test_not_shown_weights_and_nan():
    # label 0: left not shown only (weight -1), right visible x3 -> weighted mean outside [0, 1];
    # label 1: one visible left + one not shown right -> weights cancel (0 / 0 or x / 0);
    # label 2: only not-shown events (negative weights on both sides); labels 3..11: no events (NaN)
    gt = Spots([100, 300, 500, 700, 1000, 1200, 2000, 2200], [0, 1, 1, 1, 2, 3, 4, 5], [-1, 1, 1, 1, 1, -1, -1, -1])
    det = Spots([300, 500, 700, 1000, 2000, 2210], [1, 1, 1, 2, 4, 5], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    ours, ref = check_against_official([gt], [det])
    ft.test_eq(ours.team_ap[0], 1.5)
    ft.test_eq((ours.columns["weight"][2:4].tolist(), ours.columns["n_events"][2:4].tolist()), ([1.0, -1.0], [1, 1]))
    ft.test_eq(math.isnan(ours.team_map), True)
    ft.test_eq(np.isfinite(ours.team_ap[:3]).tolist(), [True, False, True])
    same(ours.team_map_present, np.mean(ours.team_ap[[0, 2]]))


def test_empty_predictions_and_empty_games():
    rng = np.random.default_rng(3)
    gt, det = random_game(rng)
    check_against_official([gt, gt], [det, Spots.empty()])
    ours, _ = check_against_official([gt], [Spots.empty()])
    ft.test_eq((ours.map, float(ours.columns["n_detections"].sum())), (0.0, 0.0))
    ours, _ = check_against_official([Spots.empty()], [det])  # no events at all
    ft.test_eq((math.isnan(ours.team_map), math.isnan(ours.team_map_present), ours.map), (True, True, 0.0))


def test_clamping_and_extreme_confidences():
    gt = Spots([ROWS - 1, ROWS + 500, 10], [6, 7, 8], [1, 1, 1])
    det = Spots([ROWS + 3, ROWS + 7, ROWS + 9, 10, 11], [6, 7, 7, 8, 8], [0.0, 1.0, 0.2, 1.0, 0.0])
    ours, _ = check_against_official([gt], [det])
    ft.test_eq(cells(det)[0][:2].tolist(), [6 * 2 * ROWS + ROWS - 1, 7 * 2 * ROWS + ROWS - 1])


# ---------------------------------------------------------------- files, against an independent reader

COLUMN = {(label, team): 2 * k + t for k, label in enumerate(BALL_LABELS) for t, team in enumerate(TEAMS)}


def files_oracle(label_files, prediction_objs, tolerance=1):
    "The team kit's way: raw JSON, half = gameTime[0], frames int(25 * ms / 1000) clamped, later cells overwrite."
    events, dets = [], []
    for lf, pred in zip(label_files, prediction_objs):
        anns = [a for a in json.loads(Path(lf).read_text())["annotations"] if int(a["gameTime"][0]) == 1]
        events.append(Spots([int(25 * (int(a["position"]) / 1000)) for a in anns], [COLUMN[a["label"], a["team"]] for a in anns],
                            [-1 if a.get("visibility") == "not shown" else 1 for a in anns]))
        ps = pred["predictions"]
        dets.append(Spots([int(25 * (int(p["position"]) / 1000)) for p in ps], [COLUMN[p["label"], p["team"]] for p in ps],
                          [p["confidence"] for p in ps]))
    return official_scores(events, dets, tolerance)


def make_games(root: Path, seed=0, n_games=2):
    "Labelled games with edge cases on disk, and their predictions as a folder and as a zip."
    rng = np.random.default_rng(seed)
    preds, label_files = {}, []
    for g in range(n_games):
        rel = f"league/2024-2025/game {g}"
        frames = np.sort(rng.choice(30_000, 150, replace=False))
        anns = [Annotation(game_time_of(frame_to_position(int(f))), BALL_LABELS[rng.integers(10)], frame_to_position(int(f)),
                           TEAMS[rng.integers(2)], "not shown" if rng.random() < 0.1 else "visible") for f in frames]
        anns[5].game_time = "2 - 00:01"  # dropped by the scorer
        anns.append(Annotation("1 - 130:00", "PASS", 7_900_000, "left"))  # past two hours: last row
        write_ball_labels(root / "labels" / "train" / rel / "Labels-ball.json", BallLabels(rel, "1 - 10:00", anns))  # a split folder above
        label_files.append(root / "labels" / "train" / rel / "Labels-ball.json")
        p = simulate_predictions(BallLabels(rel, None, anns), seed=seed + g, jitter_frames=6)
        p.predictions += [Prediction("1 - 00:10", "PASS", 10_020, 2, 0.8, "left"),  # duplicates, half 2 (not read)
                          Prediction("1 - 00:10", "PASS", 10_020, 1, 0.3, "left"),
                          Prediction("1 - 00:10", "PASS", 10_030, 1, 0.9, "right"),
                          Prediction("1 - 131:00", "PASS", 7_950_000, 1, 0.7, "left")]
        preds[rel] = p
    preds[f"league/2024-2025/game {n_games - 1}"] = Predictions("x", [])  # an empty prediction file
    for rel, p in preds.items(): write_game_predictions(root / "preds", p, rel)
    write_submission(root / "sub.zip", preds)
    objs = [json.loads((root / "preds" / rel / "results_spotting.json").read_text()) for rel in sorted(preds)]
    return label_files, objs


def test_files_against_independent_reader(tmp_path):
    label_files, objs = make_games(tmp_path)
    ref = files_oracle(label_files, objs)
    for src in (tmp_path / "preds", tmp_path / "sub.zip"):
        res = evaluate(tmp_path / "labels", src)
        same([res["team_map_at1"], res["map_at1"]], [ref["team_map"], ref["map"]])
        same([r["team_ap"] for r in res["per_label"]], ref["team_ap"])
        same([r["ap"] for r in res["per_label"]], ref["ap"])
        ft.test_eq(res["games"], ["train/league/2024-2025/game 0", "train/league/2024-2025/game 1"])
    ft.test_eq(math.isnan(res["team_map_at1"]), True)  # labels 10, 11 have no events
    same(res["team_map_at1_present_labels"], np.mean(ref["team_ap"][:10]))
    res3 = evaluate(tmp_path / "labels", tmp_path / "sub.zip", tolerance=3)
    same(res3["map_at3"], files_oracle(label_files, objs, 3)["map"])


def test_missing_games_and_json(tmp_path):
    make_games(tmp_path)
    (tmp_path / "preds" / "league/2024-2025/game 1/results_spotting.json").unlink()
    with pytest.raises(InputError, match="game 1: a results_spotting.json for every labelled game"): evaluate(tmp_path / "labels", tmp_path / "preds")
    ft.test_eq(evaluate(tmp_path / "labels", tmp_path / "preds", missing="skip")["games"], ["train/league/2024-2025/game 0"])
    res = evaluate(tmp_path / "labels", tmp_path / "preds", missing="empty")
    ft.test_eq(res["games_without_predictions"], ["train/league/2024-2025/game 1"])
    text = json.dumps(json_ready(res))
    ft.test_eq(json.loads(text)["team_map_at1"], None)
    ft.test_eq("NaN" in text, False)


BAD = [({"predictions": [{"label": "PAS", "position": 5, "team": "left", "confidence": 0.5}]}, "predictions[0].label"),
       ({"predictions": [{"label": "PASS", "position": 5, "team": "home", "confidence": 0.5}]}, "predictions[0].team"),
       ({"predictions": [{"label": "PASS", "position": 5, "team": "left", "confidence": "0.5"}]}, "predictions[0].confidence"),
       ({"predictions": [{"label": "PASS", "position": 5, "team": "left", "confidence": 1.5}]}, "predictions[0].confidence"),
       ({"predictions": [{"label": "PASS", "position": -5, "team": "left", "confidence": 0.5}]}, "predictions[0].position"),
       ({"predictions": [{"label": "PASS", "position": 5.5, "team": "left", "confidence": 0.5}]}, "predictions[0].position"),
       ({"predictions": [{"label": "PASS", "team": "left", "confidence": 0.5}]}, "predictions[0].position"),
       ({"predictions": [{"label": "PASS", "position": 5, "confidence": 0.5}]}, "predictions[0].team"),
       ({"predictions": {"label": "PASS"}}, "predictions"),
       ({"UrlLocal": "x"}, "predictions")]


@pytest.mark.parametrize("obj,field", BAD, ids=[f for _, f in BAD])
def test_bad_prediction_files(tmp_path, obj, field):
    make_games(tmp_path, n_games=1)
    bad = tmp_path / "preds" / "league/2024-2025/game 0/results_spotting.json"
    bad.write_text(json.dumps(obj))
    with pytest.raises(InputError) as e: evaluate(tmp_path / "labels", tmp_path / "preds")
    msg = str(e.value)
    ft.test_eq("\n" in msg, False)
    ft.test_eq(msg.startswith(str(bad)) and f": {field}:" in msg, True)


def test_bad_zip_member(tmp_path):
    make_games(tmp_path, n_games=1)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("league/2024-2025/game 0/results_spotting.json", "{not json")
    with pytest.raises(InputError, match=r"bad.zip:league/2024-2025/game 0/results_spotting.json: JSON"):
        evaluate(tmp_path / "labels", tmp_path / "bad.zip")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dudek", "evaluate", *map(str, args)], capture_output=True, text=True)


def test_cli_evaluate(tmp_path):
    label_files, objs = make_games(tmp_path)
    r = _cli(tmp_path / "labels", tmp_path / "sub.zip", "--json")
    ft.test_eq(r.returncode, 0)
    last = json.loads(r.stdout.strip().splitlines()[-1])
    ref = files_oracle(label_files, objs)
    ft.test_eq(last["team_map_at1"], None)  # NaN in the official scorer, null in JSON
    same(last["map_at1"], ref["map"])
    ft.test_eq("Team-mAP@1" in r.stdout, True)
    (tmp_path / "preds" / "league/2024-2025/game 0/results_spotting.json").write_text('{"predictions": [{"label": 3}]}')
    r = _cli(tmp_path / "labels", tmp_path / "preds", "--json")
    ft.test_eq(r.returncode, 2)
    ft.test_eq(len(r.stderr.strip().splitlines()), 1)
    ft.test_eq("predictions[0].label" in r.stderr, True)


def test_events_of_other_halves_are_named_when_dropped():
    "The official scorer reads half 1 only; events of other halves are not scored, and a warning says how many and which."
    from dudek.metrics import event_spots
    anns = [Annotation("1 - 00:01", "PASS", 1000, "left"), Annotation("3 - 00:02", "GOAL", 2000, "left"),
            Annotation("7 - 00:03", "SHOT", 3000, "right")]
    with pytest.warns(UserWarning, match="l/s/g/: 2 event\\(s\\) of half 3, 7 not scored"):
        spots = event_spots(BallLabels("l/s/g/", None, anns))
    ft.test_eq(len(spots.frame), 1)


def test_evaluate_runs_where_numba_cannot_write_its_cache(tmp_path):
    "A user without a writable home, on a read-only installation: numba compiles in memory instead of failing at import."
    import os, shutil
    pkg = tmp_path / "site"
    shutil.copytree(Path(__file__).resolve().parent.parent / "dudek", pkg / "dudek", ignore=shutil.ignore_patterns("__pycache__", "assets"))
    (pkg / "dudek" / "__pycache__").write_text("")  # nothing can be cached beside the modules
    (tmp_path / "home").write_text("")  # a home that is a file: no ~/.cache/numba either
    anns = [Annotation(game_time_of(frame_to_position(f)), "PASS", frame_to_position(f), "left") for f in range(100, 3000, 100)]
    game = BallLabels("league/season/game", None, anns)
    write_ball_labels(tmp_path / "labels/league/season/game/Labels-ball.json", game)
    write_submission(tmp_path / "sub.zip", {"league/season/game": simulate_predictions(game, seed=0)})
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"HOME": str(tmp_path / "home"), "PYTHONPATH": str(pkg)}
    r = subprocess.run([sys.executable, "-m", "dudek", "evaluate", str(tmp_path / "labels"), str(tmp_path / "sub.zip"), "--json"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["map_at1"] > 0


# ---------------------------------------------------------------- games and files as a user lays them out, through `dudek evaluate`

def one_line_error(r, *says):
    lines = [x for x in r.stderr.strip().splitlines() if not x.startswith("warning: ")]  # (the games' half-2 events are warned of)
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr[-2000:])
    for s in says: assert s in lines[0], lines[0]


@pytest.mark.parametrize("layout", ["split folders", "a game and an older copy"])
def test_a_prediction_file_is_scored_for_one_game_only(tmp_path, layout):
    "Pairing by path suffix would score `x/s/g`'s predictions for every game whose path ends in `x/s/g`; by whole path it cannot."
    label_files, objs = make_games(tmp_path / "one", n_games=1)
    rel = "league/2024-2025/game 0"
    labels = tmp_path / "labels"
    homes = ["train", "valid"] if layout == "split folders" else ["", "old"]
    for home in homes: write_ball_labels(labels / home / rel / "Labels-ball.json", read_labels_of(label_files[0]))
    r = _cli(labels, tmp_path / "one" / "preds", "--json")
    if layout == "split folders": one_line_error(r, "would be scored for 2 games", "train/" + rel, "valid/" + rel)
    else:  # `league/...` has a file of its own; `old/league/...` has none, and is not given the other's
        one_line_error(r, f"old/{rel}: a results_spotting.json for every labelled game")
        r = _cli(labels, tmp_path / "one" / "preds", "--json", "--missing", "skip")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["games"] == [rel]
        same(res["map_at1"], files_oracle(label_files, objs)["map"])


def read_labels_of(path):
    from dudek.annotations import read_ball_labels
    return read_ball_labels(path)


def test_linked_game_folders_are_scored_under_their_links_name(tmp_path):
    label_files, objs = make_games(tmp_path / "store")
    linked = tmp_path / "linked" / "league"
    linked.mkdir(parents=True)
    (linked / "2024-2025").symlink_to(tmp_path / "store" / "labels" / "train" / "league" / "2024-2025")  # a season that is a link
    (tmp_path / "store" / "labels" / "train" / "league" / "2024-2025" / "game 0" / "up").symlink_to(tmp_path / "linked")  # a loop
    r = _cli(tmp_path / "linked", tmp_path / "store" / "sub.zip", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["games"] == ["league/2024-2025/game 0", "league/2024-2025/game 1"]  # none dropped
    same(res["map_at1"], files_oracle(label_files, objs)["map"])
    loops = [x for x in r.stderr.splitlines() if "a link back to" in x]
    assert len(loops) == 1 and loops[0].startswith("warning: ") and "game 0/up" in loops[0], r.stderr


def test_tolerance_runs_to_the_official_scorers_widest_and_no_further(tmp_path):
    label_files, objs = make_games(tmp_path)
    r = _cli(tmp_path / "labels", tmp_path / "sub.zip", "--json", "--tolerance", "60")
    assert r.returncode == 0, r.stderr
    same(json.loads(r.stdout.strip().splitlines()[-1])["map_at60"], files_oracle(label_files, objs, 60)["map"])
    for bad in ("61", "0", "-3", str(10 ** 30), "1.5"):
        one_line_error(_cli(tmp_path / "labels", tmp_path / "sub.zip", "--tolerance", bad), "--tolerance")
    with pytest.raises(InputError, match=r"tolerance: a whole number of seconds in \[1, 60\]"): evaluate(tmp_path / "labels", tmp_path / "sub.zip", tolerance=1000)


def test_warnings_are_one_line_and_name_the_label_file(tmp_path):
    make_games(tmp_path)  # each game holds an event of half 2, which the official scorer does not read
    r = _cli(tmp_path / "labels", tmp_path / "sub.zip")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("warning: ") and "Labels-ball.json: 1 event(s) of half 2 not scored" in x for x in lines), lines
    assert "UserWarning" not in r.stderr and "UrlLocal" not in r.stderr and ".py:" not in r.stderr
