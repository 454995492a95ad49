"""Videos on object storage (a real S3-protocol server on loopback): fetched into a bounded
per-process cache, decoded like local files; retries, errors, eviction and clean-up.

The retry tests use a filesystem that fails on purpose in front of the real one; every
other test goes through s3fs to the moto server.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import pytest

from tests.engine.videos import make_mp4
from tubelet.cli.main import main as tubelet
from tubelet.engine import remote_media
from tubelet.engine.probe import ProbeVideo
from tubelet.engine.remote_media import (
    CACHE_BYTES_ENV,
    CACHE_DIR_ENV,
    MediaCache,
    RemoteMediaError,
    RetryPolicy,
    failure_kind,
    media_cache,
    parse_bytes,
    remove_dead_caches,
)
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoError, VideoReader, probe

ROOT = Path(__file__).resolve().parents[2]
TUBELET = str(Path(sys.executable).parent / "tubelet")


@dataclass
class Remote:
    """What the module uploads: the sample's mp4 and frame folder, and small distinct mp4s."""

    video: str
    frames: str
    clips: list[str]
    clip_sizes: list[int]
    missing: str


@pytest.fixture(scope="module")
def remote(s3, synthetic_sample, tmp_path_factory) -> Remote:
    fs = s3.fs()
    base = s3.url("media")
    fs.put_file(str(synthetic_sample.video), f"{base}/scene.mp4")
    frames = sorted(synthetic_sample.frames_dir.iterdir())
    fs.put([str(p) for p in frames], [f"{base}/frames/{p.name}" for p in frames])
    fs.pipe_file(f"{base}/frames/notes.txt", b"not a frame")  # ignored, as in a local folder
    fs.pipe_file(f"{base}/frames/sub/00000.jpg", frames[0].read_bytes())  # not directly under the prefix
    local = tmp_path_factory.mktemp("clips")
    clips = [make_mp4(local / f"clip{i}.mp4", n=24 + 6 * i) for i in range(4)]
    for clip in clips:
        fs.put_file(str(clip), f"{base}/clips/{clip.name}")
    return Remote(
        video=f"{base}/scene.mp4",
        frames=f"{base}/frames",
        clips=[f"{base}/clips/{c.name}" for c in clips],
        clip_sizes=[c.stat().st_size for c in clips],
        missing=f"{base}/nope.mp4",
    )


@pytest.fixture
def process_cache(tmp_path, monkeypatch) -> Path:
    """This process's cache, fresh, under tmp_path (what VideoReader and probe use)."""
    root = tmp_path / "process-cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(root))
    monkeypatch.delenv(CACHE_BYTES_ENV, raising=False)
    remote_media.reset_media_cache()
    yield root
    remote_media.reset_media_cache()


@pytest.fixture
def make_cache(tmp_path):
    """``make_cache(budget, **options)``: a MediaCache under tmp_path that never really sleeps."""
    made: list[MediaCache] = []

    def make(budget: int, **options) -> MediaCache:
        options.setdefault("sleep", lambda s: None)
        cache = MediaCache(tmp_path / "cache", budget, **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- decoding through the cache ----------------------------------------------------------


@pytest.mark.usefixtures("video_backend")
@pytest.mark.parametrize("kind", ["file", "frames"])
def test_s3_videos_decode_like_their_local_files(kind, remote, synthetic_sample, process_cache):
    uri, local, fps = {
        "file": (remote.video, synthetic_sample.video, None),
        "frames": (remote.frames, synthetic_sample.frames_dir, synthetic_sample.fps),
    }[kind]
    assert probe(uri, fps=fps) == probe(str(local), fps=fps)
    indices = [0, 1, 30, 47, 71]
    with VideoReader(uri, fps=fps) as theirs, VideoReader(str(local), fps=fps) as ours:
        assert theirs.n_frames == ours.n_frames == synthetic_sample.n_frames
        np.testing.assert_array_equal(theirs.timestamps(), ours.timestamps())
        np.testing.assert_array_equal(theirs.frames(indices), ours.frames(indices))
        np.testing.assert_array_equal(theirs.frames(indices, size=(320, 180)), ours.frames(indices, size=(320, 180)))
    assert media_cache().stats.downloads == 1  # probe and reader share the copy


def test_probe_stage_keeps_the_s3_uri(remote, process_cache):
    tasks = [
        VideoTask("scene", remote.video),
        VideoTask("frames", remote.frames, fps=24),
        VideoTask("gone", remote.missing),
    ]
    by_id = {t.video_id: t for t in run_stage(ProbeVideo(), tasks)}
    assert by_id["scene"].video.uri == remote.video and by_id["scene"].video.n_frames == 72
    assert by_id["frames"].video.uri == remote.frames and by_id["frames"].video.codec == "jpeg"
    (reject,) = by_id["gone"].rejects
    assert reject.reason.startswith("VideoError: missing: ") and remote.missing in reject.reason


def test_prefix_forms_and_a_prefix_without_frames(s3, remote, process_cache):
    with VideoReader(remote.frames + "/", fps=24) as video:  # a trailing slash names the same folder
        assert video.n_frames == 72
    empty = s3.url("no-frames")
    s3.fs().pipe_file(f"{empty}/notes.txt", b"no frames here")
    with pytest.raises(VideoError) as error:
        VideoReader(empty, fps=24)
    assert error.value.kind == "no_frames" and error.value.uri == empty


def test_a_second_read_does_not_download_again(remote, make_cache):
    cache = make_cache(10**9)
    with cache.fetch(remote.video) as first:
        first_path, size = first.path, first.path.stat().st_size
    with cache.fetch(remote.video) as second:
        assert second.path == first_path
    assert (cache.stats.downloads, cache.stats.hits, cache.stats.bytes_downloaded) == (1, 1, size)


def test_the_cache_stays_within_its_budget(remote, make_cache):
    assert remote.clip_sizes == sorted(remote.clip_sizes)
    budget = remote.clip_sizes[2] + remote.clip_sizes[3]  # room for any two clips, not three
    cache = make_cache(budget)
    for uri in remote.clips:
        with cache.fetch(uri) as lease:
            with VideoReader(str(lease.path)) as video:
                assert video.n_frames > 0
        assert cache.used_bytes <= budget and disk_bytes(cache.path) <= budget
    assert cache.stats.downloads == 4 and cache.stats.evictions == 2
    for uri in remote.clips[2:]:  # the two most recent ones stayed
        with cache.fetch(uri):
            pass
    assert cache.stats.downloads == 4 and cache.stats.hits == 2


def test_an_open_readers_file_is_not_evicted(remote, make_cache):
    cache = make_cache(max(remote.clip_sizes) + 1)  # room for one clip
    held = cache.fetch(remote.clips[0])
    for uri in remote.clips[1:]:
        with cache.fetch(uri):
            pass
    assert held.path.is_file() and held.path.stat().st_size == remote.clip_sizes[0]
    with VideoReader(str(held.path)) as video:
        assert video.frames([0, video.n_frames - 1]).shape[0] == 2
    held.release()
    assert cache.used_bytes <= cache.budget_bytes


def test_a_reader_holds_its_file_until_closed(remote, process_cache, monkeypatch):
    monkeypatch.setenv(CACHE_BYTES_ENV, "1")  # nothing fits: every file goes once it is unused
    remote_media.reset_media_cache()
    with VideoReader(remote.clips[0]) as first:
        with VideoReader(remote.clips[1]) as second:
            second.frames([0])
        first.frames([0, first.n_frames - 1])  # still readable: its copy was kept
    assert media_cache().used_bytes == 0 and disk_bytes(media_cache().path) == 0


def test_a_file_bigger_than_the_budget_is_fetched_used_and_dropped(remote, make_cache):
    cache = make_cache(1000)
    with cache.fetch(remote.video) as lease:
        with VideoReader(str(lease.path)) as video:
            assert video.n_frames == 72
    assert not lease.path.exists() and cache.used_bytes == 0


def test_a_replaced_object_is_fetched_again(s3, remote, make_cache):
    fs = s3.fs()
    uri = s3.url("replaced.mp4")
    fs.copy(remote.clips[0], uri)
    cache = make_cache(10**9)
    with cache.fetch(uri) as lease:
        assert lease.path.stat().st_size == remote.clip_sizes[0]
    fs.copy(remote.clips[1], uri)
    with cache.fetch(uri) as lease:
        assert lease.path.stat().st_size == remote.clip_sizes[1]
    assert cache.stats.downloads == 2


# -- errors and retries ------------------------------------------------------------------


class FlakyFilesystem:
    """The real filesystem behind a door that fails the first calls of ``get`` or ``info``."""

    def __init__(self, fs, get_failures=(), info_failures=()) -> None:
        self.fs = fs
        self.get_failures = list(get_failures)
        self.info_failures = list(info_failures)
        self.calls = {"get": 0, "info": 0}
        self.objects_asked: list[int] = []  # objects per call of get

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def info(self, path):
        self.calls["info"] += 1
        if self.info_failures:
            raise self.info_failures.pop(0)
        return self.fs.info(path)

    def get(self, rpaths, lpaths):
        self.calls["get"] += 1
        self.objects_asked.append(len(rpaths))
        if not self.get_failures:
            return self.fs.get(rpaths, lpaths)
        failure = self.get_failures.pop(0)
        if failure in ("partial", "short"):
            # all objects but the last land, then half of the last; then a reset (or nothing)
            if len(rpaths) > 1:
                self.fs.get(rpaths[:-1], lpaths[:-1])
            data = self.fs.cat_file(rpaths[-1])
            Path(lpaths[-1]).write_bytes(data[: len(data) // 2])
            if failure == "short":
                return None
            raise ConnectionResetError("connection reset by peer")
        raise failure


def flaky(fs: FlakyFilesystem):
    def resolve(uri: str):
        return fs, fsspec.core.url_to_fs(uri)[1]

    return resolve


def test_transient_failures_are_retried_then_succeed(s3, remote, make_cache):
    from botocore.exceptions import ClientError, EndpointConnectionError

    throttled = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")
    fs = FlakyFilesystem(
        s3.fs(),
        get_failures=[
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            TimeoutError("read timed out"),
            OSError(errno.EBUSY, "Please reduce your request rate."),  # how s3fs reports SlowDown
            throttled,
            "partial",
            "short",
        ],
        info_failures=[ConnectionResetError("reset")],
    )
    waits: list[float] = []
    cache = make_cache(10**9, resolve=flaky(fs), sleep=waits.append, retry=RetryPolicy(attempts=8, jitter=0))
    with cache.fetch(remote.video) as lease:
        assert lease.path.read_bytes() == s3.fs().cat_file(remote.video)
    assert fs.calls == {"get": 7, "info": 2}
    assert waits == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # info's retry, then get's, capped at 8 s
    assert [p.name for p in cache.path.iterdir()] == [lease.path.parent.name]  # no staging folder left


def test_frames_already_complete_are_not_fetched_again_on_retry(s3, remote, make_cache):
    fs = FlakyFilesystem(s3.fs(), get_failures=["partial"])
    cache = make_cache(10**9, resolve=flaky(fs))
    with cache.fetch(remote.frames) as lease:
        assert sorted(p.name for p in lease.path.iterdir()) == [f"{i:05d}.jpg" for i in range(72)]
    assert fs.objects_asked == [72, 1]


def test_persistent_failures_give_up_after_every_attempt(s3, remote, make_cache):
    fs = FlakyFilesystem(s3.fs(), get_failures=[ConnectionRefusedError("refused")] * 10)
    waits: list[float] = []
    cache = make_cache(10**9, resolve=flaky(fs), sleep=waits.append, retry=RetryPolicy(attempts=3))
    with pytest.raises(RemoteMediaError) as caught:
        cache.fetch(remote.video)
    assert caught.value.kind == "unreachable" and caught.value.attempts == 3
    assert str(caught.value).startswith("unreachable: gave up after 3 attempts (ConnectionRefusedError: refused)")
    assert remote.video in str(caught.value)
    assert fs.calls["get"] == 3 and len(waits) == 2 and all(0.25 <= w <= 1.0 for w in waits)
    assert list(cache.path.iterdir()) == [] and cache.used_bytes == 0


def test_short_downloads_are_never_kept(s3, remote, make_cache):
    fs = FlakyFilesystem(s3.fs(), get_failures=["short"] * 2)
    cache = make_cache(10**9, resolve=flaky(fs), retry=RetryPolicy(attempts=2))
    with pytest.raises(RemoteMediaError, match=r"got \d+ of \d+ bytes") as caught:
        cache.fetch(remote.video)
    assert caught.value.kind == "unreachable"
    assert list(cache.path.iterdir()) == []


def test_a_missing_object_fails_at_once_naming_the_uri(s3, remote, make_cache, process_cache):
    fs = FlakyFilesystem(s3.fs())
    cache = make_cache(10**9, resolve=flaky(fs))
    with pytest.raises(RemoteMediaError) as caught:
        cache.fetch(remote.missing)
    assert caught.value.kind == "missing" and fs.calls == {"info": 1, "get": 0}
    for uri in (remote.missing, "s3://tubelet-no-such-bucket-4c1e/x.mp4"):
        with pytest.raises(VideoError) as error:
            VideoReader(uri)
        assert error.value.kind == "missing" and error.value.uri == uri
        assert str(error.value) == f"missing: no object or prefix at this uri [{uri}]"


@pytest.mark.usefixtures("video_backend")
def test_an_empty_or_unreadable_object_is_rejected_like_a_local_file(s3, process_cache, monkeypatch):
    monkeypatch.setenv(CACHE_BYTES_ENV, "0")  # whatever no reader holds is dropped
    remote_media.reset_media_cache()
    empty, text = s3.url("empty.mp4"), s3.url("notes.mp4")
    s3.fs().pipe_file(empty, b"")
    s3.fs().pipe_file(text, b"this is not a video\n" * 20)
    for uri, kind in [(empty, "empty"), (text, "not_a_video")]:
        with pytest.raises(VideoError) as error:
            probe(uri)
        assert error.value.kind == kind and error.value.uri == uri
    assert media_cache().used_bytes == 0  # the readers that failed released their copies


def test_an_unknown_scheme_is_unsupported(process_cache):
    with pytest.raises(VideoError) as error:
        probe("nosuchscheme://bucket/video.mp4")
    assert error.value.kind == "unsupported"


def test_failure_kinds():
    from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    wrapped = OSError(errno.EIO, "an S3 error s3fs does not know")
    wrapped.__cause__ = client_error("Whatever", 500)
    assert failure_kind(FileNotFoundError("x")) == "missing"
    assert failure_kind(PermissionError("AccessDenied")) == "denied"
    assert failure_kind(NoCredentialsError()) == "denied"
    assert failure_kind(ValueError("bad")) == "fetch_failed"
    assert failure_kind(OSError(errno.ENOSPC, "No space left on device")) == "fetch_failed"
    assert failure_kind(client_error("InvalidArgument", 400)) == "fetch_failed"
    for transient in (
        ConnectionResetError(),
        TimeoutError(),
        ReadTimeoutError(endpoint_url="http://x"),
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        client_error("Anything", 502),
        OSError(errno.EBUSY, "SlowDown"),
        wrapped,
    ):
        assert failure_kind(transient) is None, transient


def test_retry_delays_are_capped_and_jittered():
    policy = RetryPolicy(first_delay_s=0.5, max_delay_s=4.0, jitter=0.5)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        assert cap / 2 <= policy.delay(retry) <= cap
    assert [RetryPolicy(jitter=0).delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_parse_bytes():
    assert [parse_bytes(t) for t in ("1048576", "512M", "4G", "1.5GiB", "2k")] == [2**20, 2**29, 2**32, 3 * 2**29, 2048]
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes("lots")


# -- clean-up ----------------------------------------------------------------------------

CHILD = """
import os, signal, sys
from tubelet.engine.remote_media import fetch
lease = fetch(sys.argv[1])
assert lease.path.is_file()
if sys.argv[2] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_removes_its_files_at_exit_and_a_new_cache_removes_the_dead(remote, tmp_path, make_cache):
    root = tmp_path / "cache"
    env = {**os.environ, CACHE_DIR_ENV: str(root)}
    normal = subprocess.run([sys.executable, "-c", CHILD, remote.video, "normal"], env=env, timeout=120)
    assert normal.returncode == 0 and list(root.iterdir()) == []
    killed = subprocess.run([sys.executable, "-c", CHILD, remote.video, "killed"], env=env, timeout=120)
    assert killed.returncode < 0
    (left,) = [p for p in root.iterdir() if p.is_dir()]
    assert disk_bytes(left) > 0 and (root / f"{left.name}.lock").exists()

    alive = make_cache(10**9)  # sweeps the dead process's folder, keeps its own
    assert sorted(p.name for p in root.iterdir()) == sorted([alive.path.name, f"{alive.path.name}.lock"])
    assert remove_dead_caches(root) == [] and alive.path.is_dir()  # a live cache is never swept
    alive.close()
    assert list(root.iterdir()) == []


def test_a_forked_child_makes_its_own_cache_and_leaves_the_parents_alone(process_cache):
    parent = media_cache()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            child = media_cache()
            ok = child is not parent and child.owner_pid == os.getpid() and child.path != parent.path
            child.close()
            parent.close()  # the parent's: does nothing here
            os.write(write, b"1" if ok and parent.path.is_dir() else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    assert not parent.closed and remove_dead_caches(process_cache) == []
    assert sorted(p.name for p in process_cache.iterdir()) == sorted([parent.path.name, f"{parent.path.name}.lock"])


# -- end to end --------------------------------------------------------------------------


@pytest.mark.parametrize("runner", ["inline", "process"])
def test_ingest_run_from_s3_videos_to_an_s3_output(runner, remote, s3, tmp_path, capsys):
    manifest = tmp_path / "ingest.yaml"
    manifest.write_text(
        "pipeline: ingest\noutput: out\nshard_size: 1\nvideos:\n"
        f"  - {{uri: '{remote.video}', video_id: s3-scene}}\n"
        f"  - {{uri: '{remote.frames}', video_id: s3-frames, fps: 24}}\n"
    )
    out = s3.url(f"ingest-{runner}")
    cache_root = tmp_path / "media-cache"
    env = {**os.environ, CACHE_DIR_ENV: str(cache_root)}
    cmd = [TUBELET, "run", str(manifest), "--out", out, "--runner", runner, "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 done, 0 failed" in done.stdout
    assert list(cache_root.iterdir()) == []  # every process removed its copies at exit

    assert tubelet(["status", out]) == 0
    assert "videos: 2 done, 0 failed, 0 pending" in capsys.readouterr().out
    query = "SELECT video_id, uri, n_frames, fps, codec FROM videos ORDER BY video_id"
    assert tubelet(["query", out, query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"video_id": "s3-frames", "uri": remote.frames, "n_frames": 72, "fps": 24.0, "codec": "jpeg"},
        {"video_id": "s3-scene", "uri": remote.video, "n_frames": 72, "fps": 24.0, "codec": "mpeg4"},
    ]
    assert tubelet(["validate", out]) == 0
    assert ": OK" in capsys.readouterr().out
