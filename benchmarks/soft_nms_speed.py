"""Soft-NMS: dudek's compiled kernel against the plain reference loop of tests/test_postprocess.py, side by side.

Scores shaped like a model's (`dudek.postprocess.simulate_scores`: low exponential background, a peak per
event, a weaker echo on the other team's column, false peaks), 2,000 events, for a 90-minute game:

- 12.5 fps (stride 2): 67,500 x 24, window 12, threshold 0.01 (T-DEED's setting);
- 25 fps: 135,000 x 24, window 34, threshold 0.005 (the write-up's tuned setting), peaks twice as wide.

Both implementations must give identical float64 arrays; the script prints timings, ratios and one JSON line.

    python benchmarks/soft_nms_speed.py [--per-label] [--repeat 3] [--seed 0]
"""
import argparse, json, sys, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_postprocess import soft_nms_reference  # the plain loop the kernel must equal

from dudek.postprocess import soft_nms, simulate_scores

SETTINGS = [("12.5 fps", 67_500, 12, 0.01, 1.5), ("25 fps", 135_000, 34, 0.005, 3.0)]  # name, frames, window, threshold, peak width


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the kernel (best kept); the reference runs once")
    ap.add_argument("--per-label", action="store_true", help="also time suppression per label across both teams")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    soft_nms(np.random.default_rng(0).random((100, 24)).astype(np.float32), 12, 0.01)  # compile / load from cache
    soft_nms(np.random.default_rng(0).random((100, 24)).astype(np.float32), 12, 0.01, per_team=False)
    rows = []
    for name, n, window, threshold, width in SETTINGS:
        scores, _ = simulate_scores(n, args.events, seed=args.seed, width=width)
        for per_team in ((True, False) if args.per_label else (True,)):
            best = np.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter(); fast = soft_nms(scores, window, threshold, per_team); best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter(); ref = soft_nms_reference(scores, window, threshold, per_team); t_ref = time.perf_counter() - t0
            assert np.array_equal(fast, ref), "kernel and reference differ"
            rows.append(dict(setting=name, frames=n, window=window, threshold=threshold, per_team=per_team,
                             above_threshold=int(np.count_nonzero(scores >= threshold)), kept=int(np.count_nonzero(fast)),
                             reference_s=round(t_ref, 3), kernel_s=round(best, 5), ratio=round(t_ref / best, 1)))
    print(f"{'setting':<10}{'grid':>14}{'window':>8}{'thr':>7}{'mode':>7}{'>= thr':>9}{'kept':>8}{'loop (s)':>10}{'kernel (s)':>12}{'speed-up':>10}")
    for r in rows:
        print(f"{r['setting']:<10}{str(r['frames']) + ' x 24':>14}{r['window']:>8}{r['threshold']:>7}{'team' if r['per_team'] else 'label':>7}"
              f"{r['above_threshold']:>9}{r['kept']:>8}{r['reference_s']:>10.2f}{r['kernel_s']:>12.4f}{r['ratio']:>9.0f}x")
    print("outputs identical (float64, bit for bit)")
    print(json.dumps({"benchmark": "soft_nms_speed", "events": args.events, "results": rows}))


if __name__ == "__main__":
    main()
