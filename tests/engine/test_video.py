"""tubelet.engine.video: probing, errors, time-based sampling and decoding.

Every test runs once per video backend (the ``video_backend`` fixture: decord, PyAV);
tests/engine/test_video_backends.py compares the two.
"""

from __future__ import annotations

import configparser
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.videos import cut, frame_pattern, make_audio_only, make_folder, make_mp4, unknown_codec
from tubelet.engine.probe import probe_task
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoError, VideoMeta, VideoReader, open_video, probe, sample_indices

pytestmark = pytest.mark.usefixtures("video_backend")

# The table in ../shared/assets/README.md: file -> (width, height, fps, frames)
SAM2_DEMO = {
    "bedroom.mp4": (960, 540, 30.0, 200),
    "01_dog.mp4": (1280, 720, 30000 / 1001, 289),
    "02_cups.mp4": (1280, 720, 30000 / 1001, 300),
    "03_blocks.mp4": (1280, 720, 30000 / 1001, 292),
    "04_coffee.mp4": (1280, 720, 30000 / 1001, 287),
    "05_default_juggle.mp4": (1280, 720, 24.0, 247),
}
DAVIS_FRAMES = {
    "blackswan": 50,
    "car-shadow": 40,
    "dog": 60,
    "drift-chicane": 52,
    "horsejump-high": 50,
    "kite-surf": 50,
    "libby": 49,
    "motocross-jump": 40,
}


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames, 96x64, 30 fps, key frame every 12, index at the end."""
    return make_mp4(tmp_path_factory.mktemp("mp4") / "clip.mp4")


@pytest.fixture(scope="module")
def mp4_faststart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same frames with the index (moov) at the front."""
    return make_mp4(tmp_path_factory.mktemp("mp4") / "clip_faststart.mp4", faststart=True)


def expect_error(kind: str, uri: str | Path, fps: float | None = None, match: str = "") -> VideoError:
    with pytest.raises(VideoError) as info:
        probe(str(uri), fps=fps)
    assert info.value.kind == kind, str(info.value)
    assert str(info.value).startswith(f"{kind}: ")
    assert match in str(info.value)
    return info.value


# -- real assets -------------------------------------------------------------------------


@pytest.mark.assets
@pytest.mark.parametrize("name", sorted(SAM2_DEMO))
def test_sam2_demo_videos_match_the_assets_table(assets: Path, name: str) -> None:
    width, height, fps, n_frames = SAM2_DEMO[name]
    meta = probe(str(assets / "videos" / "sam2-demo" / name))
    assert (meta.width, meta.height, meta.n_frames, meta.codec) == (width, height, n_frames, "h264")
    assert meta.fps == pytest.approx(fps, rel=1e-6)
    assert meta.fps_source == "container"
    assert meta.duration_s == pytest.approx(n_frames / fps, abs=1e-3)


@pytest.mark.assets
def test_container_timestamps_of_a_real_video(assets: Path) -> None:
    with VideoReader(str(assets / "videos" / "sam2-demo" / "01_dog.mp4")) as video:
        ts = video.timestamps()
        assert ts.shape == (289,) and ts[0] == 0.0
        assert np.allclose(np.diff(ts), 1001 / 30000, atol=2e-6)
        # 2 fps over 29.97 fps: the frame nearest each half second, 0.5 s -> frame 15 (0.5005 s)
        assert video.sample_indices(fps=2)[:4] == [0, 15, 30, 45]
        assert video.frame_time(15) == pytest.approx(0.5005, abs=1e-6)


@pytest.mark.assets
@pytest.mark.parametrize("seq", sorted(DAVIS_FRAMES))
def test_davis_folders_at_24_fps(assets: Path, seq: str) -> None:
    meta = probe(str(assets / "davis2016" / "JPEGImages" / "480p" / seq), fps=24, decode_check=False)
    assert meta == VideoMeta(24.0, DAVIS_FRAMES[seq], DAVIS_FRAMES[seq] / 24, 854, 480, "jpeg", "manifest")


@pytest.mark.assets
def test_mot17_folders_with_fps_from_seqinfo(assets: Path) -> None:
    seqs = sorted((assets / "mot17-mini" / "train").iterdir())
    assert len(seqs) == 7
    for seq in seqs:
        info = configparser.ConfigParser()
        info.read(seq / "seqinfo.ini")
        s = info["Sequence"]
        present = len(list((seq / "img1").glob("*.jpg")))
        meta = probe(str(seq / "img1"), fps=float(s["frameRate"]))
        assert meta.fps == float(s["frameRate"])
        assert meta.n_frames == present < int(s["seqLength"])  # only the first frames are kept
        assert (meta.width, meta.height) == (int(s["imWidth"]), int(s["imHeight"]))


@pytest.mark.assets
def test_davis_frames_equal_pillow_decode(assets: Path) -> None:
    folder = assets / "davis2016" / "JPEGImages" / "480p" / "dog"
    with VideoReader(str(folder), fps=24) as video:
        got = video.frames([59, 0, 30])
    for k, idx in enumerate([59, 0, 30]):
        expected = np.asarray(Image.open(folder / f"{idx:05d}.jpg").convert("RGB"))
        assert np.array_equal(got[k], expected)


@pytest.mark.assets
@pytest.mark.parametrize(("fraction", "needle"), [(0.5, "ends inside frame 113"), (0.9, "only 256 can be read")])
def test_real_mp4_cut_with_index_at_front_is_truncated(
    assets: Path, tmp_path: Path, fraction: float, needle: str
) -> None:
    # 04_coffee.mp4 has its moov box at the front: the index survives the cut
    bad = cut(assets / "videos" / "sam2-demo" / "04_coffee.mp4", tmp_path / "coffee.mp4", fraction)
    expect_error("truncated", bad, match="lists 287 frames")
    expect_error("truncated", bad, match=needle)


@pytest.mark.assets
def test_real_mp4_cut_with_index_at_end_is_truncated(assets: Path, tmp_path: Path) -> None:
    bad = cut(assets / "videos" / "sam2-demo" / "bedroom.mp4", tmp_path / "bedroom.mp4", 0.5)
    expect_error("truncated", bad, match="no index ('moov' box)")


# -- errors on made-up files -------------------------------------------------------------


def test_generated_mp4_probes(mp4: Path, mp4_faststart: Path) -> None:
    for path in (mp4, mp4_faststart):
        assert probe(str(path)) == VideoMeta(30.0, 48, 1.6, 96, 64, "h264", "container")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_cut_mp4_with_index_at_front_names_the_frame(mp4_faststart: Path, tmp_path: Path, fraction: float) -> None:
    error = expect_error("truncated", cut(mp4_faststart, tmp_path / "cut.mp4", fraction), match="lists 48 frames")
    frame = int(str(error).split("ends inside frame ")[1].split()[0])
    assert 0 <= frame < 48


def test_cut_inside_the_last_frame_is_caught_by_decoding_it(mp4_faststart: Path, tmp_path: Path) -> None:
    bad = cut(mp4_faststart, tmp_path / "cut.mp4", drop_bytes=10)
    meta = probe(str(bad), decode_check=False)  # the index and all packets but one byte range survive
    assert meta.n_frames == 48
    expect_error("truncated", bad, match="frame 47 cannot be decoded")


def test_cut_mp4_with_index_at_end(mp4: Path, tmp_path: Path) -> None:
    expect_error("truncated", cut(mp4, tmp_path / "cut.mp4", 0.5), match="'mdat' box")


def test_unreadable_inputs(tmp_path: Path) -> None:
    expect_error("missing", tmp_path / "nope.mp4", match="does not exist")
    (tmp_path / "empty.mp4").write_bytes(b"")
    expect_error("empty", tmp_path / "empty.mp4", match="zero-byte")
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    expect_error("not_a_video", tmp_path / "notes.mp4", match="no video container")
    Image.fromarray(frame_pattern(1, 32, 32)).save(tmp_path / "still.mp4", format="JPEG")
    expect_error("not_a_video", tmp_path / "still.mp4", match="still image")
    expect_error("not_a_video", make_audio_only(tmp_path / "audio.mp4"), match="no video stream")
    expect_error("unsupported", "nosuchscheme://bucket/video.mp4")


def test_a_codec_no_decoder_knows_is_unsupported(mp4: Path, tmp_path: Path, video_backend: str) -> None:
    error = expect_error("unsupported", unknown_codec(mp4, tmp_path / "odd.mp4"), match="cannot open")
    assert {"decord": "decord", "pyav": "PyAV"}[video_backend] in str(error)


def test_reader_says_which_backend_decodes(mp4: Path, tmp_path: Path, video_backend: str) -> None:
    with VideoReader(str(mp4)) as video:
        assert video.backend == video_backend
    with VideoReader(str(make_folder(tmp_path / "frames")), fps=5) as video:
        assert video.backend == "pillow"


def test_folder_errors(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "frames")
    expect_error("no_fps", folder, match="needs an explicit fps")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    expect_error("no_frames", tmp_path / "empty", fps=10, match="no JPEG/PNG frames")
    Image.fromarray(frame_pattern(9, 41, 30)).save(folder / "frame_4.png")  # replace one frame
    expect_error("mixed_sizes", folder, fps=10, match="frame 3 (frame_4.png) is 41x30, frame 0 is 40x30")


def test_truncated_jpeg_in_folder_is_corrupt(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "frames", n=3, suffix=".jpg")
    last = folder / "frame_3.jpg"
    last.write_bytes(last.read_bytes()[:200])
    expect_error("corrupt", folder, fps=5, match="frame 2 (frame_3.jpg)")


def test_video_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(VideoError("a.mp4", "truncated", "frame 3 cannot be decoded")))
    assert (error.uri, error.kind, str(error)) == ("a.mp4", "truncated", "truncated: frame 3 cannot be decoded [a.mp4]")


# -- sampling ----------------------------------------------------------------------------


def test_sample_two_fps_from_thirty(mp4: Path) -> None:
    with VideoReader(str(mp4)) as video:
        assert video.sample_indices(fps=2) == [0, 15, 30, 45]
        assert video.sample_indices() == list(range(48))
        assert video.sample_indices(fps=2, start_s=0.4, end_s=1.1) == [12, 27]
        assert video.sample_indices(fps=10, start_s=1.0, end_s=1.2) == [30, 33]
        assert video.sample_indices(fps=100) == list(range(48))  # above the native rate: no duplicates
        assert video.sample_indices(fps=30, max_frames=4) == [0, 12, 24, 36]  # spread over the window
        assert video.sample_indices(fps=2, start_s=5.0) == []
        assert video.sample_indices(fps=30, end_s=99.0, max_frames=4) == [0, 12, 24, 36]  # end clipped
        assert video.frame_time(15) == pytest.approx(0.5)


def test_fps_override_changes_times_not_frames(mp4: Path) -> None:
    with VideoReader(str(mp4), fps=10) as video:
        assert video.meta == VideoMeta(10.0, 48, 4.8, 96, 64, "h264", "manifest")
        assert video.frame_time(15) == pytest.approx(1.5)
        assert video.sample_indices(fps=2) == list(range(0, 48, 5))


def test_sampling_follows_variable_frame_timestamps() -> None:
    # 10 fps for a second, then 40 fps: a uniform grid must follow the timestamps
    ts = np.concatenate([np.arange(10) / 10, 1.0 + np.arange(40) / 40])
    assert sample_indices(ts, fps=5) == [0, 2, 4, 6, 8, 10, 18, 26, 34, 42]
    assert sample_indices(ts, fps=5, end_s=1.0) == [0, 2, 4, 6, 8]
    assert sample_indices(ts, fps=5, max_frames=2) == [0, 10]


def test_sampling_rejects_bad_arguments() -> None:
    ts = np.arange(10) / 10
    for kwargs in ({"fps": 0}, {"max_frames": 0}, {"start_s": -1.0}):
        with pytest.raises(ValueError):
            sample_indices(ts, **kwargs)


# -- decoding ----------------------------------------------------------------------------


def test_frames_shapes_order_and_counter(mp4: Path) -> None:
    with open_video(str(mp4)) as video:
        all_frames = video.frames(range(48))
        assert all_frames.shape == (48, 64, 96, 3) and all_frames.dtype == np.uint8
        # the red level says which frame it is (lossy codec: approximately)
        red = all_frames[:, :, :, 0].mean(axis=(1, 2))
        assert np.all(np.abs(red - np.minimum(8 * np.arange(48), 255)) < 6)
        assert video.frames_decoded == 48
        picked = video.frames([30, 5, 30, 17])
        assert np.array_equal(picked, all_frames[[30, 5, 30, 17]])  # seeks give the same pixels
        assert (video.frames_requested, video.frames_decoded) == (52, 51)
        assert video.frames([]).shape == (0, 64, 96, 3)
        with pytest.raises(IndexError):
            video.frames([48])


def test_frames_resized_in_the_decoder(mp4: Path) -> None:
    with VideoReader(str(mp4), size=(48, 32)) as video:
        small = video.frames([0, 40])
        assert small.shape == (2, 32, 48, 3)
        assert video.frames([40], size=(24, 16)).shape == (1, 16, 24, 3)
        assert video.meta.width == 96  # meta is always the native size
        assert abs(float(small[1, :, :, 0].mean()) - 255) < 8


def test_folder_frames_exact_natural_order_and_resize(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "frames", n=12)  # frame_1.png ... frame_12.png
    with VideoReader(str(folder), fps=6) as video:
        assert video.meta == VideoMeta(6.0, 12, 2.0, 40, 30, "png", "manifest")
        assert np.array_equal(video.frames([10])[0], frame_pattern(10, 40, 30))  # frame_11, not frame_2
        assert video.sample_indices(fps=2) == [0, 3, 6, 9]
        assert video.frames([0, 11], size=(20, 15)).shape == (2, 15, 20, 3)
        assert video.frames_decoded == 3


def test_closed_reader_refuses_to_decode(mp4: Path) -> None:
    video = VideoReader(str(mp4))
    video.close()
    with pytest.raises(RuntimeError, match="closed"):
        video.frames([0])


def test_decoder_scaling_and_resize_fallback_agree(mp4: Path) -> None:
    # (40, 30) is scaled in the decoder; (48, 32) trips a decord scaler bug, so decord
    # resizes it after decoding (PyAV scales it in the decoder like any other size)
    with VideoReader(str(mp4)) as video:
        native = video.frames([20])[0]
        for size in ((40, 30), (48, 32)):
            scaled = video.frames([20], size=size)[0].astype(int)
            reference = np.asarray(Image.fromarray(native).resize(size, Image.Resampling.BILINEAR)).astype(int)
            assert scaled.shape == reference.shape
            assert np.abs(scaled - reference).mean() < 6


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_phone_video_is_decoded_upright(tmp_path: Path, rotation: int) -> None:
    """The display matrix turns the coded 96x64 picture ``rotation`` degrees counter-clockwise:
    frames come out as a player shows them, native or scaled, and meta has their size."""
    path = make_mp4(tmp_path / "phone.mp4", n=44, rotation=rotation)
    upright = np.rot90(frame_pattern(40, 96, 64), k=rotation // 90)  # frame 40: a wide green bar
    h, w = upright.shape[:2]
    with VideoReader(str(path)) as video:
        assert (video.meta.width, video.meta.height) == (w, h)
        native = video.frames([40])[0].astype(int)
        assert native.shape == (h, w, 3)
        errors = {k: np.abs(native - np.rot90(upright, k=k)).mean() for k in (0, 2)}  # upright, upside down
        assert errors[0] < 10 < 25 < errors[2], errors
        small = video.frames([40], size=(w // 2, h // 2))[0].astype(int)
        expected = np.asarray(Image.fromarray(upright).resize((w // 2, h // 2), Image.Resampling.BILINEAR))
        assert small.shape == expected.shape and np.abs(small - expected).mean() < 6


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_video_stays_upright_through_keyframe_seeks_and_records_its_turn(
    tmp_path: Path, rotation: int
) -> None:
    """Frames reached by seeking back, forward and across GOPs (a key frame every 12), one
    call at a time and in one batch, native and scaled: each as a player shows it. ``meta``
    and the ``videos`` row say the display size and the clockwise turn that was applied
    (the matrix turns the picture ``rotation`` degrees counter-clockwise)."""
    path = make_mp4(tmp_path / "phone.mp4", n=44, rotation=rotation)
    clockwise = (360 - rotation) % 360
    h, w = np.rot90(np.zeros((64, 96)), k=rotation // 90).shape
    half = (w // 2, h // 2)

    def upright(i: int, size: tuple[int, int] | None) -> np.ndarray:
        image = np.rot90(frame_pattern(i, 96, 64), k=rotation // 90)
        return image if size is None else np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))

    def check(got: np.ndarray, i: int, size: tuple[int, int] | None) -> None:
        expected = upright(i, size).astype(int)
        assert got.shape == expected.shape, (i, size)
        error = np.abs(got.astype(int) - expected).mean()
        flipped = np.abs(got.astype(int) - np.rot90(expected, k=2)).mean()  # upside down
        assert error < 10 < flipped, (i, size, error, flipped)

    order = [40, 13, 27, 20, 40, 14, 26, 43]  # back, forward past a key frame, back again...
    with VideoReader(str(path)) as video:
        assert (video.meta.width, video.meta.height, video.meta.rotation) == (w, h, clockwise)
        for size in (None, half):
            for i in order:
                check(video.frames([i], size=size)[0], i, size)
            for i, got in zip(order, video.frames(order, size=size)):
                check(got, i, size)
    row = probe_task(VideoTask(video_id="phone", uri=str(path)))
    assert (row.width, row.height, row.rotation) == (w, h, clockwise)


def test_an_upright_video_and_a_frame_folder_record_no_turn(mp4: Path, tmp_path: Path) -> None:
    assert probe(str(mp4)).rotation == 0
    assert probe(str(make_folder(tmp_path / "frames")), fps=5).rotation == 0
    assert probe_task(VideoTask(video_id="clip", uri=str(mp4))).rotation == 0


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_reading_early_frames_does_not_decode_the_rest_of_the_file(tmp_path: Path) -> None:
    """decord keeps decoding ahead after a batch, into an unbounded queue (dmlc/decord#197):
    on this 17 s 640x360 file that is ~0.7 MiB per remaining frame, ~280 MiB. The reader
    must stop it, or memory grows with the length of every video tracked."""
    long = make_mp4(tmp_path / "long.mp4", n=400, fps=24, width=640, height=360)
    with VideoReader(str(long)) as reader:
        reader.frames([0, 1, 2, 3])
        before = _rss_mib()
        time.sleep(1.5)  # the decode-ahead thread would fill its queue now
        reader.frames([4, 5])
        time.sleep(1.5)
        grown = _rss_mib() - before
    assert grown < 120, f"RSS grew {grown:.0f} MiB after reading 6 frames"
