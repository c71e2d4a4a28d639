"""The installed `dudek` command: help, and the one-line error contract on bad input."""
import json, subprocess, sys

import pytest


def dudek(*args, cwd=None):
    "Run `python -m dudek ARGS` in a real process (as a user's shell would)."
    return subprocess.run([sys.executable, "-m", "dudek", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_commands():
    res = dudek("--help")
    assert res.returncode == 0
    for command in ("config", "evaluate", "synth", "train", "infer", "tune"):
        assert command in res.stdout


def test_config_resolves_profile_and_overrides():
    res = dudek("config", "--profile", "paper", "--set", "train.lr=1e-4", "--set", "data.clip_len=100")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert (cfg["train"]["lr"], cfg["data"]["clip_len"], cfg["data"]["overlap"]) == (1e-4, 100, 68)


@pytest.mark.parametrize("args, names", [
    (["config", "--set", "train.lrr=1"], "train.lrr"),
    (["config", "--set", "train.epochs=many"], "train.epochs"),
    (["config", "--set", "nonsense"], "nonsense"),
    (["config", "--profile", "huge"], "profile"),
    (["config", "--set", "train.epochs=0"], "train.epochs"),
    (["config", "--set", "train.lr=NaN"], "train.lr"),
    (["config", "--set", "profile=paper"], "profile"),
    (["config", "--set", "train.ema=1.5"], "train.ema"),
    (["config", "--set", "augment.p_flip=1.2"], "augment.p_flip"),
    (["config", "--set", "train.warmup_epochs=-1"], "train.warmup_epochs"),
    (["config", "--set", "train.batch_size=0"], "train.batch_size"),
    (["config", "--set", "data.stride=0"], "data.stride"),
    (["config", "--set", "train.lr=-1"], "train.lr"),
    (["config", "--set", "data.frame_height=0"], "data.frame_height"),
    (["config", "--set", "model.head=bogus"], "model.head"),
    (["config", "--profile", "paper", "--set", "data.clip_len=40"], "data.overlap"),
    (["train", "--stage", "finetune", "--data", "d", "--run-dir", "r", "--checkpoint-steps", "-1"], "--checkpoint-steps"),
    (["train", "--stage", "finetune", "--data", "d", "--run-dir", "r", "--cache", "plain/c"], "--cache"),  # a path under a file
    (["train", "--stage", "vision", "--data", "d", "--run-dir", "r", "--export", "plain/v.pt"], "--export"),
    (["train", "--stage", "finetune", "--data", "d", "--run-dir", "plain/r"], "--run-dir"),
    (["infer", "v.mp4", "--checkpoint", "c.pt", "--out", "o.json", "--workers", "-1"], "--workers"),
    (["infer", "v.mp4", "--checkpoint", "c.pt", "--out", "o.json", "--tta", "rotate"], "--tta"),
    (["infer", "nowhere", "--checkpoint", "c.pt", "--out", "o.json"], "source"),
    (["infer", "v.mp4", "--checkpoint", "c.pt", "--out", "o.json", "--device", "gpu"], "--device"),
    (["tune", "--raw", "r", "--labels", "l", "--out", "p.json", "--trials", "0"], "--trials"),
    (["tune", "--raw", "r", "--labels", "nowhere", "--out", "p.json"], "nowhere"),
    (["synth", "out", "--games", "abc"], "--games"),  # typer's own checks: one line too, not a box
    (["synth", "out", "--bogus"], "--bogus"),
    (["synth"], "out"),
    # numbers no run can use: refused before any work, never an overflow deep inside it
    (["config", "--set", f"train.epochs={10 ** 30}"], "train.epochs"),
    (["config", "--set", "seed=" + "9" * 5000], "seed"),  # longer than Python reads as an int
    (["config", "--set", "post.nms_window=1e400"], "post.nms_window"),
    (["synth", "out", "--games", str(10 ** 30)], "--games"),
    (["synth", "out", "--seed", str(2 ** 64)], "--seed"),
    (["tune", "--raw", "r", "--labels", "l", "--out", "p.json", "--trials", str(10 ** 30)], "--trials"),
    (["train", "--stage", "finetune", "--data", "d", "--run-dir", "r", "--checkpoint-steps", str(10 ** 30)], "--checkpoint-steps"),
    (["infer", "v.mp4", "--checkpoint", "c.pt", "--out", "o.json", "--workers", str(10 ** 30)], "--workers"),
    (["evaluate", "l", "p.zip", "--tolerance", str(10 ** 30)], "--tolerance"),
    (["reproduce", "--data", "d", "--run-dir", "o", "--seed", str(10 ** 30)], "--seed"),
    (["reproduce", "--data", "d", "--run-dir", "o", "--size", f"trials={10 ** 30}"], "trials"),
])
def test_bad_option_is_one_line(args, names, tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    res = dudek(*args, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]  # nothing written


def test_no_command_shows_help_and_fails():
    res = dudek()
    assert res.returncode == 2 and "Usage" in res.stdout and "synth" in res.stdout and "error" not in res.stderr
