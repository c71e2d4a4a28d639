"""The installed `dudek` command: help, and the one-line error contract on bad input."""
import json, subprocess, sys

import pytest


def dudek(*args, cwd=None):
    "Run `python -m dudek ARGS` in a real process (as a user's shell would)."
    return subprocess.run([sys.executable, "-m", "dudek", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_commands():
    res = dudek("--help")
    assert res.returncode == 0
    for command in ("config",):
        assert command in res.stdout


def test_config_resolves_profile_and_overrides():
    res = dudek("config", "--profile", "paper", "--set", "train.lr=1e-4", "--set", "data.clip_len=40")
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout)
    assert (cfg["train"]["lr"], cfg["data"]["clip_len"], cfg["data"]["overlap"]) == (1e-4, 40, 68)


@pytest.mark.parametrize("args, names", [
    (["config", "--set", "train.lrr=1"], "train.lrr"),
    (["config", "--set", "train.epochs=many"], "train.epochs"),
    (["config", "--set", "nonsense"], "nonsense"),
    (["config", "--profile", "huge"], "profile"),
])
def test_bad_option_is_one_line(args, names):
    res = dudek(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in res.stderr
