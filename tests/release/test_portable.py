"""Portable releases: videos are ``media/<id>.<ext>`` relative to the release in every table and
rendering, no file of a release or of a report names a path of the building machine (with and
without media), an image-folder video becomes an mp4 with the same frames and rate that the
release's masks and boxes still index, and meta/media.jsonl says what goes where."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.release.release_data import absolute_paths, machine_paths, media_source
from tubelet.cli.sample import SampleInfo
from tubelet.engine.video import VideoReader
from tubelet.preview.report import write_report
from tubelet.release.build import ReleaseOptions, data_files, release
from tubelet.release.media import VideoSource as Src
from tubelet.release.media import plan_media, safe_name
from tubelet.schemas.rle import decode_rle

SCENE, FRAMES = "sample-scene", "sample-scene-frames"  # the sample's mp4 and its frame folder


@pytest.fixture(scope="module")
def media_ds(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> Path:
    pytest.importorskip("cv2")
    return media_source(tmp_path_factory.mktemp("portable") / "ds", synthetic_sample)


@pytest.fixture(scope="module")
def releases(media_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same dataset released without media, with media, and with media again."""
    tmp = tmp_path_factory.mktemp("portable-releases")
    out = {}
    for name, with_media in (("bare", False), ("media", True), ("media2", True)):
        release(media_ds, tmp / name, ReleaseOptions(version="1", with_media=with_media), created_at="2000-01-01")
        out[name] = tmp / name
    return out


def _needles(tmp_path_factory: pytest.TempPathFactory, *more: Path) -> list[str]:
    return machine_paths(tmp_path_factory.getbasetemp(), Path.cwd(), Path.home(), *more)


def _videos(folder: Path) -> dict[str, dict]:
    return {
        r["video_id"]: r
        for paths in data_files(folder, "videos").values()
        for p in paths
        for r in pq.read_table(p).to_pylist()
    }


def test_no_machine_path_in_a_release(
    releases: dict[str, Path],
    media_ds: Path,
    synthetic_sample: SampleInfo,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    needles = _needles(tmp_path_factory, synthetic_sample.root)
    for folder in releases.values():
        assert absolute_paths(folder, needles) == []
    # the scan does find a path where there is one (the source dataset's own tables)
    assert absolute_paths(media_ds, needles)


def test_videos_are_named_relative_to_the_release(releases: dict[str, Path]) -> None:
    for name, folder in releases.items():
        videos = _videos(folder)
        assert {v: r["uri"] for v, r in videos.items()} == {
            SCENE: f"media/{SCENE}.mp4",
            FRAMES: f"media/{FRAMES}.mp4",
        }
        assert videos[FRAMES]["codec"] == "h264" and videos[SCENE]["codec"] == "mpeg4"
        for fmt in ("videorefer", "llava-video", "video-llava"):
            for path in (folder / "instructions" / fmt).glob("*.json"):
                assert {item["video"] for item in json.loads(path.read_text())} <= {r["uri"] for r in videos.values()}
        for path in (folder / "instructions" / "unistg").glob("*.jsonl"):
            assert {json.loads(line)["video"] for line in path.read_text().splitlines()} <= {
                r["uri"] for r in videos.values()
            }
        on_disk = {p.relative_to(folder).as_posix() for p in (folder / "media").glob("*")} if name != "bare" else set()
        assert on_disk == (set() if name == "bare" else {r["uri"] for r in videos.values()})
    # the tables are the same bytes with and without media
    for table_dir in (releases["bare"] / "data").iterdir():
        for path in table_dir.iterdir():
            assert path.read_bytes() == (releases["media"] / "data" / table_dir.name / path.name).read_bytes()


def test_media_list_says_what_goes_where(releases: dict[str, Path]) -> None:
    for name, included in (("bare", False), ("media", True)):
        lines = [json.loads(x) for x in (releases[name] / "meta" / "media.jsonl").read_text().splitlines()]
        by_id = {x["video_id"]: x for x in lines}
        assert by_id[SCENE] | {"included": None} == {
            "path": f"media/{SCENE}.mp4",
            "video_id": SCENE,
            "included": None,
            "codec": "mpeg4",
            "fps": 24.0,
            "n_frames": 72,
            "source_name": "scene.mp4",
            "source_kind": "file",
            "source_codec": "mpeg4",
        }
        assert (by_id[FRAMES]["source_name"], by_id[FRAMES]["source_kind"]) == ("frames", "frames")
        assert (by_id[FRAMES]["codec"], by_id[FRAMES]["source_codec"]) == ("h264", "jpeg")
        assert all(x["included"] is included for x in lines)
    card = (releases["bare"] / "README.md").read_text()
    assert "**The media are not included.**" in card and "meta/media.jsonl" in card
    assert "They are included" in (releases["media"] / "README.md").read_text()


def test_frame_folder_becomes_an_mp4_the_masks_still_index(
    releases: dict[str, Path], synthetic_sample: SampleInfo
) -> None:
    folder = releases["media"]
    copy = folder / "media" / f"{SCENE}.mp4"
    assert copy.read_bytes() == synthetic_sample.video.read_bytes()  # a video file is copied as it is
    encoded = folder / "media" / f"{FRAMES}.mp4"
    assert encoded.read_bytes() == (releases["media2"] / "media" / f"{FRAMES}.mp4").read_bytes()  # deterministic
    with VideoReader(str(encoded)) as mp4, VideoReader(str(synthetic_sample.frames_dir), fps=24.0) as jpegs:
        assert (mp4.n_frames, mp4.meta.fps, mp4.meta.codec) == (72, 24.0, "h264")
        assert np.allclose(mp4.timestamps(), jpegs.timestamps())
        tubelets = [
            r
            for paths in data_files(folder, "tubelets").values()
            for p in paths
            for r in pq.read_table(p).to_pylist()
            if r["video_id"] == FRAMES
        ]
        assert {t["category"] for t in tubelets} == {"red square", "green circle", "blue triangle"}
        red = next(t for t in tubelets if t["category"] == "red square")
        checked = 0
        for f in red["frames"][::6]:
            idx = f["frame_idx"]
            assert 0 <= idx < mp4.n_frames and abs(f["t_s"] - mp4.frame_time(idx)) < 1e-6
            frame = mp4.frames([idx])[0].astype(np.int32)
            source = jpegs.frames([idx])[0].astype(np.int32)
            # frame idx of the mp4 is frame idx of the folder: much closer to it than to its neighbours
            here = np.abs(frame - source).mean()
            later = np.abs(frame - jpegs.frames([min(idx + 3, 71)])[0].astype(np.int32)).mean()
            assert here < 3.0 and (idx >= 69 or here < later)
            mask = decode_rle(f["mask_rle"]).astype(bool)
            if mask.sum() > 200:  # the red square's pixels are red on the mp4
                r, g, b = (frame[..., c][mask].mean() for c in range(3))
                assert r > g + 60 and r > b + 60
                x1, y1, x2, y2 = f["box_xyxy"]
                ys, xs = np.nonzero(mask)
                assert x1 <= xs.min() and xs.max() < x2 + 1 and y1 <= ys.min() and ys.max() < y2 + 1
                checked += 1
        assert checked >= 3


def test_no_machine_path_in_a_report(
    media_ds: Path, tmp_path: Path, synthetic_sample: SampleInfo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("matplotlib")
    needles = _needles(tmp_path_factory, synthetic_sample.root)
    write_report(media_ds, tmp_path / "report", n_videos=2)
    assert "<p class='muted'>ds</p>" in (tmp_path / "report" / "index.html").read_text()
    assert absolute_paths(tmp_path / "report", needles) == []
    # a video that is gone: the report says why, naming the file, not where it was
    sample = tmp_path / "sample"
    shutil.copytree(synthetic_sample.root, sample)
    broken = media_source(tmp_path / "broken", sample / "videos.jsonl")
    (sample / "scene.mp4").unlink()
    write_report(broken, tmp_path / "report2", n_videos=2)
    page = (tmp_path / "report2" / "index.html").read_text()
    assert "no preview" in page and "scene.mp4" in page
    assert absolute_paths(tmp_path / "report2", [*needles, str(tmp_path)]) == []


def test_media_names() -> None:
    assert safe_name("MOT17-02-FRCNN") == "MOT17-02-FRCNN"
    assert safe_name("a/b") != safe_name("a_b") == "a_b" and safe_name("a/b").startswith("a_b-")
    assert not safe_name("../x").startswith(".") and "/" not in safe_name("../x")
    plan = plan_media(
        [
            Src("Dog", "/data/Dog.MP4", "h264"),
            Src("dog", "/data/dog.mp4", "h264"),  # one file on a case-insensitive disk: both get a hash
            Src("seq", "s3://bucket/seq/img1", "jpeg", 30.0, 10),  # a remote frame folder
            Src("clip", "s3://bucket/clip.mkv?versionId=3", "vp9"),
        ]
    )
    assert plan["Dog"].path != plan["dog"].path and plan["Dog"].path.lower() != plan["dog"].path.lower()
    assert plan["Dog"].path.startswith("media/Dog-") and plan["Dog"].path.endswith(".mp4")
    assert (plan["seq"].path, plan["seq"].frames, plan["seq"].codec) == ("media/seq.mp4", True, "h264")
    assert (plan["clip"].path, plan["clip"].frames) == ("media/clip.mkv", False)


def test_a_dataset_and_videos_on_object_storage(
    s3, synthetic_sample: SampleInfo, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Videos on S3 (a file and a frame folder) copied and encoded into the release; the source
    dataset, on S3 too, named by its URL (no credentials: the environment holds them)."""
    pytest.importorskip("cv2")
    fs, base = s3.fs(), s3.url()
    fs.put_file(str(synthetic_sample.video), f"{base}/media/scene.mp4")
    frames = sorted(synthetic_sample.frames_dir.iterdir())
    fs.put([str(p) for p in frames], [f"{base}/media/frames/{p.name}" for p in frames])
    rows = [json.loads(line) for line in synthetic_sample.video_list.read_text().splitlines()]
    for row in rows:
        row["uri"] = f"{base}/media/{row['uri']}"
        row["annotations"]["path"] = str(synthetic_sample.root / row["annotations"]["path"])
    listing = tmp_path / "videos.jsonl"
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = _remote_dataset(f"{base}/ds", listing)
    out = tmp_path / "r"
    release(dataset, out, ReleaseOptions(version="1", with_media=True, formats=("llava-video",)))
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["source"]["name"] == f"{base}/ds"
    assert (out / "media" / f"{SCENE}.mp4").read_bytes() == synthetic_sample.video.read_bytes()
    with VideoReader(str(out / "media" / f"{FRAMES}.mp4")) as video:
        assert (video.n_frames, video.meta.fps) == (72, 24.0)
    needles = _needles(tmp_path_factory, synthetic_sample.root)
    assert absolute_paths(out, [*needles, base + "/media"]) == []  # videos are media/…, not their S3 URLs


def _remote_dataset(output: str, listing: Path) -> str:
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    config = RunConfig(
        pipeline="unistg",
        output=output,
        runner="inline",
        videos=[{"path": str(listing)}],
        params={"source": "import", "decode_check": False, "max_per_task": 1},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (2, 0)
    return output


def test_public_names() -> None:
    from tubelet.engine.storage import public_name

    assert public_name("/home/someone/data/davis") == "davis"
    assert public_name("/home/someone/data/davis/") == "davis"
    assert public_name("file:///srv/x/ds") == "ds"
    assert public_name("s3://KEY:SECRET@bucket/prefix/ds?versionId=1#x") == "s3://bucket/prefix/ds"
