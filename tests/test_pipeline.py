"""`dudek reproduce` as a user runs it: real papermill kernels on the real chapters, real files.

- a shortened `paper` run (the write-up's model: regnety_008, clip 80/68, L=2, flip TTA; small frames, two
  tiny games per set, one epoch each, 5 tuning trials) through every stage from the data to the report;
  `--resume` on the finished run skips every stage and prints the same headline;
- a stage that fails (a damaged label file in `--data`) stops the run with one line naming the notebook and
  the cell, exit code 1, and keeps the executed notebook; resumed after the fix, it finishes;
- a run killed (SIGKILL) during a stage continues with `--resume` without redoing the stages it finished,
  and the chapters' scratch folders, the killed stage's too, are gone afterwards;
- `--ablations` killed between its rows continues with `--resume` without redoing the rows it finished.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from dudek.ablations import ROWS
from dudek.annotations import find_games
from dudek.synthetic import synthesize


def env() -> dict:
    "The environment of a `dudek` child: this test's (its TMPDIR included: see conftest.py), quiet and unbuffered."
    return {**os.environ, "DUDEK_QUIET": "1", "PYTHONUNBUFFERED": "1"}


TINY_SETS = {"train": {"n_games": 2, "minutes": 0.5, "seed": 0}, "old": {"n_games": 2, "minutes": 0.5, "seed": 2, "kind": "old"},
             "val": {"n_games": 1, "minutes": 0.5, "seed": 3}, "test": {"n_games": 1, "minutes": 1.0, "seed": 1},
             "test-other": {"n_games": 1, "minutes": 1.0, "seed": 1, "league": "other_league"}}


def dudek(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "dudek", *map(str, args)], capture_output=True, text=True, env=env(), timeout=timeout)


def test_shortened_paper_run_and_resume(tmp_path):
    out = tmp_path / "run"
    stages = "data,train,infer-val,tune,infer-test,infer-other,score,report"
    args = ["reproduce", "--profile", "paper", "--run-dir", out, "--stages", stages, "--no-site", "--quiet",
            "--size", "sets=" + json.dumps(TINY_SETS), "--size", "pretrain_epochs=1", "--size", "finetune_epochs=1",
            "--size", "clips_per_epoch=4", "--size", "trials=5",
            "--set", "model.pretrained=", "--set", "data.frame_height=64", "--set", "data.frame_width=64", "--set", "data.num_workers=0"]
    res = dudek(*args)
    assert res.returncode == 0, res.stderr[-3000:]
    headline = res.stdout.strip().splitlines()[-1]
    assert headline.startswith("Team-mAP@1 ") and "mAP@1" in headline and "nan" not in headline.lower(), headline
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"team_map_at1", "map_at1", "per_label", "validation", "stage_seconds"} <= set(metrics)
    assert {"team_map_at1", "map_at1", "per_label"} <= set(metrics["other_league"]) and metrics["other_league"]["games"][0].startswith("other_league/")
    assert "other league: " in headline and "## Per label, both leagues" in (out / "report.md").read_text()
    assert metrics["request"]["profile"] == "paper" and metrics["validation"]["trials"] >= 5, metrics["validation"]  # (the chapter also shows a top-up of 5 more)
    cfg = json.loads((out / "train" / "finetune" / "config.json").read_text())
    assert (cfg["model"]["backbone"], cfg["data"]["clip_len"], cfg["data"]["overlap"]) == ("regnety_008", 80, 68)  # the paper's model
    assert (out / "report.html").is_file() and (out / "test" / "submission.zip").is_file()
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "04e_synthetic.ipynb", "06_metrics.ipynb", "11_train.ipynb", "12_infer-infer-other.ipynb", "12_infer-infer-test.ipynb", "12_infer.ipynb",
        "13_tune.ipynb", "14_report.ipynb"]
    again = dudek(*args, "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("finished earlier") == 8, again.stderr
    assert again.stdout.strip().splitlines()[-1] == headline
    # another request into the same folder is refused, in one line
    other = dudek(*[a if a != "trials=5" else "trials=6" for a in args], "--resume")
    assert other.returncode == 2 and other.stderr.strip().count("\n") == 0 and "differ in: sizes" in other.stderr, other.stderr


def test_failing_stage_then_resume(tmp_path):
    data = tmp_path / "games"
    synthesize(data, n_games=2, minutes=0.2, seed=0, workers=1)
    labels = find_games(data)[0].labels
    good = labels.read_text()
    labels.write_text(good.replace('"label": "', '"label": "NOT A LABEL ', 1))
    out = tmp_path / "run"
    args = ["reproduce", "--data", data, "--run-dir", out, "--stages", "explore", "--no-site", "--quiet",
            "--set", "data.n_test=1"]
    res = dudek(*args)
    assert res.returncode == 1, res.stderr[-2000:]
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "stage explore: 05_explore.ipynb, cell" in line[0] and "InputError" in line[0] and "label" in line[0], res.stderr
    assert (out / "notebooks" / "05_explore.ipynb").is_file()  # kept, up to the failure
    labels.write_text(good)
    res = dudek(*args, "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out / "pipeline.json").read_text())["stages"]["explore"]["seconds"] > 0


def test_killed_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dudek", "reproduce", "--run-dir", str(out), "--stages", "00_labels,00a_files,01_annotations,03_config",
            "--no-site", "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), start_new_session=True)
    state = out / "pipeline.json"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if state.is_file() and len(json.loads(state.read_text())["stages"]) >= 2: break
        time.sleep(0.2)
    assert p.poll() is None, "the run ended before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)  # the run and its kernel
    p.wait()
    finished = set(json.loads(state.read_text())["stages"])
    assert 2 <= len(finished) < 4, finished
    res = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.count("finished earlier") == len(finished), res.stderr
    assert set(json.loads(state.read_text())["stages"]) == {"00_labels", "00a_files", "01_annotations", "03_config"}
    # the chapters' scratch folders went with their stages, the killed stage's at the resume (03_config makes some)
    kept = lambda p: p.name.startswith("torchinductor_") or p.suffix == ".json"  # torch's compile cache; the killed kernel's connection file
    left = [p.name for p in Path(os.environ["TMPDIR"]).iterdir() if not kept(p)]
    assert not left and not list(out.rglob("*.tmp")), (left, list(out.rglob("*.tmp")))


def test_stages_after_a_stage_that_ran_run_again(tmp_path):
    out = tmp_path / "run"
    args = ["reproduce", "--run-dir", out, "--stages", "00_labels,00a_files,01_annotations", "--no-site", "--quiet"]
    assert dudek(*args).returncode == 0
    state = json.loads((out / "pipeline.json").read_text())
    del state["stages"]["00a_files"]  # as if the run had stopped there, or the stage were new (--ablations on a finished run)
    (out / "pipeline.json").write_text(json.dumps(state))
    res = dudek(*args, "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.count("finished earlier") == 1 and "00_labels (00_labels.ipynb): a lesson, with its own small examples: finished earlier" in res.stderr
    assert "[3/3] 01_annotations (01_annotations.ipynb): a lesson, with its own small examples\n" in res.stderr, res.stderr  # ran again


def test_ablations_killed_then_resumed(tmp_path):
    out = tmp_path / "run"
    sets = {"train": {"n_games": 2, "minutes": 0.2, "seed": 0}, "old": {"n_games": 1, "minutes": 0.2, "seed": 2, "kind": "old"},
            "val": {"n_games": 1, "minutes": 0.2, "seed": 3}, "test": {"n_games": 1, "minutes": 0.2, "seed": 1},
            "test-other": {"n_games": 1, "minutes": 0.2, "seed": 1, "league": "other_league"}}
    sizes = {"finetune_epochs": 1, "clips_per_epoch": 4, "trials": 3, "seeds": [0], "other": {"n_games": 1, "minutes": 0.2, "min_events_per_class": 0}}
    args = [sys.executable, "-m", "dudek", "reproduce", "--run-dir", str(out), "--stages", "data,ablations", "--ablations", "--no-site", "--quiet",
            "--size", "sets=" + json.dumps(sets), "--size", "ablations=" + json.dumps(sizes), "--set", "train.threads=1"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), start_new_session=True)
    rows = lambda: sorted((out / "ablations").glob("*/seed*/scores.json"))
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None and len(rows()) < 2: time.sleep(0.2)
    assert p.poll() is None, "the run ended before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)  # the run and its kernel, in the middle of a row
    p.wait()
    finished = {f: f.stat().st_mtime_ns for f in rows()}
    n = len({r.variant for r in ROWS})
    assert 2 <= len(finished) < n, finished
    res = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env(), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("skipped") == len(finished) + 1, res.stderr  # the rows, and the data stage
    assert {f: f.stat().st_mtime_ns for f in finished} == finished  # not redone
    assert len(rows()) == n and f"[ablations {n}/{n}] random_weights, seed 0" in res.stderr, res.stderr  # the progress line of every row
    table = json.loads((out / "ablations" / "table.json").read_text())
    assert [r["variant"] for r in table["rows"]][:2] == ["recipe", "two_head"] and table["rows"][0]["seeds"] == [0], table["rows"][0]
    assert "| baseline |" in (out / "ablations" / "table.md").read_text() and (out / "notebooks" / "15_ablations.ipynb").is_file()


@pytest.mark.parametrize("bad, expected", [(["--profile", "huge"], "profile"), (["--size", "trials=0"], "trials"),
                                           (["--size", 'ablations={"seeds": [0]}'], "--ablations"),
                                           (["--ablations", "--size", 'ablations={"seeds": [0, 0]}'], "seeds"),
                                           (["--set", "train.lr=-1"], "train.lr"), (["--data", "/nonexistent/games"], "/nonexistent/games")])
def test_bad_requests_are_one_line(tmp_path, bad, expected):
    res = dudek("reproduce", "--run-dir", tmp_path / "run", "--no-site", *bad)
    assert res.returncode == 2 and res.stderr.startswith("error:") and res.stderr.strip().count("\n") == 0 and expected in res.stderr, res.stderr
    assert not (tmp_path / "run").exists()


def descendants(pid: int) -> list[int]:
    "Every process below `pid` (Linux's /proc)."
    found = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        try: kids = [int(c) for c in (t / "children").read_text().split()]
        except FileNotFoundError: continue
        for c in kids: found += [c, *descendants(c)]
    return found


def alive(pid: int) -> bool:
    "Is `pid` running (a zombie is not)?"
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError: return False


STAGE_LINE = r"\[\d+/\d+\] \S+ \(\S+\.ipynb\): .*|\d+ stages in \d+ s|  \S+ took \d+ s, over its budget of \d+ s"  # the last: a loaded machine


def test_ctrl_c_stops_the_run_in_one_line_and_resume_goes_on(tmp_path):
    "Ctrl-C as a terminal sends it (SIGINT to the process group) during a stage: one line, exit 130, the kernel gone; --resume continues."
    import re
    if not Path("/proc/self/task").is_dir(): pytest.skip("needs Linux's /proc to see the kernel")
    out = tmp_path / "run"
    args = [sys.executable, "-m", "dudek", "reproduce", "--run-dir", str(out), "--stages", "00_labels,00a_files,01_annotations,03_config",
            "--no-site", "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), start_new_session=True)
    state = out / "pipeline.json"
    deadline, kernels = time.time() + 300, []
    while time.time() < deadline and p.poll() is None:
        if state.is_file() and len(json.loads(state.read_text())["stages"]) >= 1 and (kernels := descendants(p.pid)): break
        time.sleep(0.005)  # polled fast, the signal lands while the kernel is starting: the window where it once outlived the run
    assert p.poll() is None and kernels, "the run ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err[-3000:])
    lines = err.strip().splitlines()
    assert lines[-1] == "error: interrupted" and all(re.fullmatch(STAGE_LINE, ln) for ln in lines[:-1]), err[-3000:]  # no kernel chatter
    assert not [k for k in kernels if alive(k)], "the kernel outlived the run"
    finished = set(json.loads(state.read_text())["stages"])
    assert 1 <= len(finished) < 4, finished
    res = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.count("finished earlier") == len(finished), res.stderr
    assert all(re.fullmatch(STAGE_LINE, ln) for ln in res.stderr.strip().splitlines()), res.stderr[-3000:]  # --quiet: the stage lines only
    assert set(json.loads(state.read_text())["stages"]) == {"00_labels", "00a_files", "01_annotations", "03_config"}
    assert "[IPKernelApp]" in (out / "logs" / "00_labels.log").read_text()  # the kernel's own lines went to its log


@pytest.mark.parametrize("task", ["ball", "old"])
def test_download_without_network_is_one_line_and_leaves_nothing(task, tmp_path):
    import socket
    try: socket.create_connection(("huggingface.co", 443), timeout=5).close(); pytest.skip("the Hub is reachable here")
    except OSError: pass
    out = tmp_path / "sn" / "games"
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "dudek", "download", str(out), "--task", task, "--split", "valid", "--password", "s3cret-pw"],
                         capture_output=True, text=True, env=env(), timeout=300)
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SoccerNet") and "without network" in lines[0], res.stderr[-3000:]
    assert ("valid.zip" if task == "ball" else "--old-data") in lines[0], lines[0]  # how to provide the games locally
    assert "s3cret-pw" not in res.stderr + res.stdout and time.time() - t0 < 120  # the password is never shown
    assert not (tmp_path / "sn").exists()  # nothing made for nothing


def test_download_unpacks_zips_already_there_without_network(tmp_path):
    "The offline way the refusal names: zips fetched elsewhere, put where the download leaves them, are unpacked, nothing fetched."
    import zipfile
    synthesize(tmp_path / "g", n_games=1, minutes=0.1, size=(64, 112), workers=1)
    (game,) = find_games(tmp_path / "g")
    out = tmp_path / "sn"
    (out / "spotting-ball-2025").mkdir(parents=True)
    with zipfile.ZipFile(out / "spotting-ball-2025" / "valid.zip", "w") as z:
        for f in game.path.iterdir(): z.write(f, f"{game.rel}/{f.name}")
    res = subprocess.run([sys.executable, "-m", "dudek", "download", str(out), "--split", "valid"], capture_output=True, text=True,
                         env=env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == str(out / "spotting-ball-2025" / "valid")
    assert [g.rel for g in find_games(out / "spotting-ball-2025" / "valid")] == [game.rel]
