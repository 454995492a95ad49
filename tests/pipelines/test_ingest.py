"""The ingest pipeline: ProbeVideo fills task.video; unreadable videos become rejects."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.engine.videos import cut, frame_pattern, make_folder, make_mp4
from tubelet.engine.probe import ProbeVideo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.pipelines import build_pipeline
from tubelet.schemas import VideoRecord, records_to_table


def test_build_validates_params() -> None:
    pipeline = build_pipeline("ingest", {})
    assert [s.name for s in pipeline.stages] == ["probe_video"]
    assert pipeline.stages[0].decode_check is True and not pipeline.stages[0].needs_actor
    assert build_pipeline("ingest", {"decode_check": False}).stages[0].decode_check is False
    assert build_pipeline("ingest", {"decode_check": False}).config_hash != pipeline.config_hash
    with pytest.raises(ValueError, match="decod_check"):
        build_pipeline("ingest", {"decod_check": True})
    with pytest.raises(ValueError, match="decode_check"):
        build_pipeline("ingest", {"decode_check": "perhaps"})


def test_probe_stage_records_good_videos_and_rejects_bad_ones(tmp_path: Path) -> None:
    good = make_mp4(tmp_path / "good.mp4", faststart=True)
    frames = make_folder(tmp_path / "frames", n=5)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video\n" * 10)
    tasks = [
        VideoTask("good", str(good), source="made", split="train", licence="CC0", extra={"camera": "a"}),
        VideoTask("folder", str(frames), fps=5),
        VideoTask("cut", str(cut(good, tmp_path / "cut.mp4", 0.5))),
        VideoTask("empty", str(tmp_path / "empty.mp4")),
        VideoTask("text", str(tmp_path / "notes.mp4")),
        VideoTask("missing", str(tmp_path / "missing.mp4")),
        VideoTask("nofps", str(frames)),
    ]
    stage = build_pipeline("ingest", {}).stages[0]
    out = run_stage(stage, tasks)

    assert [t.video_id for t in out] == [t.video_id for t in tasks]
    by_id = {t.video_id: t for t in out}
    assert by_id["good"].video == VideoRecord(
        "good", str(good), 30.0, 48, 1.6, 96, 64, "h264", "container", "made", "train", "CC0", {"camera": "a"}
    )
    folder = by_id["folder"].video
    assert folder is not None and (folder.fps, folder.n_frames, folder.codec, folder.fps_source) == (
        5.0,
        5,
        "png",
        "manifest",
    )
    expected = {
        "cut": "truncated: the container lists 48 frames",
        "empty": "empty: zero-byte file",
        "text": "not_a_video:",
        "missing": "missing: path does not exist",
        "nofps": "no_fps:",
    }
    for video_id, reason in expected.items():
        task = by_id[video_id]
        assert task.failed and task.failed_stage == "probe_video" and task.video is None
        (reject,) = task.rejects
        assert reject.stage == "probe_video" and reject.item == task.uri and reject.video_id == video_id
        assert reject.reason.startswith(f"VideoError: {reason}"), reject.reason
        assert task.records() == {"rejects": [reject]}
    assert not by_id["good"].failed and not by_id["folder"].failed

    table = records_to_table("videos", [by_id["good"].video, folder])
    assert table.column("codec").to_pylist() == ["h264", "png"]


def test_batch_of_probes_isolates_one_bad_video(tmp_path: Path) -> None:
    good = make_mp4(tmp_path / "good.mp4", n=12)
    Image.fromarray(frame_pattern(0, 16, 16)).save(tmp_path / "still.mp4", format="PNG")
    stage = ProbeVideo(decode_check=False)
    out = run_stage(stage, [VideoTask("a", str(good)), VideoTask("b", str(tmp_path / "still.mp4"))])
    assert out[0].video is not None and out[0].video.n_frames == 12
    assert out[1].failed and "not_a_video" in out[1].rejects[0].reason


@pytest.mark.assets
def test_ingest_real_videos_and_a_cut_copy(assets: Path, tmp_path: Path) -> None:
    demo = assets / "videos" / "sam2-demo"
    tasks = [
        VideoTask("bedroom", str(demo / "bedroom.mp4"), source="sam2-demo"),
        VideoTask("juggle-at-12", str(demo / "05_default_juggle.mp4"), fps=12),
        VideoTask("davis-dog", str(assets / "davis2016" / "JPEGImages" / "480p" / "dog"), fps=24),
        VideoTask("coffee-cut", str(cut(demo / "04_coffee.mp4", tmp_path / "coffee.mp4", 0.5))),
    ]
    out = {t.video_id: t for t in run_stage(ProbeVideo(), tasks)}
    bedroom = out["bedroom"].video
    assert bedroom is not None
    assert (bedroom.width, bedroom.height, bedroom.fps, bedroom.n_frames) == (960, 540, 30.0, 200)
    assert (bedroom.codec, bedroom.source) == ("h264", "sam2-demo")
    juggle = out["juggle-at-12"].video
    assert juggle is not None
    assert (juggle.fps, juggle.fps_source, juggle.n_frames, juggle.duration_s) == (12.0, "manifest", 247, 247 / 12)
    dog = out["davis-dog"].video
    assert dog is not None and (dog.n_frames, dog.width, dog.height) == (60, 854, 480)
    reject = out["coffee-cut"].rejects[0]
    assert reject.stage == "probe_video"
    assert "truncated" in reject.reason and "frame 113" in reject.reason
