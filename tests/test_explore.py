"""dudek.explore: the event table on synthetic and hand-made folders (exact counts, halves, bad input), label and
team counts, team flips (mirror and half time, against the codec and the match engine), timing statistics, the
plots' titles and axes, and the clip viewer driven without a browser."""
import numpy as np
import pandas as pd
import pytest
import fastcore.test as ft
from matplotlib.figure import Figure

from dudek.annotations import (OldLabels, Annotation, BallLabels, Prediction, Predictions, find_games,
                               format_game_time, frame_to_position, write_old_labels, write_ball_labels,
                               write_predictions)
from dudek.explore import (EVENT_COLUMNS, ClipViewer, GameView, as_game, event_gaps, event_table, events_per_minute,
                           flip_events, label_counts, mirror_frame, plot_event_gaps, plot_events_per_minute, plot_flip,
                           plot_frames, plot_label_counts, plot_team_balance, prediction_table, team_balance)
from dudek.files import InputError
from dudek.labels import BALL_LABELS, MERGED, OLD_LABELS, swap_team
from dudek.truth import read_truth
from dudek.synthetic import GameSpec, simulate_game, synthesize

MINUTES, SEED = 0.3, 3


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    "Two small synthetic ball games (0.3 min each)."
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n_games=2, minutes=MINUTES, seed=SEED, workers=2)
    return root


def ann(label, frame, team, visibility="visible"):
    pos = frame_to_position(frame)
    return Annotation(format_game_time(1, pos / 1000), label, pos, team, visibility)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    "Hand-made label files: two ball games (one with a halftime), an old game, a challenge game without labels."
    root = tmp_path_factory.mktemp("tiny")
    write_ball_labels(root / "lg/s/A/Labels-ball.json", BallLabels("lg/s/A/", "1 - 00:10", [
        ann("PASS", 25, "left"), ann("PASS", 50, "left"), ann("DRIVE", 65, "right"),
        ann("PASS", 300, "right"), ann("GOAL", 310, "right", "not shown")]))
    write_ball_labels(root / "lg/s/B/Labels-ball.json", BallLabels("lg/s/B/", None, [
        ann("SHOT", 750, "right"), ann("PASS", 12, "left")]))
    write_old_labels(root / "lg/s/C/Labels-v2.json", OldLabels("lg/s/C/", [
        Annotation("1 - 00:05", "Goal", 5020, "home"), Annotation("2 - 00:03", "Kick-off", 3020, "away")]))
    (root / "lg/s/D").mkdir(parents=True)
    (root / "lg/s/D/224p.mp4").touch()
    return root


# ---- the event table
def test_event_table_hand_made(tiny):
    t = event_table(tiny)
    ft.test_eq(list(t.columns), list(EVENT_COLUMNS))
    ft.test_eq(t.game.unique().tolist(), ["lg/s/A", "lg/s/B", "lg/s/C"])  # D has no labels: left out
    a = t[t.game == "lg/s/A"]
    ft.test_eq(list(zip(a.frame, a.half, a.label, a.team)), [(25, 1, "PASS", "left"), (50, 1, "PASS", "left"),
               (65, 1, "DRIVE", "right"), (300, 2, "PASS", "right"), (310, 2, "GOAL", "right")])
    ft.test_eq(a.visibility.tolist()[-1], "not shown")
    b = t[t.game == "lg/s/B"]
    ft.test_eq(list(zip(b.frame, b.half)), [(12, 1), (750, 1)])  # sorted; no halftime: half 1
    c = t[t.kind == "old"]
    ft.test_eq(list(zip(c.video, c.half, c.frame, c.label)), [(1, 1, 125, "Goal"), (2, 2, 75, "Kick-off")])
    ft.test_eq(t.attrs["halftime_ms"]["lg/s/A"], 10_000)
    ft.test_eq(len(event_table(tiny, kind="ball")), 7)
    ft.test_eq(len(event_table(tiny, kind="old")), 2)


def test_event_table_bad_input(tmp_path, tiny):
    with pytest.raises(InputError) as e: event_table(tmp_path)
    ft.test_eq((e.value.path, e.value.field), (str(tmp_path), "games"))
    with pytest.raises(InputError) as e: event_table(tiny / "lg/s/D")
    ft.test_eq(e.value.field, "label files")
    with pytest.raises(InputError): event_table(tmp_path / "nowhere")
    (tmp_path / "g/Labels-ball.json").parent.mkdir()
    (tmp_path / "g/Labels-ball.json").write_text('{"UrlLocal": "g/", "annotations": [{"label": "PAS"}]}')
    with pytest.raises(InputError, match="Labels-ball.json"): event_table(tmp_path)


def test_event_table_synthetic(synth):
    t = event_table(synth)
    games = find_games(synth)
    ft.test_eq(t.game.unique().tolist(), [g.rel for g in games])
    for g in games:
        labels, rows = g.read_labels(), t[t.game == g.rel]
        ft.test_eq(len(rows), len(labels.annotations))
        ft.test_eq(sorted(rows.position), sorted(a.position for a in labels.annotations))
        ft.test_eq((rows.frame.diff().dropna() >= 0).all(), True)
        ft.test_eq(rows.half.tolist(), [1 + int(p >= labels.halftime_ms) for p in rows.position])
    ft.test_eq(set(t.half), {1, 2})


# ---- counts
def test_label_counts(tiny):
    t = event_table(tiny, kind="ball")
    n = label_counts(t)
    ft.test_eq(n.index.tolist(), list(BALL_LABELS))
    ft.test_eq(dict(n[n > 0]), {"PASS": 4, "DRIVE": 1, "SHOT": 1, "GOAL": 1})
    g = label_counts(t, by="game")
    ft.test_eq(g.columns.tolist(), ["lg/s/A", "lg/s/B"])
    ft.test_eq(g.loc["PASS"].tolist(), [3, 1])
    ft.test_eq(label_counts(t, by="half").loc["PASS"].tolist(), [3, 1])
    ft.test_eq(label_counts(event_table(tiny)).index.tolist(), list(BALL_LABELS) + list(OLD_LABELS))


def test_team_balance(tiny, synth):
    b = team_balance(event_table(tiny, kind="ball"))
    ft.test_eq(b.loc["PASS", ["left", "right", "events"]].tolist(), [3, 1, 4])
    ft.test_close(b.loc["PASS", "share_left"], 0.75)
    ft.test_close(b[["share_left", "share_right"]].dropna().sum(axis=1).to_numpy(), 1.0)
    ft.test_eq(b.loc["CROSS"].isna()[["share_left", "share_right"]].all(), True)
    old = team_balance(event_table(tiny, kind="old"))
    ft.test_eq(old.loc["Goal", ["home", "away"]].tolist(), [1, 0])
    t = event_table(synth)
    ft.test_eq(int(team_balance(t)[["left", "right"]].to_numpy().sum()), len(t))


# ---- team flips
def test_flip_events_matches_the_codec(tiny, synth):
    t = event_table(synth)
    f = flip_events(t)
    for r, s in zip(t.itertuples(), f.itertuples()):
        ft.test_eq(MERGED.encode(s.label, s.team), MERGED.flip_index[MERGED.encode(r.label, r.team)])
    ft.test_eq(flip_events(f).equals(t), True)
    old = event_table(tiny, kind="old")
    ft.test_eq(flip_events(old).equals(old), True)  # home/away are clubs, not sides


def test_mirror_and_view(synth):
    game = find_games(synth)[0]
    view = GameView(game, window=10)
    truth = read_truth(game)
    ft.test_eq(view.ball.shape, truth["ball_xy"].shape)
    f = int(view.events.frame.iloc[len(view.events) // 2])
    img = view.image(f)
    ft.test_eq(view.image(f, mirror=True), img[:, ::-1])
    ft.test_eq(mirror_frame(mirror_frame(img)), img)
    near, flipped = view.events_near(f), view.events_near(f, mirror=True)
    ft.test_eq((near.offset.abs() <= 10).all(), True)
    ft.test_eq(0 in near.offset.tolist(), True)
    ft.test_eq(flipped.team.tolist(), [swap_team(x) for x in near.team])
    visible = np.flatnonzero(np.isfinite(truth["ball_xy"][:, 0]))
    k = int(visible[len(visible) // 2])
    ft.test_close(view.ball_xy(k, mirror=True), [1 - truth["ball_xy"][k, 0], truth["ball_xy"][k, 1]])
    with pytest.raises(IndexError): view.image(view.n_frames)
    with pytest.raises(InputError, match="video"): GameView(game, video=2)


def test_half_time_swaps_sides(synth):
    "The file's team of every event is its club's side in that half, and each club changes sides at half time."
    t = event_table(synth)
    for i, game in enumerate(find_games(synth)):
        sim = simulate_game(GameSpec(index=i, seed=SEED, minutes=MINUTES))
        ft.test_eq(sim.rel, game.rel)
        rows, offset = [], 0
        for h in sim.halves:
            rows += [(offset + e.frame, h.half, h.side(e.team)) for e in h.events if e.label]
            offset += h.n_frames
        g = t[t.game == game.rel]
        ft.test_eq(list(zip(g.frame, g.half, g.team)), rows)
        for club in (0, 1): ft.test_ne(sim.halves[0].side(club), sim.halves[1].side(club))


def test_as_game(tiny, synth):
    g = find_games(synth)[0]
    ft.test_eq(as_game(g.path).rel, ".")
    ft.test_eq(as_game(g) is g, True)
    with pytest.raises(InputError, match="one game folder"): as_game(synth)
    ft.test_eq(as_game(tiny / "lg/s/C").kind, "old")


# ---- timing
def test_events_per_minute(tiny, synth):
    r = events_per_minute(event_table(tiny, kind="ball"), bin_s=5)
    a = r[r.game == "lg/s/A"]
    ft.test_eq(list(zip(a.start_s, a.events)), [(0, 3), (5, 0), (10, 2)])
    ft.test_close(a.per_minute.tolist(), [36, 0, 24])
    b = r[r.game == "lg/s/B"]
    ft.test_eq(b.events.tolist(), [1, 0, 0, 0, 0, 0, 1])  # 0.5 s and 30.0 s
    ft.test_eq(events_per_minute(event_table(tiny, kind="old")).video.tolist(), [1, 2])
    t = event_table(synth)
    ft.test_eq(events_per_minute(t, bin_s=3).events.sum(), len(t))


def test_event_gaps(tiny, synth):
    t = event_table(tiny, kind="ball")
    g = event_gaps(t)
    ft.test_eq(list(zip(g.game, g.gap_frames, g.previous_label)), [
        ("lg/s/A", 25, "PASS"), ("lg/s/A", 15, "PASS"), ("lg/s/A", 235, "DRIVE"), ("lg/s/A", 10, "PASS"), ("lg/s/B", 738, "PASS")])
    ft.test_close(g.gap_s.tolist(), [1.0, 0.6, 9.4, 0.4, 29.52])
    ft.test_eq(event_gaps(t, same=("label",)).gap_frames.tolist(), [25, 250])
    ft.test_eq(event_gaps(t, same=("label", "team")).gap_frames.tolist(), [25])
    old = event_gaps(event_table(tiny, kind="old"))
    ft.test_eq(len(old), 0)  # one event per half video: no gaps (halves are separate videos)
    s = event_table(synth)
    gs = event_gaps(s)
    ft.test_eq(len(gs), len(s) - s.game.nunique())
    ft.test_eq((gs.gap_frames >= 0).all(), True)


# ---- plots
def _labelled(fig):
    ft.test_eq(isinstance(fig, Figure), True)
    ax = fig.axes[0]
    ft.test_ne(ax.get_title(), "")
    ft.test_ne(ax.get_xlabel(), "")
    return ax


def test_plots(tiny, synth):
    t = event_table(tiny, kind="ball")
    ax = _labelled(plot_label_counts(t))
    ft.test_eq(ax.get_xscale(), "log")
    ft.test_ne(ax.get_ylabel(), "")
    ft.test_eq([x.get_text() for x in ax.texts], [str(v) for v in label_counts(t)])
    ax = _labelled(plot_team_balance(t))
    ft.test_close([p.get_width() for p in ax.containers[0].patches][:2], [0.75, 0.0])
    ax = _labelled(plot_events_per_minute(t, bin_s=5))
    ft.test_eq(ax.get_ylabel(), "events per minute")
    ax = _labelled(plot_event_gaps(t))
    ft.test_eq(ax.get_xscale(), "log")
    s = event_table(synth)
    for plot in (plot_label_counts, plot_team_balance, plot_events_per_minute, plot_event_gaps): _labelled(plot(s))


def test_plots_of_a_game_without_events(tmp_path):
    write_ball_labels(tmp_path / "lg/s/E/Labels-ball.json", BallLabels("lg/s/E/", "1 - 45:00", []))
    t = event_table(tmp_path)
    ft.test_eq(len(t), 0)
    ft.test_eq(int(label_counts(t).sum()), 0)
    for plot in (plot_label_counts, plot_team_balance, plot_events_per_minute, plot_event_gaps): _labelled(plot(t))


def test_frame_plots(synth):
    game = find_games(synth)[0]
    t = event_table(synth)
    first = t[t.game == game.rel].iloc[0]
    f, team = int(first.frame), first.team
    fig = plot_flip(game, f)
    ax0, ax1 = fig.axes
    bold = lambda ax: sorted(x.get_text() for x in ax.texts if x.get_fontweight() == "bold")
    ft.test_eq(any(f" {team} +0" in x for x in bold(ax0)), True)
    ft.test_eq(bold(ax1), sorted(x.replace("left", "@").replace("right", "left").replace("@", "right") for x in bold(ax0)))
    ft.test_eq(np.asarray(ax1.images[0].get_array()), np.asarray(ax0.images[0].get_array())[:, ::-1])
    ft.test_eq(len(plot_frames(game, [0, f, f + 5]).axes), 3)


# ---- predictions and the viewer
def test_prediction_table(tmp_path):
    preds = [Prediction.at_frame(40, "PASS", "left", 0.5), Prediction.at_frame(12, "DRIVE", "right", 0.9),
             Prediction.at_frame(12, "PASS", "right", 0.95)]
    t = prediction_table(preds)
    ft.test_eq(list(zip(t.frame, t.label, t.confidence)), [(12, "PASS", 0.95), (12, "DRIVE", 0.9), (40, "PASS", 0.5)])
    path = write_predictions(tmp_path / "results_spotting.json", Predictions("lg/s/A/", preds))
    ft.test_eq(prediction_table(path).equals(t), True)
    ft.test_eq(prediction_table(Predictions("lg/s/A/", preds)).equals(t), True)
    df = pd.DataFrame({"frame": [40, 12, 12], "label": ["PASS", "DRIVE", "PASS"], "team": ["left", "right", "right"],
                       "confidence": [0.5, 0.9, 0.95]})
    ft.test_eq(prediction_table(df).equals(t), True)
    ft.test_eq(prediction_table(None), None)


def test_clip_viewer_without_a_browser(synth):
    game = find_games(synth)[0]
    v = ClipViewer(game.path, window=10)  # a game folder works as well as a Game
    ev = v.view.events
    first, second = int(ev.frame.iloc[0]), int(ev.frame[ev.frame > ev.frame.iloc[0]].iloc[0])
    ft.test_eq((v.slider.min, v.slider.max, v.frame), (0, v.view.n_frames - 1, first))
    ft.test_eq(v.image.value[:8], b"\x89PNG\r\n\x1a\n")
    ft.test_eq(f"<b>+0: {ev.label.iloc[0]} {ev.team.iloc[0]}" in v.info.value, True)
    png, info = v.image.value, v.info.value
    v.slider.value = first + 3  # the event is now 3 frames back
    ft.test_ne(v.image.value, png)
    ft.test_eq(f"-3: {ev.label.iloc[0]} {ev.team.iloc[0]}" in v.info.value, True)
    ft.test_ne(v.info.value, info)
    v.slider.value = 0
    ft.test_eq(v.next_event(), first)
    ft.test_eq(v.next_event(), second)
    ft.test_eq(v.previous_event(), first)
    ft.test_eq(v.previous_event(), first)
    v.next_button.click()
    ft.test_eq(v.frame, second)
    ft.test_eq(isinstance(v.figure(0), Figure), True)
    ft.test_eq("application/vnd.jupyter.widget-view+json" in v._repr_mimebundle_(), True)


def test_clip_viewer_overlays_predictions(synth):
    game = find_games(synth)[0]
    ev = event_table(synth)
    f = int(ev[ev.game == game.rel].frame.iloc[0])
    pred = Prediction.at_frame(f + 2, "SHOT", "right", 0.42)
    v = ClipViewer(game, predictions=[pred], window=10, frame=f)
    ft.test_eq(v.frame, f)
    ft.test_eq("+2: SHOT right p=0.42" in v.info.value, True)
    fig = v.figure()
    ft.test_eq(any(x.get_text() == "SHOT right +2 p=0.42" for x in fig.axes[0].texts), True)
    ft.test_eq(any(x.get_text() == "SHOT right" for x in fig.axes[1].texts), True)  # on the timeline too
    v.slider.value = min(f + 40, v.slider.max)  # far from it: gone
    ft.test_eq("p=0.42" in v.info.value, False)
