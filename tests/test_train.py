"""dudek.train: schedule values, checkpoints (weights_only), exact resume after kill -9 of a real `dudek train`,
initialisation from a previous stage, and the shipped vision checkpoint."""
import json, math, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch
import fastcore.test as ft

from dudek.annotations import Annotation, BallLabels, find_games, frame_to_position, game_time_of, write_ball_labels
from dudek.config import get_config
from dudek.labels import BALL_LABELS, TEAMS
from dudek.config import cpu_has_bf16
from dudek.model import VISION_CHECKPOINT, FrameEncoder, asset_path, build_model, load_weights
from dudek.model import load_checkpoint, save_checkpoint
from dudek.loop import lr_factor, make_optimizer, make_scheduler
from dudek.train import load_init
from dudek.video import write_video

# A tiny T-DEED: regnety_002 on 32x56 frames, clips of 8, two steps per epoch.
TINY = ["data.frame_height=32", "data.frame_width=56", "data.clip_len=8", "data.overlap=4", "data.clips_per_epoch=4",
        "train.batch_size=2", "train.threads=1", "data.n_val=0", "model.pretrained=",
        "train.amp=false"]  # float32 on any CPU (bf16, and its fallback line, have tests of their own that set it)


def tiny_games(root, n_games=2, n_frames=160, size=(32, 56), seed=0) -> Path:
    "Ball games of `n_frames` noise frames with six events each (PASS, DRIVE, HEADER; both teams)."
    rng = np.random.default_rng(seed)
    for g in range(n_games):
        folder = Path(root) / "league/season" / f"game{g}"
        write_video(folder / "224p.mp4", iter(rng.integers(0, 256, (n_frames, *size, 3), dtype=np.uint8)))
        frames = sorted(rng.choice(np.arange(5, n_frames - 5), 6, replace=False).tolist())
        anns = [Annotation(game_time_of(frame_to_position(f)), BALL_LABELS[k % 3], frame_to_position(f), TEAMS[k % 2])
                for k, f in enumerate(frames)]
        write_ball_labels(folder / "Labels-ball.json", BallLabels(f"league/season/game{g}", None, anns))
    return Path(root)


def dudek_train(*args, env=None, **kw) -> subprocess.Popen:
    "Start `python -m dudek train ARGS` as a real process."
    return subprocess.Popen([sys.executable, "-m", "dudek", "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "DUDEK_QUIET": "1", **(env or {})}, **kw)


def train_args(data, run, *extra):
    return ["--stage", "finetune", "--data", str(data), "--run-dir", str(run), *[a for s in TINY for a in ("--set", s)], *extra]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_games(tmp_path_factory.mktemp("games"))


def test_schedule_values():
    # 3 epochs of 4 steps, 1 warm-up epoch: linear to the peak, cosine to zero after the last step
    ft.test_close([lr_factor(s, 12, 4) for s in range(4)], [0.25, 0.5, 0.75, 1.0])
    ft.test_close([lr_factor(s, 12, 4) for s in (4, 8, 11)], [1.0, 0.5, 0.5 * (1 + math.cos(7 * math.pi / 8))])
    ft.test_eq(lr_factor(12, 12, 4), 0.0)
    cfg = get_config(overrides={"train.lr": 6e-4, "train.epochs": 30, "train.warmup_epochs": 1})
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg.train)
    sched = make_scheduler(opt, steps_per_epoch=10, epochs=30, warmup_epochs=1)
    lrs = []
    for _ in range(300):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(); sched.step()
    ft.test_close(lrs[0], 6e-5)  # first warm-up step
    ft.test_close(lrs[9], 6e-4)  # peak at the end of the warm-up epoch
    ft.test_close(lrs[10 + 145], 3e-4)  # half-way through the cosine
    ft.test_eq(max(lrs), lrs[9])
    ft.test_eq(opt.param_groups[0]["lr"], 0.0)  # zero after exactly 30 epochs


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "bf16"])
def test_kill_resume_is_exact(data, tmp_path, amp):
    "kill -9 a real training process mid-epoch, resume it, and get bit-for-bit the weights of an uninterrupted run (float32 and bf16)."
    if amp and not cpu_has_bf16(): pytest.skip("this CPU has no native bf16")
    args = ["--set", "train.epochs=3", "--set", "augment.p_mixup=0.5", "--set", f"train.amp={str(amp).lower()}"]
    full = dudek_train(*train_args(data, tmp_path / "full", *args))
    killed = dudek_train(*train_args(data, tmp_path / "killed", *args, "--checkpoint-steps", "1"))
    last, seen = tmp_path / "killed" / "last.pt", None
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        if last.exists():
            seen = load_checkpoint(last)
            if (seen["epoch"], seen["step"]) >= (1, 1): break  # inside the second epoch
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    at_kill = load_checkpoint(last)
    assert (at_kill["epoch"], at_kill["step"]) < (3, 0)
    resumed = dudek_train(*train_args(data, tmp_path / "killed", *args, "--resume"))
    for p in (full, resumed):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "killed" / "last.pt")
    assert same_weights(a["model"], b["model"])
    assert all(same_weights(x, y) if isinstance(x, dict) else True
               for x, y in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()))
    ft.test_eq([h["train_loss"] for h in a["history"]], [h["train_loss"] for h in b["history"]])
    assert all(math.isfinite(h["train_loss"]) for h in a["history"])
    assert {v.dtype for v in a["model"].values() if v.is_floating_point()} == {torch.float32}  # bf16 computes, float32 keeps the weights
    ft.test_eq(json.loads((tmp_path / "killed" / "metrics.json").read_text())[-1]["epoch"], 3)


def test_amp_on_a_cpu_without_bf16_trains_in_float32_with_one_line(data, tmp_path):
    "PyTorch's kernels held to AVX2 (no bf16 there): training and its validation run in float32, and say so in one line."
    p = dudek_train(*train_args(data, tmp_path / "run", "--set", "train.amp=true", "--set", "data.n_val=1"), env={"ATEN_CPU_CAPABILITY": "avx2"})
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    assert err.strip().splitlines() == ["warning: train.amp: no native bf16 on this cpu (AVX2), computing in float32"], err


def test_checkpoints_load_weights_only(data, tmp_path):
    p = dudek_train(*train_args(data, tmp_path / "run", "--set", "train.epochs=1"))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    ft.test_eq((summary["stage"], summary["epochs"]), ("finetune", 1))
    for name in ("last.pt", "epoch-001.pt", "best.pt"):
        ck = torch.load(tmp_path / "run" / name, map_location="cpu", weights_only=True)
        ft.test_eq("model" in ck and "config" in ck, True)
    for name in ("config.json", "metrics.csv", "metrics.json", "summary.json"): assert (tmp_path / "run" / name).is_file()
    (tmp_path / "evil.pt").write_bytes(b"\x80\x02csubprocess\ncall\n.")  # a pickle that would import code
    ft.test_fail(lambda: load_checkpoint(tmp_path / "evil.pt"), contains="evil.pt: checkpoint")


def test_finetune_init_keeps_encoder_and_temporal_and_gives_a_fresh_head(tmp_path):
    cfg = get_config(overrides=TINY)
    torch.manual_seed(0)
    old = build_model(cfg, head="old")
    save_checkpoint(tmp_path / "best.pt", {"model": old.state_dict(), "config": {"model": {"head": "old"}}})
    new = build_model(cfg, head="merged")
    fresh_head = {k: v.clone() for k, v in new.class_head.state_dict().items()}
    info = load_init(new, tmp_path / "best.pt")
    for k, v in new.state_dict().items():
        if k.startswith("class_head."): assert torch.equal(v, fresh_head[k[len("class_head."):]])
        else: assert torch.equal(v, old.state_dict()[k]), k
    ft.test_eq(info["fresh"], ["class_head.fc.bias", "class_head.fc.weight"])


def test_bad_stage_is_one_line(tmp_path):
    p = dudek_train("--stage", "warmup", "--run-dir", str(tmp_path / "r"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1 and "stage" in err


def test_shipped_vision_checkpoint_loads_strictly():
    path = asset_path(VISION_CHECKPOINT)
    prov = json.loads(path.with_suffix(".json").read_text())
    for key in ("command", "config", "commit", "seconds", "machine", "metrics"): assert key in prov, key
    assert "vision_looks.py" in prov["command"] and "--stage vision" in prov["continued_from"]["command"]  # its two stages' commands
    ft.test_eq(path.stat().st_size < 12e6, True)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    ft.test_eq({v.dtype for v in sd.values() if v.is_floating_point()}, {torch.float16})
    m = prov["config"]["model"]
    encoder = FrameEncoder(m["backbone"], "", m["temporal_shift"])
    load_weights(encoder, sd)  # strict: every tensor matched, no key missing or left over
    ft.test_eq(encoder.state_dict().keys(), sd.keys())
    cfg = get_config()  # the default configuration starts from it
    ft.test_eq((cfg.model.backbone, cfg.model.temporal_shift), (m["backbone"], m["temporal_shift"]))
    model = build_model(cfg, pretrained=str(path))
    ft.test_eq(all(torch.equal(model.encoder.state_dict()[k], sd[k].float()) for k in sd if sd[k].is_floating_point()), True)


def test_vision_stage_exports_a_backbone_that_starts_a_tdeed(tmp_path):
    "A real (tiny) vision stage on synthetic games with ground truth: the exported half-precision encoder starts a T-DEED."
    from dudek.synthetic import synthesize
    data = tmp_path / "games"
    synthesize(data, n_games=2, minutes=0.1, seed=3, workers=1)
    sets = ["data.frame_height=32", "data.frame_width=56", "data.clips_per_epoch=8", "train.batch_size=4", "train.epochs=1",
            "train.threads=1", "model.pretrained="]
    p = subprocess.run([sys.executable, "-m", "dudek", "train", "--stage", "vision", "--data", str(data), "--run-dir", str(tmp_path / "vision"),
                        "--export", str(tmp_path / "export" / "encoder.pt"), *[a for s in sets for a in ("--set", s)]],
                       capture_output=True, text=True, timeout=180, env={**os.environ, "DUDEK_QUIET": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    ft.test_eq((summary["stage"], summary["epochs"]), ("vision", 1))
    history = json.loads((tmp_path / "vision" / "metrics.json").read_text())
    for key in ("val_loss", "val_ball_xy_rmse", "val_possession_acc", "val_ball_state_acc"): assert math.isfinite(history[0][key]), key
    assert 0 <= history[0]["val_touch_recall"] <= 1 and "val_touch_acc" in history[0]  # the touch task trains with the others
    sd = torch.load(tmp_path / "export" / "encoder.pt", map_location="cpu", weights_only=True)
    ft.test_eq(torch.equal(sd[next(iter(sd))], torch.load(tmp_path / "vision" / "backbone.pt", weights_only=True)[next(iter(sd))]), True)
    prov = json.loads((tmp_path / "export" / "encoder.json").read_text())
    assert "--stage vision" in prov["command"] and prov["tensors"] == len(sd)
    model = build_model(get_config(overrides=TINY), pretrained=str(tmp_path / "export" / "encoder.pt"))
    enc = model.encoder.state_dict()
    ft.test_eq(set(enc), set(sd))
    ft.test_eq(all(torch.equal(enc[k], sd[k].to(enc[k].dtype)) for k in sd), True)


@pytest.mark.parametrize("fault", ["an event past the end", "a truncated video", "labels that are not JSON"])
def test_bad_validation_game_fails_before_the_first_step(fault, tmp_path):
    "A validation game that cannot be scored stops `dudek train` at once (one line, exit 2), not after a lost epoch."
    from dudek.annotations import find_games
    from dudek.dataset import split_games
    data = tiny_games(tmp_path / "games", n_games=3)
    cfg = get_config(overrides=[s for s in TINY if not s.startswith("data.n_val")])
    (val,) = split_games(find_games(data, kind="ball"), cfg.data.n_val, cfg.data.n_test, cfg.seed)["val"]
    if fault == "an event past the end":
        labels = val.read_labels()
        late = frame_to_position(500)
        write_ball_labels(val.labels, BallLabels(labels.url_local, None, [*labels.annotations,
                                                                          Annotation(game_time_of(late), "GOAL", late, "left")]))
    elif fault == "a truncated video": val.video.write_bytes(val.video.read_bytes()[:3000])
    else: val.labels.write_text("{not json")
    run = tmp_path / "run"
    p = dudek_train("--stage", "finetune", "--data", str(data), "--run-dir", str(run),
                    *[a for s in TINY if not s.startswith("data.n_val") for a in ("--set", s)], "--set", "train.epochs=3")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and val.rel.split("/")[-1] in err, err
    assert not list(run.glob("*.pt"))  # no step was taken


def test_init_that_is_not_a_checkpoint_is_one_line(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    model = build_model(get_config(overrides=["model.pretrained="]))
    ft.test_fail(lambda: load_init(model, tmp_path / "list.pt"), contains="list.pt: model: a checkpoint holding a model state dict")


def test_resume_needs_this_runs_checkpoint(data, tmp_path):
    "`--resume` of a folder with nothing to resume, or holding another run's last.pt, is one line (exit 2), nothing merged."
    p = dudek_train(*train_args(data, tmp_path / "nothing", "--resume"))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "nothing to resume" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "nothing").exists()
    for name in ("a", "b"):
        p = dudek_train(*train_args(data, tmp_path / name, "--set", "train.epochs=1"))
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    (tmp_path / "b" / "last.pt").write_bytes((tmp_path / "a" / "last.pt").read_bytes())  # same configuration, another run
    p = dudek_train(*train_args(data, tmp_path / "b", "--set", "train.epochs=1", "--resume"))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "last.pt: run_id: a checkpoint of this run" in err, err


def dudek_cmd(*args, timeout=300):
    "Run `python -m dudek ARGS` to the end: (returncode, stdout, stderr)."
    p = subprocess.run([sys.executable, "-m", "dudek", *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "DUDEK_QUIET": "1"})
    return p.returncode, p.stdout, p.stderr


def one_line(rc, err, *words):
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    for w in words: assert w in err, err


def test_two_head_finetunes_with_validation_then_infers_and_scores(tmp_path):
    "The write-up's baseline head: fine-tuning with a validation game scores it every epoch; its checkpoint infers and scores."
    data = tiny_games(tmp_path / "games", n_games=3)
    run = tmp_path / "run"
    p = dudek_train(*train_args(data, run, "--set", "model.head=two_head", "--set", "data.n_val=1", "--set", "train.epochs=2"))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    ft.test_eq(json.loads(out.strip().splitlines()[-1])["epochs"], 2)
    history = json.loads((run / "metrics.json").read_text())
    ft.test_eq([h["epoch"] for h in history], [1, 2])
    assert all(0 <= h["team_map_present"] <= 1 and math.isfinite(h["val_loss"]) for h in history)
    ft.test_eq(load_checkpoint(run / "best.pt")["config"]["model"]["head"], "two_head")
    rc, out, err = dudek_cmd("infer", str(data), "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "preds"), "--quiet")
    assert rc == 0, err
    ft.test_eq(json.loads(out.strip().splitlines()[-1])["games"], 3)
    rc, out, err = dudek_cmd("evaluate", str(data), str(tmp_path / "preds"), "--json")
    assert rc == 0, err
    scores = json.loads(out.strip().splitlines()[-1])
    assert 0 <= scores["map_at1"] <= 1 and 0 <= scores["team_map_at1_present_labels"] <= 1 and scores["n_events"] == 18, scores


@pytest.fixture(scope="module")
def diverged(data, tmp_path_factory):
    "A fine-tuned checkpoint whose weights were then made NaN (what a diverged training writes)."
    root = tmp_path_factory.mktemp("diverged")
    p = dudek_train(*train_args(data, root / "run", "--set", "train.epochs=1"))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    ck = load_checkpoint(root / "run" / "best.pt")
    for name, factor in (("nan.pt", float("nan")), ("huge.pt", 1e38)):  # NaN, or finite weights whose logits overflow
        torch.save({**ck, "model": {k: v * factor if k.startswith("class_head.") else v for k, v in ck["model"].items()}}, root / name)
    return root / "nan.pt"


def test_non_finite_weights_stop_with_one_line(data, diverged, tmp_path):
    "NaN weights are refused where they enter (an --init, a checkpoint to infer with), naming the file and the tensor; nothing is written."
    rc, _, err = dudek_cmd("train", *train_args(data, tmp_path / "run", "--init", str(diverged)))
    one_line(rc, err, "nan.pt: class_head.", "finite weights")
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
    rc, _, err = dudek_cmd("infer", str(data), "--checkpoint", str(diverged), "--out", str(tmp_path / "preds"))
    one_line(rc, err, "nan.pt: class_head.", "finite weights")
    assert not (tmp_path / "preds").exists()


def test_a_non_finite_loss_stops_with_one_line_and_writes_no_nan(data, diverged, tmp_path):
    "Finite weights whose logits overflow (a class head scaled by 1e38) end the run at its first step, in one line naming the run and the step."
    rc, _, err = dudek_cmd("train", *train_args(data, tmp_path / "run", "--init", str(diverged.parent / "huge.pt"), "--set", "train.epochs=2"))
    one_line(rc, err, str(tmp_path / "run"), "at epoch 1, step 1", "a finite loss")
    assert not list((tmp_path / "run").glob("*.pt"))
    # the same checkpoint infers to NaN or infinite scores: one line naming the video and the clip, no predictions written
    game = find_games(data)[0]
    rc, _, err = dudek_cmd("infer", str(game.path), "--checkpoint", str(diverged.parent / "huge.pt"), "--out", str(tmp_path / "p.json"),
                           "--workers", "0", "--quiet")
    one_line(rc, err, str(game.video), "finite model outputs", "sampled frame 0")
    assert not (tmp_path / "p.json").exists()


def test_weights_that_turn_non_finite_stop_before_a_checkpoint(data, tmp_path):
    "A finite loss over weights that go NaN or infinite (a backbone stem scaled by 1e30: its BatchNorm statistics overflow) stops at the epoch's end."
    enc = FrameEncoder("regnety_002", temporal_shift="gsf")
    torch.save({k: v * 1e30 if k == "backbone.stem.conv.weight" else v for k, v in enc.state_dict().items()}, tmp_path / "huge.pt")
    rc, _, err = dudek_cmd("train", *train_args(data, tmp_path / "run", "--set", f"model.pretrained={tmp_path / 'huge.pt'}", "--set", "train.epochs=2"))
    one_line(rc, err, str(tmp_path / "run"), "(epoch 1)", "running_var: finite weights")
    for ck in (tmp_path / "run").glob("*.pt"):
        assert all(torch.isfinite(v).all() for v in load_checkpoint(ck)["model"].values() if v.is_floating_point()), ck


def test_a_failed_init_leaves_no_run_folder(data, tmp_path):
    "A bad --init (missing, not a T-DEED) is one line before anything is made, and the next, corrected attempt in the same folder runs."
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    for bad in (tmp_path / "missing.pt", tmp_path / "other.pt"):
        rc, _, err = dudek_cmd("train", *train_args(data, tmp_path / "run", "--init", str(bad)))
        one_line(rc, err, bad.name)
        assert not (tmp_path / "run").exists()
    rc, out, err = dudek_cmd("train", *train_args(data, tmp_path / "run", "--set", "train.epochs=1", "--set", "train.lr=1e-4"))
    assert rc == 0, err
