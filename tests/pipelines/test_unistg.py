"""unistg end to end: grounding instructions whose answers match the masks exactly.

Over the synthetic sample (pixel-exact masks, ground_truth.json holds the tight box of
every object on every frame) and over DAVIS-2016 ground truth when ../shared/assets is
there. Rows are read back from the written dataset, so the Arrow round trip is covered.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tubelet.annotators.instructions import GROUNDING_TASK_TYPES, check_instructions
from tubelet.annotators.instructions.derive import answer_time, times_in
from tubelet.cli.sample import SampleInfo
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.validate import validate_dataset
from tubelet.pipelines import run_manifest
from tubelet.schemas.records import Instruction, Tubelet
from tubelet.schemas.rle import decode_rle


def _run(out: Path, videos: list[dict], **params: object) -> Dataset:
    config = RunConfig(pipeline="unistg", output=str(out), runner="inline", videos=videos, params=dict(params))
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.failed == 0 and summary.done == len(videos)
    assert validate_dataset(out).ok
    return Dataset(out)


def _tight_box(rle: dict) -> list[float]:
    ys, xs = np.nonzero(decode_rle(rle))
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _assert_exact(insts: list[Instruction], tubes: list[Tubelet], gt_boxes=None) -> None:
    """Every grounding answer: span = first/last visible frame times (at the answers'
    precision: ``derive.answer_time``), boxes = the mask's tight box."""
    by_id = {t.tubelet_id: t for t in tubes}
    for inst in insts:
        tube = by_id[inst.answer.tubelet_ids[0]]
        frames = {f.frame_idx: f for f in tube.frames}
        visible = sorted(f.frame_idx for f in tube.frames if f.visible)
        if inst.answer.span_s is not None:
            want = [answer_time(frames[visible[0]].t_s, tube.fps), answer_time(frames[visible[-1]].t_s, tube.fps)]
            assert inst.answer.span_s == want
        for box in inst.answer.boxes:
            frame = frames[box.frame_idx]
            assert frame.visible and box.t_s == answer_time(frame.t_s, tube.fps)
            assert box.box_xyxy == _tight_box(frame.mask_rle)
            if gt_boxes is not None:
                assert box.box_xyxy == gt_boxes[tube.track_id][str(box.frame_idx)]
        if inst.task_type == "spatial_grounding":
            (t,) = times_in(inst.messages[0].content)
            assert abs(t - inst.answer.boxes[0].t_s) <= 0.5 / tube.fps


def test_unistg_on_the_sample_matches_the_masks_exactly(tmp_path: Path, synthetic_sample: SampleInfo) -> None:
    sample = synthetic_sample
    masks = {
        "format": "davis",
        "path": str(sample.masks_dir),
        "categories": {"1": "square", "2": "circle", "3": "triangle"},
    }
    ds = _run(
        tmp_path / "out", [{"uri": str(sample.video), "video_id": "scene", "annotations": masks}], max_per_task=10
    )
    tubes = ds.records("tubelets")
    insts = ds.records("instructions")
    assert {i.task_type for i in insts} == set(GROUNDING_TASK_TYPES)
    assert len(tubes) == 3 and len(insts) >= 9
    gt = json.loads(sample.ground_truth.read_text())
    gt_boxes = {str(o["id"]): o["boxes_xyxy"] for o in gt["objects"]}
    first_last = {str(o["id"]): (o["first_frame"], o["last_frame"]) for o in gt["objects"]}
    _assert_exact(insts, tubes, gt_boxes)
    for inst in insts:  # visibility spans are the ground truth's first and last frames
        if inst.task_type == "temporal_grounding":
            tube = next(t for t in tubes if t.tubelet_id == inst.answer.tubelet_ids[0])
            f0, f1 = first_last[tube.track_id]
            times = {f.frame_idx: answer_time(f.t_s, tube.fps) for f in tube.frames}
            assert inst.answer.span_s == [times[f0], times[f1]]
    assert check_instructions(insts, tubes).ok
    assert ds.read_table("rejects").num_rows == 0


@pytest.mark.assets
def test_unistg_on_davis_ground_truth_matches_the_masks_exactly(assets: Path, tmp_path: Path) -> None:
    root = assets / "davis2016"
    seqs = ["blackswan", "car-shadow"]
    videos = [
        {
            "uri": str(root / "JPEGImages" / "480p" / s),
            "video_id": s,
            "fps": 24,
            "annotations": {"format": "davis", "path": str(root / "Annotations" / "480p" / s)},
        }
        for s in seqs
    ]
    if not all(Path(v["uri"]).is_dir() for v in videos):
        pytest.skip("DAVIS-2016 sequences not in the assets")
    ds = _run(tmp_path / "out", videos, seed=1)
    tubes = ds.records("tubelets")
    insts = ds.records("instructions")
    assert {i.video_id for i in insts} == set(seqs)
    assert {i.task_type for i in insts} == set(GROUNDING_TASK_TYPES)
    _assert_exact(insts, tubes)
    assert check_instructions(insts, tubes).ok


def test_the_davis_manifest_loads_and_builds() -> None:
    from tubelet.engine.manifest import load_manifest
    from tubelet.pipelines import build_pipeline

    config = load_manifest(Path(__file__).resolve().parents[2] / "manifests" / "unistg-davis.yaml")
    pipeline = build_pipeline(config.pipeline, config.params)
    assert [s.name for s in pipeline.stages] == ["probe_video", "import_annotations", "generate_instructions"]
    with pytest.raises(ValueError, match="task_types"):
        build_pipeline("unistg", {"task_types": ["bogus"]})
