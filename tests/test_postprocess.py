"""dudek.postprocess: Soft-NMS identical to a plain reference loop, clip aggregation, displacement decoding,
predictions that land on the right frame, and validated submissions.

`soft_nms_reference` is the plain loop the compiled kernel must equal (benchmarks/soft_nms_speed.py times
the two). Its decay is numpy's `(d / window) ** 2` on an array, which squares by one multiplication, as the
kernel's `r * r` does (CPython's scalar `x ** 2` calls pow() and differs in the last bit now and then).
"""
import json, zipfile

import numpy as np
import pytest
import fastcore.test as ft

from dudek.labels import MERGED, BALL_LABELS
from dudek.files import InputError
from dudek.annotations import (Prediction, Predictions, position_to_frame, read_submission, BallLabels, Annotation,
                               write_ball_labels, frame_to_position, game_time_of)
from dudek.metrics import Spots, spotting_scores, evaluate
from dudek.postprocess import (soft_nms, sampled_window, simulate_scores, ClipAggregator, aggregate_clips,
                               apply_displacement, two_head_probs, scores_to_predictions, scores_to_spots,
                               postprocess_scores, make_submission)


def soft_nms_reference(scores, window, threshold, per_team=True):
    "The plain loop: per column (or label pair), repeatedly keep the best remaining cell and decay its neighbours."
    s = np.array(scores, np.float64)
    n, n_cols = s.shape
    out = np.zeros_like(s)
    m = 1 if per_team else 2
    for g in range(0, n_cols, m):
        rem = s[:, g:g + m].copy()
        kept = np.zeros(rem.shape, bool)
        while True:
            flat = np.where(kept, -np.inf, rem).ravel()  # frame-major: ties go to the earliest frame, then left
            i = int(np.argmax(flat))
            if flat[i] < threshold: break
            f, k = divmod(i, m)
            out[f, g + k] = rem[f, k]
            kept[f, k] = True
            lo, hi = max(0, f - int(window)), min(n, f + int(window) + 1)
            factor = ((np.abs(np.arange(lo, hi) - f) / window) ** 2)[:, None]
            rem[lo:hi] = np.where(kept[lo:hi], rem[lo:hi], rem[lo:hi] * factor)
    return out


# ---------------------------------------------------------------- Soft-NMS

@pytest.mark.parametrize("window,threshold", [(12, 0.01), (17.0, 0.005), (5.5, 0.02), (1, 0.01), (40, 0.05)])
def test_soft_nms_identical_to_reference(window, threshold):
    scores, _ = simulate_scores(3_000, 90, seed=int(window * 10))
    for per_team in (True, False):
        fast = soft_nms(scores, window, threshold, per_team)
        ref = soft_nms_reference(scores, window, threshold, per_team)
        ft.test_eq(fast.dtype, np.float64)
        ft.test_eq(np.array_equal(fast, ref), True)  # bit for bit
        ft.test_eq(np.count_nonzero(fast) > 0, True)


def test_soft_nms_ties_and_plateaus():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((500, 4)) ** 3, 1)  # many equal values
    for w in (3, 8):
        for per_team in (True, False):
            ft.test_eq(np.array_equal(soft_nms(scores, w, 0.1, per_team), soft_nms_reference(scores, w, 0.1, per_team)), True)
    flat = np.full((20, 2), 0.5)
    ft.test_eq(np.array_equal(soft_nms(flat, 4, 0.05, False), soft_nms_reference(flat, 4, 0.05, False)), True)


def test_soft_nms_float32_and_edges():
    scores, _ = simulate_scores(2_000, 60, seed=3)
    ft.test_eq(np.array_equal(soft_nms(scores, 12, 0.01), soft_nms(scores.astype(np.float64), 12, 0.01)), True)
    ft.test_eq(np.count_nonzero(soft_nms(np.zeros((50, 24)), 12, 0.01)), 0)
    ft.test_eq(soft_nms(np.zeros((0, 24)), 12, 0.01).shape, (0, 24))
    one = np.zeros((1, 2)); one[0] = [0.4, 0.6]
    ft.test_eq(soft_nms(one, 3, 0.1).tolist(), [[0.4, 0.6]])
    ft.test_eq(soft_nms(one, 3, 0.1, per_team=False).tolist(), [[0.0, 0.6]])
    with pytest.raises(ValueError, match="NaN"): soft_nms(np.full((3, 1), np.nan), 3, 0.1)
    with pytest.raises(ValueError, match="window"): soft_nms(one, 0, 0.1)
    with pytest.raises(ValueError, match="even"): soft_nms(np.zeros((3, 3)), 3, 0.1, per_team=False)


def test_window_on_grid_equals_window_on_video():
    rng = np.random.default_rng(1)
    grid = rng.random((600, 3)) ** 4
    video = np.zeros((1200, 3)); video[::2] = grid
    for window in (34, 24, 7):
        ft.test_eq(np.array_equal(soft_nms(grid, sampled_window(window, 2), 0.005), soft_nms(video, window, 0.005)[::2]), True)


# ---------------------------------------------------------------- clips and displacement

def test_aggregation_mean_over_covering_clips():
    from dudek.dataset import clip_starts, clip_indices
    rng = np.random.default_rng(0)
    for n_sampled, clip_len, overlap in ((100, 16, 4), (37, 16, 8), (10, 16, 4), (16, 16, 0)):
        per_frame = rng.random((n_sampled, 3))
        starts = clip_starts(n_sampled, clip_len, overlap)
        clips = [per_frame[clip_indices(s, clip_len, n_sampled)] for s in starts]  # repeats the last frame past the end
        total, count = np.zeros((n_sampled, 3)), np.zeros(n_sampled)
        for s, c in zip(starts, clips):
            for j in range(clip_len):
                if s + j < n_sampled: total[s + j] += c[j]; count[s + j] += 1
        got = aggregate_clips(starts, clips, n_sampled)
        ft.test_eq(got.dtype, np.float32)
        np.testing.assert_allclose(got, total / count[:, None], rtol=1e-6)
        np.testing.assert_allclose(got, per_frame, rtol=1e-6)  # identical clips: the mean is the frame's own score


def test_aggregator_streams_and_refuses_gaps():
    agg = ClipAggregator(10, 2)
    agg.add(-3, np.ones((5, 2)))  # head before the video dropped: covers 0, 1
    agg.add(2, np.full((4, 2), 3.0))
    with pytest.raises(ValueError, match=r"not covered by any clip: \[6, 7, 8, 9\]"): agg.scores()
    agg.add(6, np.full((8, 2), 5.0))  # tail past the end dropped
    ft.test_eq(agg.scores()[:, 0].tolist(), [1, 1, 3, 3, 3, 3, 5, 5, 5, 5])
    with pytest.raises(ValueError, match="clip scores"): agg.add(0, np.ones((4, 3)))


def test_displacement_against_loop():
    rng = np.random.default_rng(0)
    probs, disp = rng.random((3, 40, 5)), rng.normal(0, 3, (3, 40))
    got = apply_displacement(probs, disp)
    for b in range(3):
        want = np.zeros((40, 5))
        for i in range(40):
            t = min(max(i - int(np.rint(disp[b, i])), 0), 39)
            want[t] = np.maximum(want[t], probs[b, i])
        ft.test_eq(np.array_equal(got[b], want), True)


def test_two_head_probs():
    rng = np.random.default_rng(0)
    lp = rng.dirichlet(np.ones(13), size=7)
    r = rng.random(7)
    m = two_head_probs(lp, r)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    for k, label in enumerate(BALL_LABELS):
        np.testing.assert_allclose(m[:, MERGED.encode(label, "left")], lp[:, k + 1] * (1 - r))
        np.testing.assert_allclose(m[:, MERGED.encode(label, "right")], lp[:, k + 1] * r)
    ft.test_eq(two_head_probs(lp[None], r[None]).shape, (1, 7, 25))
    with pytest.raises(ValueError): two_head_probs(lp[:, :12], r)


# ---------------------------------------------------------------- predictions and submissions

def test_predictions_round_trip_and_score(tmp_path):
    stride = 2
    scores, events = simulate_scores(4_000, 120, seed=5)
    merged = np.concatenate([1 - scores.max(axis=1, keepdims=True), scores], axis=1)
    nms = postprocess_scores(merged, stride, 24, 0.01)
    ft.test_eq(np.array_equal(nms, soft_nms(scores, 12.0, 0.01)), True)
    preds = scores_to_predictions(nms, stride, "league/season/game")
    i, c = np.nonzero(nms)
    ft.test_eq([position_to_frame(p.position) for p in preds.predictions], (i * stride).tolist())
    ft.test_eq([(p.label, p.team) for p in preds.predictions], [MERGED.decode(k + 1) for k in c])
    ft.test_eq([p.confidence for p in preds.predictions], nms[i, c].tolist())
    sub = make_submission(tmp_path / "sub.zip", {"league/season/game": preds})
    anns = []
    for f, k in events:
        (label, team), position = MERGED.decode(int(k) + 1), frame_to_position(int(f) * stride)
        anns.append(Annotation(game_time_of(position), label, position, team))
    write_ball_labels(tmp_path / "labels/league/season/game/Labels-ball.json", BallLabels("league/season/game", None, anns))
    truth = Spots(events[:, 0] * stride, events[:, 1], np.ones(len(events)))
    mem = spotting_scores([truth], [scores_to_spots(nms, stride)])
    res = evaluate(tmp_path / "labels", sub)
    ft.test_eq((res["map_at1"], res["team_map_at1_present_labels"]), (mem.map, mem.team_map_present))
    ft.test_eq(mem.map > 0.3, True)


def test_scores_to_predictions_checks():
    with pytest.raises(ValueError, match="24"): scores_to_predictions(np.zeros((5, 25)), 2)
    bad = np.zeros((5, 24)); bad[1, 1] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"): scores_to_predictions(bad, 2)
    ft.test_eq(scores_to_predictions(np.zeros((5, 24)), 2).predictions, [])


GOOD = Prediction("1 - 00:01", "PASS", 1020, 1, 0.5, "left")
BAD = [(dict(label="PAS"), "predictions[0].label"), (dict(team="home"), "predictions[0].team"),
       (dict(confidence=1.2), "predictions[0].confidence"), (dict(confidence=float("nan")), "predictions[0].confidence"),
       (dict(confidence="0.5"), "predictions[0].confidence"), (dict(position=-1), "predictions[0].position"),
       (dict(position=10.5), "predictions[0].position"), (dict(half=0), "predictions[0].half"),
       (dict(game_time="1:00"), "predictions[0].gameTime")]


@pytest.mark.parametrize("change,field", BAD, ids=[f"{list(c)[0]}={list(c.values())[0]}" for c, _ in BAD])
def test_submission_validated_before_writing(tmp_path, change, field):
    p = Prediction(**{**GOOD.__dict__, **change})
    with pytest.raises(InputError) as e: make_submission(tmp_path / "sub.zip", {"league/season/game": Predictions("x", [p])})
    ft.test_eq(f"league/season/game: {field}:" in str(e.value) and "\n" not in str(e.value), True)
    ft.test_eq((tmp_path / "sub.zip").exists(), False)


def test_submission_layout(tmp_path):
    preds = Predictions("", [GOOD])
    with pytest.raises(InputError, match="relative game path"): make_submission(tmp_path / "s.zip", {"/abs/game": preds})
    with pytest.raises(InputError, match="one entry per game"):
        make_submission(tmp_path / "s.zip", {"a/b/c": preds, "a/b/c/224p.mp4": preds})
    make_submission(tmp_path / "s.zip", {"a/b/c": preds, "a/b/d/": preds})
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        ft.test_eq(sorted(z.namelist()), ["a/b/c/results_spotting.json", "a/b/d/results_spotting.json"])
        ft.test_eq(json.loads(z.read("a/b/c/results_spotting.json"))["predictions"][0]["position"], 1020)
    ft.test_eq(sorted(read_submission(tmp_path / "s.zip")), ["a/b/c", "a/b/d"])
