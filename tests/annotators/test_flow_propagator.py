"""FlowPropagator (the lite tracker) on the synthetic demo sample, against its ground truth.

Each object is prompted with its ground-truth mask and propagated in one window; the mask
IoU is scored on the frames where the object is visible and crosses no other object, up
to its first exit (a comeback is association's job, tested end to end at the bottom).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")

from tubelet.annotators.tracking import AssociationConfig, Propagator, associate
from tubelet.annotators.tracking.flow import FlowPropagator
from tubelet.cli.sample import SampleInfo
from tubelet.engine.video import VideoReader
from tubelet.schemas.geometry import box_iou
from tubelet.schemas.records import Detection, VideoRecord


@pytest.fixture(scope="module")
def sample(synthetic_sample: SampleInfo) -> dict:
    from PIL import Image

    info = synthetic_sample
    gt = json.loads(Path(info.ground_truth).read_text())
    labels = np.stack([np.array(Image.open(p)) for p in sorted(Path(info.masks_dir).glob("*.png"))])
    return {"video": str(info.video), "gt": gt, "labels": labels, "n": info.n_frames}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def _crossing(gt: dict, oid: int, frame: int) -> bool:
    """Whether object ``oid``'s ground-truth box touches another object's on ``frame``."""
    boxes = {o["id"]: o["boxes_xyxy"].get(str(frame)) for o in gt["objects"]}
    mine = boxes[oid]
    return mine is not None and any(b is not None and box_iou(mine, b) > 0 for o, b in boxes.items() if o != oid)


def _run(sample: dict, oid: int, reverse: bool, **options) -> tuple[FlowPropagator, dict[int, object]]:
    obj = next(o for o in sample["gt"]["objects"] if o["id"] == oid)
    start = obj["last_frame"] if reverse else obj["first_frame"]
    p = FlowPropagator(**options)
    p.start(sample["video"], range(sample["n"]))
    p.add_prompt(start, oid, mask=sample["labels"][start] == oid)
    out = dict(p.propagate(start, 0 if reverse else sample["n"] - 1, reverse=reverse))
    return p, out


def _scored_iou(sample: dict, oid: int, out: dict, reverse: bool) -> tuple[float, int]:
    """Mean IoU over the visible frames that cross no other object, up to the object's
    first exit (a comeback is association's job); a frame it is not reported on scores 0."""
    labels = sample["labels"]
    ious = []
    for f in sorted(out, reverse=reverse):
        truth = labels[f] == oid
        if not truth.any():
            break
        if _crossing(sample["gt"], oid, f):
            continue
        region = out[f].get(oid)
        ious.append(_iou(region.mask_array, truth) if region is not None else 0.0)
    return float(np.mean(ious)), len(ious)


def test_implements_the_protocol():
    assert isinstance(FlowPropagator(), Propagator)
    with pytest.raises(ValueError):
        FlowPropagator(method="magic")
    with pytest.raises(ValueError):
        FlowPropagator(mask_flow="magic")
    assert not FlowPropagator().refits_masks and FlowPropagator(reanchor=True).refits_masks
    assert FlowPropagator().repeatable_masks


@pytest.mark.parametrize("mask_flow", ["dense", "rigid"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_masks_follow_ground_truth(sample, reverse, mask_flow):
    for oid in (1, 2, 3):
        _, out = _run(sample, oid, reverse, mask_flow=mask_flow)
        mean, n = _scored_iou(sample, oid, out, reverse)
        print(f"object {oid} {'backward' if reverse else 'forward'}: mean IoU {mean:.3f} over {n} frames")
        assert n >= 10, (oid, n)
        assert mean >= 0.6, f"object {oid} {'backward' if reverse else 'forward'}: mean IoU {mean:.2f} over {n} frames"
        scores = [d[oid].score for d in out.values() if oid in d]
        assert all(0.0 <= s <= 1.0 for s in scores)


def test_object_leaving_the_frame_is_dropped_not_reported_with_a_garbage_box(sample):
    gt = sample["gt"]
    triangle = next(o for o in gt["objects"] if o["id"] == 3)
    _, out = _run(sample, 3, reverse=False)
    gone = [f for f in range(triangle["first_frame"], triangle["last_frame"]) if str(f) not in triangle["boxes_xyxy"]]
    assert gone, "the sample's triangle leaves the frame"
    assert all(3 not in out[f] for f in gone)
    # every box it did report is where the triangle really is
    for f, regions in out.items():
        if 3 in regions:
            truth = triangle["boxes_xyxy"].get(str(f))
            assert truth is not None and box_iou(regions[3].box, truth) > 0.5, f


def test_occluded_object_is_dropped_rather_than_following_the_occluder(sample):
    labels = sample["labels"]
    _, out = _run(sample, 2, reverse=False)  # the triangle crosses in front of the circle
    for f, regions in out.items():
        if 2 in regions:
            mask = regions[2].mask_array
            assert _iou(mask, labels[f] == 2) > _iou(mask, labels[f] == 3), f


def test_grabcut_refinement_and_working_size(sample):
    p, out = _run(sample, 3, reverse=False, grabcut_every=3, max_side=320)
    assert p.stats["grabcuts"] > 0
    mean, _ = _scored_iou(sample, 3, out, reverse=False)
    assert mean >= 0.6
    # regions come back in the video's pixel grid even when tracking at half size
    first = next(r for d in out.values() for r in d.values())
    assert first.mask_array.shape == (360, 640)


def test_dense_flow_and_array_input(sample):
    with VideoReader(sample["video"]) as reader:
        frames = reader.frames(range(20, 40))
    p = FlowPropagator(method="farneback")
    p.start(frames, range(20))  # an array: frame i is frames[i]
    truth = sample["labels"][20:40] == 3
    p.add_prompt(0, 3, mask=truth[0])
    out = dict(p.propagate(0, 19))
    ious = [
        _iou(out[f][3].mask_array, truth[f]) if 3 in out[f] else 0.0
        for f in range(20)
        if not _crossing(sample["gt"], 3, 20 + f)
    ]
    assert len(ious) >= 10 and np.mean(ious) >= 0.6


def test_reset_forgets_objects_and_keeps_the_frame_cache(sample):
    with VideoReader(sample["video"]) as reader:
        p = FlowPropagator(cache_frames=32)
        p.start(reader, range(sample["n"]))
        p.add_prompt(0, 2, mask=sample["labels"][0] == 2)
        first = dict(p.propagate(0, 10))
        assert all(2 in d for d in first.values())
        decoded = reader.frames_decoded
        p.reset()
        assert all(d == {} for _, d in p.propagate(0, 10))
        assert reader.frames_decoded == decoded  # the window came from the cache
        # the cache is bounded
        p.add_prompt(0, 2, mask=sample["labels"][0] == 2)
        list(p.propagate(0, sample["n"] - 1))
        assert len(p._video.cache) <= 32


@pytest.mark.parametrize("segment", [True, False], ids=["box-grabcut", "box-only"])
def test_box_prompt_and_early_close(sample, segment):
    gt, labels = sample["gt"], sample["labels"]
    box = gt["objects"][1]["boxes_xyxy"]["0"]
    p = FlowPropagator(box_grabcut=segment)
    p.start(sample["video"], range(sample["n"]))
    p.add_prompt(0, 7, box=box)
    stream = p.propagate(0, 20)
    f, regions = next(stream)
    assert f == 0 and regions[7].box == [float(v) for v in box]
    f, regions = next(stream)
    assert f == 1
    assert box_iou(regions[7].box, gt["objects"][1]["boxes_xyxy"]["1"]) > 0.8
    if segment:  # GrabCut turned the box into the circle's mask
        assert _iou(regions[7].mask_array, labels[1] == 2) > 0.8
    else:
        assert regions[7].mask is None
    stream.close()  # association stops early: the window is released
    with pytest.raises(StopIteration):
        next(stream)
    with pytest.raises(ValueError):  # masks must be in the video's pixel grid
        p.add_prompt(0, 8, mask=np.ones((10, 10), bool))


def test_associate_end_to_end_with_ground_truth_keyframes(sample):
    gt = sample["gt"]
    n, fps = sample["n"], gt["fps"]
    video = VideoRecord("scene", sample["video"], fps, n, n / fps, gt["width"], gt["height"], "mpeg4")
    keyframes = list(range(0, n, 6))
    detections = [
        Detection(k, k / fps, [float(v) for v in o["boxes_xyxy"][str(k)]], 0.9, o["category"])
        for o in gt["objects"]
        for k in keyframes
        if str(k) in o["boxes_xyxy"]
    ]
    result = associate(
        FlowPropagator(),
        sample["video"],
        video,
        list(range(n)),
        [f / fps for f in range(n)],
        detections,
        "gt+flow",
        keyframes=keyframes,
        config=AssociationConfig(),
    )
    assert len(result.tubelets) == 3, [t.category for t in result.tubelets]
    by_category = {t.category: t for t in result.tubelets}
    assert set(by_category) == {o["category"] for o in gt["objects"]}
    for o in gt["objects"]:
        t = by_category[o["category"]]
        visible = [f.frame_idx for f in t.frames if f.visible]
        # the span starts and ends within a keyframe interval of the truth
        assert [t.tubelet_id for t in result.tubelets if t.category == o["category"]] == [t.tubelet_id]
        span = (o["category"], visible[0], visible[-1])
        assert abs(visible[0] - o["first_frame"]) < 6 and abs(visible[-1] - o["last_frame"]) < 6, span
    # the triangle's time out of view is inside its tubelet, as invisible frames
    triangle = by_category["blue triangle"]
    hidden = {f.frame_idx for f in triangle.frames if not f.visible}
    assert set(range(44, 51)) <= hidden


def _shifted_mask(mask: np.ndarray, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    out[:, dx:] = mask[:, :-dx]
    return out


def test_a_detection_reanchors_a_carried_mask_that_fits_and_resegments_one_that_drifted(sample):
    labels, frame = sample["labels"], 10
    truth = labels[frame] == 2  # the circle
    x1, y1, x2, y2 = (float(v) for v in sample["gt"]["objects"][1]["boxes_xyxy"][str(frame)])
    box = [x1 - 3, y1 - 3, x2 + 3, y2 + 3]  # a detector's box, a little loose
    p = FlowPropagator(reanchor=True)
    p.start(sample["video"], range(sample["n"]))
    # the carried mask still fits the detection's box: kept (cut to the box), no GrabCut
    p.add_prompt(frame, 1, box=box, mask=truth)
    ((_, regions),) = list(p.propagate(frame, frame))
    assert p.stats == {**p.stats, "anchored": 1, "resegmented": 0, "grabcuts": 0}
    assert _iou(regions[1].mask_array, truth) > 0.95
    # a mask that drifted 60 px off the box: the box is segmented again
    p.reset()
    p.add_prompt(frame, 1, box=box, mask=_shifted_mask(truth, 60))
    ((_, regions),) = list(p.propagate(frame, frame))
    assert p.stats["resegmented"] == 1 and p.stats["grabcuts"] == 1
    assert _iou(regions[1].mask_array, truth) > 0.8
    # a box that is the mask's own adds nothing: the mask is the prompt, as given
    p.reset()
    p.add_prompt(frame, 1, box=regions[1].box, mask=regions[1].mask_array)
    ((_, again),) = list(p.propagate(frame, frame))
    assert np.array_equal(again[1].mask_array, regions[1].mask_array) and p.stats["anchored"] == 1


def test_grabcut_masks_do_not_depend_on_what_ran_before(sample: dict) -> None:
    """GrabCut draws its k-means start from OpenCV's process-wide RNG: the tracker seeds it
    before every call (from its ``seed`` and the frame), so the masks are the same whatever
    state earlier work left that RNG in — and another ``seed`` is another, valid, start."""
    import cv2

    def masks(before: int, seed: int = 0) -> list[np.ndarray]:
        cv2.setRNGSeed(before)  # what an earlier video, window or test would leave behind
        p = FlowPropagator(grabcut_every=1, seed=seed)
        p.start(sample["video"], range(30, 40))
        p.add_prompt(30, 2, box=sample["gt"]["objects"][1]["boxes_xyxy"]["30"])  # segmented by GrabCut
        out = [regions[2].mask_array for _, regions in p.propagate(30, 39) if 2 in regions]
        assert len(out) == 10 and p.stats["grabcuts"] >= 10
        return out

    first = masks(before=1)
    for before in (2, 12345):
        assert all(np.array_equal(a, b) for a, b in zip(first, masks(before))), before
    assert all(_iou(a, b) > 0.8 for a, b in zip(first, masks(before=1, seed=7)))
