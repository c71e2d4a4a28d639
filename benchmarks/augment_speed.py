"""What each clip augmentation costs on this machine: milliseconds per clip of the `tiny` profile's size (32 frames of
64 x 112, uint8), every augmentation always on and one at a time, side by side in one run, and the `tiny` profile's own
mix at its probabilities. Prints the figures; `--out` writes them with the date, commit and machine.

    python benchmarks/augment_speed.py [--clips 200] [--out benchmarks/results/augment_speed.json]
"""
from __future__ import annotations

import argparse, json, sys, time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dudek.augment import ClipAugment
from dudek.config import AugmentConfig, get_config, provenance
from dudek.files import atomic_write
from dudek.labels import MERGED

OFF = dict(p_flip=0.0)  # the defaults are off, but for the flip
ONE = {"flip": dict(p_flip=1.0), "crop": dict(p_crop=1.0), "camera": dict(p_camera=1.0), "colour": dict(p_color=1.0), "blur": dict(p_blur=1.0),
       "kit swap": dict(p_swap=1.0), "zoom": dict(p_zoom=1.0), "light": dict(p_light=1.0), "shadow": dict(p_shadow=1.0)}


def ms_per_clip(cfg: AugmentConfig, clip: dict, n: int) -> float:
    aug, rng = ClipAugment(cfg, MERGED), np.random.default_rng(0)
    aug(clip, rng)  # warm-up
    t = time.perf_counter()
    for _ in range(n): aug(clip, rng)
    return (time.perf_counter() - t) / n * 1000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=200, help="clips timed per row")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    cfg = get_config("tiny")
    T, H, W = cfg.data.clip_len, cfg.data.frame_height, cfg.data.frame_width
    g = torch.Generator().manual_seed(0)
    clip = {"frames": torch.randint(0, 256, (T, 3, H, W), dtype=torch.uint8, generator=g),
            "target_class": torch.zeros(T, dtype=torch.long), "target_disp": torch.zeros(T)}
    rows = {"none": ms_per_clip(AugmentConfig(**OFF), clip, a.clips)}
    rows |= {name: ms_per_clip(AugmentConfig(**{**OFF, **on}), clip, a.clips) for name, on in ONE.items()}
    rows["the tiny profile's mix"] = ms_per_clip(cfg.augment, clip, a.clips)
    print(f"ms per clip of {T} x 3 x {H} x {W} ({a.clips} clips, {torch.get_num_threads()} threads)")
    for name, ms in rows.items(): print(f"{name:24s}{ms:8.2f}")
    out = {"benchmark": "augment_speed", **provenance(" ".join(["python", "benchmarks/augment_speed.py", *map(str, argv or sys.argv[1:])])),
           "clip": [T, 3, H, W], "tiny_augment": asdict(cfg.augment), "ms_per_clip": rows}
    if a.out: atomic_write(a.out, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
