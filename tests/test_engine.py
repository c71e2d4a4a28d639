"""The match engine's promises, measured on a few hundred generated events (other seeds than the chapter's).

The chapter `04_engine` states what makes each label visible; these tests check every line of that table by
numbers, on every event where the promise is about every event and on the median where it is about a
distribution (how far a HIGH PASS travels). The first test is the one that would have caught the receiver's
distance range sitting in a comment.
"""
import numpy as np
import pandas as pd
import pytest

from dudek.engine import (FPS, GOAL_HALF_WIDTH, HALF_LENGTH, HALF_WIDTH, HANDS_Z, HEAD_Z, POSES, REFEREE, BLOCK_FALL, MatchEngine, Quota,
                          outfield)
from dudek.plays import TEN_YARDS, simulate_half  # the whole engine: the plays complete MatchEngine
from dudek.signatures import event_signatures

CARDS = ("Yellow card", "Red card", "Yellow->red card")


@pytest.fixture(scope="module")
def halves():
    "Twelve 150-second halves that must hold an event of every label and team."
    return [simulate_half(np.random.default_rng([11, g]), 150 * FPS, half=1 + g % 2, quota=Quota(1), rare_boost=3.0) for g in range(12)]


@pytest.fixture(scope="module")
def signatures(halves):
    "The signatures of every labelled event of `halves`."
    return pd.concat([event_signatures(h) for h in halves], ignore_index=True)


def test_receiver_keeps_to_its_distance_range():
    for seed in range(3):
        e = MatchEngine(np.random.default_rng(seed), 400, rare_boost=3.0)
        e.line_up(seed % 2)
        for p in outfield(0)[::3]:
            for lo, hi, progressive in ((8, 32, False), (24, 45, True), (6, 16, False)):
                d = [np.linalg.norm(e.where(e.receiver(p, lo, hi, progressive)) - e.where(p)) for _ in range(60)]
                in_range = [lo <= x <= hi for x in d]
                if any(lo <= np.linalg.norm(e.where(q) - e.where(p)) <= hi for q in e.mates(p)):  # someone is in range
                    assert np.mean(in_range) > 0.9, (p, lo, hi, np.round(d, 1))


def test_enough_events_of_every_label(signatures):
    counts = signatures.label.value_counts()
    assert len(signatures) > 500 and counts.min() >= 15, counts.to_dict()


def test_distributions_per_label(signatures):
    med = signatures.groupby("label").median(numeric_only=True)
    assert med.travel["HIGH PASS"] > 1.5 * med.travel["PASS"] and med.travel["CROSS"] > 1.3 * med.travel["PASS"]
    assert 24 <= med.travel["HIGH PASS"] <= 45 and 8 <= med.travel["PASS"] <= 32
    assert med.speed["SHOT"] > 1.4 * med.speed["PASS"] and med.speed["SHOT"] > 20
    assert med.peak["HIGH PASS"] > 4 and med.peak["CROSS"] > 3 and med.peak["PASS"] < 0.1
    assert med.turn["BALL PLAYER BLOCK"] > 120  # the ball comes back the way it came
    assert signatures[signatures.label == "BALL PLAYER BLOCK"].team_change.mean() > 0.9


def test_every_event_has_its_signature(signatures):
    by = dict(tuple(signatures.groupby("label")))
    throw = by["THROW IN"]
    assert (throw.y > HALF_WIDTH - 0.5).all() and np.allclose(throw.height, HANDS_Z, atol=0.01)  # on the touchline, overhead
    assert by["HEADER"].height.between(HEAD_Z - 0.7, HEAD_Z).all()  # met as it drops through head height
    out = by["OUT"]
    assert (out.x.gt(HALF_LENGTH) | out.y.gt(HALF_WIDTH)).all()
    goal = by["GOAL"]
    assert (goal.x.gt(HALF_LENGTH) & goal.y.lt(GOAL_HALF_WIDTH)).all()
    assert (by["FREE KICK"].still_before >= 1.0).all()  # after a stop
    tackle = by["PLAYER SUCCESSFUL TACKLE"]
    assert (tackle.pose == "slide").all() and tackle.team_change.all()
    assert (by["BALL PLAYER BLOCK"].pose == "block").all()
    assert "slide" not in set(signatures[signatures.label != "PLAYER SUCCESSFUL TACKLE"].pose)  # the slide means a tackle



def test_a_blocker_throws_himself_in_the_way(halves):
    "A block looks like one: the blocker spread across the ball's way at the contact, then on the ground for half a second."
    blocks = [(h, e) for h in halves for e in h.events if e.label == "BALL PLAYER BLOCK"]
    assert len(blocks) >= 12
    for h, e in blocks:
        seen = [POSES[p] for p in h.poses[e.frame - 3:e.frame + BLOCK_FALL + 1, e.actor]]
        assert seen[:7] == ["block"] * 7 and seen[7:] == ["down"] * (BLOCK_FALL - 3), f"expected block x7 then down at frame {e.frame}, got {seen}"


def test_officials_show_what_they_signal(halves):
    "The referee holds up every card he gives; before a free kick he points its way (after a card, if any) and the opponents stand back."
    cards, gaps, kicks = 0, [], 0
    for h in halves:
        for e in h.events:
            if e.old in CARDS:
                cards += 1
                assert POSES[h.poses[e.frame, REFEREE]] in ("card", "card_red"), (e, POSES[h.poses[e.frame, REFEREE]])
            if e.label != "FREE KICK": continue
            k, kicks = e.frame - 12, kicks + 1  # half a second before the kick
            carded = any(c.old in CARDS and e.frame - 5 * FPS <= c.frame < e.frame for c in h.events)
            assert carded or POSES[h.poses[k, REFEREE]] == "signal", (e, POSES[h.poses[k, REFEREE]])
            gaps.append(np.linalg.norm(h.positions[k, outfield(1 - e.team)] - h.ball[k, :2], axis=1).min())
    assert cards >= 5 and kicks >= 20, (cards, kicks)
    # the nearest opponent: ten yards away as a rule; one who was just beyond them when they stepped back may drift a metre in
    assert np.median(gaps) >= TEN_YARDS and min(gaps) > TEN_YARDS - 1.0, np.round(sorted(gaps), 2)

def test_replays_edit_the_broadcast_not_the_play():
    plain = simulate_half(np.random.default_rng(5), 120 * FPS, rare_boost=3.0)
    assert plain.replays == []
    h = simulate_half(np.random.default_rng(5), 120 * FPS, rare_boost=3.0, replays=1.0)
    assert len(h.replays) >= 2
    for (a, b, s0, s1), nxt in zip(h.replays, h.replays[1:] + [None]):
        assert 0 < b - a <= 6 * FPS and s0 < s1 <= a and b <= h.n_frames
        assert abs((s1 - s0) - (b - a) / 2) <= 1  # half speed
        if nxt is not None: assert b <= nxt[0]  # one at a time
    hidden = [e for e in h.events if e.label and h.in_replay(e.frame)]
    assert hidden and all(e.label != "FREE KICK" for e in hidden)  # free kicks wait for the replay to end


def test_same_seed_same_half():
    a, b = (simulate_half(np.random.default_rng(9), 60 * FPS, rare_boost=2.0, replays=0.5) for _ in range(2))
    assert [(e.frame, e.label, e.team) for e in a.events] == [(e.frame, e.label, e.team) for e in b.events]
    assert np.array_equal(a.ball, b.ball) and np.array_equal(a.positions, b.positions) and a.replays == b.replays
