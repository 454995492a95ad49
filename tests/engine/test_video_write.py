"""engine/video_write.py: image folders and clips re-encoded to mp4 that read back frame for frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.videos import frame_pattern, make_folder, make_mp4
from tubelet.engine.video import VideoReader
from tubelet.engine.video_write import export_mp4, write_mp4

# the written files are read back by each video backend
pytestmark = pytest.mark.usefixtures("video_backend")


def _smooth_frame(i: int, width: int, height: int) -> np.ndarray:
    """A gradient with a bright square at x = 2i: what a codec keeps well, and a frame that says its index."""
    x = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 100, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(x + y, (height, width, 3)).astype(np.uint8).copy()
    image[4:12, 2 * i : 2 * i + 8] = 255
    return image


def _smooth_folder(folder: Path, n: int, width: int, height: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(_smooth_frame(i, width, height)).save(folder / f"{i:05d}.png")
    return folder


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("size", [(40, 30), (41, 31)], ids=["even", "odd"])
def test_folder_to_mp4_keeps_frames_rate_and_size(tmp_path: Path, size: tuple[int, int]) -> None:
    folder = _smooth_folder(tmp_path / "frames", 12, *size)
    dest = tmp_path / "out.mp4"
    assert export_mp4(str(folder), dest, fps=24) == 12
    with VideoReader(str(dest)) as copy, VideoReader(str(folder), fps=24) as source:
        assert (copy.meta.width, copy.meta.height) == size
        assert copy.n_frames == 12 and copy.meta.fps == pytest.approx(24)
        np.testing.assert_allclose(copy.timestamps(), source.timestamps(), atol=1e-3)
        for i in (0, 5, 11):  # each frame is itself (lossy, but close), not a neighbour
            got = copy.frames([i])[0]
            assert _mean_abs_diff(got, source.frames([i])[0]) < 2
            assert _mean_abs_diff(got, _smooth_frame(i, *size)) < _mean_abs_diff(got, _smooth_frame(i + 1, *size))


def test_clip_starts_at_its_first_frame(tmp_path: Path) -> None:
    src = make_mp4(tmp_path / "src.mp4", n=30, fps=30)
    dest = tmp_path / "clip.mp4"
    assert export_mp4(str(src), dest, start=10, stop=20) == 10
    with VideoReader(str(dest)) as clip, VideoReader(str(src)) as source:
        assert clip.n_frames == 10 and clip.meta.fps == pytest.approx(30)
        assert _mean_abs_diff(clip.frames([0])[0], source.frames([10])[0]) < 4
        assert _mean_abs_diff(clip.frames([9])[0], source.frames([19])[0]) < 4


def test_same_input_same_bytes(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "frames", n=8)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    export_mp4(str(folder), a, fps=10)
    export_mp4(str(folder), b, fps=10)
    assert a.read_bytes() == b.read_bytes()


def test_bad_requests_name_the_problem(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "frames", n=4)
    with pytest.raises(ValueError, match=r"frames \[2, 9\)"):
        export_mp4(str(folder), tmp_path / "x.mp4", fps=10, start=2, stop=9)
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*tmp*"))  # nothing half-written
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "empty.mp4", [], 10)
    with pytest.raises(ValueError, match="frame 1 is"):
        write_mp4(tmp_path / "mixed.mp4", [frame_pattern(0, 8, 8), frame_pattern(1, 10, 8)], 10)
