"""Tuning Soft-NMS with Optuna (`dudek.tune`, `dudek tune`): real `dudek tune` processes on real SQLite and journal storages."""
import json, os, shutil, signal, subprocess, sys, time, zipfile

import optuna
import pytest

from dudek.config import PostConfig
from dudek.files import json_ready
from dudek.infer import RAW_FILE, load_raw, nms_fields, read_params, save_raw
from dudek.tune import finished, open_storage, score_post, simulated_games, tune, tuning_games


def dudek_tune(raw, labels, out, *extra, wait=True):
    cmd = [sys.executable, "-m", "dudek", "tune", "--raw", str(raw), "--labels", str(labels), "--out", str(out), *map(str, extra)]
    if not wait: return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True)


def completed(storage: str, name: str = "soft-nms") -> dict:
    "`{trial number: (params, value)}` of the finished trials in the study."
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    return {t.number: (t.params, t.value) for t in finished(study)}


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    "Raw scores and labels of two simulated 3-minute games."
    return simulated_games(tmp_path_factory.mktemp("val"), 2, minutes=3.0)


def test_two_workers_share_one_journal_study(val, tmp_path):
    raw, labels = val
    storage = f"journal:{tmp_path / 'journal.log'}"
    workers = [dudek_tune(raw, labels, tmp_path / f"p{k}.json", "--storage", storage, "--trials", 80, "--seed", k, wait=False) for k in (1, 2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    study = optuna.load_study(study_name="soft-nms", storage=open_storage(storage))
    done = finished(study)
    assert len(done) >= 80
    by = {t.user_attrs["worker"] for t in done}
    assert len(by) == 2, by  # both processes contributed finished trials
    assert len({t.number for t in done}) == len(done)


def long_tune(raw, labels, tmp_path, n: int):
    "A `dudek tune` asked for more trials than it will get, once its study (in the default place) holds `n` finished ones: (out, storage, process)."
    out = tmp_path / "tune" / "params.json"
    storage = f"sqlite:///{(tmp_path / 'tune' / 'tune.db').resolve()}"  # the default place
    w = dudek_tune(raw, labels, out, "--trials", 100000, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if len(completed(storage)) >= n: break
        except (KeyError, ValueError, optuna.exceptions.StorageInternalError): pass  # the study is not created yet
    return out, storage, w


def test_sigkill_loses_no_finished_trial_and_a_rerun_resumes(val, tmp_path):
    raw, labels = val
    out, storage, w = long_tune(raw, labels, tmp_path, 12)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    before = completed(storage)
    assert len(before) >= 12 and not out.exists()  # killed: nothing written but the study's own records
    r = dudek_tune(raw, labels, out, "--trials", len(before) + 8)
    assert r.returncode == 0, r.stderr
    after = completed(storage)
    assert len(after) >= len(before) + 8
    assert {k: after[k] for k in before} == before  # every finished trial kept as it was
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["trials"] == len(after) and summary["storage"] == storage
    best = max(after.values(), key=lambda pv: pv[1])
    assert read_params(out).nms_window == best[0]["nms_window"] and summary["team_map_present"] == best[1]


def test_best_is_never_worse_than_the_defaults(val, tmp_path):
    raw, labels = val
    result = tune(raw, labels, tmp_path / "params.json", trials=5, seed=3)
    games = tuning_games(raw, labels)
    assert result["team_map_present"] >= score_post(games, PostConfig())["team_map_present"]
    default = score_post(games, PostConfig())
    assert result["default"]["team_map_present"] == default["team_map_present"] and result["default"]["map"] == default["map"]


def game0(raw) -> "os.PathLike":
    return raw / "simulated" / "season" / "game 0" / RAW_FILE


@pytest.mark.parametrize("case", ["missing raw", "out is a folder", "bad storage", "zero trials", "sqlite under a file",
                                  "journal under a file", "storage folder cannot be made", "raw cut in half", "raw a zip not npz",
                                  "raw of two checkpoints"])
def test_bad_input_is_one_line(val, tmp_path, case):
    raw, labels = val
    out, extra, named = tmp_path / "p.json", [], None
    (tmp_path / "file").write_text("")
    if case.startswith("raw "):
        shutil.copytree(raw, tmp_path / "raw")
        raw, bad = tmp_path / "raw", game0(tmp_path / "raw")
        named = str(bad)
        if case == "raw cut in half": bad.write_bytes(bad.read_bytes()[:bad.stat().st_size // 2])
        elif case == "raw a zip not npz":
            with zipfile.ZipFile(bad, "w") as z: z.writestr("scores.npy", b"not an array"); z.writestr("notes.txt", "hello")
        else:  # game 0 scored by a paper checkpoint, game 1 by a tiny one
            r = load_raw(bad)
            save_raw(bad, r["scores"], r["stride"], r["n_frames"], r["source"], PostConfig(nms_window=34, nms_threshold=0.005), "paper")
            named = str(bad).replace("game 0", "game 1")  # the game that disagrees with the first
    elif case == "missing raw": raw = tmp_path / "nothing"
    elif case == "out is a folder": out = tmp_path
    elif case == "bad storage": extra = ["--storage", "nosuchdb://x"]
    elif case == "zero trials": extra = ["--trials", 0]
    elif case == "sqlite under a file": extra = ["--storage", f"sqlite:///{tmp_path / 'file' / 'tune.db'}"]
    elif case == "journal under a file": extra = ["--storage", f"journal:{tmp_path / 'file' / 'sub' / 'journal.log'}"]
    elif case == "storage folder cannot be made": extra = ["--storage", "sqlite:////proc/no-such-process/tune/tune.db"]  # even root cannot
    r = dudek_tune(raw, labels, out, *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    if named: assert named in lines[0], lines[0]
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "tune.db").exists()  # stopped before any trial


def raw_made_by(val, root, post, profile):
    "A copy of the validation games' raw scores, recorded as made by a checkpoint with Soft-NMS `post` and `profile` (None: an older file without them)."
    raw, _ = val
    shutil.copytree(raw, root)
    for f in root.rglob(RAW_FILE):
        r = load_raw(f)
        save_raw(f, r["scores"], r["stride"], r["n_frames"], r["source"], post, profile or "")
    return root


@pytest.mark.parametrize("made_by", ["paper checkpoint", "tiny checkpoint with its own window", "older raw files"])
def test_default_is_the_checkpoints_own_post_processing(val, tmp_path, made_by):
    _, labels = val
    post, profile = {"paper checkpoint": (PostConfig(nms_window=34, nms_threshold=0.005), "paper"),
                     "tiny checkpoint with its own window": (PostConfig(nms_window=50, nms_threshold=0.02, nms_per_team=False), "tiny"),
                     "older raw files": (None, None)}[made_by]
    raw = raw_made_by(val, tmp_path / "raw", post, profile)
    r = dudek_tune(raw, labels, tmp_path / "p.json", "--trials", 3)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    expected = post or PostConfig()
    assert summary["default_post"] == nms_fields(expected)
    assert summary["default"] == json_ready(score_post(tuning_games(raw, labels), expected))  # the same key as before
    assert ("profile" in summary["default_from"]) == (post is not None)  # an older file says it fell back
    trials = optuna.load_study(study_name="soft-nms", storage=open_storage(summary["storage"])).trials
    first = {"paper": (34, 0.005), "tiny": (24, 0.01), None: (24, 0.01)}[profile]  # the profile's defaults come first
    assert (trials[0].params["nms_window"], trials[0].params["nms_threshold"], trials[0].params["nms_per_team"]) == (*first, True)
    if made_by == "tiny checkpoint with its own window":  # then the checkpoint's own, so the best is never below it
        assert trials[1].params == nms_fields(expected)
    assert summary["team_map_present"] >= summary["default"]["team_map_present"]
    assert set(json.loads((tmp_path / "p.json").read_text())["post"]) == {"nms_window", "nms_threshold", "nms_per_team"}


RACE = """import sys, time
from dudek.tune import tune
raw, labels, out, storage, at = sys.argv[1:]
time.sleep(max(0.0, float(at) - time.time()))  # every process starts its work at the same instant
tune(raw, labels, out, trials=4, storage=storage)
"""


def test_processes_creating_the_same_new_sqlite_study_at_once_all_succeed(val, tmp_path):
    raw, labels = val
    storages = [f"sqlite:///{tmp_path / f's{k}' / 'tune.db'}" for k in range(2)]  # two rounds, three processes each
    at = time.time() + 8  # after the imports of every process
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(raw), str(labels), str(tmp_path / f"p{k}{j}.json"), st, str(at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, st in enumerate(storages) for j in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    for st in storages:
        trials = optuna.load_study(study_name="soft-nms", storage=open_storage(st)).trials
        assert len([t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]) >= 4


POP = """import json, sys, time
import optuna
from dudek.tune import open_storage
storage, at = sys.argv[1:]
study = optuna.load_study(study_name="queued", storage=open_storage(storage))
time.sleep(max(0.0, float(at) - time.time()))
taken = []
for _ in range(12):
    t = study.ask(); taken.append(t.number); study.tell(t, t.suggest_float("x", 0, 1))
print(json.dumps(taken))
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_each_queued_trial_is_run_by_one_process(kind, tmp_path):
    "Three processes take queued trials from one study at the same instant: none runs a trial another took (SQLite ignores SELECT FOR UPDATE)."
    storage = f"sqlite:///{tmp_path / 'q.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'q.log'}"
    study = optuna.create_study(study_name="queued", storage=open_storage(storage))
    for k in range(30): study.enqueue_trial({"x": k / 30})
    at = str(time.time() + 6)
    procs = [subprocess.Popen([sys.executable, "-c", POP, storage, at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    taken = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        taken += json.loads(out)
    assert sorted(taken) == list(range(36))  # 30 queued then 6 new, each once


def test_ctrl_c_stops_cleanly_keeps_the_study_and_a_rerun_continues(val, tmp_path):
    raw, labels = val
    out, storage, w = long_tune(raw, labels, tmp_path, 10)
    w.send_signal(signal.SIGINT)
    _, err = w.communicate(timeout=60)
    assert w.returncode == 130 and err.strip().splitlines() == ["error: interrupted"], (w.returncode, err[-2000:])
    study = optuna.load_study(study_name="soft-nms", storage=open_storage(storage))
    assert not [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]  # the running trial finished, none failed
    before = completed(storage)
    assert len(before) >= 10 and not out.exists()
    r = dudek_tune(raw, labels, out, "--trials", len(before) + 5)
    assert r.returncode == 0, r.stderr
    after = completed(storage)
    assert len(after) == len(before) + 5 and {k: after[k] for k in before} == before
    assert json.loads(r.stdout.strip().splitlines()[-1])["trials"] == len(after)
