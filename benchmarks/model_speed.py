"""Speed of the T-DEED model (`dudek.model`) against a straightforward implementation of the same architecture.

Times, for each implementation, a training step (forward + backward + AdamW step, merged 25-class head, GSF shift,
SGP encoder-decoder with L layers, kernel `--sgp-kernel`, k `--sgp-k`) and inference (eval mode, no grad), with the
same inputs, loss and optimiser. Reports medians, frames per second and the parameter counts (which must match).

The straightforward implementation is the one in the `dude-k` package (PyPI, 0.1.1). Its module is also called
`dudek`, so it lives in its own folder and runs in its own process:

    pip install --no-deps --target /some/folder dude-k==0.1.1     # it needs only torch, timm, torchvision here
    python benchmarks/model_speed.py --reference /some/folder      # or set DUDE_K_PATH=/some/folder

Its `timm.create_model` call asks for ImageNet weights; the worker process wraps `timm.create_model` to force
`pretrained=False` (random weights time the same). Its forward is called with `inference=True` in both the training
and the inference timings: that skips the colour augmentations it runs inside `forward`, which are data augmentation
(here in `dudek.augment`), not architecture.

Each implementation runs in a worker process; the main process asks them in turn for one timed step at a time,
alternating the order every round, so both see the same background load (the 2-core machine is shared). After the
rounds each worker also times its inference forward by part (module hooks: the backbone with its temporal shifts,
the shifts alone, the SGP encoder-decoder). Without a reference only `dudek` is timed.

`--variants` measures several settings one after the other in one run, each against the reference: `main` (the
settings as given), `1-thread` (the same at one torch thread) and `nchw` (dudek's backbone in NCHW, as with
`--no-channels-last`: what channels_last buys). `--out` writes the results file: the settings of the model, and for
each variant its figures with the date, commit, machine and command; variants not measured this time keep their
figures from the file when it holds the same model settings. The chapter `09_model` renders its table from it:

    python benchmarks/model_speed.py --backbone regnety_002 --clip-len 32 --size 64 --batch 4 --threads 2 --rounds 7 \\
        --reference /some/folder --variants main 1-thread nchw --out benchmarks/results/model_speed.json
    python benchmarks/model_speed.py --profile          # also: where the time goes (torch.profiler, per op; stderr)
    python benchmarks/model_speed.py --device cuda --backbone regnety_008 --clip-len 80 --size 224 --batch 4 --amp
"""
from __future__ import annotations

import argparse, contextlib, copy, io, json, os, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------- worker processes
def _sync(device):
    import torch
    if device.startswith("cuda"): torch.cuda.synchronize()


def _build(impl: str, args):
    "The model of `impl` ('dudek' or 'reference') and a function `frames -> (class_logits, displacement)`."
    import torch
    torch.manual_seed(0)
    if impl == "dudek":
        sys.path.insert(0, str(ROOT))
        from dudek.model import build_model
        from dudek.config import ModelConfig
        mc = ModelConfig(backbone=args.backbone, pretrained="", temporal_shift=args.shift, n_layers=args.layers,
                         sgp_kernel=args.sgp_kernel, sgp_k=args.sgp_k, head="merged")
        model = build_model(mc, clip_len=args.clip_len, channels_last=not args.no_channels_last)

        def run(x):
            out = model(x)
            return out["class_logits"], out["displacement"]
        return model, run
    import timm, dudek
    if not str(Path(dudek.__file__).resolve()).startswith(str(Path(args.reference).resolve())):
        raise SystemExit(f"reference worker imported {dudek.__file__}, not the package under {args.reference}")
    create = timm.create_model
    timm.create_model = lambda *a, **k: create(*a, **{**k, "pretrained": False})  # no downloads: random weights
    from dudek.ml.model.tdeed.modules.tdeed import TDeedModule
    with contextlib.redirect_stdout(io.StringIO()):  # it prints one line per stage
        model = TDeedModule(clip_len=args.clip_len, n_layers=args.layers, sgp_ks=args.sgp_kernel, sgp_k=args.sgp_k,
                            num_classes=24, features_model_name=args.backbone, temporal_shift_mode=args.shift)

    def run(x):
        out, _ = model(x, inference=True)  # inference=True: skip its in-forward augmentations (not architecture)
        return out["im_feat"], out["displ_feat"]
    return model, run


def worker(impl: str, args):
    "Build the model, then answer commands on stdin (`train`, `infer`, `profile`, `quit`) with JSON lines on stdout."
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    reply = sys.stdout
    sys.stdout = sys.stderr  # anything the libraries print goes to stderr
    model, run = _build(impl, args)
    dev = torch.device(args.device)
    model.to(dev)
    g = torch.Generator().manual_seed(1)
    B, T, S = args.batch, args.clip_len, args.size
    x = torch.randint(0, 256, (B, T, 3, S, S), dtype=torch.uint8, generator=g).to(dev)
    target = torch.randint(0, 25, (B * T,), generator=g).to(dev)
    disp = torch.randn(B, T, generator=g).to(dev)
    weight = torch.full((25,), 5.0, device=dev); weight[0] = 1.0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16 if dev.type == "cpu" else torch.float16) if args.amp \
        else contextlib.nullcontext()
    scaler = torch.amp.GradScaler(dev.type, enabled=args.amp and dev.type == "cuda")

    def train_step():
        model.train()
        with amp:
            logits, d = run(x)
            loss = 1.5 * F.cross_entropy(logits.reshape(B * T, -1).float(), target, weight) + F.mse_loss(d.float(), disp)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt); scaler.update()

    def infer_step():
        model.eval()
        with torch.no_grad(), amp: run(x)

    steps = {"train": train_step, "infer": infer_step}
    for _ in range(args.warmup):
        train_step(); infer_step()
    _sync(args.device)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"impl": impl, "params": params}), file=reply, flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit": break
        if cmd == "profile":
            from torch.profiler import profile, ProfilerActivity
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
            for name, fn in steps.items():
                with profile(activities=acts) as prof:
                    fn(); _sync(args.device)
                key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
                print(f"\n== {impl}: {name} step, top ops by self time ==", file=sys.stderr)
                print(prof.key_averages().table(sort_by=key, row_limit=args.profile_rows), file=sys.stderr)
            print(f"\n== {impl}: inference forward by part (ms per step) ==", file=sys.stderr)
            for part, ms in part_times(impl, model, infer_step, args).items(): print(f"{part:34s} {ms:8.1f}", file=sys.stderr)
            print(json.dumps({"ok": True}), file=reply, flush=True)
            continue
        if cmd == "parts":
            print(json.dumps({"parts": {k: round(v, 2) for k, v in part_times(impl, model, infer_step, args).items()}}), file=reply, flush=True)
            continue
        _sync(args.device)
        t = time.perf_counter()
        steps[cmd]()
        _sync(args.device)
        print(json.dumps({"s": time.perf_counter() - t}), file=reply, flush=True)


PARTS = {  # implementation -> class name -> part
    "dudek": {"FrameEncoder": "backbone incl. temporal shifts", "GatedShift": "temporal shifts alone (GSF/GSM)",
              "SGPEncoderDecoder": "SGP encoder-decoder"},
    "reference": {"RegNet": "backbone incl. temporal shifts", "_GSF": "temporal shifts alone (GSF/GSM)",
                  "_GSM": "temporal shifts alone (GSF/GSM)", "EDSGPMIXERLayers": "SGP encoder-decoder"},
}


def part_times(impl: str, model, step, args, n: int = 5) -> dict[str, float]:
    "Milliseconds per `step` spent in the forward of each part of `model` (module hooks; parts nest)."
    import collections
    acc, start, hooks = collections.defaultdict(float), {}, []
    for m in model.modules():
        name = PARTS[impl].get(type(m).__name__)
        if name is None: continue
        def pre(mod, inp, key=id(m)): _sync(args.device); start[key] = time.perf_counter()
        def post(mod, inp, out, key=id(m), name=name): _sync(args.device); acc[name] += time.perf_counter() - start[key]
        hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    _sync(args.device)
    t = time.perf_counter()
    for _ in range(n): step()
    _sync(args.device)
    total = time.perf_counter() - t
    for h in hooks: h.remove()
    return {"whole inference step": 1000 * total / n, **{k: 1000 * v / n for k, v in sorted(acc.items())}}


# ----------------------------------------------------------------------------------------------- main process
class Worker:
    "A worker process for one implementation, asked for one timed step at a time."
    def __init__(self, impl: str, argv: list[str], reference: str | None):
        env = dict(os.environ)
        if impl == "reference": env["PYTHONPATH"] = os.pathsep.join([reference] + [p for p in [env.get("PYTHONPATH")] if p])
        self.impl = impl
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", impl] + argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.params = self.read()["params"]

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line: raise SystemExit(f"{self.impl} worker died (exit code {self.proc.wait()}); see the messages above")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n"); self.proc.stdin.flush()
        return self.read()

    def close(self):
        with contextlib.suppress(Exception):
            self.proc.stdin.write("quit\n"); self.proc.stdin.flush()
        self.proc.wait(timeout=60)


VARIANTS = {"main": "the settings as given", "1-thread": "the same at one torch thread",
            "nchw": "dudek's backbone in NCHW (--no-channels-last)"}
MODEL_KEYS = ("backbone", "clip_len", "size", "batch", "shift", "layers", "sgp_kernel", "sgp_k", "device", "amp")
NAMES = {"dudek": "dudek.model", "reference": "dude-k 0.1.1 (straightforward)"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="regnety_002")
    p.add_argument("--clip-len", type=int, default=32)
    p.add_argument("--size", type=int, default=64, help="frame height and width (pixels)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--shift", default="gsf", choices=["gsf", "gsm"])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--sgp-kernel", type=int, default=5)
    p.add_argument("--sgp-k", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="torch threads per worker")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast (bf16 on CPU, fp16 + GradScaler on CUDA) for both")
    p.add_argument("--rounds", type=int, default=7, help="timed steps per implementation and kind, interleaved")
    p.add_argument("--infer-per-round", type=int, default=3, help="timed inference steps per implementation and round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-channels-last", action="store_true", help="run dudek's backbone in NCHW (to see what channels_last buys)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["main"],
                   help="settings measured one after the other: " + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()))
    p.add_argument("--reference", default=os.environ.get("DUDE_K_PATH"),
                   help="folder holding the dude-k package (pip install --no-deps --target FOLDER dude-k==0.1.1)")
    p.add_argument("--impl", choices=["both", "dudek", "reference"], default="both")
    p.add_argument("--profile", action="store_true", help="print torch.profiler op tables of one step of each (stderr)")
    p.add_argument("--profile-rows", type=int, default=15)
    p.add_argument("--json", action="store_true", help="print one JSON line (the results) instead of tables")
    p.add_argument("--out", type=Path, help="results file (JSON) to write (variants measured earlier with the same model settings are kept)")
    p.add_argument("--worker", choices=["dudek", "reference"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def variant_args(args, name: str):
    "The settings of variant `name`: `args` with its thread count or layout changed."
    v = copy.copy(args)
    if name == "1-thread": v.threads = 1
    if name == "nchw": v.no_channels_last = True
    return v


def worker_argv(a) -> list[str]:
    "The command-line options a worker process needs for the settings `a`."
    argv = [x for k in ("backbone", "clip_len", "size", "batch", "shift", "layers", "sgp_kernel", "sgp_k", "threads", "device",
                        "warmup", "profile_rows") for x in ("--" + k.replace("_", "-"), str(getattr(a, k)))]
    argv += ["--amp"] * a.amp + ["--no-channels-last"] * a.no_channels_last
    return argv + (["--reference", str(a.reference)] if a.reference else [])


def measure(a, impls: list[str]) -> dict:
    "Time `impls` at the settings `a`, interleaved: medians, frames/s, parameters, part times and the speed-ups."
    workers = {i: Worker(i, worker_argv(a), a.reference) for i in impls}
    times = {i: {"train": [], "infer": []} for i in impls}
    try:
        for r in range(a.rounds):
            order = impls if r % 2 == 0 else impls[::-1]
            for kind, n in (("train", 1), ("infer", a.infer_per_round)):
                for i in order:
                    for _ in range(n): times[i][kind].append(workers[i].ask(kind)["s"])
        parts = {i: workers[i].ask("parts")["parts"] for i in impls}
        if a.profile:
            for i in impls: workers[i].ask("profile")
    finally:
        for w in workers.values(): w.close()
    res = {}
    for i in impls:
        train, infer = statistics.median(times[i]["train"]), statistics.median(times[i]["infer"])
        res[i] = {"train_step_s": round(train, 4), "infer_fps": round(a.batch * a.clip_len / infer, 1),
                  "params": workers[i].params, "parts_ms": parts[i], "train_step_all": [round(t, 4) for t in times[i]["train"]],
                  "infer_s_all": [round(t, 4) for t in times[i]["infer"]]}
    out = {"threads": a.threads, "channels_last": not a.no_channels_last, "rounds": a.rounds, "infer_per_round": a.infer_per_round,
           "warmup": a.warmup, **res.get("dudek", {})}
    if "reference" in res:
        out["reference"] = res["reference"]
        if "dudek" in res:
            out["train_speedup"] = round(res["reference"]["train_step_s"] / res["dudek"]["train_step_s"], 3)
            out["infer_speedup"] = round(res["dudek"]["infer_fps"] / res["reference"]["infer_fps"], 3)
            out["same_params"] = res["reference"]["params"] == res["dudek"]["params"]
    return out


def show(name: str, a, out: dict):
    "Print the table of one variant."
    print(f"\nT-DEED speed ({name}: {VARIANTS[name]}): {a.backbone}, clip {a.clip_len}, {a.size}x{a.size}, batch {a.batch}, {a.shift}, "
          f"L={a.layers}, kernel {a.sgp_kernel}, k {a.sgp_k}; {a.device}, {a.threads} threads, dudek in "
          f"{'NCHW' if a.no_channels_last else 'channels_last'}{', AMP' if a.amp else ''}; medians of {a.rounds} interleaved rounds")
    res = {i: r for i, r in (("dudek", out if "params" in out else None), ("reference", out.get("reference"))) if r}
    print(f"{'':32s} {'parameters':>12s} {'train step (s)':>15s} {'inference (frames/s)':>21s}")
    for i, r in res.items():
        print(f"{NAMES[i]:32s} {r['params']:>12,d} {r['train_step_s']:>15.3f} {r['infer_fps']:>21.1f}")
    if "train_speedup" in out:
        print(f"{'speed-up of dudek.model':32s} {'same' if out['same_params'] else 'DIFFERENT':>12s} "
              f"{out['train_speedup']:>14.2f}x {out['infer_speedup']:>20.2f}x")
    print("inference forward by part (ms per step): " + "; ".join(
        f"{NAMES[i]}: " + ", ".join(f"{k} {v:.1f}" for k, v in r["parts_ms"].items()) for i, r in res.items()))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker: return worker(args.worker, args)
    has_ref = bool(args.reference) and (Path(args.reference) / "dudek" / "ml").is_dir()
    impls = {"both": ["dudek", "reference"], "dudek": ["dudek"], "reference": ["reference"]}[args.impl]
    if "reference" in impls and not has_ref:
        print(f"model_speed: no dude-k package found (--reference {args.reference!r}); timing dudek only. "
              "Install it with: pip install --no-deps --target FOLDER dude-k==0.1.1", file=sys.stderr)
        impls = [i for i in impls if i != "reference"]
        if not impls: raise SystemExit(2)
    if "reference" in impls and args.shift == "gsm" and not args.device.startswith("cuda"):
        print("model_speed: dude-k's GSM runs on CUDA only (torch.cuda.FloatTensor); timing dudek only", file=sys.stderr)
        impls = [i for i in impls if i != "reference"]
        if not impls: raise SystemExit(2)
    from dudek.config import provenance
    from dudek.files import atomic_write, json_ready
    settings = {k: getattr(args, k) for k in MODEL_KEYS}
    results = {"benchmark": "model_speed", "settings": settings, "variants": {}}
    if args.out and args.out.is_file():  # the variants not measured this time keep their figures, if the model is the same
        old = json.loads(args.out.read_text())
        if old.get("settings") == settings: results["variants"] = old.get("variants", {})
        else: print(f"model_speed: {args.out} holds other model settings ({old.get('settings')}); its variants are not kept", file=sys.stderr)
    stamp = provenance(" ".join(["python", "benchmarks/model_speed.py", *map(str, argv)]))
    for name in dict.fromkeys(args.variants):
        a = variant_args(args, name)
        out = {**stamp, "variant": VARIANTS[name], **measure(a, impls)}
        results["variants"][name] = out
        if args.out: atomic_write(args.out, json.dumps(json_ready(results), indent=1) + "\n")  # after each variant
        if not args.json: show(name, a, out)
    if args.json: print(json.dumps(json_ready(results)))
    return results


if __name__ == "__main__":
    main()
