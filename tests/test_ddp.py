"""`dudek train` under a real `torchrun` with two CPU processes (gloo): shares of the clips, rank-0-only writing."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch
import fastcore.test as ft

from test_train import TINY, tiny_games

TORCHRUN = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_process_training(tmp_path):
    data = tiny_games(tmp_path / "games", n_games=3)
    sets = [*TINY, "data.n_val=1", "data.clips_per_epoch=8", "train.epochs=2"]
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "dudek", "train", "--stage", "finetune",
           "--data", str(data), "--run-dir", str(tmp_path / "run"), *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "DUDEK_QUIET": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    summaries = [line for line in res.stdout.splitlines() if line.startswith("{")]
    ft.test_eq(len(summaries), 1)  # rank 0 only
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # 8 clips per epoch, 2 per batch, 2 processes: 2 optimiser steps per epoch, each on 4 clips
    ft.test_eq([h["step"] for h in history], [2, 4])
    ft.test_eq(all(h["val_loss"] is not None for h in history), True)  # validated on rank 0
    ck = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    ft.test_eq((ck["epoch"], ck["step"]), (2, 0))
    ft.test_eq(sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".pt"),
               ["best.pt", "epoch-001.pt", "epoch-002.pt", "last.pt"])
    ft.test_eq([p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")], [])  # no temp files left
