"""The synthetic games, read back by independent readers: dudek's own, SoccerNet's official scorer and dude-k's loader.

Every test here reads real games written to disk (small ones: a few hundred frames at 224 px, or two
2-minute games at 64 px made through `dudek synth`). The module-scoped fixtures make each set once.
"""
import hashlib, json, os, signal, subprocess, sys, time, warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dudek.annotations import (OldLabels, BallLabels, Prediction, Predictions, find_games, write_game_predictions,
                               parse_game_time)
from dudek.labels import BALL_LABELS, OLD_LABELS, OLD_TEAMS, TEAMS
from dudek.truth import read_truth
from dudek.engine import BALL_DEAD, CLOSE_UP_AFTER, FPS, RESTARTS
from dudek.plays import simulate_half
from dudek.files import InputError
from dudek.broadcast import CLOSE_UP_ZOOM, Camera, Renderer, project_half
from dudek.synthetic import MAX_GAME, GameSpec, simulate_game, synthesize
from dudek.video import read_frames, video_info, write_video

MINUTES = 0.4  # the 224p games: 600 frames each
FORCED_MINUTES, FORCED_HEIGHT = 2.0, 64  # the `--min-events 1` games: long enough for every label-team pair
SIDE_CODE = {"left": 1, "right": 2}  # the ground truth's side codes


def dudek_cli(*args, cwd=None, timeout=300):
    "Run `python -m dudek ARGS` in a real process."
    return subprocess.run([sys.executable, "-m", "dudek", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def files_of(folder: Path) -> dict:
    "`{relative path: bytes}` of every file under `folder`."
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def videos_of(game):
    "The game's videos: those `find_games` knows (224p, 720p), else the `<height>p.mp4` that `--height` writes."
    return list(game.videos) or sorted(game.path.glob("*p.mp4"))


def read_strictly(game):
    "The game's labels, its videos' metadata and ground truth, read with every warning turned into an error."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = game.read_labels()
        infos = [video_info(v) for v in videos_of(game)]
        truth = read_truth(game) if game.kind == "ball" else None
    return labels, infos, truth


@pytest.fixture(scope="module")
def ball_root(tmp_path_factory):
    "Two 224p ball games, seed 0, rendered by two worker processes."
    root = tmp_path_factory.mktemp("ball")
    folders = synthesize(root, n_games=2, minutes=MINUTES, seed=0, workers=2)
    assert len(folders) == 2
    return root


@pytest.fixture(scope="module")
def old_games_root(tmp_path_factory):
    "One old-labels game (a video per half, Labels-v2.json)."
    root = tmp_path_factory.mktemp("old")
    synthesize(root, n_games=1, minutes=0.3, seed=0, kind="old", workers=1)
    return root


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    "Two 2-minute 64p games with at least one event of every label and team, made by `dudek synth`: (root, result)."
    root = tmp_path_factory.mktemp("forced") / "games"
    res = dudek_cli("synth", root, "--games", 2, "--minutes", FORCED_MINUTES, "--seed", 0, "--min-events", 1,
                    "--height", FORCED_HEIGHT, "--workers", 2)
    assert res.returncode == 0, res.stderr
    return root, res


# ---------------------------------------------------------------------------------------------------------------------
# read back by dudek's own readers

def test_ball_games_read_back_without_warnings(ball_root):
    games = find_games(ball_root)
    assert [g.kind for g in games] == ["ball", "ball"]
    for game in games:
        assert game.labels.name == "Labels-ball.json" and game.video.name == "224p.mp4"
        labels, (info,), truth = read_strictly(game)
        assert isinstance(labels, BallLabels) and labels.annotations
        assert labels.url_local.rstrip("/") == game.rel
        assert (info.fps, info.height, info.width) == (25.0, 224, 398)
        assert info.n_frames == len(truth["ball_state"]) == round(MINUTES * 60 * FPS)
        for a in labels.annotations:
            assert a.label in BALL_LABELS and a.team in TEAMS and a.visibility in ("visible", "not shown")
            assert a.half == 1  # Team-BAS files: half 1 and the video's clock throughout
            assert parse_game_time(a.game_time)[1] == a.position // 1000
            assert 0 <= a.frame() < info.n_frames
        first, last = read_frames(game.video, [0, info.n_frames - 1])
        assert first.shape == last.shape == (224, 398, 3) and first.std() > 10  # a picture, not a blank


def test_old_game_layout_and_labels(old_games_root):
    (game,) = find_games(old_games_root)
    assert game.kind == "old"
    assert sorted(p.name for p in game.path.iterdir()) == ["1_224p.mkv", "2_224p.mkv", "Labels-v2.json"]
    labels, infos, _ = read_strictly(game)
    assert isinstance(labels, OldLabels)
    assert [(i.fps, i.height, i.width, i.n_frames) for i in infos] == [(25.0, 224, 398, 225)] * 2
    assert {a.half for a in labels.annotations} == {1, 2}
    assert {a.label for a in labels.annotations} <= set(OLD_LABELS) and "Kick-off" in {a.label for a in labels.annotations}
    teams = {a.team for a in labels.annotations}
    assert teams <= set(OLD_TEAMS) and {"home", "away"} <= teams
    for a in labels.annotations:  # positions count from the start of the half's own video
        assert 0 <= a.frame() < infos[a.half - 1].n_frames


def test_ground_truth_fields(ball_root):
    for game in find_games(ball_root):
        n = video_info(game.video).n_frames
        with np.load(game.path / "ground_truth.npz") as z: raw = {k: z[k] for k in z.files}
        shapes = {"ball_xy": (n, 2), "ball_visible": (n,), "ball_height": (n,), "ball_pitch": (n, 3), "ball_velocity": (n, 3),
                  "ball_state": (n,), "possession": (n,), "last_touch": (n,), "camera_x": (n,), "ball_player": (n,), "ball_closing": (n,), "touch": (n,), "restart": (n,), "replay": (n,),
                  "fps": (), "width": (), "height": (), "halftime_frame": (), "half_length": ()}
        assert {k: v.shape for k, v in raw.items()} == shapes
        assert (float(raw["fps"]), int(raw["height"]), int(raw["width"]), int(raw["halftime_frame"])) == (25.0, 224, 398, n // 2)
        assert set(np.unique(raw["ball_state"])) <= {0, 1, 2} and set(np.unique(raw["possession"])) <= {0, 1, 2}
        truth = read_truth(game)
        assert set(truth) == {"ball_xy", "ball_visible", "ball_height", "ball_velocity", "ball_state", "possession",
                              "last_touch", "camera_x", "ball_player", "ball_closing", "touch", "restart", "replay"}
        assert all(len(v) == n for v in truth.values())
        vis = truth["ball_visible"].astype(bool)
        assert 0.3 < vis.mean() <= 1  # the camera follows the ball
        assert np.all((truth["ball_xy"][vis] >= 0) & (truth["ball_xy"][vis] <= 1))  # normalised to the picture
        assert np.isnan(truth["ball_xy"][~vis]).all()


def test_team_convention_sides_swap_at_halftime(ball_root):
    "The same club is `left` in the first half and `right` in the second; every label's team touched the ball."
    for i, game in enumerate(find_games(ball_root)):
        labels, _, truth = read_strictly(game)
        half_frame = labels.halftime_ms * FPS // 1000
        with np.load(game.path / "ground_truth.npz") as z: assert int(z["halftime_frame"]) == half_frame
        # the ground truth agrees with every label seen live: the label's side is the side that touched the ball last
        for a in labels.annotations:
            frame, after = a.frame(), min(a.frame() + 1, len(truth["last_touch"]) - 1)
            if a.visibility == "not shown": continue  # during a replay the truth describes the replayed frame
            assert truth["last_touch"][after] == SIDE_CODE[a.team], (frame, a.label)
        # the match engine says which club acted: club 0 plays on the left in half 1 and on the right in half 2
        sim = simulate_game(GameSpec(i, seed=0, minutes=MINUTES))
        side = {(0, 1): "left", (1, 1): "right", (0, 2): "right", (1, 2): "left"}  # (club, half) -> side
        offset = {1: 0, 2: sim.halves[0].n_frames}
        expected = sorted((e.frame + offset[h.half], e.label, side[(e.team, h.half)])
                          for h in sim.halves for e in h.events if e.label is not None)
        assert expected == labels.events()
        assert {1, 2} == {1 + (f >= half_frame) for f, _, _ in labels.events()}  # both halves have events


def test_every_players_action_is_a_touch(forced):
    "The `touch` truth fires within 2 frames of every live action a player makes (GOAL and OUT are the ball's), by his side."
    hits, sides, labels_seen = 0, 0, set()
    for game in find_games(forced[0]):
        labels, _, truth = read_strictly(game)
        touch, n = truth["touch"], len(truth["touch"])
        assert 0.05 < (touch > 0).mean() < 0.5, (touch > 0).mean()  # touches are frequent (dribbles too), not everywhere
        for a in labels.annotations:
            if a.visibility == "not shown" or a.label in ("GOAL", "OUT"): continue
            near = touch[max(a.frame() - 2, 0):min(a.frame() + 3, n)]
            assert (near > 0).any(), (game.rel, a.frame(), a.label)
            hits, sides = hits + 1, sides + (SIDE_CODE[a.team] in near)
            labels_seen.add(a.label)
    assert labels_seen == set(BALL_LABELS) - {"GOAL", "OUT"}  # every kind of touch: tackles, blocks and free kicks too
    assert hits > 50 and sides / hits > 0.9, (hits, sides)  # the nearest player is, nearly always, the one who acts



def test_restart_truth_marks_the_stop_before_each_restart(forced):
    "The `restart` truth names what a dead ball awaits: it covers the stop before every throw-in and free kick, and only dead balls."
    code = {"THROW IN": 1 + RESTARTS.index("throw_in"), "FREE KICK": 1 + RESTARTS.index("free_kick")}
    seen = Counter()
    for game in find_games(forced[0]):
        labels, _, truth = read_strictly(game)
        r, state = truth["restart"], truth["ball_state"]
        assert ((r == 0) | (state == BALL_DEAD)).all()  # only a dead ball awaits a restart
        assert 0.02 < (r > 0).mean() < 0.6, (r > 0).mean()
        for a in labels.annotations:
            if a.label not in code or a.visibility == "not shown": continue
            stop = r[a.frame() - FPS // 2:a.frame() + 1]
            assert (stop == code[a.label]).all(), (game.rel, a.label, a.frame(), stop)  # half a second at least, up to the kick
            seen[a.label] += 1
    assert seen["THROW IN"] >= 2 and seen["FREE KICK"] >= 2, seen

def test_free_kicks_and_penalties_are_filmed_in_close_up():
    "The broadcast zooms in live before every free kick and penalty (figures 1.5 times taller at the kick) and at no other time."
    kicks = 0
    for seed in range(6):
        h = simulate_half(np.random.default_rng(seed), 150 * FPS, rare_boost=3, replays=0.5)
        proj = project_half(Camera(), h)
        set_pieces = [ev.frame for ev in h.events if ev.label == "FREE KICK" or ev.old == "Penalty"]
        for f in set_pieces:
            before = slice(f - FPS // 2, f + 1)
            assert not proj.replay[before].any() and np.allclose(proj.zoom[before], CLOSE_UP_ZOOM), (seed, f, proj.zoom[before])
            [(a, b)] = [(a, b) for a, b in h.close_ups if a < f < b]
            assert b == f + CLOSE_UP_AFTER and a <= f - FPS, (seed, f, a, b)  # from a second or more before, until just after
            wide = np.nonzero(proj.zoom[:a] == 1)[0][-1]  # the last wide frame before it (a replay may end where it starts)
            assert proj.fig_height[f].mean() > 1.4 * proj.fig_height[wide].mean(), (seed, f)
            kicks += 1
        live_zoom = np.nonzero((proj.zoom > 1) & ~proj.replay)[0]
        near = [any(f - 10 * FPS <= i <= f + CLOSE_UP_AFTER for f in set_pieces) for i in live_zoom]
        assert all(near), (seed, live_zoom[~np.array(near)][:5])  # live zooms belong to set pieces only
    assert kicks >= 3, kicks


# ---------------------------------------------------------------------------------------------------------------------
# determinism

@pytest.fixture(scope="module")
def reruns(ball_root, tmp_path_factory):
    "Game 0 of `ball_root` made again (in this process, not in a worker), and the same game with another seed."
    tmp = tmp_path_factory.mktemp("reruns")
    synthesize(tmp / "again", n_games=1, minutes=MINUTES, seed=0, workers=1)
    synthesize(tmp / "other", n_games=1, minutes=MINUTES, seed=1, workers=1)
    return find_games(ball_root)[0], find_games(tmp / "again")[0], find_games(tmp / "other")[0]


def test_same_seed_same_labels_other_seed_other_game(reruns):
    reference, again, other = reruns
    assert again.rel == reference.rel
    ours, same, theirs = files_of(reference.path), files_of(again.path), files_of(other.path)
    assert sorted(ours) == sorted(same) == sorted(theirs) == ["224p.mp4", "Labels-ball.json", "ground_truth.npz"]
    for name in ("Labels-ball.json", "ground_truth.npz"):
        assert same[name] == ours[name], name  # byte for byte
    assert video_info(again.video) == video_info(reference.video)
    for name in ("Labels-ball.json", "ground_truth.npz", "224p.mp4"):
        assert theirs[name] != ours[name], name


def test_same_seed_same_video_bytes(reruns):
    reference, again, _ = reruns
    assert again.video.read_bytes() == reference.video.read_bytes()


def test_a_factor_of_another_league_changes_the_look_not_the_game(ball_root, tmp_path):
    "`dudek synth --mix other_league:ball`: game 0 again, the same labels and ground truth, another ball in its frames."
    res = dudek_cli("synth", tmp_path / "mixed", "--games", 1, "--minutes", MINUTES, "--seed", 0, "--mix", "other_league:ball")
    assert res.returncode == 0, res.stderr
    reference, mixed = find_games(ball_root)[0], find_games(tmp_path / "mixed")[0]
    ours, theirs = files_of(reference.path), files_of(mixed.path)
    assert mixed.rel == reference.rel and theirs["Labels-ball.json"] == ours["Labels-ball.json"] and theirs["ground_truth.npz"] == ours["ground_truth.npz"]
    truth = np.load(reference.path / "ground_truth.npz")
    f = int(np.nonzero(truth["ball_visible"])[0][len(truth["ball_visible"]) // 3])  # a frame that shows the ball
    col, row = truth["ball_xy"][f].round().astype(int)  # (pixels)
    a, b = (read_frames(g.video, [f])[0].astype(int) for g in (reference, mixed))
    at = lambda im: im[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].reshape(-1, 3)
    blue = lambda im: (at(im)[:, :2].mean(1) - at(im)[:, 2]).max()  # yellow: red and green well above blue; white: all alike
    assert blue(b) > blue(a) + 60, (at(a), at(b))  # the yellow ball where the white one was
    far = np.abs(a - b).max(-1) > 40
    assert far.mean() < 0.01, far.mean()  # and little else changed


def test_varied_looks_give_every_game_a_league_of_its_own(tmp_path):
    "`dudek synth --league varied_looks` (the vision stage's games of many looks): each game's ball, grass and kits drawn anew."
    res = dudek_cli("synth", tmp_path / "varied", "--games", 3, "--minutes", MINUTES, "--seed", 4, "--league", "varied_looks")
    assert res.returncode == 0, res.stderr
    games = find_games(tmp_path / "varied")
    assert len(games) == 3 and all(g.rel.startswith("varied_looks/") for g in games), [g.rel for g in games]
    balls, grass = [], []
    for g in games:
        truth = np.load(g.path / "ground_truth.npz")
        f = int(np.nonzero(truth["ball_visible"])[0][len(truth["ball_visible"]) // 3])
        col, row = truth["ball_xy"][f].round().astype(int)
        im = read_frames(g.video, [f])[0].astype(int)
        balls.append(im[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2].reshape(-1, 3).mean(0))
        grass.append(np.median(im[im.shape[0] // 2:].reshape(-1, 3), 0))  # the near half: mostly pitch
    apart = lambda xs: min(np.abs(xs[i] - xs[j]).max() for i in range(3) for j in range(i + 1, 3))
    assert apart(grass) > 5 and apart(balls) > 20, (grass, balls)


# ---------------------------------------------------------------------------------------------------------------------
# label statistics

def event_counts(games):
    "Counter of (label, team) over `games`, and their total minutes."
    counts, minutes = Counter(), 0.0
    for game in games:
        labels, (info,), _ = read_strictly(game)
        counts.update((a.label, a.team) for a in labels.annotations)
        minutes += info.duration / 60
    return counts, minutes


def test_event_rate_and_label_shares(ball_root):
    counts, minutes = event_counts(find_games(ball_root))
    total = sum(counts.values())
    per_label = Counter()
    for (label, _), n in counts.items(): per_label[label] += n
    assert 15 <= total / minutes <= 35, total / minutes  # the real games: about 20-25 a minute
    assert per_label["PASS"] + per_label["DRIVE"] > total / 2
    assert per_label["GOAL"] == min(per_label[l] for l in BALL_LABELS)  # the rarest (or tied)


def test_min_events_every_label_and_team(forced):
    root, res = forced
    games = find_games(root)
    assert res.stdout.splitlines() == [str(g.path) for g in games] and len(games) == 2  # one line per game folder
    for game in games:
        (video,) = videos_of(game)
        assert video.name == f"{FORCED_HEIGHT}p.mp4"
        assert (video_info(video).height, video_info(video).width) == (64, 114)
        counts, minutes = event_counts([game])
        assert min(counts[(l, t)] for l in BALL_LABELS for t in TEAMS) >= 1
        assert 15 <= sum(counts.values()) / minutes <= 40  # the quota adds rare events on top of the usual ~25/min


# ---------------------------------------------------------------------------------------------------------------------
# SoccerNet's official scorer (soccernet 0.2.0) as an independent reader

@pytest.fixture(scope="module")
def soccernet_evaluate():
    "The official `ActionSpotting.evaluate`, imported without leaving its global `np.seterr` behind."
    old = np.geterr()
    try: from SoccerNet.Evaluation.ActionSpotting import evaluate
    except ImportError as e: pytest.skip(f"the soccernet package (dev extra) is not installed: {e}")
    finally: np.seterr(**old)
    def run(labels_root, predictions_root, label_file, dictionary, framerate, metric):
        with np.errstate(divide="ignore", invalid="ignore"):
            return evaluate(str(labels_root), str(predictions_root), prediction_file="results_spotting.json",
                            label_files=label_file, dataset=None, version=2, framerate=framerate, metric=metric,
                            EVENT_DICTIONARY=dictionary)
    return run


def labels_as_predictions(root, out, swap_teams=False):
    "Write every game's labels under `root` as its `results_spotting.json` under `out` (confidence 1)."
    for game in find_games(root):
        labels = game.read_labels()
        flip = {"left": "right", "right": "left"} if swap_teams else {}
        preds = [Prediction(a.game_time, a.label, a.position, a.half, 1.0, flip.get(a.team, a.team)) for a in labels.annotations]
        write_game_predictions(out, Predictions(labels.url_local, preds), rel=game.rel)
    return out


def with_team_in_label(src_root, dst_root, name, key):
    "Copy each `name` file under `src_root` with its label turned into `LABEL|team` (one official column per label-team pair)."
    for src in Path(src_root).rglob(name):
        obj = json.loads(src.read_text())
        for e in obj[key]: e["label"] = f"{e['label']}|{e['team']}"
        dst = Path(dst_root) / src.relative_to(src_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(obj))
    return dst_root


TEAM_COLUMNS = {f"{label}|{team}": 2 * k + j for k, label in enumerate(BALL_LABELS) for j, team in enumerate(TEAMS)}


def official_team_map(run, labels_root, predictions_root, work):
    "Team-mAP@1 (and the 24 column APs) the way the team devkit builds it on soccernet's scorer: columns 2k / 2k+1."
    lab = with_team_in_label(labels_root, work / "labels", "Labels-ball.json", "annotations")
    pred = with_team_in_label(predictions_root, work / "predictions", "results_spotting.json", "predictions")
    column_ap = np.array(run(lab, pred, "Labels-ball.json", TEAM_COLUMNS, FPS, "at1")["a_mAP_per_class"])
    weight = np.zeros(len(TEAM_COLUMNS))  # column sums of the ground truth: visible minus not shown events
    for game in find_games(labels_root):
        for a in game.read_labels().annotations:
            weight[TEAM_COLUMNS[f"{a.label}|{a.team}"]] += 1 if a.visibility == "visible" else -1
    per_label = (column_ap[0::2] * weight[0::2] + column_ap[1::2] * weight[1::2]) / (weight[0::2] + weight[1::2])
    return float(np.mean(per_label)), column_ap


def test_official_scorer_reads_ball_games(forced, soccernet_evaluate, tmp_path):
    root, _ = forced
    predictions = labels_as_predictions(root, tmp_path / "predictions")
    plain = soccernet_evaluate(root, predictions, "Labels-ball.json", {l: i for i, l in enumerate(BALL_LABELS)}, FPS, "at1")
    assert plain["a_mAP"] == 1.0 and list(plain["a_mAP_per_class"]) == [1.0] * 12  # mAP@1
    team_map, column_ap = official_team_map(soccernet_evaluate, root, predictions, tmp_path / "team")
    assert team_map == 1.0 and list(column_ap) == [1.0] * 24  # Team-mAP@1
    # a control: the same events with every team swapped keep mAP@1 and lose the team columns
    swapped = labels_as_predictions(root, tmp_path / "swapped", swap_teams=True)
    assert soccernet_evaluate(root, swapped, "Labels-ball.json", {l: i for i, l in enumerate(BALL_LABELS)}, FPS, "at1")["a_mAP"] == 1.0
    team_map, column_ap = official_team_map(soccernet_evaluate, root, swapped, tmp_path / "team-swapped")
    assert team_map < 0.2 and column_ap.max() < 1.0
    # dudek's own scorer agrees
    from dudek.metrics import evaluate
    ours = evaluate(root, predictions)
    assert (ours["team_map_at1"], ours["map_at1"]) == (1.0, 1.0)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    "One 3-minute 64p game with every label-team pair and a replay after every goal, shot and foul: some events are `not shown`."
    root = tmp_path_factory.mktemp("replayed")
    # seed 7: no label whose visible events equal its not-shown ones (the official team weights would make it 0/0 = NaN)
    synthesize(root, n_games=1, minutes=3.0, seed=7, min_events_per_class=1, rare_boost=3.0, size=(64, 114), workers=1, replays=1.0)
    return root


def test_not_shown_events_happen_during_replays(replayed):
    from dudek.broadcast import REPLAY_TAG
    (game,) = find_games(replayed)
    labels, (info,), truth = read_strictly(game)
    hidden = [a for a in labels.annotations if a.visibility == "not shown"]
    assert 0 < len(hidden) < len(labels.annotations) / 2, len(hidden)
    assert 0.02 < truth["replay"].mean() < 0.5
    in_replay = [truth["replay"][a.frame()] == 1 for a in hidden]
    assert np.mean(in_replay) > 0.5  # not shown: mostly during a replay, else with the ball off the picture
    assert all(r or truth["ball_visible"][a.frame()] == 0 for r, a in zip(in_replay, hidden))
    assert all(truth["replay"][a.frame()] == 0 for a in labels.annotations if a.visibility == "visible")
    replay, live = int(np.argmax(truth["replay"])), int(np.argmin(truth["replay"]))
    tag = lambda frame: frame[4:8, 14:21].astype(float).mean((0, 1))  # the replay tag's plate, 64 px high
    replay_frame, live_frame = read_frames(game.path / "64p.mp4", [replay, live])
    assert np.abs(tag(replay_frame) - REPLAY_TAG).max() < 45 < np.abs(tag(live_frame) - REPLAY_TAG).max()


def test_official_scorer_with_not_shown_events(replayed, soccernet_evaluate, tmp_path):
    "Imperfect predictions on a game with `not shown` events: dudek's Team-mAP@1 and mAP@1 equal the official scorer's."
    from dudek.annotations import format_game_time
    from dudek.metrics import evaluate
    rng = np.random.default_rng(0)
    (game,) = find_games(replayed)
    labels = game.read_labels()
    preds = []
    def add(label, position, team): preds.append(Prediction(format_game_time(1, position / 1000), label, position, 1, float(rng.random()), team))
    for a in labels.annotations:
        if rng.random() < 0.2: continue  # missed
        team = a.team if rng.random() < 0.85 else {"left": "right", "right": "left"}[a.team]  # a wrong team now and then
        add(a.label, max(0, a.position + int(rng.integers(-600, 601))), team)  # some beyond the tolerance
    for _ in range(40): add(BALL_LABELS[rng.integers(12)], int(rng.integers(0, 175_000)), TEAMS[rng.integers(2)])  # false alarms
    write_game_predictions(tmp_path / "pred", Predictions(labels.url_local, preds), rel=game.rel)
    official_team, _ = official_team_map(soccernet_evaluate, replayed, tmp_path / "pred", tmp_path / "team")
    official = soccernet_evaluate(replayed, tmp_path / "pred", "Labels-ball.json", {l: i for i, l in enumerate(BALL_LABELS)}, FPS, "at1")
    ours = evaluate(replayed, tmp_path / "pred")
    assert np.isfinite(official_team) and 0.1 < official_team < 0.9, official_team
    assert ours["team_map_at1"] == pytest.approx(official_team, abs=1e-9)
    assert ours["map_at1"] == pytest.approx(official["a_mAP"], abs=1e-9)


def test_official_scorer_reads_old_games(old_games_root, soccernet_evaluate, tmp_path):
    from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2
    predictions = labels_as_predictions(old_games_root, tmp_path / "predictions")
    res = soccernet_evaluate(old_games_root, predictions, "Labels-v2.json", EVENT_DICTIONARY_V2, 2, "tight")
    (game,) = find_games(old_games_root)
    present = {EVENT_DICTIONARY_V2[a.label] for a in game.read_labels().annotations}
    per_class = np.array(res["a_mAP_per_class"])
    assert len(per_class) == 17 and present
    assert (per_class[sorted(present)] == 1.0).all()  # each label there, found at its place in its half
    assert (np.delete(per_class, sorted(present)) == 0.0).all()  # the official scorer gives an absent label 0


# ---------------------------------------------------------------------------------------------------------------------
# dude-k's loader as an independent reader

DUDEK_K_READER = r"""
import json, sys
from pathlib import Path
import dudek
assert Path(dudek.__file__).resolve().is_relative_to(Path(sys.argv[3]).resolve()), dudek.__file__  # dude-k, not ours
from dudek.utils.video import load_bas_videos
print(json.dumps([dict(match=v.match, video=v.absolute_path, fps=v.metadata_fps, n_frames=v.metadata_n_frames,
                       n_decoded=v.actual_n_frames, n_events=v.annotations_count,
                       events=sorted([a.get_frame_nr(), a.label.value, a.team.value, a.visibility] for a in v.annotations))
                  for v in load_bas_videos(sys.argv[1], resolution=int(sys.argv[2]))]))
"""


def dudek_k_path():
    "Where dude-k 0.1.1 is installed on its own (`pip install --no-deps --target ...`), or None."
    for p in (os.environ.get("DUDEK_K_PATH"), "/work/dudek_k_ref"):
        if p and (Path(p) / "dudek" / "utils" / "video.py").is_file(): return Path(p)
    return None


def test_dude_k_loader_reads_ball_games(forced, tmp_path):
    ref = dudek_k_path()
    if ref is None: pytest.skip("dude-k 0.1.1 is not installed: set DUDEK_K_PATH (see .ci/run) to its --target folder")
    root, _ = forced
    env = {**os.environ, "PYTHONPATH": str(ref), "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run([sys.executable, "-c", DUDEK_K_READER, str(root), str(FORCED_HEIGHT), str(ref)], capture_output=True,
                         text=True, cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    theirs = {v["match"]: v for v in json.loads(res.stdout.strip().splitlines()[-1])}
    games = find_games(root)
    assert sorted(theirs) == sorted(Path(g.rel).name for g in games)
    for game in games:
        v = theirs[Path(game.rel).name]
        labels, (info,), truth = read_strictly(game)
        assert [Path(v["video"])] == videos_of(game)
        assert (v["fps"], v["n_frames"], v["n_decoded"]) == (25.0, info.n_frames, len(truth["ball_state"]))  # OpenCV
        assert v["n_events"] == len(labels.annotations)
        assert [tuple(e) for e in v["events"]] == sorted((a.frame(), a.label, a.team, a.visibility) for a in labels.annotations)


# ---------------------------------------------------------------------------------------------------------------------
# bad options

def unwritable_folder(tmp_path):
    "A folder this process cannot create anything in, or None."
    if os.geteuid() != 0:
        d = tmp_path / "read-only"
        d.mkdir(mode=0o500)
        return d / "games"
    return Path("/proc/self/dudek-games") if Path("/proc/self").is_dir() else None  # even root cannot write there


@pytest.mark.parametrize("case", ["--games -1", "--minutes -2", "--min-events -1", "--kind video", "--height 63",
                                  "--rare-boost inf", "--variability nan", "--variability inf", "--replays 2", "--height 100000", "--mix other_league:sky",
                                  "--mix premier:ball", "--mix other_league", "--league third --mix other_league:ball",
                                  "--league varied_looks --mix other_league:ball",
                                  "--games 100000000", "--minutes nan", "out is a file", "out under a file", "unwritable",
                                  # absurd sizes: refused before any work (they used to overflow deep in the engine, or be accepted)
                                  f"--games {10**30}", "--minutes 1e308", f"--height {10**9}", f"--seed {2**70}", f"--first-game {10**30}",
                                  "--first-game 900000 --games 2", f"--workers {10**6}", "out name too long", "out path too long"])
def test_bad_options_one_line_and_nothing_written(case, tmp_path):
    out, args = tmp_path / "games", case.split() if case.startswith("--") else []
    if case == "out name too long": out = tmp_path / ("x" * 300) / "games"  # more than any file system's 255 bytes a name
    if case == "out path too long": out = tmp_path.joinpath(*["y" * 200] * 20)  # 4000 bytes: no room below for the games
    if case == "out is a file": out.write_text("not a folder")
    if case == "out under a file": (tmp_path / "file").write_text(""); out = tmp_path / "file" / "games"
    if case == "unwritable":
        out = unwritable_folder(tmp_path)
        if out is None: pytest.skip("no folder here that this user cannot write to")
    before = sorted(tmp_path.rglob("*"))
    res = dudek_cli("synth", out, *(["--games", 1] if "--games" not in args else []), "--minutes", 0.1, *args, timeout=120)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.stderr, res.stderr
    if case.startswith("--"): assert case.split()[0] in lines[0], lines[0]  # the option at fault is the one named
    assert res.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before  # nothing created


@pytest.mark.parametrize("field, kw", [("n_games", dict(n_games=10**30)), ("minutes", dict(minutes=1e308)), ("minutes", dict(minutes=float("nan"))),
                                       ("size", dict(size=(10**9, 10**9))), ("seed", dict(seed=2**70)), ("first_game", dict(first_game=10**30)),
                                       ("first_game", dict(first_game=MAX_GAME, n_games=2)), ("workers", dict(workers=10**6)),
                                       ("replays", dict(replays=2.0)), ("output folder", dict(out="x" * 300))])
def test_absurd_numbers_refused_by_synthesize(field, kw, tmp_path):
    "The Python API checks as the command line does: one `InputError` naming the field, before any work, nothing written."
    out = tmp_path / kw.pop("out", "games")
    with pytest.raises(InputError) as e: synthesize(out, **{"minutes": 0.1, "n_games": 1, **kw})
    assert field in e.value.field and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_same_frames_same_video_bytes(tmp_path):
    "x264 at 398 px wide gave 2-3 distinct files in 10 encodes of the same frames before mbtree was turned off."
    g = simulate_game(GameSpec(0, 0, 0.2))
    r = Renderer(g.camera, g.look, seed=1)
    frames = [f.copy() for h in g.halves for f in r.frames(h, project_half(g.camera, h))]
    digests = {hashlib.sha1(write_video(tmp_path / "v.mp4", iter(frames)).read_bytes()).hexdigest() for _ in range(6)}
    assert len(digests) == 1, digests


def test_killed_resynthesis_leaves_every_game_whole(tmp_path):
    "A re-synthesis (longer games, same names) killed while writing leaves the old games untouched; the next run removes its leftovers."
    out = tmp_path / "games"
    assert dudek_cli("synth", out, "--games", 2, "--minutes", 0.2, "--height", 64, "--workers", 1).returncode == 0
    before = {g.rel: files_of(g.path) for g in find_games(out)}
    proc = subprocess.Popen([sys.executable, "-m", "dudek", "synth", str(out), "--games", "2", "--minutes", "1.5", "--height", "64",
                             "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not [p for p in out.rglob(".*.tmp") if p.is_dir() and any(p.iterdir())]: time.sleep(0.02)
    proc.kill(); proc.wait()
    assert list(out.rglob(".*.tmp")), "the kill came too late to test anything"
    assert {g.rel: files_of(g.path) for g in find_games(out)} == before  # each game old and whole: no new video beside old labels
    assert dudek_cli("synth", out, "--games", 1, "--minutes", 0.2, "--height", 64, "--workers", 1).returncode == 0
    assert not list(out.rglob(".*.tmp"))
    assert {g.rel: files_of(g.path) for g in find_games(out)} == before  # the same game rewritten, and nothing left over


def children_of(pid: int) -> list[int]:
    "The child processes of `pid` (Linux's /proc)."
    try: return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except FileNotFoundError: return []


def alive(pid: int) -> bool:
    "Is `pid` running (a zombie, dead but not yet reaped by whoever adopted it, is not)?"
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError: return False


def start_synth(out: Path, *args):
    "A `dudek synth` of two 2-minute games by two workers, in its own process group (as a terminal's job)."
    if not Path("/proc/self/task").is_dir(): pytest.skip("needs Linux's /proc to see the worker processes")
    proc = subprocess.Popen([sys.executable, "-m", "dudek", "synth", str(out), "--games", "2", "--minutes", "2", "--height", "64",
                             "--workers", "2", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc


def wait_for(cond, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (v := cond()): return v
        time.sleep(0.02)
    return None


def test_killed_synth_takes_its_workers_along(tmp_path):
    "SIGKILL to `dudek synth` (nothing of it can clean up): its pool's workers must not go on rendering forever."
    proc = start_synth(tmp_path / "games")
    workers = wait_for(lambda: (kids := children_of(proc.pid)) and len(kids) >= 2 and kids)
    assert workers and proc.poll() is None, "the workers never started"
    proc.kill(); proc.wait()
    assert wait_for(lambda: not any(alive(w) for w in workers), timeout=10), [w for w in workers if alive(w)]


def test_ctrl_c_synth_exits_130_and_leaves_games_whole(tmp_path):
    "Ctrl-C (SIGINT to the whole process group) while the workers write: exit 130, no traceback, workers gone, no half game."
    out = tmp_path / "games"
    proc = start_synth(out)
    writing = wait_for(lambda: len(children_of(proc.pid)) >= 2 and [p for p in out.rglob(".*.tmp") if p.is_dir()] and children_of(proc.pid))
    assert writing and proc.poll() is None, "the kill came too late to test anything"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err[-3000:]  # the one line is the CLI's
    assert not any(alive(w) for w in writing)
    assert not list(out.rglob(".*.tmp"))  # no half-written game left behind
    for game in find_games(out): read_strictly(game)  # the games that are there are whole


def test_old_label_games_keep_teamless_labels(tmp_path):
    "As in SoccerNet v2's Labels-v2.json, the ball going out of play belongs to no team: `not applicable`, not home or away."
    res = dudek_cli("synth", tmp_path, "--kind", "old", "--games", 1, "--minutes", 3, "--height", 64, "--workers", 1)
    assert res.returncode == 0, res.stderr
    (game,) = find_games(tmp_path)
    labels = json.loads(game.labels.read_text())["annotations"]
    teams = {(a["label"], a["team"]) for a in labels}
    assert {t for label, t in teams if label == "Ball out of play"} == {"not applicable"}, teams
    assert {t for label, t in teams if label != "Ball out of play"} == {"home", "away"}, teams
