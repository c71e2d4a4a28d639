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
    ft.test_eq(video_info(path), VideoInfo(25.0, N, 80, 48))
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
    ft.test_eq(video_info(p), VideoInfo(12.5, 37, 112, 64))
    p = write_video(tmp_path / "one.mp4", [frame_code(7)])
    ft.test_eq(video_info(p).n_frames, 1)
    ft.test_eq(codes(read_clip(p, 0, 3)), [7, 7, 7])
    p = write_video(tmp_path / "ntsc.mp4", (frame_code(i) for i in range(60)), fps=30000 / 1001)
    ft.test_close(video_info(p).fps, 29.97, eps=1e-3)
    ft.test_eq(codes(read_frames(p, [59, 31, 2])), [59, 31, 2])


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
