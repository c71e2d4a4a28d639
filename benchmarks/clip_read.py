"""Clip reads per second from a 224p H.264 video: naive (open + seek per clip) vs a reusable `VideoReader`.

Clips of 32 sampled frames at stride 2 (the training and inference shape), resized to 64x112 (the
`tiny` profile) and read at 224x398 (a full 224p frame), with random starts (training) and
consecutive overlapping starts (inference). Both implementations run side by side on the same
video and the same starts; the script prints a table, the speed-up ratios and one JSON line.

    python benchmarks/clip_read.py [--minutes 2] [--clips 40] [--seed 0]
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

import numpy as np

from dudek.video import VideoReader, read_clip, video_info, write_video

CLIP_LEN, STRIDE = 32, 2


def broadcast_like(n_frames: int, seed: int, h: int = 224, w: int = 398):
    "Frames with a textured pitch that pans, moving players and sensor noise: costly enough to decode like a broadcast."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w * 2]
    pitch = np.stack([40 + 20 * np.sin(xx / 9.0), 120 + 30 * ((xx // 40) % 2) + 10 * np.sin(yy / 5.0), 40 + 0 * xx], -1)
    pitch = np.clip(pitch + rng.normal(0, 6, pitch.shape), 0, 255).astype(np.uint8)
    players = rng.uniform([0, 0], [h - 12, w - 8], (22, 2))
    for i in range(n_frames):
        x0 = int(w / 2 + w / 2 * np.sin(i / 150))  # the camera pans
        frame = pitch[:, x0:x0 + w].copy()
        players += rng.normal(0, 1.5, players.shape)
        players = np.clip(players, 0, [h - 12, w - 8])
        for k, (y, x) in enumerate(players.astype(int)):
            frame[y:y + 12, x:x + 6] = (230, 30, 30) if k < 11 else (30, 30, 230)
        frame ^= rng.integers(0, 8, frame.shape, dtype=np.uint8)  # noise
        yield frame


def time_clips(read, starts, size):
    "Clips per second of `read(start, size)` over `starts` (one warm-up read first)."
    read(int(starts[0]), size)
    t0 = time.perf_counter()
    for s in starts: read(int(s), size)
    return len(starts) / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="length of the synthetic 224p video")
    ap.add_argument("--clips", type=int, default=40, help="clips per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--video", type=str, default="", help="use this video instead of a synthetic one")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as d:
        path = Path(args.video) if args.video else Path(d) / "224p.mp4"
        if not args.video:
            n = int(args.minutes * 60 * 25)
            t0 = time.perf_counter()
            write_video(path, broadcast_like(n, args.seed))
            enc = time.perf_counter() - t0
            print(f"wrote {n} frames of 224x398 in {enc:.1f} s ({n / enc:.0f} fps, libx264 veryfast, gop 50)")
        t0 = time.perf_counter()
        info = video_info(path)
        print(f"indexed {info.n_frames} frames in {time.perf_counter() - t0:.2f} s: {info}")

        span = (CLIP_LEN - 1) * STRIDE + 1
        rng = np.random.default_rng(args.seed)
        starts = {"random": rng.integers(0, info.n_frames - span, args.clips),
                  "sequential": np.arange(args.clips) * (CLIP_LEN // 2) * STRIDE % (info.n_frames - span)}  # overlap half a clip
        results = []
        print(f"\nclips of {CLIP_LEN} frames, stride {STRIDE}; clips/s (higher is better)")
        print(f"{'starts':<11} {'size':<8} {'naive':>8} {'reader':>8} {'ratio':>6} {'seeks/clip':>11} {'decoded/clip':>13}")
        for kind, ss in starts.items():
            for size in [(64, 112), (224, 398)]:
                naive = time_clips(lambda s, sz: read_clip(path, s, CLIP_LEN, STRIDE, sz), ss, size)
                reader = VideoReader(path)
                fast = time_clips(lambda s, sz: reader.read_clip(s, CLIP_LEN, STRIDE, sz), ss, size)
                n_reads = len(ss) + 1
                row = dict(starts=kind, size=f"{size[0]}x{size[1]}", naive_clips_per_s=round(naive, 2),
                           reader_clips_per_s=round(fast, 2), ratio=round(fast / naive, 2),
                           reader_seeks_per_clip=round(reader.n_seeks / n_reads, 2),
                           reader_decoded_per_clip=round(reader.n_decoded / n_reads, 1))
                results.append(row)
                print(f"{kind:<11} {row['size']:<8} {naive:8.1f} {fast:8.1f} {fast / naive:6.2f} "
                      f"{row['reader_seeks_per_clip']:11.2f} {row['reader_decoded_per_clip']:13.1f}")
                reader.close()
        print(json.dumps({"benchmark": "clip_read", "video": dict(fps=info.fps, n_frames=info.n_frames, width=info.width,
                          height=info.height), "clip_len": CLIP_LEN, "stride": STRIDE, "results": results}))


if __name__ == "__main__":
    sys.exit(main())
