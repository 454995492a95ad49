"""The two video backends side by side (decord, PyAV), how one is chosen, and a run on a
machine without decord (hidden from a subprocess)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

from tests.engine.videos import make_mp4
from tubelet.engine.video import VideoReader
from tubelet.engine.video_backend import (
    ENV_VAR,
    VideoBackendError,
    decord_import_error,
    requested_backend,
    resolve_backend,
    set_video_backend,
)

ROOT = Path(__file__).resolve().parents[2]
needs_decord = pytest.mark.skipif(decord_import_error() is not None, reason="decord is not installed")

#: Python run first in a subprocess: ``import decord`` fails there, as on a machine
#: without its wheel (macOS arm64, Linux aarch64).
HIDE_DECORD = textwrap.dedent(
    """
    import sys

    class RefuseDecord:
        def find_spec(self, name, path=None, target=None):
            if name == "decord" or name.startswith("decord."):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
            return None

    sys.meta_path.insert(0, RefuseDecord())
    """
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    ticks = [0, 1, 2, 3, 5, 7, 9, 10, 11, 12, 15, 18, 21, 24, 25, 26, 27, 28, 29, 30]
    return {
        "index at end": make_mp4(folder / "clip.mp4"),
        "index first": make_mp4(folder / "faststart.mp4", faststart=True),
        "rotated 90": make_mp4(folder / "phone.mp4", n=30, rotation=90),
        "variable rate": make_mp4(folder / "vfr.mp4", n=len(ticks), ticks=ticks),
        "640x360": make_mp4(folder / "wide.mp4", n=40, width=640, height=360),
    }


def _read(path: Path, backend: str, sizes: list[tuple[int, int] | None]) -> dict[str, object]:
    with VideoReader(str(path), backend=backend) as video:
        indices = video.sample_indices()
        return {
            "meta": video.meta,
            "timestamps": video.timestamps(),
            "2 fps": video.sample_indices(fps=2),
            "8 spread": video.sample_indices(max_frames=8),
            "frames": {size: video.frames(indices, size=size) for size in sizes},
        }


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@needs_decord
@pytest.mark.parametrize("name", ["index at end", "index first", "rotated 90", "variable rate", "640x360"])
def test_same_indices_times_and_pixels_on_both_backends(clips: dict[str, Path], name: str) -> None:
    """Both decode with FFmpeg's H.264 decoder (bit-exact by the standard) and convert
    with the same filter graph (swscale, bilinear): every pixel is equal at native size
    and scaled — except where only the width changes (below)."""
    sizes: list[tuple[int, int] | None] = [None, (40, 30), (30, 40), (96, 32), (200, 120)]
    decord, pyav = (_read(clips[name], backend, sizes) for backend in ("decord", "pyav"))
    assert decord["meta"] == pyav["meta"]
    assert np.array_equal(decord["timestamps"], pyav["timestamps"])  # type: ignore[arg-type]
    assert decord["2 fps"] == pyav["2 fps"] and decord["8 spread"] == pyav["8 spread"]
    for size in sizes:
        assert _max_diff(decord["frames"][size], pyav["frames"][size]) == 0, size  # type: ignore[index]


@needs_decord
def test_scaling_only_the_width_differs_a_little(clips: dict[str, Path]) -> None:
    """96x64 -> 64x64 (the height kept): the swscale of decord's FFmpeg 4.1 and of PyAV's
    FFmpeg 8 differ slightly (measured: mean 0.2, max 33 levels). 48 px wide trips decord's
    scaler, so decord decodes at native size and resizes with Pillow: close, not equal."""
    sizes: list[tuple[int, int] | None] = [(64, 64), (48, 32)]
    decord, pyav = (_read(clips["index at end"], backend, sizes)["frames"] for backend in ("decord", "pyav"))
    for size, mean in (((64, 64), 0.5), ((48, 32), 4.0)):
        a, b = decord[size].astype(int), pyav[size].astype(int)  # type: ignore[index]
        assert np.abs(a - b).mean() < mean and np.abs(a - b).max() < 60, size


@needs_decord
@pytest.mark.assets
def test_same_on_the_real_videos(assets: Path) -> None:
    videos = sorted((assets / "videos" / "sam2-demo").glob("*.mp4"))
    assert videos
    for path in videos:
        got = {}
        for backend in ("decord", "pyav"):
            with VideoReader(str(path), backend=backend) as video:
                spread = video.sample_indices(max_frames=6)
                got[backend] = (
                    video.meta,
                    video.timestamps(),
                    video.sample_indices(fps=2),
                    video.frames(spread),
                    video.frames(spread, size=(448, 252)),
                )
        d, p = got["decord"], got["pyav"]
        assert d[0] == p[0] and np.array_equal(d[1], p[1]) and d[2] == p[2], path.name
        assert _max_diff(d[3], p[3]) == 0 and _max_diff(d[4], p[4]) == 0, path.name


@needs_decord
def test_timestamps_are_decords_own(clips: dict[str, Path]) -> None:
    import decord

    for name in ("index at end", "variable rate"):
        raw = decord.VideoReader(str(clips[name])).get_frame_timestamp(np.arange(20))[:, 0]
        with VideoReader(str(clips[name]), backend="pyav") as video:
            assert np.array_equal(video.timestamps()[:20], np.round(raw.astype(np.float64), 6))


# -- PyAV's seeks ----------------------------------------------------------------------------


def test_pyav_seeks_to_keyframes_and_decodes_forward(clips: dict[str, Path]) -> None:
    """A frame is reached from its keyframe, never from the start, and a later call that
    continues forward needs no seek."""
    with VideoReader(str(clips["index at end"]), backend="pyav") as video:
        source = video._source  # the work counters of PyAVSource
        keys = [int(k) for k in source._index.keyframes]
        assert len(keys) >= 4  # x264 was asked for a keyframe every 12 frames

        def key(i: int) -> int:
            return max(k for k in keys if k <= i)

        video.frames([40])
        assert (source.seeks, source.decoded) == (1, 40 - key(40) + 1)
        video.frames([41, 43])
        assert (source.seeks, source.decoded) == (1, 43 - key(40) + 1)  # forward: no seek
        before = source.decoded
        video.frames([2, 14, 47])  # back to the start, then two more keyframes
        assert source.seeks == 4 and source.decoded - before == sum(i - key(i) + 1 for i in (2, 14, 47))
        video.frames([5])  # backwards: seek again
        assert source.seeks == 5 and source.restarts == 0


def test_pyav_sparse_sampling_decodes_a_fraction_of_the_frames(clips: dict[str, Path]) -> None:
    with VideoReader(str(clips["index at end"]), backend="pyav") as video:
        full = video.frames(range(48))
        source = video._source
        keys = [int(k) for k in source._index.keyframes]
        picked = video.sample_indices(max_frames=4)  # 0, 12, 24, 36
        before = source.decoded
        assert np.array_equal(video.frames(picked), full[picked])
        work = source.decoded - before
        assert work == sum(i - max(k for k in keys if k <= i) + 1 for i in picked) < 48 - 36


# -- choosing ------------------------------------------------------------------------------


def test_choice_order_reader_then_process_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = set_video_backend(None)
    try:
        monkeypatch.delenv(ENV_VAR, raising=False)
        assert requested_backend() == "auto"
        assert resolve_backend() == ("pyav" if decord_import_error() else "decord")
        monkeypatch.setenv(ENV_VAR, "PyAV")
        assert requested_backend() == "pyav"
        set_video_backend("auto")
        assert requested_backend() == "auto"  # the process's default wins over the environment
        assert resolve_backend("pyav") == "pyav"
        monkeypatch.setenv(ENV_VAR, "ffmpeg")
        set_video_backend(None)
        with pytest.raises(VideoBackendError, match=f"{ENV_VAR}: unknown video backend 'ffmpeg'"):
            requested_backend()
        with pytest.raises(VideoBackendError, match="choose one of auto, decord, pyav"):
            set_video_backend("opencv")
    finally:
        set_video_backend(previous)


def test_manifest_and_cli_option(tmp_path: Path) -> None:
    from tubelet.cli.main import build_parser
    from tubelet.engine.manifest import ManifestError, load_manifest

    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump({"pipeline": "ingest", "output": "out", "videos": [{"uri": "a.mp4"}]}))
    assert load_manifest(manifest).video_backend is None
    assert load_manifest(manifest, ["video_backend=pyav"]).video_backend == "pyav"
    with pytest.raises(ManifestError, match="video_backend"):
        load_manifest(manifest, ["video_backend=opencv"])
    args = build_parser().parse_args(["run", str(manifest), "--video-backend", "pyav"])
    assert args.video_backend == "pyav"


# -- without decord ----------------------------------------------------------------------------


def _without_decord(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop(ENV_VAR, None)
    return subprocess.run(
        [sys.executable, "-c", HIDE_DECORD + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_a_run_without_decord_decodes_with_pyav_in_every_worker(tmp_path: Path) -> None:
    """decord cannot be imported in the driver (the process pool's workers, forked from a
    fresh server, could import it: they must still use what the driver chose)."""
    clip = make_mp4(tmp_path / "clip.mp4")
    notes = tmp_path / "notes"
    notes.mkdir()
    stages = [{"kind": "make"}, {"kind": "decoder", "video": str(clip), "notes": str(notes)}]
    (tmp_path / "probe.yaml").write_text(
        yaml.safe_dump({"pipeline": "ingest", "output": "probed", "videos": [{"uri": str(clip), "video_id": "c"}]})
    )
    (tmp_path / "decode.yaml").write_text(
        yaml.safe_dump(
            {
                "pipeline": "tests.engine.pipelines_for_tests:build",
                "output": "decoded",
                "runner": "process",
                "ray": {"num_cpus": 2},
                "params": {"stages": stages},
                "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i}"} for i in range(4)],
            }
        )
    )
    done = _without_decord(
        """
        import sys
        from tubelet.cli.main import main
        from tubelet.engine.video import VideoReader
        assert "decord" not in sys.modules
        with VideoReader("clip.mp4") as video:
            print("reader:", video.backend)
        codes = [main(["run", name, "--no-progress"]) for name in ("probe.yaml", "decode.yaml")]
        codes.append(main(["run", "probe.yaml", "--out", "again", "--video-backend", "decord", "--no-progress"]))
        print("exit codes:", codes)
        """,
        tmp_path,
    )
    assert "reader: pyav" in done.stdout, done.stdout + done.stderr
    assert "exit codes: [0, 0, 2]" in done.stdout, done.stdout + done.stderr
    # asking for decord: one line naming the option, and nothing written
    assert "video backend 'decord' was asked for (video_backend in the manifest, tubelet run --video-backend" in (
        done.stderr
    )
    assert not (tmp_path / "again").exists()
    # the run worked, and its log says which backend and why
    [videos] = [pq.read_table(p).to_pylist() for p in (tmp_path / "probed" / "data" / "videos").glob("*.parquet")]
    assert [(v["video_id"], v["n_frames"], v["width"], v["codec"]) for v in videos] == [("c", 48, 96, "h264")]
    for out in ("probed", "decoded"):
        [log] = (tmp_path / out / "meta" / "logs").glob("*.jsonl")
        events = [json.loads(line) for line in log.read_text().splitlines()]
        [chosen] = [e for e in events if e.get("event") == "video_backend"]
        assert chosen["video_backend"] == "pyav" and "decord cannot be imported" in chosen["msg"], chosen
    seen = [p.read_text().split(";") for p in notes.iterdir()]
    assert len(seen) >= 2 and {backend for backend, _ in seen} == {"pyav"}, seen
    assert len({digest for _, digest in seen}) == 1
    with VideoReader(str(clip), backend="pyav") as video:
        assert seen[0][1] == hashlib.sha1(video.frames([0]).tobytes()).hexdigest()[:12]


def test_decoding_without_decord_in_a_fresh_process(tmp_path: Path) -> None:
    make_mp4(tmp_path / "clip.mp4", n=24)
    done = _without_decord(
        """
        from tubelet.engine.video import VideoReader, probe
        from tubelet.engine.video_backend import VideoBackendError, resolve_backend
        meta = probe("clip.mp4")
        with VideoReader("clip.mp4", size=(48, 32)) as video:
            print(video.backend, meta.n_frames, video.frames([3, 20]).shape)
        try:
            resolve_backend("decord")
        except VideoBackendError as error:
            print("refused:", error)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "pyav 24 (2, 32, 48, 3)" in done.stdout
    assert "refused: video backend 'decord' was asked for" in done.stdout
    assert "use video_backend 'pyav' or 'auto'" in done.stdout


def test_decord_is_required_only_where_it_has_wheels() -> None:
    """decord 0.6.0's wheels: py3-none-manylinux2010_x86_64 and py3-none-win_amd64 (its
    macOS wheels stop at CPython 3.8): elsewhere pip must not look for it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [decord] = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "decord"]
    assert decord.marker is not None
    where = {
        ("Linux", "x86_64"): True,
        ("Windows", "AMD64"): True,
        ("Linux", "aarch64"): False,
        ("Darwin", "arm64"): False,
        ("Darwin", "x86_64"): False,
        ("Windows", "ARM64"): False,
    }
    for (system, machine), needed in where.items():
        assert decord.marker.evaluate({"platform_system": system, "platform_machine": machine}) is needed
    assert any(Requirement(r).name == "av" for r in project["dependencies"])  # what decodes elsewhere
