"""What every written file can count on (`dudek.files`, `dudek.config.make_run_dir`), and damaged ground-truth files."""
import os, subprocess, sys

import numpy as np
import pytest

from dudek.annotations import TRUTH_ARRAYS, read_truth, write_truth
from dudek.config import get_config, make_run_dir
from dudek.files import InputError, atomic_write, check_writable


def test_written_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try: assert atomic_write(tmp_path / "a.json", "{}").stat().st_mode & 0o777 == 0o640
    finally: os.umask(old)


def test_a_killed_writers_temp_files_go_on_the_next_run(tmp_path):
    "A SIGKILLed writer leaves its pid-named temp file; the next run folder set-up removes it (a live writer's stays)."
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = run / f".last.pt.pid{dead.pid}.abc.tmp"
    left.write_bytes(b"half a checkpoint")
    alive = run / f".last.pt.pid{os.getpid()}.def.tmp"
    alive.write_bytes(b"being written")
    with pytest.raises(InputError, match="an empty or new folder"): make_run_dir(run, get_config())  # it holds a live temp
    assert not left.exists() and alive.exists()
    alive.unlink()
    make_run_dir(run, get_config())
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "run_id"]


@pytest.mark.parametrize("damage", ["truncated", "missing array", "not a zip"])
def test_damaged_ground_truth_is_one_line(tmp_path, damage):
    n = 4
    arrays = {k: np.zeros(n, np.float32) for k in TRUTH_ARRAYS if k not in ("width", "height", "half_length")}
    arrays |= {"ball_xy": np.zeros((n, 2), np.float32), "ball_velocity": np.zeros((n, 3), np.float32),
               "width": np.int32(400), "height": np.int32(200), "half_length": np.float32(52.5)}
    path = write_truth(tmp_path, arrays)
    assert set(read_truth(tmp_path)) >= {"ball_xy", "ball_closing", "replay"}
    if damage == "truncated": path.write_bytes(path.read_bytes()[:300])
    elif damage == "missing array": write_truth(tmp_path, {k: v for k, v in arrays.items() if k != "ball_closing"})
    else: path.write_text("hello")
    with pytest.raises(InputError) as e: read_truth(tmp_path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    if damage == "missing array": assert "ball_closing: an array of the ground truth" in str(e.value)


def test_check_writable_asks_without_creating(tmp_path):
    (tmp_path / "file").write_text("")
    assert check_writable(tmp_path / "a" / "b" / "c.json", "--out") == tmp_path / "a" / "b" / "c.json"
    assert not (tmp_path / "a").exists()
    with pytest.raises(InputError, match="--out: a path under a folder"): check_writable(tmp_path / "file" / "x", "--out")
    with pytest.raises(InputError, match="--cache: a folder path, got a file"): check_writable(tmp_path / "file", "--cache", folder=True)
