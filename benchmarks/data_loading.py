"""Training clips per second delivered by `dudek.dataset` with 0, 1 and 2 DataLoader workers, decoding the videos or
reading a frame cache, against the clips per second the `tiny` model consumes (a training step, and inference).

Data: the games under `--data` (a SoccerNet-layout folder), else synthetic games from `dudek.synthetic` when it is
installed, else 224x398 H.264 "broadcast-like" videos (the clip_read benchmark's generator) with an event every
~2 s. Everything runs side by side in one process tree on the same games and the same clips; the script prints a
table, the ratios loader / model, and one JSON line.

`--profile` takes several profiles, measured one after the other on the same games. The model's consumption is timed
on the CPU for the profiles in `--model-profiles` only (the `paper` model's step needs a GPU). `--out` writes the
results file, keyed by profile, each with its figures, settings, date, commit, machine and command; profiles not
measured this time keep their figures from the file. The chapter `10_dataset` renders its table from it:

    python benchmarks/data_loading.py --profile tiny paper --clips 96 --out benchmarks/results/data_loading.json
    python benchmarks/data_loading.py [--games 2] [--minutes 1] [--clips 48] [--batch 4] [--data ROOT] [--profile tiny]
"""
import argparse, importlib.util, json, os, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from dudek.annotations import Annotation, BallLabels, find_games, frame_to_position, game_time_of, write_ball_labels
from dudek.config import get_config, provenance
from dudek.dataset import ClipDataset, InferenceClips, make_loader
from dudek.files import atomic_write, json_ready
from dudek.labels import BALL_LABELS, MERGED, TEAMS
from dudek.video import write_video


def broadcast_like(n_frames, seed):
    "The clip_read benchmark's frame generator (textured panning pitch, players, noise)."
    spec = importlib.util.spec_from_file_location("clip_read", Path(__file__).with_name("clip_read.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.broadcast_like(n_frames, seed)


def make_games(root: Path, n_games: int, minutes: float, seed: int) -> str:
    "Write `n_games` labelled games under `root`; returns how they were made."
    try:
        from dudek import synthetic
        synthetic.synthesize(root, n_games=n_games, minutes=minutes, seed=seed)
        return "dudek.synthetic games, 224x398 H.264 (a keyframe every 2 s)"
    except (ImportError, AttributeError, TypeError):
        pass
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 25)
    for g in range(n_games):
        folder = root / f"league/season/game-{g}"
        write_video(folder / "224p.mp4", broadcast_like(n, seed + g))
        frames = np.sort(rng.choice(n, n // 50, replace=False))
        anns = [Annotation(game_time_of(frame_to_position(f)), BALL_LABELS[rng.integers(12)], frame_to_position(f),
                           TEAMS[rng.integers(2)]) for f in frames]
        write_ball_labels(folder / "Labels-ball.json", BallLabels(f"league/season/game-{g}", None, anns))
    return "broadcast-like 224x398 H.264 (benchmarks/clip_read.py), an event every 2 s"


def loader_rate(ds, batch, workers, epoch):
    "Clips per second through a fresh DataLoader over one epoch of `ds` (worker start-up included)."
    ds.set_epoch(epoch)
    t0 = time.perf_counter()
    n = sum(len(b["frames"]) for b in make_loader(ds, batch_size=batch, num_workers=workers))
    return n / (time.perf_counter() - t0)


def model_rates(cfg, batch, steps):
    "(training clips/s, inference clips/s) of the configured model on CPU, or None when dudek.model is missing."
    try: from dudek import model as m
    except ImportError: return None
    build = next((getattr(m, n) for n in ("build_model", "make_model", "create_model", "model_from_config") if hasattr(m, n)), None)
    if build is None: return None
    net = build(cfg)
    x = torch.randint(0, 256, (batch, cfg.data.clip_len, 3, cfg.data.frame_height, cfg.data.frame_width), dtype=torch.uint8)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def loss_of(out):
        tensors = out.values() if isinstance(out, dict) else (out if isinstance(out, (tuple, list)) else [out])
        return sum(t.float().mean() for t in tensors if torch.is_tensor(t))

    def train_step():
        opt.zero_grad()
        loss_of(net(x)).backward()
        opt.step()

    def infer_step():
        with torch.no_grad(): net(x)

    rates = []
    for step, mode in ((train_step, net.train), (infer_step, net.eval)):
        mode()
        step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(steps): step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return tuple(rates)


def measure(profile: str, games, args, work: Path, model_too: bool) -> dict:
    "The figures of one profile: the loader's clips/s (decoded and cached, 0/1/2 workers), inference clips, the model's consumption."
    torch.set_num_threads(1)
    cfg = get_config(profile)
    print(f"\nprofile {profile}: clips of {cfg.data.clip_len} sampled frames, stride {cfg.data.stride}, "
          f"{cfg.data.frame_height}x{cfg.data.frame_width}, batch {args.batch}; {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    ds = ClipDataset(games, cfg, MERGED, n_clips=args.clips, seed=args.seed)
    n_frames = sum(v.n_frames for v in ds.videos)
    print(f"dataset of {len(ds.videos)} videos ({n_frames} frames, {len(ds.event_video)} events) "
          f"indexed in {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    cached = ClipDataset(games, cfg, MERGED, n_clips=args.clips, seed=args.seed, cache_dir=work / f"cache-{profile}")
    cache_s = time.perf_counter() - t0
    cache_mb = sum(f.stat().st_size for f in cached.frames.cache_files) / 2**20
    print(f"frame cache built in {cache_s:.1f} s ({cache_mb:.0f} MB, {n_frames / cache_s:.0f} video frames/s)")

    rows = []
    for source_name, dset in (("decode", ds), ("cache", cached)):
        for workers in (0, 1, 2):
            rate = loader_rate(dset, args.batch, workers, epoch=workers + 1)
            rows.append(dict(frames=source_name, workers=workers, clips_per_s=round(rate, 2)))
    clips = InferenceClips(ds.videos[0].path, cfg)
    t0 = time.perf_counter()
    n = min(len(clips), args.clips)
    for i in range(n): clips[i]
    infer_rate = n / (time.perf_counter() - t0)

    torch.set_num_threads(os.cpu_count() or 1)
    model = model_rates(cfg, args.batch, args.steps) if model_too else None

    print(f"\n{'frames':<8} {'workers':>7} {'clips/s':>8}" + (f" {'/ train':>8}" if model else ""))
    for r in rows:
        print(f"{r['frames']:<8} {r['workers']:>7} {r['clips_per_s']:8.1f}" +
              (f" {r['clips_per_s'] / model[0]:8.2f}" if model else ""))
    print(f"inference clips (0 workers, consecutive, overlap {cfg.data.overlap}): {infer_rate:.1f} clips/s"
          + (f" ({infer_rate / model[1]:.2f} x inference)" if model else ""))
    if model:
        print(f"model ({cfg.model.backbone}, {torch.get_num_threads()} threads): training {model[0]:.2f} clips/s, "
              f"inference {model[1]:.2f} clips/s")
    else:
        print("model: not measured (" + ("not in --model-profiles" if not model_too else "dudek.model not available") + ")")
    return {"clip": {"clip_len": cfg.data.clip_len, "stride": cfg.data.stride, "height": cfg.data.frame_height,
                     "width": cfg.data.frame_width, "overlap": cfg.data.overlap, "backbone": cfg.model.backbone},
            "video_frames": n_frames, "cache_build_s": round(cache_s, 2), "cache_mb": round(cache_mb, 1), "loader": rows,
            "inference_clips_per_s": round(infer_rate, 2), "model_threads": torch.get_num_threads() if model else None,
            "model_train_clips_per_s": model and round(model[0], 2), "model_infer_clips_per_s": model and round(model[1], 2)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="a folder of ball-action games (default: make some)")
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=1.0, help="length of each generated game")
    ap.add_argument("--clips", type=int, default=48, help="clips per measured epoch")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="model steps per measurement")
    ap.add_argument("--profile", nargs="+", default=["tiny"], help="profiles measured one after the other")
    ap.add_argument("--model-profiles", nargs="*", default=["tiny"],
                    help="the profiles whose model consumption is timed on the CPU (default: tiny; the paper model needs a GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="results file (JSON) to write, keyed by profile (the profiles not run this time are kept)")
    args = ap.parse_args(argv)
    stamp = provenance(" ".join(["python", "benchmarks/data_loading.py", *map(str, argv if argv is not None else sys.argv[1:])]))
    results = {"benchmark": "data_loading", "profiles": {}}
    if args.out and args.out.is_file(): results["profiles"] = json.loads(args.out.read_text()).get("profiles", {})

    with tempfile.TemporaryDirectory() as d:
        root = Path(args.data) if args.data else Path(d) / "data"
        source = f"--data {root}"
        if not args.data:
            t0 = time.perf_counter()
            source = make_games(root, args.games, args.minutes, args.seed)
            print(f"made {args.games} games of {args.minutes} min in {time.perf_counter() - t0:.1f} s: {source}")
        games = [g for g in find_games(root, "ball") if g.labels is not None][:args.games]
        settings = {"games": len(games), "minutes": None if args.data else args.minutes, "clips": args.clips, "batch": args.batch,
                    "steps": args.steps, "seed": args.seed}
        for profile in dict.fromkeys(args.profile):
            figures = measure(profile, games, args, Path(d), profile in args.model_profiles)
            results["profiles"][profile] = {**stamp, "data": source, "cpus": os.cpu_count(), "settings": settings, **figures}
            if args.out: atomic_write(args.out, json.dumps(json_ready(results), indent=1) + "\n")  # after each profile
    print(json.dumps(json_ready(results)))


if __name__ == "__main__":
    sys.exit(main())
