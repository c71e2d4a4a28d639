"""Label statistics of games: events per minute, label shares, teams, `not shown` share.

By default it makes `--games` synthetic ball games of `--minutes` each with `dudek.synthetic.synthesize`
(exactly what `dudek synth` writes) in a temporary folder and reads their `Labels-ball.json` back; with
`--root` it reads the games already there instead (synthetic or SoccerNet's own), which is how the
synthetic statistics can be compared with the real set's (about 20-25 events a minute, PASS and DRIVE
about three quarters, GOAL the rarest).

    python benchmarks/synth_stats.py [--games 7] [--minutes 2] [--seed 0] [--min-events 0] [--rare-boost 1]
    python benchmarks/synth_stats.py --root DATA   # games already on disk
"""
import argparse, json, statistics, tempfile
from collections import Counter
from pathlib import Path

from dudek.annotations import find_games
from dudek.labels import BALL_LABELS, TEAMS
from dudek.synthetic import synthesize
from dudek.video import video_info


def game_minutes(game, labels) -> float:
    "The game's length: its video's, else (no video found) up to its last event."
    videos = list(game.videos) or sorted(game.path.glob("*p.mp4"))
    if videos: return video_info(videos[0]).duration / 60
    return max((a.position for a in labels.annotations), default=0) / 60000


def stats(root) -> dict:
    "Per-game events per minute and pooled label / team / visibility counts of the ball games under `root`."
    per_game, labels_n, teams_n, pairs_n, not_shown, minutes = [], Counter(), Counter(), Counter(), 0, 0.0
    for game in find_games(root, kind="ball"):
        labels = game.read_labels()
        if labels is None: continue
        m = game_minutes(game, labels)
        per_game.append(dict(game=game.rel, minutes=round(m, 2), events=len(labels.annotations),
                             per_minute=round(len(labels.annotations) / m, 1)))
        labels_n.update(a.label for a in labels.annotations)
        teams_n.update(a.team for a in labels.annotations)
        pairs_n.update((a.label, a.team) for a in labels.annotations)
        not_shown += sum(a.visibility == "not shown" for a in labels.annotations)
        minutes += m
    total = sum(labels_n.values())
    rates = [g["per_minute"] for g in per_game]
    return dict(games=len(per_game), minutes=round(minutes, 2), events=total,
                per_minute=round(total / minutes, 1) if minutes else None,
                per_minute_games=dict(min=min(rates), median=statistics.median(rates), max=max(rates)) if rates else None,
                labels={l: labels_n[l] for l in BALL_LABELS}, shares={l: round(labels_n[l] / total, 4) for l in BALL_LABELS},
                pass_drive_share=round((labels_n["PASS"] + labels_n["DRIVE"]) / total, 3),
                teams={t: teams_n[t] for t in TEAMS}, not_shown_share=round(not_shown / total, 3),
                empty_label_team_pairs=[f"{l}/{t}" for l in BALL_LABELS for t in TEAMS if pairs_n[(l, t)] == 0],
                per_game=per_game)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, help="read the games here instead of making new ones")
    ap.add_argument("--games", type=int, default=7)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-events", type=int, default=0)
    ap.add_argument("--rare-boost", type=float, default=1.0)
    ap.add_argument("--height", type=int, default=224, help="frame height of the games made (the labels do not depend on it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp)
            synthesize(root, n_games=args.games, minutes=args.minutes, seed=args.seed, min_events_per_class=args.min_events,
                       rare_boost=args.rare_boost, size=(args.height, 2 * round(args.height * 8 / 9)), workers=args.workers)
        s = stats(root)
    where = args.root or f"{args.games} synthetic game(s) x {args.minutes} min, seed {args.seed}, min-events {args.min_events}, rare-boost {args.rare_boost}"
    print(f"{where}: {s['events']} events in {s['minutes']} min")
    print(f"events per minute: {s['per_minute']} (games: {s['per_minute_games']['min']} .. {s['per_minute_games']['max']}, "
          f"median {s['per_minute_games']['median']})")
    print(f"PASS + DRIVE: {100 * s['pass_drive_share']:.1f}%   teams: {s['teams']}   not shown: {100 * s['not_shown_share']:.1f}%")
    for l in sorted(BALL_LABELS, key=lambda l: -s["labels"][l]):
        print(f"  {l:<26}{s['labels'][l]:6d}  {100 * s['shares'][l]:5.1f}%")
    print(f"empty label-team pairs: {len(s['empty_label_team_pairs'])} of 24 {s['empty_label_team_pairs']}")
    if args.json: print(json.dumps(s))


if __name__ == "__main__":
    main()
