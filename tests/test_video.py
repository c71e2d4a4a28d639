"""dudek.video: exact frames after seeks (mp4 and mkv, several encoder settings), clips, streaming, errors, workers."""
import multiprocessing as mp
import pickle, tracemalloc

import av
import numpy as np
import pytest
import fastcore.test as ft

from dudek.files import InputError
from dudek.video import (VideoInfo, VideoReader, frame_code, read_frame_code, write_video, video_info, read_frames,
                         read_clip, iter_frames)

N = 400
ENCODINGS = {  # name -> write_video keyword arguments
    "veryfast": {},  # the default: B-frames, keyframe every 50
    "ultrafast": {"preset": "ultrafast"},  # no B-frames
    "open-gop": {"gop": 120, "options": {"x264-params": "open-gop=1:bframes=3:scenecut=0"}},
    "long-gop": {"gop": 250, "options": {"x264-params": "bframes=2:scenecut=0"}},
    "all-intra": {"gop": 1},
}


def codes(frames):
    return [read_frame_code(f) for f in frames]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    out = {}
    for name, kw in ENCODINGS.items():
        for suffix in (".mp4", ".mkv"):
            out[name + suffix] = write_video(d / f"{name}{suffix}", (frame_code(i, 48, 80) for i in range(N)), **kw)
    return out


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_random_access_is_exact(videos, encoding, suffix):
    path = videos[encoding + suffix]
    ft.test_eq(video_info(path), VideoInfo(25.0, N, 80, 48, N / 25, N))
    rng = np.random.default_rng(1)
    with VideoReader(path) as r:
        for _ in range(3):  # random order, one frame at a time: every read follows a seek or a jump
            order = rng.permutation(N)[:80]
            ft.test_eq([codes(r.read_frames([i]))[0] for i in order], order.tolist())
        order = rng.integers(0, N, 50)  # random order in one call, with repeats
        ft.test_eq(codes(r.read_frames(order)), order.tolist())
        for start in rng.integers(-10, N, 10):  # random clips, resized
            idx = np.clip(start + 3 * np.arange(8), 0, N - 1)
            ft.test_eq(codes(r.read_clip(int(start), 8, 3, size=(24, 40))), idx.tolist())


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_every_frame_in_order(videos, suffix):
    path = videos["veryfast" + suffix]
    ft.test_eq(codes(iter_frames(path)), list(range(N)))
    ft.test_eq(codes(read_frames(path, range(N - 1, -1, -1))), list(range(N - 1, -1, -1)))  # backwards


def test_sequential_clips_do_not_seek(videos):
    r = VideoReader(videos["veryfast.mp4"])
    for start in range(0, N - 64, 24):  # overlapping clips of 32 frames at stride 2
        ft.test_eq(codes(r.read_clip(start, 32, 2)), list(range(start, start + 64, 2)))
    ft.test_eq(r.n_seeks, 1)
    ft.test_eq(r.n_decoded <= N, True)
    r.read_clip(10, 4)  # going back seeks
    ft.test_eq(r.n_seeks, 2)


def test_forward_jumps_seek_only_when_it_pays(videos):
    r = VideoReader(videos["all-intra.mp4"])  # every frame a keyframe
    r.read_frames([0])
    r.read_frames([20])  # near: decode forward
    ft.test_eq((r.n_seeks, r.n_decoded), (1, 21))
    r.read_frames([380])  # far: seek, and land exactly on the frame
    ft.test_eq((r.n_seeks, r.n_decoded), (2, 22))
    r = VideoReader(videos["long-gop.mkv"])  # keyframes 250 frames apart
    r.read_frames([10])
    r.read_frames([240])  # same GOP: forward, no seek
    ft.test_eq((r.n_seeks, r.n_decoded), (1, 241))
    r.read_frames([260])  # the keyframe at 250 is close: decode forward
    ft.test_eq((r.n_seeks, r.n_decoded), (1, 261))
    r.read_frames([120])  # backwards: seek to 0
    ft.test_eq((r.n_seeks, r.n_decoded), (2, 382))


def test_clip_edges_repeat(videos):
    path = videos["veryfast.mkv"]
    ft.test_eq(codes(read_clip(path, N - 3, 6)), [N - 3, N - 2, N - 1, N - 1, N - 1, N - 1])
    ft.test_eq(codes(read_clip(path, -4, 3, stride=2)), [0, 0, 0])
    ft.test_eq(codes(read_clip(path, N + 50, 2)), [N - 1, N - 1])
    clip = read_clip(path, 5, 4, 2, size=(16, 32))
    ft.test_eq((clip.shape, clip.dtype), ((4, 16, 32, 3), np.uint8))
    ft.test_fail(lambda: read_frames(path, [N]), contains=f"must be in [0, {N})")
    ft.test_fail(lambda: read_frames(path, [-1]), contains=f"must be in [0, {N})")


def test_iter_frames_stride_chunk_size(videos):
    path = videos["veryfast.mp4"]
    ft.test_eq(codes(iter_frames(path, stride=7, start=3)), list(range(3, N, 7)))
    chunks = list(iter_frames(path, stride=2, size=(24, 40), chunk=64))
    ft.test_eq([c.shape for c in chunks], [(64, 24, 40, 3)] * 3 + [(8, 24, 40, 3)])
    ft.test_eq(codes(np.concatenate(chunks)), list(range(0, N, 2)))
    ft.test_eq(codes(iter_frames(path, stride=50, threads=2)), list(range(0, N, 50)))


def test_streaming_memory_does_not_grow(tmp_path):
    short = write_video(tmp_path / "short.mp4", (frame_code(i % 500, 64, 112) for i in range(500)), preset="ultrafast")
    long = write_video(tmp_path / "long.mp4", (frame_code(i % 500, 64, 112) for i in range(5000)), preset="ultrafast")
    peaks = []
    for path in (short, long):
        video_info(path)
        tracemalloc.start()
        n = sum(len(c) for c in iter_frames(path, chunk=32))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    ft.test_eq(n, 5000)
    ft.test_eq(peaks[1] < 1.2 * peaks[0], True)
    ft.test_eq(peaks[1] < 4 * 32 * 64 * 112 * 3, True)


def test_reader_cache_is_bounded(videos):
    r = VideoReader(videos["veryfast.mp4"], cache_mb=0.1)  # 0.1 MB = 8 frames of 48x80x3
    r.read_frames(range(100))
    ft.test_eq(len(r._cache) <= 10, True)
    ft.test_eq(r._cache_bytes <= 0.1 * 2**20, True)


def test_fps_and_frame_count(tmp_path):
    p = write_video(tmp_path / "a.mkv", [frame_code(i) for i in range(37)], fps=12.5)
    ft.test_eq(video_info(p), VideoInfo(12.5, 37, 112, 64, 2.96, 74))
    p = write_video(tmp_path / "one.mp4", [frame_code(7)])
    ft.test_eq(video_info(p).n_frames, 1)
    ft.test_eq(codes(read_clip(p, 0, 3)), [7, 7, 7])
    p = write_video(tmp_path / "ntsc.mp4", (frame_code(i) for i in range(60)), fps=30000 / 1001)
    ft.test_close(video_info(p).fps, 29.97, eps=1e-3)
    ft.test_eq(video_info(p).grid_frames, 50)  # 2.002 s: grid frames 0..49 have their centre inside
    ft.test_eq(codes(read_frames(p, [49, 31, 2])), [58, 37, 2])  # the frame shown at 1.96 s, 1.24 s, 0.08 s


def test_write_video_array_and_atomicity(tmp_path):
    arr = np.stack([frame_code(i) for i in range(10)])
    p = write_video(tmp_path / "a.mp4", arr)
    ft.test_eq(codes(read_frames(p, range(10))), list(range(10)))
    before = p.read_bytes()

    def crashing():
        for i in range(20):
            if i == 15: raise RuntimeError("render failed")
            yield frame_code(i)
    ft.test_fail(lambda: write_video(p, crashing()), contains="render failed")
    ft.test_eq(p.read_bytes(), before)  # the old video survives
    ft.test_eq(sorted(x.name for x in tmp_path.iterdir()), ["a.mp4"])  # no temporary file left
    ft.test_fail(lambda: write_video(tmp_path / "f.mp4", [arr[0].astype(np.float32)]), contains="uint8")
    ft.test_fail(lambda: write_video(tmp_path / "e.mp4", []), contains="at least one frame")


def test_bad_files(tmp_path, videos):
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 100)
    (tmp_path / "empty.mkv").write_bytes(b"")
    good = videos["veryfast.mp4"].read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (tmp_path / "folder.mp4").mkdir()
    for name in ["missing.mp4", "text.mp4", "empty.mkv", "truncated.mp4", "folder.mp4"]:
        with pytest.raises(InputError) as e:
            read_clip(tmp_path / name, 0, 4)
        ft.test_eq(str(e.value).startswith(f"{tmp_path / name}: video: "), True)
        ft.test_fail(lambda: video_info(tmp_path / name), contains=name)


def test_audio_only_file(tmp_path):
    p = tmp_path / "audio.mkv"
    with av.open(str(p), "w", format="matroska") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for pkt in s.encode(frame): c.mux(pkt)
        for pkt in s.encode(None): c.mux(pkt)
    ft.test_fail(lambda: video_info(p), contains="audio.mkv: video: a file with a video stream")


def _worker_read(args):
    reader, starts = args
    return [codes(reader.read_clip(s, 4, 2)) for s in starts]


def test_reader_pickles_and_works_in_worker_processes(videos):
    r = VideoReader(videos["veryfast.mkv"])
    r.read_frames([5])  # opened in the parent before the fork
    r2 = pickle.loads(pickle.dumps(r))
    ft.test_eq(r2._container, None)  # the decoder is not pickled
    ft.test_eq(codes(r2.read_frames([9])), [9])
    starts = [[0, 100, 50], [390, 3, 200]]
    with mp.get_context("fork").Pool(2) as pool:  # the forked reader reopens itself in each worker
        got = pool.map(_worker_read, [(r, s) for s in starts])
    ft.test_eq(got, [[list(range(s, s + 8, 2)) if s + 6 < N else [min(x, N - 1) for x in range(s, s + 8, 2)] for s in ss]
                     for ss in starts])
    ft.test_eq(codes(r.read_frames([6])), [6])  # the parent's reader still works


class _Clips:
    "A map-style dataset of clips, as the training chapter builds them: one reader, opened lazily per worker."
    def __init__(self, path): self.reader = VideoReader(path)
    def __len__(self): return 12
    def __getitem__(self, i): return self.reader.read_clip(i * 30, 4, 2, size=(24, 40))


def test_torch_dataloader_workers(videos):
    torch = pytest.importorskip("torch")
    ds = _Clips(videos["veryfast.mp4"])
    ds[0]  # opened in the parent first, as a notebook would
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="fork")
    got = [codes(clip.numpy()) for batch in dl for clip in batch]
    ft.test_eq(got, [list(range(i * 30, i * 30 + 8, 2)) for i in range(12)])


# --- frame rates other than 25 fps: dudek samples every video on the 25 fps time grid ---------------------------------
import json, shutil, subprocess, sys
from fractions import Fraction
from math import floor

RATES = {"30": Fraction(30), "50": Fraction(50), "29.97": Fraction(30000, 1001)}


def resample(frames, rate, n_source):
    "Frames of a `rate` fps video showing, at each of its times k / rate, the 25 fps source frame shown then."
    n_out = round(Fraction(n_source, 25) * rate)
    return (frames(floor(Fraction(k * 25) / rate)) for k in range(n_out))


def shown(f, rate):
    "The source frame a `rate` fps resampled video shows at grid time f / 25 (the frame shown within 1 ms)."
    j = floor((Fraction(f, 25) + Fraction(1, 1000)) * rate)
    return floor(Fraction(j * 25) / rate)


@pytest.mark.parametrize("rate", list(RATES))
def test_other_rates_read_the_frame_shown_at_each_grid_time(tmp_path, rate):
    r, n = RATES[rate], 100
    p = write_video(tmp_path / "v.mp4", resample(lambda i: frame_code(i, 48, 80), r, n), fps=r)
    info = video_info(p)
    ft.test_close(info.fps, float(r), eps=1e-3)
    ft.test_eq((info.grid_frames, round(info.duration, 2)), (n, 4.0))  # the length in time, not in frames
    expected = [shown(f, r) for f in range(n)]
    ft.test_eq(codes(read_frames(p, range(n - 1, -1, -1))), expected[::-1])  # random access, backwards
    ft.test_eq(codes(iter_frames(p, stride=2)), expected[::2])  # streaming
    ft.test_eq(codes(read_clip(p, n - 3, 4, 1)), expected[-3:] + expected[-1:])  # clips, padded at the end
    if r % 25 == 0: ft.test_eq(expected, list(range(n)))  # 50 fps: exactly the 25 fps frames


def test_a_slow_video_repeats_its_pictures_on_the_grid(tmp_path):
    p = write_video(tmp_path / "slow.mkv", (frame_code(i) for i in range(20)), fps=12.5)
    ft.test_eq(video_info(p).grid_frames, 40)
    with VideoReader(p) as r:
        ft.test_eq(codes(r.iter_frames()), [i // 2 for i in range(40)])
        ft.test_eq(r.n_decoded <= 20, True)  # each picture decoded once


SMALL = {"data.frame_height": 32, "data.frame_width": 56, "data.clip_len": 16, "data.overlap": 8, "train.batch_size": 4}


def dudek(*args):
    res = subprocess.run([sys.executable, "-m", "dudek", *map(str, args)], capture_output=True, text=True, timeout=300)
    return res


@pytest.fixture(scope="module")
def rate_games(tmp_path_factory, checkpoint):
    "One 12 s synthetic game at 25 fps and the same game re-encoded at 30, 50, 29.97 and 10 fps (labels kept); a checkpoint."
    from dudek.annotations import find_games
    root = tmp_path_factory.mktemp("rates")
    synthesize(root / "25", n_games=1, minutes=0.2, seed=3, size=(64, 114), workers=1)
    game = find_games(root / "25")[0]
    source = np.stack(list(iter_frames(game.video)))
    out = {"25": game}
    for name, r in {**RATES, "10": Fraction(10)}.items():
        folder = root / name / game.rel
        folder.mkdir(parents=True)
        shutil.copy(game.labels, folder / game.labels.name)
        write_video(folder / game.video.name, resample(lambda i: source[i], r, len(source)), fps=r, crf=18)
        out[name] = find_games(root / name)[0]
    return out, checkpoint[1], checkpoint[0], len(source)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "An untrained small T-DEED saved as training saves its best.pt (as in test_infer.py), and its configuration."
    torch = pytest.importorskip("torch")
    from dudek.config import get_config
    from dudek.model import build_model, save_checkpoint
    cfg = get_config(overrides=SMALL)
    torch.manual_seed(0)
    ck = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint(ck, {"model": build_model(cfg, pretrained="").state_dict(), "config": cfg.to_dict(), "meta": {"stage": "finetune"}})
    return ck, cfg


def synthesize(*args, **kwargs):
    from dudek.synthetic import synthesize as s
    return s(*args, **kwargs)


@pytest.mark.parametrize("rate", list(RATES))
def test_dataset_clips_and_targets_line_up_at_any_rate(rate_games, rate):
    from dudek.dataset import ClipDataset
    from dudek.labels import MERGED
    games, cfg, _, n = rate_games
    ref, other = (ClipDataset([games[k]], cfg, MERGED, n_clips=4) for k in ("25", rate))
    ft.test_eq((other.videos[0].n_frames, list(other.n_sampled)), (n, list(ref.n_sampled)))
    ft.test_eq(other.videos[0].events, ref.videos[0].events)  # labels in ms land on the same grid frames
    for a, b in zip(ref.targets[0], other.targets[0]): ft.test_eq(a, b)
    for start in (0, int(other.n_sampled[0]) - 16, 40):
        got, want = other.item(0, start), ref.item(0, start)
        ft.test_eq(got["target_class"], want["target_class"])
        diff = float((got["frames"].float() - want["frames"].float()).abs().mean())  # codec noise (and 30 fps: a frame earlier)
        assert diff < 6, f"{rate} fps: clip at {start} differs from the 25 fps clip by {diff:.1f} grey levels on average"


def test_infer_predictions_stay_inside_videos_at_any_rate(rate_games, tmp_path):
    games, cfg, ck, n = rate_games
    raw = {}
    for name in ("25", *RATES):
        g = games[name]
        res = dudek("infer", g.path, "--checkpoint", ck, "--out", tmp_path / f"{name}.json", "--raw", tmp_path / f"raw{name}",
                    "--workers", 0)
        assert res.returncode == 0, res.stderr
        duration_ms = video_info(g.video).duration * 1000
        positions = [int(p["position"]) for p in json.loads((tmp_path / f"{name}.json").read_text())["predictions"]]
        assert positions and max(positions) < duration_ms, (name, max(positions), duration_ms)
        with np.load(tmp_path / f"raw{name}" / "raw_scores.npz") as z: raw[name] = z["scores"]
    shifted = np.abs(raw["25"][8:] - raw["25"][:-8]).mean()  # what "not lined up" looks like: 8 sampled frames off
    for name in RATES:
        ft.test_eq(raw[name].shape, raw["25"].shape)
        err = np.abs(raw[name] - raw["25"]).mean()
        assert err < shifted / 3, f"{name} fps: scores differ from the 25 fps ones by {err:.4f} (8 frames off: {shifted:.4f})"


def test_a_video_too_slow_for_the_grid_is_refused_in_one_line(rate_games, tmp_path):
    games, _, ck, _ = rate_games
    res = dudek("infer", games["10"].path, "--checkpoint", ck, "--out", tmp_path / "r.json")
    ft.test_eq(res.returncode, 2)
    ft.test_eq(res.stderr.strip().splitlines(), [f"error: {games['10'].video}: fps: at least 12.5 frames per second "
                                                 "(one picture per sampled frame, every 80 ms), got 10"])
    ft.test_eq(list(tmp_path.iterdir()), [])


# --- files that carry a video suffix but are not videos -----------------------------------------------------------------
def _sound(path, fmt):
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for pkt in s.encode(frame): c.mux(pkt)
        for pkt in s.encode(None): c.mux(pkt)


def _undecodable(path):
    "A real H.264 mp4 (header, index, timestamps intact) whose compressed pictures are zeros."
    src = write_video(path.parent / "source.mp4", (frame_code(i) for i in range(30)), gop=10)
    b = bytearray(src.read_bytes())
    src.unlink()
    i, j = b.find(b"mdat"), b.find(b"moov")
    assert 0 < i < j, "the test expects mdat before moov"
    b[i + 4:j - 4] = bytes(j - i - 8)
    path.write_bytes(bytes(b))


NOT_VIDEOS = {  # kind -> (how to write it, the expected part of the one-line error)
    "text": (lambda p: p.write_text("this is not a video\n" * 50), "video: a readable video file"),
    "json": (lambda p: p.write_text(json.dumps({"annotations": [], "fps": 25})), "video: a readable video file"),
    "png": (lambda p: Image.fromarray(frame_code(3)).save(p, format="PNG"), "video: a file with a video stream, got a picture"),
    "jpeg": (lambda p: Image.fromarray(frame_code(3)).save(p, format="JPEG"), "video: a file with a video stream, got a picture"),
    "audio-mp4": (lambda p: _sound(p, "mp4"), "video: a file with a video stream, got only sound"),
    "audio-mkv": (lambda p: _sound(p, "matroska"), "video: a file with a video stream, got only sound"),
    "empty": (lambda p: p.write_bytes(b""), "video: a readable video file"),
    "random": (lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()), "video: "),
    "undecodable": (_undecodable, "video: at least one decodable video frame"),
}
Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory):
    "A real Labels-ball.json of a short synthetic game."
    from dudek.annotations import find_games
    root = tmp_path_factory.mktemp("labels")
    synthesize(root, n_games=1, minutes=0.1, seed=1, size=(64, 114), workers=1)
    return find_games(root)[0].labels


def not_a_video(folder, kind, name):
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    NOT_VIDEOS[kind][0](p)
    return p


@pytest.mark.parametrize("name", ["224p.mp4", "x.mkv"])
@pytest.mark.parametrize("kind", list(NOT_VIDEOS))
def test_not_a_video_is_refused_by_every_reader(tmp_path, kind, name):
    p = not_a_video(tmp_path, kind, name)
    for read in (video_info, lambda p: read_clip(p, 0, 4), lambda p: list(iter_frames(p)), lambda p: VideoReader(p).read_frames([0])):
        with pytest.raises(InputError) as e: read(p)
        assert str(e.value).startswith(f"{p}: ") and NOT_VIDEOS[kind][1] in str(e.value), str(e.value)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", list(NOT_VIDEOS))
def test_dudek_infer_refuses_a_file_that_is_not_a_video(tmp_path, checkpoint, kind):
    p = not_a_video(tmp_path / "in", kind, "x.mkv" if kind.endswith("mkv") or kind in ("jpeg", "random") else "224p.mp4")
    res = dudek("infer", p, "--checkpoint", checkpoint[0], "--out", tmp_path / "out" / "r.json", "--raw", tmp_path / "raw")
    ft.test_eq(res.returncode, 2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {p}: ") and NOT_VIDEOS[kind][1] in lines[0], res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "raw").exists()


@pytest.mark.parametrize("kind", list(NOT_VIDEOS))
def test_a_game_folder_whose_video_is_not_a_video_is_refused(tmp_path, checkpoint, labels_file, kind):
    game = tmp_path / "data" / "league" / "2025-2026" / "2025-08-02 - A - B"
    p = not_a_video(game, kind, "224p.mp4")
    shutil.copy(labels_file, game / "Labels-ball.json")
    res = dudek("infer", tmp_path / "data", "--checkpoint", checkpoint[0], "--out", tmp_path / "out")  # a folder of games (find_games)
    ft.test_eq(res.returncode, 2)
    ft.test_eq(len(res.stderr.strip().splitlines()), 1)
    assert res.stderr.startswith(f"error: {p}: ") and NOT_VIDEOS[kind][1] in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["png", "audio-mp4", "undecodable"])
def test_training_refuses_a_game_whose_video_is_not_a_video(tmp_path, labels_file, kind):
    game = tmp_path / "data" / "league" / "2025-2026" / "2025-08-02 - A - B"
    p = not_a_video(game, kind, "224p.mp4")
    shutil.copy(labels_file, game / "Labels-ball.json")
    res = dudek("train", "--stage", "finetune", "--data", tmp_path / "data", "--run-dir", tmp_path / "run", "--set", "data.n_val=0")
    ft.test_eq(res.returncode, 2)
    ft.test_eq(len(res.stderr.strip().splitlines()), 1)
    assert res.stderr.startswith(f"error: {p}: ") and NOT_VIDEOS[kind][1] in res.stderr, res.stderr
