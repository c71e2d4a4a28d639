"""dudek.annotations: strict readers, exact round trips, game discovery, safe writes."""
import copy, json, zipfile

import pytest
import fastcore.test as ft

from dudek.files import InputError
from dudek.annotations import (Annotation, Prediction, Predictions, position_to_frame,
                               frame_to_position, parse_game_time, format_game_time, game_time_of, read_ball_labels,
                               write_ball_labels, read_old_labels, write_old_labels, read_predictions,
                               write_predictions, game_rel, write_game_predictions, write_submission, read_submission,
                               find_games)

BALL = {"UrlLocal": "england_efl/2019-2020/2019-10-01 - Reading - Fulham/", "UrlYoutube": "", "halftime": "1 - 46:04",
        "annotations": [{"gameTime": "1 - 00:00", "label": "PASS", "position": "680", "team": "left", "visibility": "visible"},
                        {"gameTime": "1 - 47:10", "label": "GOAL", "position": "2830040", "team": "right", "visibility": "not shown"}]}
OLD = {"UrlLocal": "england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley/", "UrlYoutube": "",
       "gameHomeTeam": "Chelsea", "gameScore": "1 - 1",
       "annotations": [{"gameTime": "1 - 00:00", "label": "Kick-off", "position": "0", "team": "away", "visibility": "visible"},
                       {"gameTime": "2 - 44:50", "label": "Yellow->red card", "position": "2690000", "team": "not applicable",
                        "visibility": "not shown"}]}
PRED = {"UrlLocal": "england_efl/2019-2020/g/",
        "predictions": [{"gameTime": "1 - 12:30", "label": "PASS", "position": 750020, "half": 1, "confidence": 0.83, "team": "left"},
                        {"gameTime": "1 - 12:31", "label": "SHOT", "position": "751020", "half": 1, "confidence": 0, "team": "right"}]}
READERS = {"Labels-ball.json": (read_ball_labels, BALL, "annotations"), "Labels-v2.json": (read_old_labels, OLD, "annotations"),
           "results_spotting.json": (read_predictions, PRED, "predictions")}


def _write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def _set(obj, key, value, i=1):
    "A copy of `obj` with entry `i` of its list field changed (`value` ... deletes the key)."
    obj = copy.deepcopy(obj)
    entries = obj["annotations" if "annotations" in obj else "predictions"]
    if value is ...: del entries[i][key]
    else: entries[i][key] = value
    return obj


def _top(obj, key, value):
    obj = copy.deepcopy(obj)
    if value is ...: del obj[key]
    else: obj[key] = value
    return obj


# (file name, content, field named in the error)
MALFORMED = [
    ("Labels-ball.json", "{not json", "JSON"),
    ("Labels-ball.json", "", "JSON"),
    ("Labels-ball.json", [BALL], "top level"),
    ("Labels-ball.json", _top(BALL, "annotations", ...), "annotations"),
    ("Labels-ball.json", _top(BALL, "annotations", {"a": 1}), "annotations"),
    ("Labels-ball.json", _top(BALL, "UrlLocal", ...), "UrlLocal"),
    ("Labels-ball.json", _top(BALL, "UrlLocal", 3), "UrlLocal"),
    ("Labels-ball.json", _top(BALL, "UrlLocal", "../../../etc/"), "UrlLocal"),
    ("Labels-ball.json", _top(BALL, "UrlLocal", "/abs/game/"), "UrlLocal"),
    ("Labels-ball.json", _top(BALL, "halftime", "46:04"), "halftime"),
    ("Labels-ball.json", _top(BALL, "halftime", 2764), "halftime"),
    ("Labels-ball.json", _top(BALL, "UrlYoutube", None), "UrlYoutube"),
    ("Labels-ball.json", _top(BALL, "annotations", [BALL["annotations"][0], None]), "annotations[1]"),
    ("Labels-ball.json", _set(BALL, "label", "Pass"), "annotations[1].label"),
    ("Labels-ball.json", _set(BALL, "label", ...), "annotations[1].label"),
    ("Labels-ball.json", _set(BALL, "team", "home"), "annotations[1].team"),
    ("Labels-ball.json", _set(BALL, "team", None), "annotations[1].team"),
    ("Labels-ball.json", _set(BALL, "position", "-40"), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "position", "12.5"), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "position", 12.5), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "position", True), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "position", -3), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "position", "abc"), "annotations[1].position"),
    ("Labels-ball.json", _set(BALL, "gameTime", "1 - 47:60"), "annotations[1].gameTime"),
    ("Labels-ball.json", _set(BALL, "gameTime", "0 - 47:10"), "annotations[1].gameTime"),
    ("Labels-ball.json", _set(BALL, "gameTime", ...), "annotations[1].gameTime"),
    ("Labels-ball.json", _set(BALL, "visibility", "hidden"), "annotations[1].visibility"),
    ("Labels-ball.json", _set(BALL, "visibility", ...), "annotations[1].visibility"),
    ("Labels-v2.json", _set(OLD, "team", "left"), "annotations[1].team"),
    ("Labels-v2.json", _set(OLD, "label", "PASS"), "annotations[1].label"),
    ("Labels-v2.json", _set(OLD, "position", "1e3"), "annotations[1].position"),
    ("Labels-v2.json", [], "top level"),
    ("results_spotting.json", _top(PRED, "predictions", None), "predictions"),
    ("results_spotting.json", _set(PRED, "confidence", 1.01), "predictions[1].confidence"),
    ("results_spotting.json", _set(PRED, "confidence", -0.1), "predictions[1].confidence"),
    ("results_spotting.json", _set(PRED, "confidence", "0.5"), "predictions[1].confidence"),
    ("results_spotting.json", _set(PRED, "confidence", None), "predictions[1].confidence"),
    ("results_spotting.json", _set(PRED, "confidence", ...), "predictions[1].confidence"),
    ("results_spotting.json", _set(PRED, "position", "7.5e5"), "predictions[1].position"),
    ("results_spotting.json", _set(PRED, "position", -1), "predictions[1].position"),
    ("results_spotting.json", _set(PRED, "team", "away"), "predictions[1].team"),
    ("results_spotting.json", _set(PRED, "label", "Goal"), "predictions[1].label"),
    ("results_spotting.json", _set(PRED, "half", 0), "predictions[1].half"),
    ("results_spotting.json", _set(PRED, "half", 1.5), "predictions[1].half"),
    ("results_spotting.json", _set(PRED, "gameTime", "12:31"), "predictions[1].gameTime"),
    ("results_spotting.json", _top(PRED, "predictions", [None]), "predictions[0]"),
    ("results_spotting.json", _set(PRED, "position", 10 ** 40), "predictions[1].position"),  # a 40-digit position
    ("Labels-ball.json", _set(BALL, "position", "9" * 40), "annotations[1].position"),
]


@pytest.mark.parametrize("name,content,field", MALFORMED, ids=[f"{n}-{f}-{i}" for i, (n, _, f) in enumerate(MALFORMED)])
def test_malformed_input_names_file_and_field(tmp_path, name, content, field):
    path = _write(tmp_path, name, content)
    with pytest.raises(InputError) as e:
        READERS[name][0](path)
    msg = str(e.value)
    ft.test_eq(e.value.field, field)
    ft.test_eq(msg.startswith(f"{path}: {field}: "), True)
    ft.test_eq("\n" in msg, False)


def test_missing_and_unreadable_files(tmp_path):
    ft.test_fail(lambda: read_ball_labels(tmp_path / "nope.json"), contains="nope.json: file: an existing file")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    ft.test_fail(lambda: read_predictions(tmp_path / "bin.json"), contains="bin.json: file: a readable UTF-8 file")


@pytest.mark.parametrize("fps", [25.0, 12.5, 50.0, 30000 / 1001])
def test_frame_position_round_trip(fps):
    n = 200_001 if fps in (25.0, 12.5) else 50_000
    ft.test_eq(all(position_to_frame(frame_to_position(f, fps), fps) == f for f in range(n)), True)


def test_frame_position_values():
    ft.test_eq([frame_to_position(f) for f in (0, 1, 17)], [20, 60, 700])
    ft.test_eq([frame_to_position(f, 12.5) for f in (0, 1)], [40, 120])
    ft.test_eq(position_to_frame(39), 0)
    ft.test_eq(position_to_frame(40), 1)
    ft.test_eq(position_to_frame(7_200_000), 180_000)


def test_game_time():
    ft.test_eq(parse_game_time("1 - 46:04"), (1, 2764))
    ft.test_eq(parse_game_time("1 - 120:00"), (1, 7200))
    ft.test_eq(format_game_time(1, 7199.99), "1 - 119:59")
    ft.test_eq(game_time_of(2_830_040), "1 - 47:10")
    ft.test_eq(game_time_of(61_000, half=2), "2 - 01:01")
    for s in range(0, 8000, 7): ft.test_eq(parse_game_time(format_game_time(1, s)), (1, s))
    for bad in ["1 - 46:4", "1 - 46:04 ", "a - 46:04", "1 -46:04", 3]:
        ft.test_fail(lambda: parse_game_time(bad), contains="a game time like")


def test_ball_labels_round_trip(tmp_path):
    src = _write(tmp_path, "Labels-ball.json", {**BALL, "extraField": {"x": 1}})
    labels = read_ball_labels(src)
    ft.test_eq(labels.annotations[0], Annotation("1 - 00:00", "PASS", 680, "left", "visible"))
    ft.test_eq(labels.extra, {"extraField": {"x": 1}})
    ft.test_eq((labels.halftime, labels.halftime_ms), ("1 - 46:04", 2_764_000))
    out = write_ball_labels(tmp_path / "out" / "Labels-ball.json", labels)
    ft.test_eq(read_ball_labels(out), labels)
    ft.test_eq(json.loads(out.read_text())["annotations"], BALL["annotations"])  # the official layout, positions as strings
    ft.test_eq(sorted(p.name for p in out.parent.iterdir()), ["Labels-ball.json"])  # no temporary file left


def test_ball_labels_optional_fields(tmp_path):
    obj = {k: v for k, v in BALL.items() if k not in ("halftime", "UrlYoutube")}
    obj["annotations"] = [{**obj["annotations"][0], "position": 680}]  # an integer position is fine too
    labels = read_ball_labels(_write(tmp_path, "Labels-ball.json", obj))
    ft.test_eq((labels.halftime, labels.halftime_ms, labels.url_youtube), (None, None, ""))
    ft.test_eq(labels.annotations[0].position, 680)
    ft.test_eq(read_ball_labels(_write(tmp_path, "b.json", {**BALL, "halftime": None})).halftime, None)
    ft.test_eq(read_ball_labels(_write(tmp_path, "c.json", {**BALL, "annotations": []})).annotations, [])


def test_url_local_may_be_a_video_path(tmp_path):
    labels = read_ball_labels(_write(tmp_path, "Labels-ball.json", {**BALL, "UrlLocal": "england_efl/2019-2020/g/224p.mp4"}))
    ft.test_eq(game_rel(labels.url_local), "england_efl/2019-2020/g")
    ft.test_eq(game_rel("england_efl/2019-2020/g"), "england_efl/2019-2020/g")
    ft.test_eq(game_rel("./a/b/c/720p.mp4"), "a/b/c")


def test_action_labels_round_trip(tmp_path):
    labels = read_old_labels(_write(tmp_path, "Labels-v2.json", OLD))
    ft.test_eq(labels.extra, {"gameHomeTeam": "Chelsea", "gameScore": "1 - 1"})
    ft.test_eq([a.half for a in labels.annotations], [1, 2])
    ft.test_eq(labels.events(2), [(67_250, "Yellow->red card", "not applicable")])
    out = write_old_labels(tmp_path / "o" / "Labels-v2.json", labels)
    ft.test_eq(read_old_labels(out), labels)
    ft.test_eq(json.loads(out.read_text()), OLD)


def test_predictions_round_trip(tmp_path):
    preds = read_predictions(_write(tmp_path, "results_spotting.json", PRED))
    ft.test_eq(preds.predictions[1], Prediction("1 - 12:31", "SHOT", 751_020, 1, 0.0, "right"))
    ft.test_eq(type(preds.predictions[1].confidence), float)
    out = write_predictions(tmp_path / "o" / "results_spotting.json", preds)
    ft.test_eq(read_predictions(out), preds)
    ft.test_eq(json.loads(out.read_text())["predictions"][1]["position"], 751_020)  # written as an int
    minimal = {"predictions": [{"label": "OUT", "position": 3_601_000, "confidence": 0.5, "team": "left"}]}
    ft.test_eq(read_predictions(_write(tmp_path, "m.json", minimal)).predictions,
               [Prediction("1 - 60:01", "OUT", 3_601_000, 1, 0.5, "left")])


def test_write_game_predictions_stays_inside(tmp_path):
    preds = Predictions("england_efl/2019-2020/g/224p.mp4", [])
    ft.test_eq(write_game_predictions(tmp_path, preds), (tmp_path / "england_efl/2019-2020/g/results_spotting.json").resolve())
    for bad in ["../x", "a/../../x", "/etc", "a/b/../../../x/224p.mp4"]:
        with pytest.raises(InputError): write_game_predictions(tmp_path / "out", Predictions(bad, []))
    ft.test_eq((tmp_path / "x").exists() or (tmp_path.parent / "x").exists(), False)


def test_submission_zip_and_folder(tmp_path):
    preds = {"league/season/game a": Predictions("", [Prediction("1 - 00:01", "PASS", 1020, 1, 0.5, "left")]),
             "league/season/game b": Predictions("league/season/game b/", [])}
    z = write_submission(tmp_path / "sub.zip", preds)
    with zipfile.ZipFile(z) as f:
        ft.test_eq(sorted(f.namelist()), ["league/season/game a/results_spotting.json", "league/season/game b/results_spotting.json"])
    back = read_submission(z)
    ft.test_eq(back["league/season/game a"].predictions, preds["league/season/game a"].predictions)
    ft.test_eq(back["league/season/game a"].url_local, "league/season/game a")
    for rel, p in back.items(): write_game_predictions(tmp_path / "folder", p, rel)
    ft.test_eq(read_submission(tmp_path / "folder"), back)
    ft.test_fail(lambda: write_submission(tmp_path / "bad.zip", {"../x": Predictions("", [])}), contains="relative path")
    ft.test_eq((tmp_path / "bad.zip").exists(), False)


def test_submission_zip_with_bad_entry(tmp_path):
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as f:
        f.writestr("l/s/g/results_spotting.json", json.dumps(_set(PRED, "team", "home")))
    ft.test_fail(lambda: read_submission(tmp_path / "s.zip"), contains="s.zip:l/s/g/results_spotting.json: predictions[1].team")
    (tmp_path / "notzip.zip").write_text("hello")
    ft.test_fail(lambda: read_submission(tmp_path / "notzip.zip"), contains="a submission zip or a folder")


def _tree(root, spec):
    for rel, names in spec.items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        for n in names: (root / rel / n).write_text("{}")


def test_find_games(tmp_path):
    _tree(tmp_path, {"train/england_efl/2019-2020/2019-10-01 - A - B": ["224p.mp4", "720p.mp4", "Labels-ball.json"],
                     "test/england_efl/2019-2020/2019-10-01 - C - D": ["720p.mp4", "Labels-Ball.json"],  # capital B
                     "challenge/england_efl/2019-2020/2019-10-02 - E - F": ["224p.mp4"],  # inference only
                     "labels-only/l/s/g": ["Labels-ball.json"],
                     "old/england_epl/2014-2015/g": ["1_224p.mkv", "2_224p.mkv", "Labels-v2.json", "video.ini"],
                     "old/england_epl/2014-2015/h": ["Labels-v2.json"],
                     ".hidden/l/s/g": ["224p.mp4"],
                     "misc/notes": ["README.txt"]})
    games = find_games(tmp_path)
    ft.test_eq([(g.rel, g.kind) for g in games],
               [("challenge/england_efl/2019-2020/2019-10-02 - E - F", "ball"), ("labels-only/l/s/g", "ball"),
                ("old/england_epl/2014-2015/g", "old"), ("old/england_epl/2014-2015/h", "old"),
                ("test/england_efl/2019-2020/2019-10-01 - C - D", "ball"),
                ("train/england_efl/2019-2020/2019-10-01 - A - B", "ball")])
    by = {g.rel.split("/")[0] + g.rel[-1]: g for g in games}
    ft.test_eq(by["challengeF"].labels, None)
    ft.test_eq(by["challengeF"].read_labels(), None)
    ft.test_eq(by["testD"].labels.name, "Labels-Ball.json")
    ft.test_eq(by["testD"].video.name, "720p.mp4")
    ft.test_eq(by["trainB"].video.name, "224p.mp4")  # 224p preferred
    ft.test_eq([v.name for v in by["trainB"].videos], ["224p.mp4", "720p.mp4"])
    ft.test_eq(by["labels-onlyg"].video, None)
    ft.test_eq([v.name for v in by["oldg"].videos], ["1_224p.mkv", "2_224p.mkv"])
    ft.test_eq(by["trainB"].path, tmp_path / "train/england_efl/2019-2020/2019-10-01 - A - B")
    ft.test_eq([g.rel for g in find_games(tmp_path / "old", kind="old")], ["england_epl/2014-2015/g", "england_epl/2014-2015/h"])
    ft.test_eq(find_games(tmp_path / "old", kind="ball"), [])
    ft.test_fail(lambda: find_games(tmp_path / "missing"), contains="an existing folder")


def test_find_games_reads_labels(tmp_path):
    g = tmp_path / "l/s/g"
    g.mkdir(parents=True)
    write_ball_labels(g / "Labels-ball.json", read_ball_labels(_write(tmp_path, "b.json", BALL)))
    (game,) = find_games(tmp_path)
    ft.test_eq(game.read_labels().events()[0], (17, "PASS", "left"))


def test_videos_of_other_heights_are_found(tmp_path):
    "SoccerNet's names first (224p, then 720p), then `<height>p` videos such as a small synthetic set's."
    ball, old, both = tmp_path / "l/s/ball", tmp_path / "l/s/old", tmp_path / "l/s/both"
    for folder, names in ((ball, ["64p.mp4", "Labels-ball.json"]), (old, ["1_64p.mkv", "2_64p.mkv", "Labels-v2.json"]),
                          (both, ["720p.mp4", "64p.mp4", "1_720p.mkv", "1_64p.mkv", "2_64p.mkv"])):
        folder.mkdir(parents=True)
        for n in names: (folder / n).write_bytes(b"")
    games = {(g.rel, g.kind): g for g in find_games(tmp_path)}
    assert games["l/s/ball", "ball"].video.name == "64p.mp4"
    assert [v.name for v in games["l/s/old", "old"].videos] == ["1_64p.mkv", "2_64p.mkv"]
    assert [v.name for v in games["l/s/both", "ball"].videos] == ["720p.mp4", "64p.mp4"]
    assert [v.name for v in games["l/s/both", "old"].videos] == ["1_720p.mkv"]  # the preferred pair, even without its half 2


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"predictions": [' + "9" * 5000 + "]}"])
def test_pathological_json_is_one_line(tmp_path, text):
    "JSON nested 100,000 deep, or a number of 5,000 digits: a one-line error, not a traceback."
    (tmp_path / "results_spotting.json").write_text(text)
    ft.test_fail(lambda: read_predictions(tmp_path / "results_spotting.json"), contains="results_spotting.json: JSON: ")


def test_submission_zips_that_cannot_be_read(tmp_path):
    good = json.dumps(PRED)
    with zipfile.ZipFile(tmp_path / "twice.zip", "w") as f:  # the same game twice (another folder spelling)
        f.writestr("l/s/g/results_spotting.json", good)
        f.writestr("./l/s/g/results_spotting.json", good)
    ft.test_fail(lambda: read_submission(tmp_path / "twice.zip"), contains="one prediction file per game, l/s/g has two")
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as f:  # a small zip of a huge entry
        f.writestr("l/s/g/results_spotting.json", " " * (70 << 20))
    ft.test_eq((tmp_path / "big.zip").stat().st_size < 1 << 20, True)
    ft.test_fail(lambda: read_submission(tmp_path / "big.zip"), contains="at most 64 MB of predictions")
    raw = bytearray((tmp_path / "twice.zip").read_bytes())
    raw[40:60] = b"\0" * 20  # damage the first entry's data
    (tmp_path / "corrupt.zip").write_bytes(bytes(raw))
    with pytest.raises(InputError): read_submission(tmp_path / "corrupt.zip")


@pytest.mark.parametrize("name", ["Labels-ball.json", "224p.mp4", "Labels-v2.json", "1_224p.mkv"])
def test_game_file_that_is_a_folder_is_an_error(tmp_path, name):
    "A label file or a video that is a folder would make its game vanish (and the split change) without a word."
    _tree(tmp_path, {"l/s/g1": ["224p.mp4", "Labels-ball.json"], "l/s/g2": ["224p.mp4", "1_224p.mkv", "Labels-v2.json"]})
    target = tmp_path / "l/s/g2" / name
    if target.exists(): target.unlink()
    target.mkdir()
    ft.test_fail(lambda: find_games(tmp_path), contains=f"g2/{name}: game file: a file (this is a folder)")
