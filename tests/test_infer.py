"""Inference over whole matches (`dudek.infer`, `dudek infer`), on real synthetic videos and a real checkpoint file.

The checkpoint is an untrained T-DEED saved in the exact format training writes (weights, configuration, stage):
what is tested here is the road from a video to files, not what the model learned.
"""
import json, subprocess, sys

import numpy as np
import pytest
import torch

from dudek.annotations import find_games, read_predictions, read_submission
from dudek.config import get_config
from dudek.dataset import InferenceClips
from dudek.files import InputError
from dudek.config import PostConfig
from dudek.infer import (RAW_FILE, MatchClips, clip_scores, evaluate_games, infer, load_raw, match_scores, nms_fields,
                         stream_batches, unmirror_scores, write_params)
from dudek.labels import MERGED
from dudek.config import cpu_has_bf16
from dudek.model import build_model, save_checkpoint
from dudek.postprocess import ClipAggregator
from dudek.synthetic import synthesize

SMALL = {"data.frame_height": 32, "data.frame_width": 56, "data.clip_len": 16, "data.overlap": 8, "train.batch_size": 3,
         "train.amp": False}  # float32 (bf16 has its own tests below)


def dudek(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dudek", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    "Two 0.3-minute synthetic ball games at 64 px."
    root = tmp_path_factory.mktemp("games")
    synthesize(root, n_games=2, minutes=0.3, seed=3, size=(64, 114), workers=1)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "An untrained small T-DEED (merged head) saved as training saves its best.pt."
    cfg = get_config(overrides=SMALL)
    torch.manual_seed(0)
    model = build_model(cfg, pretrained="")
    path = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(), "meta": {"stage": "finetune"}})
    return path, model.eval(), cfg


def test_streamed_scores_equal_random_access(games, checkpoint):
    _, model, cfg = checkpoint
    video = find_games(games)[0].video
    clips = InferenceClips(video, cfg)
    agg = ClipAggregator(clips.n_sampled, MERGED.n_classes)
    with torch.no_grad():
        for i in range(len(clips)): agg.add(clips[i]["start"], clip_scores(model(clips[i]["frames"][None]))[0])
    for workers in (0, 2):
        np.testing.assert_allclose(match_scores(model, video, cfg, workers=workers), agg.scores(), atol=1e-5)


class CountingClips(MatchClips):
    "The stream, counting the frames it decodes."
    decoded = 0
    def frames(self, first):
        for f in super().frames(first):
            self.decoded += 1
            yield f


def test_each_worker_decodes_its_share_once(games, checkpoint):
    _, _, cfg = checkpoint
    stream = CountingClips(find_games(games)[0].video, cfg, batch_size=2)
    shares = [stream.share(k, 3) for k in range(3)]
    assert np.concatenate(shares).tolist() == stream.starts.tolist()  # contiguous runs, every clip once
    for share in shares:
        stream.decoded = 0
        got = list(stream.clips(share))
        assert [s for s, _ in got] == share.tolist() and all(f.shape[0] == cfg.data.clip_len for _, f in got)
        assert stream.decoded == min(share[-1] + cfg.data.clip_len, stream.n_sampled) - share[0]  # no frame twice


def test_flip_pass_swaps_teams(games, checkpoint):
    _, model, cfg = checkpoint
    video = find_games(games)[0].video

    class Mirrored(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, frames): return self.m(frames.flip(-1))

    plain, mirrored = match_scores(model, video, cfg), match_scores(Mirrored(model), video, cfg)
    both = match_scores(model, video, cfg, tta="flip")
    np.testing.assert_allclose(both, (plain + unmirror_scores(mirrored)) / 2, atol=1e-5)
    left, right = MERGED.encode("SHOT", "left"), MERGED.encode("SHOT", "right")
    np.testing.assert_array_equal(unmirror_scores(mirrored)[:, left], mirrored[:, right])
    np.testing.assert_array_equal(unmirror_scores(mirrored)[:, 0], mirrored[:, 0])  # background stays


def test_folder_of_games_scores_with_dudek_evaluate(games, checkpoint, tmp_path):
    path, model, cfg = checkpoint
    r = dudek("infer", games, "--checkpoint", path, "--out", tmp_path / "preds", "--zip", tmp_path / "sub.zip",
              "--raw", tmp_path / "raw", "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["games"] == 2 and summary["frames_per_s"] > 0
    rels = [g.rel for g in find_games(games)]
    assert sorted(read_submission(tmp_path / "sub.zip")) == sorted(rels) == sorted(read_submission(tmp_path / "preds"))
    for rel in rels:
        raw = load_raw(tmp_path / "raw" / rel / RAW_FILE)
        assert raw["scores"].shape[1] == MERGED.n_classes and raw["stride"] == cfg.data.stride
    r = dudek("evaluate", games, tmp_path / "preds", "--json")
    assert r.returncode == 0, r.stderr
    scored = json.loads(r.stdout.strip().splitlines()[-1])
    # the same numbers as validation computes in-process from the same checkpoint
    mine = evaluate_games(model, find_games(games), cfg, MERGED)
    assert scored["map_at1"] == pytest.approx(mine["map"], abs=1e-9)


def test_bf16_scores_are_finite_deterministic_and_near_float32(games, checkpoint):
    "bf16 autocast (`train.amp`) on a CPU that has it: the same scores twice, finite, on average within 0.01 of float32's, yet not equal."
    if not cpu_has_bf16(): pytest.skip("this CPU has no native bf16")
    _, model, cfg = checkpoint
    video, bf16 = find_games(games)[0].video, get_config(overrides={**SMALL, "train.amp": True})
    a, b, full = match_scores(model, video, bf16), match_scores(model, video, bf16), match_scores(model, video, cfg)
    assert np.isfinite(a).all() and np.array_equal(a, b)
    assert 0 < np.abs(a - full).mean() < 0.01  # (not the largest change: a displacement rounding the other way moves a peak by a frame)


@pytest.mark.parametrize("capability", ["native", "avx2"])
def test_infer_amp_says_its_precision_and_falls_back_in_one_line(games, checkpoint, tmp_path, capability):
    "`dudek infer --amp`: bf16 where the CPU has it; on a CPU without (PyTorch's kernels held to AVX2), float32 and one warning line."
    import os
    if capability == "native" and not cpu_has_bf16(): pytest.skip("this CPU has no native bf16")
    path, _, _ = checkpoint
    env = {**os.environ, **({"ATEN_CPU_CAPABILITY": "avx2"} if capability == "avx2" else {})}
    r = subprocess.run([sys.executable, "-m", "dudek", "infer", str(games), "--checkpoint", str(path), "--out", str(tmp_path / "p"),
                        "--amp", "--overlap", "4", "--workers", "0", "--quiet"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["overlap"] == 4
    if capability == "avx2":
        assert summary["precision"] == "float32"
        assert r.stderr.strip().splitlines() == ["warning: train.amp: no native bf16 on this cpu (AVX2), computing in float32"], r.stderr
    else: assert summary["precision"] == "bfloat16" and not r.stderr.strip(), r.stderr


def test_one_game_and_a_bare_video(games, checkpoint, tmp_path):
    path, _, _ = checkpoint
    game = find_games(games)[0]
    one = infer(game.path, path, tmp_path / "one" / "results_spotting.json", workers=0)
    bare = infer(game.video, path, tmp_path / "bare.json", workers=0, tta="flip")
    assert one["games"] == bare["games"] == 1 and bare["tta"] == "flip"
    assert read_predictions(tmp_path / "one" / "results_spotting.json").predictions
    assert read_predictions(tmp_path / "bare.json").predictions


def test_params_file_replaces_soft_nms(games, checkpoint, tmp_path):
    path, _, _ = checkpoint
    game = find_games(games)[0]
    (tmp_path / "params.json").write_text(json.dumps({"post": {"nms_window": 80, "nms_threshold": 0.2}, "team_map": 0.1}))
    loose = infer(game.path, path, tmp_path / "a.json", workers=0)
    strict = infer(game.path, path, tmp_path / "b.json", workers=0, params=tmp_path / "params.json")
    assert strict["post"]["nms_window"] == 80 and strict["predictions"] < loose["predictions"]


@pytest.mark.parametrize("case", ["truncated video", "pretraining checkpoint", "vision checkpoint", "out under a file",
                                  "zip for one game", "bad params", "overlap of a whole clip"])
def test_bad_input_is_one_line_and_writes_nothing(games, checkpoint, tmp_path, case):
    path, _, cfg = checkpoint
    game = find_games(games)[0]
    source, ck, out, extra = game.path, path, tmp_path / "out" / "results_spotting.json", []
    if case == "truncated video":
        source = tmp_path / "broken" / "game"
        source.mkdir(parents=True)
        (source / "224p.mp4").write_bytes(game.video.read_bytes()[:2000])
    elif case == "pretraining checkpoint":
        ck = tmp_path / "pre.pt"
        old = get_config(overrides={**SMALL, "model.head": "old"})
        save_checkpoint(ck, {"model": build_model(old, pretrained="").state_dict(), "config": old.to_dict(), "meta": {"stage": "pretrain"}})
    elif case == "vision checkpoint":
        ck = tmp_path / "vision.pt"
        save_checkpoint(ck, {"model": {"encoder.backbone.stem.conv.weight": torch.zeros(1)}, "config": cfg.to_dict(), "meta": {"stage": "vision"}})
    elif case == "out under a file":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "x.json"
    elif case == "zip for one game":
        extra = ["--zip", tmp_path / "sub.zip"]
    elif case == "bad params":
        (tmp_path / "p.json").write_text('{"nms_threshold": "high"}')
        extra = ["--params", tmp_path / "p.json"]
    elif case == "overlap of a whole clip":
        extra = ["--overlap", cfg.data.clip_len]
    r = dudek("infer", source, "--checkpoint", ck, "--out", out, "--workers", "0", "--quiet", *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert not out.exists() and not (tmp_path / "sub.zip").exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


class FailingClips(MatchClips):
    "A stream whose decoder fails half-way, as a damaged file does."
    def frames(self, first):
        for k, f in enumerate(super().frames(first)):
            if k == 30: raise InputError(self.path, "frame 40", "a decodable frame (test: the decoder failed)")
            yield f


@pytest.mark.parametrize("workers", [0, 1])
def test_a_decoder_failure_in_a_worker_arrives_as_its_line(games, checkpoint, workers):
    _, _, cfg = checkpoint
    clips = FailingClips(find_games(games)[0].video, cfg, batch_size=2)
    batches = stream_batches(clips, workers)
    assert next(batches)["frames"].shape[0] == 2  # the frames before the damage
    with pytest.raises(InputError) as e: list(batches)
    assert str(e.value) == f"{clips.path}: frame 40: a decodable frame (test: the decoder failed)"


@pytest.fixture(scope="module")
def flip_checkpoint(tmp_path_factory):
    "An untrained small T-DEED whose configuration asks for the test-time flip and a Soft-NMS window of its own."
    cfg = get_config(overrides={**SMALL, "post.flip_tta": True, "post.nms_window": 40})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("flip-run") / "best.pt"
    save_checkpoint(path, {"model": build_model(cfg, pretrained="").state_dict(), "config": cfg.to_dict(), "meta": {"stage": "finetune"}})
    return path, cfg


@pytest.mark.parametrize("written_by", ["this tuner", "an older tuner"])
def test_params_keep_the_checkpoints_flip_and_raw_records_its_post(games, flip_checkpoint, tmp_path, written_by):
    path, cfg = flip_checkpoint
    params = tmp_path / "params.json"
    if written_by == "this tuner": write_params(params, PostConfig(nms_window=60, nms_threshold=0.05), {"team_map": 0.1})
    else: params.write_text(json.dumps({"post": {"nms_window": 60, "nms_threshold": 0.05, "nms_per_team": True, "flip_tta": False}}))
    assert "flip_tta" not in json.loads(params.read_text())["post"] or written_by == "an older tuner"
    r = dudek("infer", find_games(games)[0].path, "--checkpoint", path, "--out", tmp_path / "r.json", "--params", params,
              "--raw", tmp_path / "raw", "--workers", "0", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["tta"] == "flip" and summary["post"]["flip_tta"] is True  # the params file does not turn the flip off
    assert summary["post"]["nms_window"] == 60 and summary["post"]["nms_threshold"] == 0.05
    raw = load_raw(tmp_path / "raw" / RAW_FILE)
    assert nms_fields(raw["post"]) == nms_fields(cfg.post) and raw["profile"] == "tiny"  # the checkpoint's own, for the tuner


def test_params_with_a_key_that_is_not_soft_nms_is_one_line(games, flip_checkpoint, tmp_path):
    path, _ = flip_checkpoint
    (tmp_path / "p.json").write_text('{"post": {"nms_window": 30, "clip_len": 8}}')
    r = dudek("infer", find_games(games)[0].path, "--checkpoint", path, "--out", tmp_path / "r.json", "--params", tmp_path / "p.json",
              "--workers", "0", "--quiet")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {tmp_path / 'p.json'}: post.clip_len: "
                                                                   "a Soft-NMS field, one of nms_window, nms_threshold, nms_per_team"], r.stderr
    assert not (tmp_path / "r.json").exists()
