"""Where the course's time goes on a CPU, and what bf16, torch.compile and the inference overlap change, side by side in one run.

1. **Training.** `dudek train --stage finetune` runs as a real process (from the shipped vision checkpoint, the frame
   cache warm) on `--games`, float32 (`train.amp=false`) and bf16 (`train.amp=true`) in turn, `--rounds` times each,
   alternating the order. Its metrics give clips/s over the steps alone (start-up and checkpoint writing are
   excluded) and the share of each step spent waiting for clips (the data time, with `data.num_workers=0` as in
   the profiles).
2. **Inference.** `dudek infer` runs on the first `--test` folder with the first checkpoint, float32 and bf16
   (`--no-amp` / `--amp`), at each overlap of `--overlaps` (sampled frames shared by consecutive clips) with the first
   of `--workers` (decoder processes) and the checkpoint's inference batch; then the base (float32, overlap 16, one
   decoder process, batch 4: the command before this work), and the chosen overlap (8) with the other `--workers`
   and at each of `--batch-sizes`; in turn, `--rounds` times. Frames of video per second come from its summary. Then every checkpoint (several seeds), in
   its own precision, is scored at each overlap on every `--test` folder (Team-mAP@1, as validation scores).
3. **torch.compile.** The model's training step and inference forward, float32, eager against compiled (inductor), the
   whole model and its backbone alone, each in its own process: the first step (compiling) and the median step after,
   or the error where compiling fails.

Speed ratios are taken within a round: the two settings of one round see the same background load.

    python benchmarks/cpu_speed.py --games runs/seed0/data/train --test runs/seed0/data/test data/test-other \\
        --checkpoints runs/seed0/train/finetune/best.pt runs/seed1/train/finetune/best.pt --out benchmarks/results/cpu_speed.json

The results file holds the figures with the date, commit, machine and command; the last line printed is its JSON.
"""
from __future__ import annotations

import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dudek(*args, env=None) -> str:
    "Run `python -m dudek ARGS`; its stdout (an error stops the benchmark with its message)."
    r = subprocess.run([sys.executable, "-m", "dudek", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, "DUDEK_QUIET": "1", **(env or {})})
    if r.returncode: raise SystemExit(f"dudek {' '.join(map(str, args))} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def spread(xs) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def train_round(games: Path, run: Path, amp: bool, a, cache: Path) -> dict:
    "One `dudek train` of `a.train_clips` clips (one epoch) in float32 or bf16: clips/s and the data share of a step."
    dudek("train", "--stage", "finetune", "--data", games, "--run-dir", run, "--cache", cache, "--quiet",
          *[x for s in (f"train.amp={str(amp).lower()}", "train.epochs=1", f"data.clips_per_epoch={a.train_clips}",
                        "data.n_val=0", f"train.threads={a.threads}", f"seed={a.seed}") for x in ("--set", s)])
    record = json.loads((run / "metrics.json").read_text())[-1]
    return {"clips_per_s": record["clips_per_s"], "data_share": record["data_seconds"] / record["train_seconds"],
            "train_loss": record["train_loss"]}


def measure_training(a, work: Path) -> dict:
    out = {"float32": [], "bf16": [], "ratio": []}
    cache = work / "cache"
    train_round(a.games, work / "warm", False, a, cache)  # fills the frame cache (decoding is not what is compared)
    for r in range(a.rounds):
        got = {}
        for amp in ((False, True) if r % 2 == 0 else (True, False)):
            got[amp] = train_round(a.games, work / f"train-{r}-{amp}", amp, a, cache)
        out["float32"].append(got[False]); out["bf16"].append(got[True])
        out["ratio"].append(got[True]["clips_per_s"] / got[False]["clips_per_s"])
        print(f"train round {r + 1}/{a.rounds}: float32 {got[False]['clips_per_s']:.2f} clips/s, bf16 {got[True]['clips_per_s']:.2f}, "
              f"bf16 / float32 {out['ratio'][-1]:.2f}x, waiting for clips {got[False]['data_share']:.0%} / {got[True]['data_share']:.0%} of a step",
              file=sys.stderr, flush=True)
    return {"clips": a.train_clips, "clips_per_s": {k: spread([x["clips_per_s"] for x in out[k]]) for k in ("float32", "bf16")},
            "data_share": {k: spread([x["data_share"] for x in out[k]]) for k in ("float32", "bf16")},
            "bf16_over_float32": spread(out["ratio"])}


def infer_round(a, work: Path, setting: tuple, tag: str) -> float:
    "Frames of video per second of one `dudek infer` of the first test folder with the first checkpoint at `setting`."
    amp, overlap, workers, batch = setting
    summary = json.loads(dudek("infer", a.test[0], "--checkpoint", a.checkpoints[0], "--out", work / f"preds-{tag}", "--overlap", overlap,
                               "--amp" if amp else "--no-amp", "--workers", workers, *(["--batch-size", batch] if batch else []),
                               "--quiet").strip().splitlines()[-1])
    return summary["frames_per_s"]


def overlap_quality(a, cache: Path) -> list[dict]:
    "Team-mAP@1 and mAP@1 of each checkpoint (in its own precision) on each test folder at each overlap (in this process)."
    from dudek.annotations import find_games
    from dudek.infer import evaluate_games, load_spotter
    from dudek.labels import get_codec
    rows = []
    for ck in a.checkpoints:
        model, cfg = load_spotter(ck)
        for folder in a.test:
            for o in a.overlaps:
                cfg.data.overlap = o
                s = evaluate_games(model, find_games(folder, kind="ball"), cfg, get_codec(cfg.model.head), cache_dir=cache)
                rows.append({"checkpoint": str(ck), "test": str(folder), "overlap": o, "team_map_at1": s["team_map"], "map_at1": s["map"]})
                print(f"{ck} on {folder}, overlap {o}: Team-mAP@1 {s['team_map']:.3f}", file=sys.stderr, flush=True)
    return rows


def name(setting: tuple) -> str:
    amp, o, w, b = setting
    return f"{'bf16' if amp else 'float32'} overlap {o} workers {w} batch {b or 'default'}"


def measure_inference(a, work: Path) -> dict:
    "frames/s of every (precision, overlap) at the first `--workers` and the checkpoint's batch; of the base; of the chosen overlap at the other workers and batches. Alternating."
    w = a.workers[0]
    settings = [(amp, o, w, None) for o in a.overlaps for amp in (False, True)]
    base, chosen = (False, a.base_overlap, a.base_workers, a.base_batch), (True, a.chosen_overlap, w, None)
    settings += [base] + [(True, a.chosen_overlap, x, None) for x in a.workers[1:]]
    settings += [(amp, a.chosen_overlap, w, b) for b in a.batch_sizes for amp in (False, True)]
    settings = list(dict.fromkeys(settings))
    fps = {s: [] for s in settings}
    for r in range(a.rounds):
        for k, st in enumerate(settings if r % 2 == 0 else settings[::-1]): fps[st].append(infer_round(a, work, st, f"{r}-{k}"))
        print(f"infer round {r + 1}/{a.rounds}: " + ", ".join(f"{name(st)} {fps[st][-1]:.0f}" for st in settings) + " frames/s", file=sys.stderr, flush=True)
    ratio = lambda x, y: spread([p / q for p, q in zip(fps[x], fps[y])])
    speed = [{"precision": "bf16" if st[0] else "float32", "overlap": st[1], "workers": st[2], "batch": st[3], "frames_per_s": spread(fps[st]),
              "over_base": ratio(st, base)} for st in settings]
    goals = {"bf16_over_float32": {o: ratio((True, o, w, None), (False, o, w, None)) for o in a.overlaps},
             "bf16_over_float32_batch": {b: ratio((True, a.chosen_overlap, w, b), (False, a.chosen_overlap, w, b)) for b in a.batch_sizes},
             "chosen_over_base": ratio(chosen, base)}
    fmt = lambda v: f"{v['median']:.2f}x [{v['min']:.2f}, {v['max']:.2f}]"
    print(f"bf16 / float32 (workers {w}, the checkpoint's batch): " + ", ".join(f"overlap {o} {fmt(v)}" for o, v in goals["bf16_over_float32"].items())
          + f"; at overlap {a.chosen_overlap}: " + ", ".join(f"batch {b} {fmt(v)}" for b, v in goals["bf16_over_float32_batch"].items()), file=sys.stderr)
    print(f"{name(chosen)} / {name(base)}: {fmt(goals['chosen_over_base'])}", file=sys.stderr, flush=True)
    quality = overlap_quality(a, work / "cache")
    summary = []
    for o in a.overlaps:
        for folder in a.test:
            got = [r["team_map_at1"] for r in quality if r["overlap"] == o and r["test"] == str(folder)]
            summary.append({"overlap": o, "test": str(folder), "team_map_at1": spread(got)})
    setting = lambda st: {"precision": "bf16" if st[0] else "float32", "overlap": st[1], "workers": st[2], "batch": st[3]}
    return {"video": str(a.test[0]), "workers": w, "base": setting(base), "chosen": setting(chosen), "speed": speed, "goals": goals,
            "quality": quality, "quality_summary": summary}


COMPILE_WORKER = r"""
import json, sys, time, torch, torch.nn.functional as F
from dudek.config import get_config
from dudek.model import build_model
mode = sys.argv[2]
if int(sys.argv[1]): torch.set_num_threads(int(sys.argv[1]))
cfg = get_config("tiny"); B, T, H, W = cfg.train.batch_size, cfg.data.clip_len, cfg.data.frame_height, cfg.data.frame_width
torch.manual_seed(0)
model = build_model(cfg, pretrained="")
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
fwd = model
if mode == "compiled": fwd = torch.compile(model)  # the whole model
if mode == "compiled backbone": model.encoder.backbone = torch.compile(model.encoder.backbone)  # the RegNetY alone
x, y = torch.randint(0, 256, (B, T, 3, H, W), dtype=torch.uint8), torch.randint(0, 25, (B * T,))
def train():
    model.train(); loss = F.cross_entropy(fwd(x)["class_logits"].reshape(B * T, -1).float(), y)
    opt.zero_grad(); loss.backward(); opt.step()
def infer():
    model.eval()
    with torch.no_grad(): fwd(x)
out = {}
for name, step in (("train", train), ("infer", infer)):
    t = time.perf_counter(); step(); first = time.perf_counter() - t
    times = []
    for _ in range(int(sys.argv[3])):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    out[name] = {"first_s": first, "step_s": sorted(times)[len(times) // 2]}
print(json.dumps(out))
"""


def measure_compile(a) -> dict:
    out = {}
    for mode in ("eager", "compiled", "compiled backbone"):
        r = subprocess.run([sys.executable, "-c", COMPILE_WORKER, str(a.threads), mode, str(a.compile_steps)], capture_output=True,
                           text=True, cwd=ROOT, timeout=1800)
        if r.returncode:
            error = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
            out[mode] = {"error": error[-1][:400] if error else f"exit {r.returncode}"}
        else: out[mode] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{mode}: {out[mode]}", file=sys.stderr, flush=True)
    return out


def machine() -> dict:
    import torch
    from dudek.config import cpu_has_bf16
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": cpu_has_bf16()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", type=Path, required=True, help="ball-action games to train on")
    p.add_argument("--test", type=Path, nargs="+", required=True, help="folders of labelled games to score (the first is also timed)")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True, help="fine-tuned checkpoints (best.pt; the first is timed)")
    p.add_argument("--overlaps", type=int, nargs="+", default=[0, 8, 16, 24])
    p.add_argument("--base-overlap", type=int, default=16, help="the overlap the speed ratios are taken against (the tiny default before 4f8688a)")
    p.add_argument("--base-workers", type=int, default=1, help="the dudek infer --workers of the base (its default before this change)")
    p.add_argument("--base-batch", type=int, default=4, help="the dudek infer --batch-size of the base (train.batch_size, its default before this change)")
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[4, 16], help="other --batch-size values timed at the chosen overlap, both precisions")
    p.add_argument("--chosen-overlap", type=int, default=8, help="the tiny profile's inference overlap, compared with the base")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-clips", type=int, default=160, help="clips of each training run (one epoch)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="dudek infer --workers: the first for the sweep, the others for the base and chosen settings")
    p.add_argument("--compile-steps", type=int, default=5)
    p.add_argument("--parts", nargs="+", default=["train", "infer", "compile"], choices=["train", "infer", "compile"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    a.overlaps += [o for o in (a.base_overlap, a.chosen_overlap) if o not in a.overlaps]
    if a.base_workers not in a.workers: a.workers.append(a.base_workers)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    results = {"benchmark": "cpu_speed", "date": time.strftime("%Y-%m-%d"), "commit": commit, "machine": machine(),
               "command": " ".join(["python", "benchmarks/cpu_speed.py", *(argv or sys.argv[1:])])}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if "train" in a.parts: results["training"] = measure_training(a, Path(tmp))
        if "infer" in a.parts: results["inference"] = measure_inference(a, Path(tmp))
    if "compile" in a.parts: results["compile"] = measure_compile(a)
    results["seconds"] = round(time.perf_counter() - t0)
    stamp = {k: results[k] for k in ("date", "commit", "command")}
    for part in ("training", "inference", "compile"):
        if part in results: results[part]["measured"] = stamp
    if a.out and a.out.is_file():  # the parts not run this time keep their figures (each part says when it was measured)
        old = json.loads(a.out.read_text())
        kept = {k: {"measured": {f: old[f] for f in ("date", "commit", "command")}, **v} for k, v in old.items() if k in ("training", "inference", "compile")}
        results = {**kept, **results}
    text = json.dumps(results, indent=1)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_name(a.out.name + ".tmp"); tmp.write_text(text + "\n"); tmp.replace(a.out)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
