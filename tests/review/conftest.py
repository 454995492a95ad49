"""A real Label Studio for the review tests, and a dataset of two tracked videos.

The server starts once per session on a free loopback port. Its data directory is a
copy of a migrated template (``.cache/label-studio-template`` in the repository, made by
the first run, ~50 s of migrations), so later sessions start it in a few seconds.
Skipped when label-studio or label-studio-sdk is not installed (``make install`` puts
the server in ``.venv-ls``).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tubelet.review.client import ReviewServerError

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("TUBELET_LS_TEMPLATE", REPO / ".cache" / "label-studio-template"))
# Test-only credentials of a server that lives for one session on 127.0.0.1.
TOKEN = "tubelet-test-token-5f1c2a9e8d7b6c5a4f3e2d1c"
PASSWORD = "tubelet-test-password"
USERNAME = "reviewer@tubelet.test"


@dataclass
class LabelStudioUnderTest:
    url: str
    token: str
    username: str
    password: str
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioUnderTest]:
    pytest.importorskip("label_studio_sdk")
    from tubelet.review.server import find_label_studio, start_server

    try:
        find_label_studio()
    except ReviewServerError as error:
        pytest.skip(str(error))
    saved = {
        k: os.environ.get(k)
        for k in ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USERNAME", "LABEL_STUDIO_URL")
    }
    os.environ.update(LABEL_STUDIO_API_KEY=TOKEN, LABEL_STUDIO_PASSWORD=PASSWORD, LABEL_STUDIO_USERNAME=USERNAME)
    try:
        if not (TEMPLATE / "label_studio.sqlite3").is_file():
            shutil.rmtree(TEMPLATE, ignore_errors=True)
            start_server(TEMPLATE, port=_free_port(), wait_s=600).stop()  # migrations, once
        data_dir = tmp_path_factory.mktemp("label-studio") / "data"
        shutil.copytree(TEMPLATE, data_dir, ignore=shutil.ignore_patterns("*.pid", "*.log", "media"))
        server = start_server(data_dir, port=_free_port(), wait_s=300)
        os.environ["LABEL_STUDIO_URL"] = server.url  # for the CLI tests
        try:
            yield LabelStudioUnderTest(server.url, TOKEN, USERNAME, PASSWORD, data_dir)
        finally:
            server.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_mirrored_h264(src: Path, dst: Path, fps: int) -> None:
    """``src`` mirrored left-right, re-encoded as H.264 at ``fps``: a second, browser-playable video."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        source = inp.streams.video[0]
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p"
        for frame in inp.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")[:, ::-1].copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="session")
def tracked_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """strefer (lite) over two real videos: the sample (24 fps, MPEG-4 part 2, which
    browsers cannot play, so pushing makes a proxy) and its mirror (30 fps, H.264),
    which lives under a symbolically linked folder (``videos -> real-videos``), as
    datasets on mounted or shared disks often do."""
    pytest.importorskip("cv2")
    from tubelet.cli.sample import write_sample
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    tmp = tmp_path_factory.mktemp("review-source")
    sample = write_sample(tmp / "sample")
    (tmp / "real-videos").mkdir()
    (tmp / "videos").symlink_to("real-videos", target_is_directory=True)
    mirror = tmp / "videos" / "mirror30.mp4"
    write_mirrored_h264(Path(sample.video), mirror, fps=30)
    videos = [{"uri": str(sample.video), "video_id": "scene"}, {"uri": str(mirror), "video_id": "mirror30"}]
    config = RunConfig(
        pipeline="strefer",
        output=str(tmp / "out"),
        runner="inline",
        videos=videos,
        params={"track": {"profile": "lite", "keyframe_fps": 4}},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.done == 2 and summary.failed == 0
    return tmp / "out"


@pytest.fixture
def dataset(tracked_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tracked dataset (pulls write to it)."""
    copy = tmp_path / "dataset"
    shutil.copytree(tracked_dataset, copy)
    return copy
