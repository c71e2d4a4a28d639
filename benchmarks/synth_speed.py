"""Synthetic games: frames per second of simulation + rendering + H.264 encoding, one worker against two.

`dudek.synthetic.synthesize` renders one game per worker process, so the same games are made twice
into fresh folders: once with `workers=1` (in this process) and once with `workers=2` (a process
pool), and the script prints the frames written per wall-clock second of each and their ratio.
Both runs must give the same labels (the same seed makes the same games).

    python benchmarks/synth_speed.py [--games 2] [--minutes 1] [--height 224] [--workers 1 2] [--json]
"""
import argparse, json, os, tempfile, time
from pathlib import Path

from dudek.engine import FPS
from dudek.synthetic import half_frames, synthesize


def run(out: Path, games: int, minutes: float, height: int, workers: int, seed: int) -> dict:
    "Make the games once; frames, seconds and frames per second."
    size = (height, 2 * round(height * 8 / 9))
    t0 = time.perf_counter()
    folders = synthesize(out, n_games=games, minutes=minutes, seed=seed, size=size, workers=workers)
    seconds = time.perf_counter() - t0
    frames = games * sum(half_frames(minutes))
    labels = [(f / "Labels-ball.json").read_bytes() for f in folders]
    return dict(workers=workers, frames=frames, seconds=round(seconds, 2), fps=round(frames / seconds, 1), labels=labels)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=1.0, help="length of each game (both halves)")
    ap.add_argument("--height", type=int, default=224, help="frame height (width 16:9, even)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare (first = baseline)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            results.append(run(Path(tmp) / f"w{w}", args.games, args.minutes, args.height, w, args.seed))
    assert all(r["labels"] == results[0]["labels"] for r in results), "the same seed gave different labels"
    base = results[0]["fps"]
    print(f"{args.games} game(s) x {args.minutes} min at {args.height}p ({results[0]['frames']} frames, {FPS} fps), "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    for r in results:
        print(f"  workers={r['workers']}: {r['seconds']:7.2f} s  {r['fps']:7.1f} frames/s  x{r['fps'] / base:.2f}")
    if args.json:
        print(json.dumps({"games": args.games, "minutes": args.minutes, "height": args.height, "cpus": os.cpu_count(),
                          "load_average": round(os.getloadavg()[0], 2),
                          "runs": [{k: v for k, v in r.items() if k != "labels"} for r in results],
                          "speedup": round(results[-1]["fps"] / base, 2)}))


if __name__ == "__main__":
    main()
