"""dudek.dataset: splits, per-frame targets, clip windows, training and inference clips read from real (tiny) videos."""
from pathlib import Path

import numpy as np
import pytest
import torch
import fastcore.test as ft

from dudek.annotations import (Annotation, OldLabels, BallLabels, Game, find_games, frame_to_position, game_time_of,
                               write_old_labels, write_ball_labels)
from dudek.config import get_config
from dudek.dataset import (OFFICIAL_CHALLENGE, OFFICIAL_TEST, ClipDataset, FrameSource, InferenceClips, VisionFrames, clip_starts,
                           event_anchor, event_targets, game_videos, make_loader, sample_clip, sampled_length, split_games)
from dudek.files import InputError
from dudek.labels import MERGED, OLD, TWO_HEAD, TEAMS
from dudek.video import frame_code, read_frame_code, video_info, write_video

SIZE = {"data.frame_height": 32, "data.frame_width": 56}


def ann(frame, label, team, visibility="visible", half=1):
    pos = frame_to_position(frame)
    return Annotation(game_time_of(pos, half), label, pos, team, visibility)


def ball_game(root, n_frames, events, name="game"):
    folder = Path(root) / "league/season" / name
    write_video(folder / "224p.mp4", (frame_code(i, 32, 56) for i in range(n_frames)), gop=25)
    write_ball_labels(folder / "Labels-ball.json", BallLabels(f"league/season/{name}", None, [ann(*e) for e in events]))
    return next(g for g in find_games(root) if g.rel.endswith(name))


def codes(frames):
    "Painted indices of (T, 3, H, W) frames."
    return [read_frame_code(f.permute(1, 2, 0).numpy()) for f in frames]


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    ball = ball_game(root / "ball", 400, [(0, "PASS", "left"), (40, "DRIVE", "right"), (44, "PASS", "left"),
                                          (150, "HEADER", "right", "not shown"), (399, "GOAL", "left")])
    folder = root / "old/league/season/old"
    for half, n in ((1, 120), (2, 90)):
        write_video(folder / f"{half}_224p.mkv", (frame_code(1000 * half + i, 32, 56) for i in range(n)), gop=25)
    write_old_labels(folder / "Labels-v2.json", OldLabels("league/season/old", [
        ann(10, "Kick-off", "home"), ann(60, "Shots on target", "away"), ann(30, "Goal", "away", half=2),
        ann(89, "Corner", "not applicable", "not shown", half=2)]))
    old, = find_games(root / "old")
    short = ball_game(root / "short", 41, [(30, "SHOT", "right")], name="short")  # 21 sampled frames
    return {"ball": ball, "old": old, "short": short, "root": root}


# --- splits

def test_split_games_official_and_seeded():
    efl = "england_efl/2019-2020"
    names = list(OFFICIAL_TEST) + [f"2019-09-{d} - A - B" for d in range(20, 25)]
    games = [Game(Path("/d"), f"{efl}/{n}", None, Path("L.json"), "ball") for n in names]
    games += [Game(Path("/d"), f"{efl}/{n}", Path("224p.mp4"), None, "ball") for n in OFFICIAL_CHALLENGE]
    for seed in range(5):
        s = split_games(games, n_val=1, n_test=3, seed=seed)  # official test games present: n_test is not drawn
        ft.test_eq([len(s[k]) for k in ("train", "val", "test", "challenge")], [4, 1, 2, 2])
        ft.test_eq({Path(g.rel).name for g in s["test"]}, set(OFFICIAL_TEST))
        ft.test_eq(sorted(g.rel for k in s for g in s[k]), sorted(g.rel for g in games))  # a partition
        ft.test_eq(s, split_games(games, n_val=1, n_test=3, seed=seed))
    ft.test_eq(len({split_games(games, seed=k)["val"][0].rel for k in range(10)}) > 1, True)
    ft.test_eq([len(v) for v in split_games(games, n_val=0, official=False).values()], [7, 0, 0, 2])
    with pytest.raises(InputError, match="n_val"): split_games(games, n_val=6)


# --- targets

def reference_targets(events, n_sampled, stride, radius, codec):
    "Frame by frame: the covering event with the nearest anchor, the later one on a tie."
    events = sorted(events, key=lambda e: e[0])
    cls, disp, team = np.zeros(n_sampled, int), np.zeros(n_sampled), np.full(n_sampled, -1)
    for j in range(n_sampled):
        best = None
        for order, (f, label, t) in enumerate(events):
            if not 0 <= f < n_sampled * stride: continue
            a = min(int(np.floor(f / stride + 0.5)), n_sampled - 1)
            if abs(j - a) <= radius and (best is None or abs(j - a) <= best[0]): best = (abs(j - a), a, label, t)
        if best:
            cls[j], disp[j] = codec.encode(best[2], best[3]), j - best[1]
            team[j] = TEAMS.index(best[3]) if best[3] in TEAMS else -1
    return cls, disp, team


@pytest.mark.parametrize("stride,radius", [(2, 4), (1, 3), (4, 2), (3, 0)])
def test_targets_match_the_frame_by_frame_rule(stride, radius):
    rng = np.random.default_rng(stride * 10 + radius)
    labels = ["PASS", "DRIVE", "SHOT"]
    for _ in range(30):
        n_sampled = int(rng.integers(1, 60))
        events = [(int(f), labels[rng.integers(3)], TEAMS[rng.integers(2)]) for f in rng.integers(-3, n_sampled * stride + 3, rng.integers(0, 8))]
        got = event_targets(events, n_sampled, stride, radius, MERGED)
        want = reference_targets(events, n_sampled, stride, radius, MERGED)
        for g, w in zip(got, want): ft.test_eq(g.tolist(), w.tolist())
        c, d, _ = got
        fg = np.flatnonzero(c)
        anchors = {min(int(event_anchor(f, stride)), n_sampled - 1) for f, _, _ in events if 0 <= f < n_sampled * stride}
        ft.test_eq(set((fg - np.round(d[fg])).astype(int).tolist()) <= anchors, True)  # every vote lands on an anchor
        ft.test_eq(anchors <= set(fg.tolist()), True)  # every anchor is a foreground frame with displacement 0
        ft.test_eq(np.abs(d).max(initial=0) <= radius, True)


def test_overlapping_windows_are_resolved_by_nearest_anchor_then_later_event():
    c, d, t = event_targets([(20, "PASS", "left"), (28, "SHOT", "right")], 24, 2, 4, MERGED)
    p, s = MERGED.encode("PASS", "left"), MERGED.encode("SHOT", "right")
    ft.test_eq(c[6:19].tolist(), [p] * 6 + [s] * 7)  # frame 12 is 2 from both anchors: the later event
    ft.test_eq(d[6:19].tolist(), [-4, -3, -2, -1, 0, 1, -2, -1, 0, 1, 2, 3, 4])
    ft.test_eq(t[6:19].tolist(), [0] * 6 + [1] * 7)
    c, _, _ = event_targets([(22, "HEADER", "left"), (21, "PASS", "left")], 24, 2, 2, MERGED)  # one sampled frame
    ft.test_eq(set(c[c > 0].tolist()), {MERGED.encode("HEADER", "left")})


def test_events_on_the_first_and_last_frames():
    for n_frames in (400, 401):  # the last frame is a sampled frame (even) or falls between two (odd n - 1)
        n = sampled_length(n_frames, 2)
        c, d, _ = event_targets([(0, "PASS", "left"), (n_frames - 1, "GOAL", "left")], n, 2, 4, MERGED)
        ft.test_eq((c[:5] == MERGED.encode("PASS", "left")).all() and c[5] == 0, True)
        ft.test_eq(d[:5].tolist(), [0, 1, 2, 3, 4])
        ft.test_eq((c[-5:] == MERGED.encode("GOAL", "left")).all() and c[-6] == 0, True)
        ft.test_eq(d[-5:].tolist(), [-4, -3, -2, -1, 0])  # anchor clamped to the last sampled frame


def test_not_shown_events_are_trained_on_by_default(games):
    v, = game_videos(games["ball"])
    ft.test_eq((150, "HEADER", "right") in v.events, True)
    ds = ClipDataset([games["ball"]], get_config(overrides=SIZE), MERGED, n_clips=1)
    ft.test_eq(ds.targets[0][0][75], MERGED.encode("HEADER", "right"))
    v, = game_videos(games["ball"], include_not_shown=False)
    ft.test_eq([e for e in v.events if e[0] == 150], [])
    ds = ClipDataset([games["ball"]], get_config(overrides=SIZE), MERGED, n_clips=1, include_not_shown=False)
    ft.test_eq(ds.targets[0][0][70:81].max(), 0)


def test_two_head_codec_gives_a_team_target(games):
    ds = ClipDataset([games["ball"]], get_config(overrides={**SIZE, "data.radius": 1}), TWO_HEAD, n_clips=4)
    c, d, t = ds.targets[0]
    ft.test_eq((c[20], t[20], c[22], t[22]), (TWO_HEAD.encode("DRIVE"), 1, TWO_HEAD.encode("PASS"), 0))
    ft.test_eq(((c > 0) == (t >= 0)).all(), True)  # a team on every foreground frame, none on background
    ft.test_eq(int(c.max()) < TWO_HEAD.n_classes, True)


def test_old_label_games_use_the_old_codec_per_half(games):
    cfg = get_config(overrides={**SIZE, "data.clip_len": 8, "data.overlap": 4, "data.radius": 2})
    ds = ClipDataset([games["old"]], cfg, OLD, n_clips=40, event_bias=0.5, seed=4)
    ft.test_eq([(v.path.name, v.half, v.n_frames) for v in ds.videos], [("1_224p.mkv", 1, 120), ("2_224p.mkv", 2, 90)])
    (c1, _, t1), (c2, _, t2) = ds.targets
    ft.test_eq((c1[5], c1[30], c2[15], c2[44]), (OLD.encode("Kick-off"), OLD.encode("Shots on target"),
                                                OLD.encode("Goal"), OLD.encode("Corner")))
    ft.test_eq((t1.max(), t2.max(), OLD.n_classes), (-1, -1, 18))  # team ignored
    for i in range(len(ds)):
        x = ds[i]
        ft.test_eq(codes(x["frames"]), [1000 * x["half"] + 2 * (x["start"] + k) for k in range(8)])  # the right half's frames
        ft.test_eq(x["target_class"].numpy(), ds.targets[x["half"] - 1][0][x["start"]:x["start"] + 8])
        ft.test_eq(x["team"].max().item(), -1)
    with pytest.raises(InputError, match="ball action game"): ClipDataset([games["old"]], cfg, MERGED)
    with pytest.raises(InputError, match="old action game"): ClipDataset([games["ball"]], cfg, OLD)


def test_unlabelled_games_are_refused(games, tmp_path):
    folder = tmp_path / "l/s/challenge"
    write_video(folder / "224p.mp4", (frame_code(i, 32, 56) for i in range(10)))
    g, = find_games(tmp_path)
    with pytest.raises(InputError, match="labels"): ClipDataset([g], get_config(), MERGED)


# --- clip windows and inference

@pytest.mark.parametrize("n_frames", [1, 30, 63, 64, 65, 199, 400])
def test_inference_clips_cover_every_sampled_frame(games, tmp_path, n_frames):
    path = write_video(tmp_path / "v.mp4", (frame_code(i, 32, 56) for i in range(n_frames)), gop=25)
    for clip_len, overlap in [(32, 16), (16, 0), (20, 17)]:
        clips = InferenceClips(path, get_config(overrides={**SIZE, "data.clip_len": clip_len, "data.overlap": overlap}))
        n = clips.n_sampled
        ft.test_eq(n, (n_frames + 1) // 2)
        seen = np.zeros(n, int)
        for i in range(len(clips)):
            x = clips[i]
            ft.test_eq(x["frames"].shape, (clip_len, 3, 32, 56))
            ft.test_eq(codes(x["frames"]), [2 * min(x["start"] + k, n - 1) for k in range(clip_len)])  # padding repeats the last
            seen[x["start"]:x["start"] + clip_len] += 1
        ft.test_eq(seen.min(), 1)  # every sampled frame, the tail included
        starts = clips.starts
        ft.test_eq(starts[0], 0)
        ft.test_eq(starts[-1], max(0, n - clip_len))  # the last clip ends at the video's end
        ft.test_eq(bool((np.diff(starts) <= clip_len - overlap).all() and (np.diff(starts) > 0).all()), True)


def test_clip_starts_examples():
    ft.test_eq(clip_starts(100, 32, 16).tolist(), [0, 16, 32, 48, 64, 68])
    ft.test_eq(clip_starts(80, 80, 68).tolist(), [0])
    ft.test_eq(clip_starts(93, 80, 68).tolist(), [0, 12, 13])
    with pytest.raises(ValueError, match="overlap"): clip_starts(100, 8, 9)


# --- training clips

def test_training_clips_are_deterministic_per_seed_and_epoch(games):
    cfg = get_config(overrides={**SIZE, "data.clip_len": 16, "data.overlap": 8})
    make = lambda seed: ClipDataset([games["ball"], games["short"]], cfg, MERGED, n_clips=10, seed=seed)
    a, b = make(0), make(0)
    items = [a[i] for i in range(10)]
    for i, x in enumerate(items):
        y = b[i]
        for k in x: ft.test_eq(torch.as_tensor(x[k]).tolist(), torch.as_tensor(y[k]).tolist())
        ft.test_eq(codes(x["frames"]), [2 * min(x["start"] + k, a.n_sampled[x["game"]] - 1) for k in range(16)])
    ft.test_ne([a.clip(i) for i in range(10)], [make(1).clip(i) for i in range(10)])
    b.set_epoch(1)
    epoch1 = [b.clip(i) for i in range(10)]
    ft.test_ne(epoch1, [a.clip(i) for i in range(10)])
    a.set_epoch(1)
    ft.test_eq([a.clip(i) for i in range(10)], epoch1)
    # the same batches through worker processes, after set_epoch, in any worker count
    for workers in (0, 2):
        batches = list(make_loader(a, batch_size=4, num_workers=workers))
        ft.test_eq(torch.cat([x["start"] for x in batches]).tolist(), [s for _, s in epoch1])
        ft.test_eq(torch.cat([x["frames"] for x in batches]), torch.stack([a[i]["frames"] for i in range(10)]))


def test_a_video_shorter_than_a_clip_is_padded_with_background(games):
    cfg = get_config(overrides={**SIZE, "data.clip_len": 32, "data.radius": 2})
    ds = ClipDataset([games["short"]], cfg, MERGED, n_clips=6, event_bias=0.5)
    for i in range(len(ds)):
        x = ds[i]
        ft.test_eq(x["start"], 0)
        ft.test_eq(codes(x["frames"]), [2 * min(k, 20) for k in range(32)])  # 21 sampled frames, then the last repeats
        ft.test_eq(x["target_class"][21:].tolist(), [0] * 11)
        ft.test_eq(x["displacement"][21:].tolist(), [0.0] * 11)
        ft.test_eq(x["team"][21:].tolist(), [-1] * 11)
        ft.test_eq(x["target_class"][15].item(), MERGED.encode("SHOT", "right"))


def test_event_bias_and_clip_bounds(games):
    cfg = get_config(overrides={**SIZE, "data.clip_len": 16, "data.overlap": 8})
    ds = ClipDataset([games["ball"], games["short"]], cfg, MERGED, n_clips=200, event_bias=1.0, seed=5)
    for i in range(len(ds)):
        video, start = ds.clip(i)
        ft.test_eq(0 <= start <= max(0, ds.n_sampled[video] - 16), True)  # never crosses the video's end
        ft.test_eq(any((ds.event_video == video) & (ds.event_anchor >= start) & (ds.event_anchor < start + 16)), True)
    uniform = ClipDataset([games["ball"]], cfg, MERGED, n_clips=300, event_bias=0.0, seed=5)
    starts = [uniform.clip(i)[1] for i in range(300)]
    ft.test_eq((min(starts), max(starts)), (0, 200 - 16))


def test_event_balance_draws_every_label_alike(games):
    "Six events of five labels: the lone SHOT (the short video) is a sixth of the event draws as found, a fifth at `event_balance=1`."
    for balance, share in ((0.0, 1 / 6), (0.5, 1 / (2 / 2 ** 0.5 + 4)), (1.0, 1 / 5)):
        cfg = get_config(overrides={**SIZE, "data.clip_len": 4, "data.overlap": 2, "data.event_balance": balance})
        ds = ClipDataset([games["ball"], games["short"]], cfg, MERGED, n_clips=20000, event_bias=1.0, seed=5)
        ft.test_close(np.mean([ds.clip(i)[0] == 1 for i in range(len(ds))]), share, eps=0.01)


def test_augment_runs_with_a_reproducible_generator(games):
    cfg = get_config(overrides={**SIZE, "data.clip_len": 8, "data.overlap": 4})
    def augment(item, rng):
        return {**item, "noise": float(rng.random())}
    ds = ClipDataset([games["ball"]], cfg, MERGED, n_clips=3, augment=augment)
    ft.test_eq([ds[i]["noise"] for i in range(3)], [ds[i]["noise"] for i in range(3)])
    ft.test_eq(len({ds[i]["noise"] for i in range(3)}), 3)


def test_frame_cache_gives_the_decoded_pixels(games, tmp_path):
    v, = game_videos(games["ball"])
    decoded = FrameSource([v.path], 2, (32, 56))
    cached = FrameSource([v.path], 2, (32, 56), cache_dir=tmp_path)
    idx = np.random.default_rng(0).integers(0, 200, 50)
    ft.test_eq(cached.read(0, idx), decoded.read(0, idx))
    ft.test_eq(len(list(tmp_path.glob("*.npy"))), 1)
    FrameSource([v.path], 2, (32, 56), cache_dir=tmp_path)  # reused, not rebuilt
    ft.test_eq(len(list(tmp_path.iterdir())), 1)


def test_sample_clip_is_uniform_over_clip_positions():
    rng = np.random.default_rng(0)
    draws = [sample_clip(rng, np.array([50, 20]), 20) for _ in range(2000)]
    ft.test_close(np.mean([v == 0 for v, _ in draws]), 31 / 32, eps=0.02)


def test_vision_frames_hand_out_the_ground_truth_of_their_frames(games):
    def read_truth(game):
        n = video_info(game.video).n_frames
        return {"frame": np.arange(n), "ball_xy": np.stack([np.arange(n), -np.arange(n)], 1).astype(np.float32)}
    cfg = get_config(overrides=SIZE)
    ds = VisionFrames([games["ball"], games["short"]], cfg, read_truth, n_clips=12, seed=3)
    for i in range(len(ds)):
        x = ds[i]
        ft.test_eq(x["frames"].shape, (8, 3, 32, 56))
        ft.test_eq(codes(x["frames"]), x["frame"].tolist())  # truth rows of exactly these frames (padding included)
        ft.test_eq(x["ball_xy"][:, 0].long().tolist(), x["frame"].tolist())
    ft.test_eq([ds[i]["start"] for i in range(12)], [VisionFrames([games["ball"], games["short"]], cfg, read_truth, n_clips=12,
                                                                  seed=3)[i]["start"] for i in range(12)])
    with pytest.raises(InputError, match="ground truth frame"):
        VisionFrames([games["ball"]], cfg, lambda g: {"frame": np.zeros(5)})


def test_labels_that_do_not_fit_their_videos_are_an_error(tmp_path):
    late = ball_game(tmp_path / "late", 50, [(10, "PASS", "left"), (60, "GOAL", "left"), (70, "OUT", "left")])
    ft.test_fail(lambda: game_videos(late), contains="got GOAL at 2420 ms and 1 more past its end")
    folder = tmp_path / "old/league/season/old"
    for half in (1, 2): write_video(folder / f"{half}_224p.mkv", (frame_code(i, 32, 56) for i in range(30)), gop=25)
    write_old_labels(folder / "Labels-v2.json", OldLabels("league/season/old", [ann(5, "Kick-off", "home"),
                                                                                     ann(5, "Goal", "away", half=3)]))
    ft.test_fail(lambda: game_videos(find_games(tmp_path / "old")[0]), contains="got events of half 3")
