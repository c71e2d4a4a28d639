"""What every written file can count on (`dudek.files`, `dudek.config.make_run_dir`), and damaged ground-truth files."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from dudek.truth import TRUTH_ARRAYS, read_truth, write_truth
from dudek.config import get_config, make_run_dir
from dudek.files import InputError, atomic_write, check_writable
import results_tables  # scripts/ (on the path: conftest.py)


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


# ---------------------------------------------------------------- outputs that are not regular files, through a real command

def scored_games(root):
    "One labelled game and its predictions: the smallest input `dudek evaluate` scores."
    from dudek.annotations import Annotation, BallLabels, Prediction, Predictions, write_ball_labels, write_game_predictions
    write_ball_labels(root / "labels/x/s/g/Labels-ball.json", BallLabels("x/s/g", None, [Annotation("1 - 00:01", "PASS", 1000, "left")]))
    write_game_predictions(root / "preds", Predictions("x/s/g", [Prediction("1 - 00:01", "PASS", 1000, 1, 0.9, "left")]), "x/s/g")
    return root / "labels", root / "preds"


def evaluate_to(root, out, stdout=subprocess.PIPE):
    labels, preds = scored_games(root)
    return subprocess.run([sys.executable, "-m", "dudek", "evaluate", str(labels), str(preds), "--out", str(out)],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


def one_error_line(r, *says):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr[-2000:])
    for s in says: assert s in lines[0], lines[0]


def char_device(path):
    "A copy of /dev/null at `path` (a character device), or skip where this user may not make one."
    import stat
    try: os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError: pytest.skip("this user cannot make a device node")
    return path


def test_a_character_device_stays_one(tmp_path):
    import stat
    for dev in (char_device(tmp_path / "null"), "/dev/null"):
        r = evaluate_to(tmp_path, dev)
        assert r.returncode == 0, r.stderr
        assert stat.S_ISCHR(os.stat(dev).st_mode), f"{dev} became {stat.filemode(os.stat(dev).st_mode)}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "null", "preds"]  # no temporary left beside it


def test_a_fifo_gets_the_json_and_stays_a_fifo(tmp_path):
    import stat, threading
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    r = evaluate_to(tmp_path, fifo)
    reader.join(30)
    assert r.returncode == 0, r.stderr
    assert json.loads(got[0])["team_map_at1_present_labels"] == 1.0 and stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("stdout_is", ["a pipe", "a file"])
def test_dev_stdout_reaches_whoever_reads_it(tmp_path, stdout_is):
    if not os.path.exists("/dev/stdout"): pytest.skip("no /dev/stdout here")
    if stdout_is == "a pipe": r = evaluate_to(tmp_path, "/dev/stdout"); text = r.stdout
    else:
        with open(tmp_path / "shell.txt", "w") as f: r = evaluate_to(tmp_path, "/dev/stdout", stdout=f)  # `> shell.txt`
        text = (tmp_path / "shell.txt").read_text()
    assert r.returncode == 0, r.stderr
    assert text.index("Team-mAP@1") < text.index('"team_map_at1"')  # the printed table, then the JSON written to /dev/stdout
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")


def test_a_link_to_a_file_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    r = evaluate_to(tmp_path, tmp_path / "link.json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "link.json").is_symlink() and "team_map_at1" in (tmp_path / "real.json").read_text()


@pytest.mark.parametrize("case", ["a folder", "a full disk", "a read-only place", "a name too long", "a socket"])
def test_an_output_that_cannot_be_written_is_one_line_and_nothing_is_replaced(tmp_path, case):
    import socket
    if case == "a folder": out, says = tmp_path / "folder", ["--out: a file path, got a folder"]; out.mkdir(); (out / "mine").write_text("kept")
    elif case == "a full disk":
        if not os.path.exists("/dev/full"): pytest.skip("no /dev/full here")
        out, says = "/dev/full", ["/dev/full", "No space left"]
    elif case == "a read-only place": out, says = "/proc/scores.json", ["--out: a writable place", "/proc"]  # (root too)
    elif case == "a name too long": out, says = tmp_path / ("x" * 300 + ".json"), ["--out: a path this file system takes (File name too long)"]
    else:
        out, says = tmp_path / "sock", ["--out: a file path, got a socket"]
        s = socket.socket(socket.AF_UNIX); s.bind(str(out))
    r = evaluate_to(tmp_path, out)
    one_error_line(r, *says)
    if case == "a folder": assert (out / "mine").read_text() == "kept" and sorted(p.name for p in out.iterdir()) == ["mine"]
    if case == "a socket": import stat; assert stat.S_ISSOCK(os.stat(out).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("name, lines", [("reproduce", 6), ("reproduce_times", 6), ("reproduce_labels", 6), ("factors", 6), ("augment", 6),
                                         ("ablations", 6), ("test_times", 1), ("train_games", 6)])
def test_the_readme_tables_are_the_ones_their_results_files_render(name, lines):
    "Each results table of the README (and the site) is what `scripts/results_tables.py` prints from its committed results file."
    root = Path(__file__).resolve().parent.parent
    table = results_tables.TABLES[name]().strip()  # (in this process: what the script prints)
    assert len(table.splitlines()) >= lines and table in (root / "README.md").read_text()
