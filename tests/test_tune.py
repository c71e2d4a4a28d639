"""Tuning Soft-NMS with Optuna (`dudek.tune`, `dudek tune`): real `dudek tune` processes on real SQLite and journal storages."""
import json, os, signal, subprocess, sys, time

import optuna
import pytest

from dudek.config import PostConfig
from dudek.infer import read_params
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


def test_sigkill_loses_no_finished_trial_and_a_rerun_resumes(val, tmp_path):
    raw, labels = val
    out = tmp_path / "tune" / "params.json"
    storage = f"sqlite:///{(tmp_path / 'tune' / 'tune.db').resolve()}"  # the default place
    w = dudek_tune(raw, labels, out, "--trials", 100000, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            if len(completed(storage)) >= 12: break
        except (KeyError, ValueError, optuna.exceptions.StorageInternalError): pass  # the study is not created yet
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


@pytest.mark.parametrize("case", ["missing raw", "out is a folder", "bad storage", "zero trials"])
def test_bad_input_is_one_line(val, tmp_path, case):
    raw, labels = val
    out, extra = tmp_path / "p.json", []
    if case == "missing raw": raw = tmp_path / "nothing"
    elif case == "out is a folder": out = tmp_path
    elif case == "bad storage": extra = ["--storage", "nosuchdb://x"]
    elif case == "zero trials": extra = ["--trials", 0]
    r = dudek_tune(raw, labels, out, *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert not (tmp_path / "p.json").exists()
