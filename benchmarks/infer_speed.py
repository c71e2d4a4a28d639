"""Whole-match inference (`dudek infer`): throughput against the model's own forward pass, and memory against video length.

Measures, on this machine, side by side in one run:

1. the model's forward throughput at the checkpoint's size: batches of random clips through the spotter (eval, no
   grad), in frames of *video* per second (each clip advances `clip_len - overlap` sampled frames, `stride` video
   frames each), with the torch threads the command uses;
2. the `dudek infer` command on a short and a long synthetic game (a real process, as a user runs it), with
   `--workers 0` (decoding in the model's process) and `--workers 1` (a decoder process beside the model): frames
   of video per second from its own summary (startup excluded), and the peak resident memory of the whole process
   tree (the command and its decoder workers, summed, sampled every 50 ms);

and prints the ratio of 2 to 1 and of the long game's peak memory to the short one's. The model runs in the
checkpoint's precision in both (`train.amp`: bf16 autocast where the CPU or GPU has it, as `dudek infer` does).

    python benchmarks/infer_speed.py --out benchmarks/results/infer_speed.json   # 10- and 40-minute games, an untrained tiny checkpoint
    python benchmarks/infer_speed.py --checkpoint runs/finetune/best.pt --short 2 --long 8
    python benchmarks/infer_speed.py --device cuda --checkpoint paper.pt

The checkpoint's weights do not change the speed; by default an untrained T-DEED of the `tiny` profile is saved
in the format training writes. The games are generated once under `--data` (a 40-minute game takes a few minutes).
The results file (`--out`) holds the figures of the last line printed, the settings (the checkpoint's clip, overlap,
stride, frame size and precision, the batch, the games' minutes) and the date, commit, machine and command.
"""
from __future__ import annotations

import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import psutil
import torch

from dudek.annotations import find_games
from dudek.config import get_config, provenance
from dudek.files import atomic_write, json_ready
from dudek.infer import load_spotter
from dudek.model import amp_dtype, build_model, save_checkpoint
from dudek.synthetic import synthesize


def game(folder: Path, minutes: float, seed: int) -> Path:
    "A synthetic game of `minutes` under `folder`, generated if missing."
    if not (folder.exists() and find_games(folder)):
        t0 = time.perf_counter()
        synthesize(folder, n_games=1, minutes=minutes, seed=seed, workers=2)
        print(f"generated a {minutes:g}-minute game in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return find_games(folder)[0].path


def untrained_checkpoint(path: Path) -> Path:
    cfg = get_config("tiny")
    torch.manual_seed(0)
    save_checkpoint(path, {"model": build_model(cfg, pretrained="").state_dict(), "config": cfg.to_dict(), "meta": {"stage": "finetune"}})
    return path


@torch.no_grad()
def forward_throughput(checkpoint: Path, device: str, batch_size: int, seconds: float = 20.0) -> dict:
    "Frames of video per second that the model alone keeps up with (random clips, the command's batch size)."
    model, cfg = load_spotter(checkpoint, device)
    d = cfg.data
    frames = torch.randint(0, 256, (batch_size, d.clip_len, 3, d.frame_height, d.frame_width), dtype=torch.uint8, device=device)
    precision = amp_dtype(device, cfg.train.amp)  # as `dudek infer` runs it (match_scores)
    kind = torch.device(device).type
    sync = torch.cuda.synchronize if kind == "cuda" else (lambda: None)
    with torch.autocast(kind, dtype=precision, enabled=precision is not None): model(frames)  # warm-up
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        with torch.autocast(kind, dtype=precision, enabled=precision is not None): model(frames)
        sync()
        n += 1
    dt = time.perf_counter() - t0
    clips_per_s = n * batch_size / dt
    return {"clips_per_s": round(clips_per_s, 2), "video_frames_per_s": round(clips_per_s * (d.clip_len - d.overlap) * d.stride, 1),
            "threads": torch.get_num_threads(), "batch_size": batch_size, "seconds": round(dt, 1)}


def settings(checkpoint: Path, device: str) -> dict:
    "What the speed depends on: the checkpoint's clip, overlap, stride, frame size and the precision it runs in here."
    _, cfg = load_spotter(checkpoint, "cpu")
    d = cfg.data
    return {"profile": cfg.profile, "clip_len": d.clip_len, "overlap": d.overlap, "stride": d.stride, "frame_height": d.frame_height,
            "frame_width": d.frame_width, "amp": cfg.train.amp, "precision": str(amp_dtype(device, cfg.train.amp) or torch.float32).removeprefix("torch.")}


def run_infer(source: Path, checkpoint: Path, workers: int, device: str, batch_size: int) -> dict:
    "Run `dudek infer` on one game; its summary, wall time and the process tree's peak RSS (MB)."
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dudek", "infer", str(source), "--checkpoint", str(checkpoint), "--out", f"{tmp}/r.json",
               "--workers", str(workers), "--device", device, "--batch-size", str(batch_size), "--quiet"]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc, peak = psutil.Process(p.pid), 0
        while p.poll() is None:
            try: tree = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess: break
            rss = 0
            for q in tree:
                try: rss += q.memory_info().rss
                except psutil.NoSuchProcess: pass
            peak = max(peak, rss)
            time.sleep(0.05)
        out, err = p.communicate()
        if p.returncode: raise SystemExit(f"dudek infer failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
        summary = json.loads(out.strip().splitlines()[-1])
    return {"video_frames_per_s": summary["frames_per_s"], "seconds": summary["seconds"], "wall_s": round(time.perf_counter() - t0, 1),
            "peak_rss_mb": round(peak / 2**20, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="a fine-tuned checkpoint (default: an untrained tiny T-DEED)")
    p.add_argument("--data", default="data/bench-infer", help="folder for the generated games")
    p.add_argument("--short", type=float, default=10.0, help="minutes of the short game")
    p.add_argument("--long", type=float, default=40.0, help="minutes of the long game")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="decoder processes to compare")
    p.add_argument("--forward-seconds", type=float, default=20.0, help="how long the model's forward pass alone is timed")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    data = Path(a.data)
    ck = Path(a.checkpoint) if a.checkpoint else untrained_checkpoint(data / "untrained.pt")
    games = {"short": game(data / f"{a.short:g}min", a.short, 5), "long": game(data / f"{a.long:g}min", a.long, 6)}
    model = forward_throughput(ck, a.device, a.batch_size, a.forward_seconds)
    print(f"model forward alone: {model['video_frames_per_s']:.0f} video frames/s ({model['clips_per_s']:.1f} clips/s, "
          f"{model['threads']} threads, batch {model['batch_size']})")
    runs = {}
    for w in a.workers:
        for name, g in games.items():
            r = run_infer(g, ck, w, a.device, a.batch_size)
            runs[f"{name}, workers {w}"] = r
            print(f"dudek infer, {name} game ({a.short if name == 'short' else a.long:g} min), --workers {w}: "
                  f"{r['video_frames_per_s']:.0f} video frames/s = {r['video_frames_per_s'] / model['video_frames_per_s']:.2f} x the model alone; "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB; {r['seconds']:.0f} s")
        print(f"  --workers {w}: peak RSS long / short = {runs[f'long, workers {w}']['peak_rss_mb'] / runs[f'short, workers {w}']['peak_rss_mb']:.3f}")
    figures = {"model": model, "infer": runs, "minutes": {"short": a.short, "long": a.long}, "device": a.device}
    print(json.dumps(figures))
    if a.out:
        results = {"benchmark": "infer_speed", **provenance(" ".join(["python", "benchmarks/infer_speed.py", *map(str, argv or sys.argv[1:])])),
                   **figures, "settings": {"checkpoint": a.checkpoint or "an untrained tiny T-DEED", **settings(ck, a.device),
                                           "batch_size": a.batch_size, "workers": a.workers, "forward_seconds": a.forward_seconds},
                   "seconds": round(time.perf_counter() - t_start)}
        atomic_write(a.out, json.dumps(json_ready(results), indent=1) + "\n")


if __name__ == "__main__":
    main()
