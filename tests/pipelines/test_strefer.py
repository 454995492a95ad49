"""strefer end to end (lite): tubelets → entities → timelines → checked instructions.

On the synthetic sample always; on DAVIS sequences and sam2-demo videos tracked with
the real YOLO weights when ../shared/assets is there. Rows are read back from the
written dataset, so the checker sees exactly what a trainer would load.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tubelet.annotators.instructions import TASK_TYPES, check_instructions
from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.validate import validate_dataset
from tubelet.pipelines import run_manifest

pytest.importorskip("cv2")

YOLO = "models/yolov8n-int8-tflite/yolov8n_int8.tflite"


def _run(out: Path, videos: list[dict], **params: object) -> dict[str, list]:
    config = RunConfig(
        pipeline="strefer", output=str(out), videos=videos, params=dict(params)
    )  # auto: a pool for several
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.failed == 0 and summary.done == len(videos)
    assert validate_dataset(out).ok
    data = Dataset(out)
    return {table: data.records(table) for table in ("tubelets", "entities", "events", "instructions")}


def _assert_language(rows: dict[str, list]) -> None:
    """Every tubelet described with an expression unique in its video; every answer checks."""
    tubes, ents, evs, insts = rows["tubelets"], rows["entities"], rows["events"], rows["instructions"]
    assert tubes and insts
    assert {e.tubelet_id for e in ents} == {t.tubelet_id for t in tubes}
    for video in {t.video_id for t in tubes}:
        names = [e.referring_expression for e in ents if e.video_id == video]
        assert all(names) and len(set(names)) == len(names), names
    assert {tid for e in evs for tid in e.tubelet_ids} <= {t.tubelet_id for t in tubes}
    report = check_instructions(insts, tubes, ents, evs)
    assert report.ok, report.summary()
    assert all(i.provenance and i.generator_id for i in insts)


@pytest.fixture(scope="module")
def sample_rows(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> dict[str, list]:
    tmp = tmp_path_factory.mktemp("strefer")
    videos = [{"uri": str(synthetic_sample.video), "video_id": "scene"}]
    return _run(tmp / "out", videos, track={"profile": "lite", "keyframe_fps": 4})


def test_sample_gives_every_task_type_and_every_answer_checks(sample_rows: dict[str, list]) -> None:
    _assert_language(sample_rows)
    assert {i.task_type for i in sample_rows["instructions"]} == set(TASK_TYPES)
    colours = {e.attributes["colour"] for e in sample_rows["entities"]}
    assert {"red", "green", "blue"} <= colours  # the sample draws a red, a green and a blue object
    # the red square enters at frame 27 (1.125 s): its timeline says so
    red = next(e.tubelet_id for e in sample_rows["entities"] if e.attributes["colour"] == "red")
    appear = [e for e in sample_rows["events"] if red in e.tubelet_ids and e.label == "appear"]
    assert appear and abs(appear[0].start_s - 27 / 24) <= 2 / 24


def test_the_checker_fails_planted_wrong_answers(sample_rows: dict[str, list]) -> None:
    tubes, ents, evs = sample_rows["tubelets"], sample_rows["entities"], sample_rows["events"]
    insts = {i.task_type: i for i in sample_rows["instructions"]}
    span = copy.deepcopy(insts["temporal_grounding"])
    span.answer.span_s = [span.answer.span_s[0] + 0.5, span.answer.span_s[1]]
    box = copy.deepcopy(insts["spatial_grounding"])
    box.answer.boxes[0].box_xyxy = [v + 12 for v in box.answer.boxes[0].box_xyxy]
    count = copy.deepcopy(insts["counting"])
    count.answer.text = str(int(count.answer.text) + 1)
    planted = {span.instruction_id, box.instruction_id, count.instruction_id}
    report = check_instructions([span, box, count], tubes, ents, evs)
    assert report.bad_ids == planted


@pytest.mark.slow
def test_davis_and_sam2_demo_videos_with_real_yolo_weights(assets: Path, tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    davis = assets / "davis2016" / "JPEGImages" / "480p"
    demo = assets / "videos" / "sam2-demo"
    videos = [
        {"uri": str(davis / "dog"), "video_id": "dog", "fps": 24},
        {"uri": str(davis / "car-shadow"), "video_id": "car-shadow", "fps": 24},
        {"uri": str(demo / "bedroom.mp4"), "video_id": "bedroom"},
        {"uri": str(demo / "01_dog.mp4"), "video_id": "01_dog"},
    ]
    track = {"profile": "lite", "weights": str(assets / YOLO), "keyframe_fps": 2, "track_fps": 4}
    rows = _run(tmp_path / "out", videos, track=track)
    _assert_language(rows)
    by_video = {t.video_id for t in rows["tubelets"]}
    assert by_video == {"dog", "car-shadow", "bedroom", "01_dog"}
    categories = {(e.video_id, e.category) for e in rows["entities"]}
    assert ("dog", "dog") in categories and ("bedroom", "person") in categories
    assert any(e.video_id == "car-shadow" for e in rows["events"])
