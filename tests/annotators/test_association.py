"""Association against scripted detections and a scripted tracker.

The tracker double plays back ground-truth masks the way a real tracker behaves: it
knows only objects it was prompted with (bound to the ground-truth object the prompt
covers best), reports nothing for an object out of view, and can drift. Scenes are
160x120, 60 frames at 10 fps, with a detector run every ``KEY`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

from tubelet.annotators.detectors.appearance import describe
from tubelet.annotators.tracking import AssociationConfig, Propagator, Region, associate, frames_between
from tubelet.annotators.tracking.tubelets import Track, merge_duplicates
from tubelet.schemas.geometry import box_iou, mask_to_box
from tubelet.schemas.records import Detection, VideoRecord
from tubelet.schemas.rle import decode_rle, encode_mask, rle_iou

W, H, N, FPS, KEY = 160, 120, 60, 10.0, 10
FRAMES = list(range(N))
TIMES = [f / FPS for f in FRAMES]
VIDEO = VideoRecord("v", "v.mp4", FPS, N, N / FPS, W, H, "h264")


@dataclass
class Thing:
    """A ground-truth object: ``centre(frame)`` (None: not in the scene), size, shape."""

    name: str
    category: str
    centre: Callable[[int], tuple[float, float] | None]
    size: tuple[int, int] = (20, 20)
    disc: bool = False
    score: float = 0.9  # what the detector reports for it
    track_score: float = 0.95  # what the tracker reports for it


def render(things: Sequence[Thing]) -> dict[str, dict[int, np.ndarray]]:
    """Visible masks per object and frame; earlier things are in front of later ones."""
    yy, xx = np.mgrid[0:H, 0:W]
    out: dict[str, dict[int, np.ndarray]] = {t.name: {} for t in things}
    for f in FRAMES:
        covered = np.zeros((H, W), dtype=bool)
        for t in things:
            c = t.centre(f)
            if c is None:
                continue
            cx, cy = c
            w, h = t.size
            if t.disc:
                m = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1.0
            else:
                m = (abs(xx + 0.5 - cx) <= w / 2) & (abs(yy + 0.5 - cy) <= h / 2)
            visible = m & ~covered
            covered |= m
            if visible.sum() >= 4:  # a sliver at the edge is not "in view"
                out[t.name][f] = visible
    return out


class ScriptedTracker:
    """A test double of a masklet tracker that plays back ground truth (see module doc).

    ``drift`` shifts every reported mask right by that many pixels per frame away from
    the prompt frame; ``log`` holds ``(start, end, reverse, frames yielded)`` per call.
    """

    def __init__(self, gt: dict[str, dict[int, np.ndarray]], things: Sequence[Thing], drift: int = 0):
        self.gt = gt
        self.scores = {t.name: t.track_score for t in things}
        self.drift = drift
        self.frames: list[int] = []
        self.bound: dict[int, tuple[str | None, int]] = {}
        self.log: list[tuple[int, int, bool, list[int]]] = []

    def start(self, video: object, frames: Sequence[int]) -> None:
        self.frames = list(frames)

    def reset(self) -> None:
        self.bound = {}

    def add_prompt(self, frame_idx: int, obj_id: int, box=None, mask=None) -> None:
        best, best_iou = None, 0.3
        for name, masks in self.gt.items():
            if frame_idx not in masks:
                continue
            if mask is not None:
                iou = (
                    rle_iou(mask, _rle(masks[frame_idx]))
                    if isinstance(mask, dict)
                    else _mask_iou(mask, masks[frame_idx])
                )
            else:
                iou = float(box_iou(box, mask_to_box(masks[frame_idx])))
            if iou >= best_iou:
                best, best_iou = name, iou
        self.bound[obj_id] = (best, frame_idx)

    def propagate(
        self, start_frame: int, end_frame: int, reverse: bool = False
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        walk = frames_between(self.frames, start_frame, end_frame)
        assert (end_frame < start_frame) == reverse or start_frame == end_frame
        yielded: list[int] = []
        self.log.append((start_frame, end_frame, reverse, yielded))
        for f in walk:
            yielded.append(f)
            regions = {}
            for obj, (name, prompted) in self.bound.items():
                if name is None or f not in self.gt[name]:
                    continue
                mask = _shift_right(self.gt[name][f], self.drift * abs(f - prompted))
                regions[obj] = Region(mask=mask, score=self.scores[name])
            yield f, regions


def _shift_right(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask moved ``px`` pixels right; what leaves the frame is lost."""
    if px == 0:
        return mask
    out = np.zeros_like(mask)
    out[:, px:] = mask[:, :-px]
    return out


def _rle(mask: np.ndarray) -> dict:
    return encode_mask(mask)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def detect(
    gt: dict[str, dict[int, np.ndarray]],
    things: Sequence[Thing],
    keyframes: Sequence[int],
    skip: Callable[[str, int], bool] = lambda name, f: False,
) -> list[Detection]:
    """Box-only detections of every object in view on each keyframe."""
    dets = []
    for f in keyframes:
        for t in things:
            if f in gt[t.name] and not skip(t.name, f):
                dets.append(Detection(f, TIMES[f], mask_to_box(gt[t.name][f]), t.score, t.category, detector="script"))
    return dets


def run(things, dets=None, keyframes=None, drift=0, **cfg):
    gt = render(things)
    keyframes = list(range(0, N, KEY)) if keyframes is None else keyframes
    dets = detect(gt, things, keyframes) if dets is None else dets
    tracker = ScriptedTracker(gt, things, drift)
    result = associate(
        tracker,
        "v.mp4",
        VIDEO,
        FRAMES,
        TIMES,
        dets,
        "script+double",
        keyframes=keyframes,
        config=AssociationConfig(**cfg),
    )
    return result, gt, tracker


def by_id(result) -> dict[str, object]:
    return {t.tubelet_id: t for t in result.tubelets}


def visible(tubelet) -> list[int]:
    return [f.frame_idx for f in tubelet.frames if f.visible]


def invisible(tubelet) -> list[int]:
    return [f.frame_idx for f in tubelet.frames if not f.visible]


def assert_follows(tubelet, gt_masks: dict[int, np.ndarray]) -> None:
    """Every visible frame of ``tubelet`` is the ground-truth object's mask (no swap)."""
    for fr in tubelet.frames:
        if fr.visible:
            assert np.array_equal(decode_rle(fr.mask_rle), gt_masks[fr.frame_idx]), fr.frame_idx


def moving(x0: float, vx: float, y: float, first: int = 0, last: int = N - 1):
    return lambda f: (x0 + vx * f, y) if first <= f <= last else None


# -- the required cases ---------------------------------------------------------------


def test_double_implements_the_protocol():
    assert isinstance(ScriptedTracker({}, []), Propagator)


def test_object_entering_after_the_anchor_is_tracked_from_its_entry():
    still = Thing("still", "person", lambda f: (80, 60), score=0.95)
    leaver = Thing("leaver", "car", moving(130, 4, 30), score=0.8)  # leaves right by frame 10
    comer = Thing("comer", "dog", moving(-12, 3, 95))  # enters left around frame 1..
    gt = render([still, leaver, comer])
    entry = min(gt["comer"])
    assert 0 < entry < KEY  # it enters between keyframes 0 and 10
    result, gt, tracker = run([still, leaver, comer])
    assert result.anchor_frame == 0  # 2 objects on kf 0 and on kf 10: the earliest
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2", "v:track:3"]
    # ids: anchor objects by score, then in order of discovery
    assert [tubes[f"v:track:{i}"].category for i in (1, 2, 3)] == ["person", "car", "dog"]
    comer_t = tubes["v:track:3"]
    assert visible(comer_t) == sorted(gt["comer"]) and visible(comer_t)[0] == entry
    assert invisible(comer_t) == []
    assert comer_t.frames[0].t_s == pytest.approx(entry / FPS)
    assert visible(tubes["v:track:2"]) == sorted(gt["leaver"])
    assert visible(tubes["v:track:1"]) == FRAMES
    for i, name in [(1, "still"), (2, "leaver"), (3, "comer")]:
        assert_follows(tubes[f"v:track:{i}"], gt[name])
    # the backward propagation of the newcomer stopped soon after it disappeared
    back = [y for s, e, rev, y in tracker.log if rev and s == 10]
    assert back and min(back[0]) >= entry - 1 - AssociationConfig().lost_patience


def test_objects_only_before_the_anchor_come_from_the_backward_sweep():
    early = Thing("early", "cat", moving(20, 3, 40, last=15))  # gone after frame 15
    a = Thing("a", "person", moving(30, 0, 90, first=25))
    b = Thing("b", "person", moving(90, 0, 90, first=25))
    result, gt, _ = run([early, a, b])
    assert result.anchor_frame == 30  # the first keyframe with both people
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2", "v:track:3"]
    cat = tubes["v:track:3"]
    assert cat.category == "cat" and visible(cat) == list(range(0, 16))
    assert visible(tubes["v:track:1"]) == list(range(25, N))  # entered before the anchor


def _out_and_back(f: int) -> tuple[float, float] | None:
    """Walks right, leaves the frame at the right edge (~frame 22), is away until
    frame 38, then walks back in from the right."""
    x = 100 + 4 * f if f <= 25 else 200 - 2 * (f - 25) - 4 * max(0, f - 38)
    return (x, 60)


def test_reentry_keeps_the_id_with_invisible_frames_between():
    walker = Thing("walker", "person", _out_and_back)
    other = Thing("other", "person", lambda f: (30, 30))
    result, gt, _ = run([other, walker])
    seen = sorted(gt["walker"])
    gaps = [f for f in range(seen[0], seen[-1]) if f not in gt["walker"]]
    assert gaps and seen[-1] == N - 1
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2"]  # no third id for the comeback
    w = next(t for t in tubes.values() if visible(t)[0] == 0 and t.extra["reentries"])
    assert visible(w) == seen
    assert invisible(w) == gaps
    assert w.extra["reentries"] == [min(f for f in range(0, N, KEY) if f > gaps[-1])]
    assert_follows(w, gt["walker"])
    # the invisible frames repeat the last visible box and carry no mask
    last = max(f for f in seen if f < gaps[0])
    gap_rows = [fr for fr in w.frames if not fr.visible]
    assert all(fr.mask_rle is None and fr.box_xyxy == w.frames[last].box_xyxy for fr in gap_rows)


def test_without_the_reentry_cue_the_comeback_is_a_new_object():
    walker = Thing("walker", "person", _out_and_back)
    other = Thing("other", "person", lambda f: (30, 30))
    result, _, _ = run([other, walker], reentry_window_s=0.0)
    assert len(result.tubelets) == 3  # the case the re-entry test guards against


def test_crossing_objects_keep_their_ids():
    # two discs on nearly the same row cross at frame 20, a keyframe: a passes in front
    # and hides all of b but a sliver; the detector boxes only what it sees
    a = Thing("a", "person", moving(-20, 4, 55), size=(24, 24), disc=True)
    b = Thing("b", "person", moving(140, -4, 65), size=(24, 24), disc=True, score=0.8)
    gt = render([a, b])
    keyframes = list(range(0, N, 5))
    dets = detect(gt, [a, b], keyframes)
    dets.sort(key=lambda d: (d.frame_idx, d.box_xyxy[0]))  # by x: the order flips at the crossing
    b20 = mask_to_box(gt["b"][20])
    assert box_iou(b20, mask_to_box(gt["a"][20])) >= 0.2  # the two boxes overlap
    for drift in (0, 1):  # a drifting tracker: 1 px per frame from the last prompt
        result, _, _ = run([a, b], dets=dets, keyframes=keyframes, drift=drift)
        tubes = by_id(result)
        assert result.anchor_frame == 5
        assert sorted(tubes) == ["v:track:1", "v:track:2"], drift
        one, two = tubes["v:track:1"], tubes["v:track:2"]
        assert visible(one) == sorted(gt["a"]) and visible(two) == sorted(gt["b"])
        if drift == 0:
            assert_follows(one, gt["a"])
            assert_follows(two, gt["b"])
        # on every frame, id 1 is nearer a than b, and id 2 nearer b than a: no swap
        for tube, own, other in ((one, "a", "b"), (two, "b", "a")):
            for row in tube.frames:
                f = row.frame_idx
                near_own = box_iou(row.box_xyxy, mask_to_box(gt[own][f]))
                near_other = box_iou(row.box_xyxy, mask_to_box(gt[other][f])) if f in gt[other] else 0.0
                assert near_own > max(near_other, 0.2), (drift, f, own)  # (a sliver at an edge: low)


def test_duplicate_detections_end_in_one_tubelet():
    car = Thing("car", "car", moving(40, 1, 60), size=(30, 20))
    gt = render([car])
    dets = detect(gt, [car], range(0, N, KEY))
    # the detector boxes the car twice on kf 0 (NMS) and, on kf 20, once more with a
    # loose box (IoU ~0.4 with the car): that one starts a second track on the same car
    b0 = mask_to_box(gt["car"][0])
    dets.append(Detection(0, 0.0, [b0[0] - 1, b0[1] - 1, b0[2] + 1, b0[3] + 1], 0.85, "car"))
    b20 = mask_to_box(gt["car"][20])
    loose = [b20[0] - 6, b20[1] - 8, b20[2] + 6, b20[3] + 8]
    assert 0.3 < box_iou(loose, b20) < 0.5
    dets.append(Detection(20, 2.0, loose, 0.7, "car"))
    result, _, _ = run([car], dets=dets)
    assert result.stats["detections_suppressed"] == 1
    assert result.stats["objects_started"] == 2 and result.stats["merged"] == 1
    [tube] = result.tubelets
    assert tube.tubelet_id == "v:track:1" and tube.extra["merged_from"] == [2]
    assert visible(tube) == FRAMES
    assert_follows(tube, gt["car"])


# -- anchor, drift, windows, filters ----------------------------------------------------


def test_anchor_is_the_keyframe_with_most_confident_detections():
    things = [Thing(f"p{i}", "person", lambda f, i=i: (20 + 30 * i, 60)) for i in range(3)]
    gt = render(things)
    dets = detect(gt, things, [0, 10, 20, 30])
    # kf 0 loses one object, kf 10's third detection is not confident, kf 20 and 30 have 3
    dets = [d for d in dets if not (d.frame_idx == 0 and d.box_xyxy[0] < 30)]
    for d in dets:
        if d.frame_idx == 10 and d.box_xyxy[0] >= 70:
            d.score = 0.4
    result, _, _ = run(things, dets=dets, keyframes=[0, 10, 20, 30])
    assert result.anchor_frame == 20
    assert all(t.extra["anchor_frame"] == 20 for t in result.tubelets)
    assert len(result.tubelets) == 3 and all(visible(t) == FRAMES for t in result.tubelets)


def test_no_confident_detection_gives_no_tubelets():
    thing = Thing("p", "person", lambda f: (60, 60), score=0.2)
    result, _, tracker = run([thing])
    assert result.tubelets == [] and result.anchor_frame is None and tracker.log == []


def test_an_object_no_detection_confirms_is_dropped_after_its_last_confirmation():
    ghost = Thing("ghost", "bag", lambda f: (50, 50))
    person = Thing("person", "person", lambda f: (120, 60))
    gt = render([ghost, person])
    dets = detect(gt, [ghost, person], range(0, N, KEY), skip=lambda name, f: name == "ghost" and f > 0)
    result, _, _ = run([ghost, person], dets=dets, max_unconfirmed_keyframes=2)
    ghost_t = next(t for t in result.tubelets if t.category == "bag")
    # unconfirmed on kf 10, 20; dropped on kf 30 and trimmed from kf 10 on
    assert visible(ghost_t) == list(range(0, 10))
    assert result.stats["dropped_unconfirmed"] == 1
    result, _, _ = run([ghost, person], dets=dets, max_unconfirmed_keyframes=None)
    assert visible(next(t for t in result.tubelets if t.category == "bag")) == FRAMES


def test_windows_are_bounded_and_do_not_change_the_result():
    things = [
        Thing("still", "person", lambda f: (80, 60)),
        Thing("comer", "dog", moving(-12, 3, 95)),
        Thing("walker", "person", _out_and_back),
    ]
    whole, _, _ = run(things)
    chunked, _, tracker = run(things, max_window=4)
    # every propagate call, sweeps and backward/forward trips alike, spans <= 4 frames
    assert max(abs(s - e) for s, e, _, _ in tracker.log) == 4
    assert [(t.tubelet_id, visible(t), invisible(t)) for t in chunked.tubelets] == [
        (t.tubelet_id, visible(t), invisible(t)) for t in whole.tubelets
    ]
    assert chunked.stats["windows"] > whole.stats["windows"]


def test_quality_filters_reject_with_reasons():
    keep = Thing("keep", "person", lambda f: (40, 60))
    brief = Thing("brief", "person", moving(-8, 0, 20, first=48, last=51))  # 4 frames
    faint = Thing("faint", "cup", lambda f: (100, 30), track_score=0.3)
    speck = Thing("speck", "ball", lambda f: (130, 90), size=(3, 3))
    things = [keep, brief, faint, speck]
    gt = render(things)
    brief_frames = sorted(gt["brief"])
    assert brief_frames and 50 in brief_frames  # detected on kf 50
    assert len(gt["speck"][0]) and gt["speck"][0].sum() == 16
    result, _, _ = run(things, min_length=len(brief_frames) + 1, min_mean_score=0.5, min_area=20)
    # anchor kf 50, where all four are seen; equal scores keep the detector's order
    assert result.anchor_frame == 50
    assert [t.tubelet_id for t in result.tubelets] == ["v:track:1"]
    reasons = dict(result.rejects)
    assert sorted(reasons) == ["v:track:2", "v:track:3", "v:track:4"]
    assert reasons["v:track:2"] == f"too short: visible on 4 frames < min_length {len(brief_frames) + 1}"
    assert reasons["v:track:3"].startswith("low score: mean score 0.300")
    assert reasons["v:track:4"].startswith("too small: median area 16.0 px")
    assert result.stats["rejected"] == 3


def test_tubelet_stats():
    thing = Thing("p", "person", lambda f: (40 + f, 60), size=(20, 20))
    result, _, _ = run([thing])
    [t] = result.tubelets
    assert t.extra["n_visible"] == N
    assert t.extra["area_stability"] == pytest.approx(1.0)
    assert t.extra["mean_score"] == pytest.approx(0.95) and t.score == pytest.approx(0.95)
    assert t.extra["confirmed_keyframes"] == list(range(0, N, KEY))
    assert t.source == "script+double" and t.track_id == "1" and t.fps == FPS
    assert [f.frame_idx for f in t.frames] == FRAMES and t.frames[7].t_s == pytest.approx(0.7)


def test_segmenting_detector_new_object_inside_anothers_box():
    # a crate (36x36) is put down at frame 15 in front of a sofa's corner: the sofa's
    # visible mask becomes an L. By boxes the crate's detection overlaps the sofa's region
    # with IoU 0.52 (a duplicate of the sofa); by masks it overlaps it not at all (new).
    sofa = Thing("sofa", "furniture", lambda f: (60, 60), size=(50, 50))
    crate = Thing("crate", "furniture", lambda f: (67, 67) if f >= 15 else None, size=(36, 36), score=0.8)
    lamp = Thing("lamp", "furniture", lambda f: (130, 20) if f <= 12 else None)  # so the anchor is 0
    gt = render([crate, sofa, lamp])
    dets = [
        Detection(d.frame_idx, d.t_s, d.box_xyxy, d.score, d.category, _rle(gt[name][d.frame_idx]))
        for name, thing in (("sofa", sofa), ("lamp", lamp), ("crate", crate))
        for d in detect(gt, [thing], range(0, N, KEY))
    ]
    assert box_iou(mask_to_box(gt["sofa"][20]), mask_to_box(gt["crate"][20])) >= 0.5
    result, _, _ = run([crate, sofa, lamp], dets=dets)
    assert result.anchor_frame == 0
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2", "v:track:3"]
    assert visible(tubes["v:track:1"]) == FRAMES
    assert visible(tubes["v:track:2"]) == list(range(0, 13))
    assert visible(tubes["v:track:3"]) == list(range(15, N))  # found on kf 20, traced back to 15
    for i, name in ((1, "sofa"), (2, "lamp"), (3, "crate")):
        assert_follows(tubes[f"v:track:{i}"], gt[name])


def test_reentry_before_the_anchor_in_the_backward_sweep():
    # seen 0..~9, away, back from ~frame 27 to the end; two more people from frame 30 on
    # make the anchor 30, so the comeback is what the backward sweep meets first
    def back_and_forth(f: int) -> tuple[float, float]:
        x = 20 - 3 * f if f <= 15 else -25 + 3 * (f - 15)
        return (x, 60)

    walker = Thing("walker", "person", back_and_forth)
    p1 = Thing("p1", "person", moving(100, 0, 30, first=30), score=0.95)
    p2 = Thing("p2", "person", moving(130, 0, 90, first=30), score=0.95)
    result, gt, _ = run([walker, p1, p2])
    assert result.anchor_frame == 30
    seen = sorted(gt["walker"])
    gaps = [f for f in range(seen[0], seen[-1]) if f not in gt["walker"]]
    assert seen[0] == 0 and gaps and seen[-1] == N - 1
    walkers = [t for t in result.tubelets if visible(t)[0] == 0]
    assert len(result.tubelets) == 3 and len(walkers) == 1
    w = walkers[0]
    assert w.tubelet_id == "v:track:3"  # third anchor object (lowest score)
    assert visible(w) == seen and invisible(w) == gaps
    assert w.extra["reentries"] == [0]  # met again, walking backward, on keyframe 0
    assert_follows(w, gt["walker"])


def test_tracker_masks_must_be_in_the_video_grid():
    thing = Thing("p", "person", lambda f: (60, 60))
    gt = render([thing])
    small = {"p": {f: m[::2, ::2] for f, m in gt["p"].items()}}
    tracker = ScriptedTracker(small, [thing])
    dets = [Detection(0, 0.0, [25.0, 25.0, 35.0, 35.0], 0.9, "person")]
    with pytest.raises(ValueError, match="pixel grid"):
        associate(tracker, None, VIDEO, FRAMES, TIMES, dets, "x", config=AssociationConfig())


# -- the appearance cue for re-entries ----------------------------------------------------


def paint(gt: dict[str, dict[int, np.ndarray]], colours: dict[str, tuple[int, int, int]], f: int) -> np.ndarray:
    """Frame ``f`` as RGB: a noisy grey background, each visible object in its colour."""
    rng = np.random.default_rng(f)
    frame = rng.integers(100, 130, (H, W, 3)).astype(np.uint8)
    for name, masks in gt.items():
        if f in masks:
            noise = rng.integers(-12, 13, (int(masks[f].sum()), 3))
            frame[masks[f]] = np.clip(np.array(colours[name]) + noise, 0, 255).astype(np.uint8)
    return frame


def with_appearance(dets: list[Detection], gt, colours) -> list[Detection]:
    """The detections with the descriptor a detector would compute from the frame."""
    frames = {f: paint(gt, colours, f) for f in {d.frame_idx for d in dets}}
    return [replace(d, appearance=describe(frames[d.frame_idx], d.box_xyxy)) for d in dets]


def _exit_right_back_right(y_out: float, y_back: float, exit_speed: float, x0: float, back_at: int):
    """Walks right at ``y_out`` and leaves through the right edge; from ``back_at`` walks
    back in through the right edge at ``y_back``."""

    def centre(f: int) -> tuple[float, float] | None:
        if f < back_at:
            return (x0 + exit_speed * f, y_out)
        return (175 - 3 * (f - back_at), y_back)

    return centre


def _swap_scene() -> tuple[list[Thing], dict[str, tuple[int, int, int]]]:
    # a (red) leaves first (~frame 17), b (blue) later (~27); b comes back first (kf 40)
    # nearer where a left, then a (kf 50) nearer where b left: by position alone, swapped
    a = Thing("a", "person", _exit_right_back_right(40, 85, 4, 100, back_at=40), score=0.9)
    b = Thing("b", "person", _exit_right_back_right(80, 45, 4, 60, back_at=30), score=0.85)
    return [a, b], {"a": (200, 30, 30), "b": (30, 60, 210)}


def test_reentry_by_appearance_keeps_ids_when_objects_come_back_in_the_other_order():
    things, colours = _swap_scene()
    gt = render(things)
    # the scene: both leave by the right edge, b comes back before a
    assert max(f for f in gt["a"] if f < 30) < max(f for f in gt["b"] if f < 30)
    assert min(f for f in gt["b"] if f >= 30) < min(f for f in gt["a"] if f >= 30)
    dets = with_appearance(detect(gt, things, range(0, N, KEY)), gt, colours)
    assert all(d.appearance is not None for d in dets)
    result, _, _ = run(things, dets=dets)
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2"]
    one, two = tubes["v:track:1"], tubes["v:track:2"]
    assert visible(one) == sorted(gt["a"]) and visible(two) == sorted(gt["b"])
    assert_follows(one, gt["a"])
    assert_follows(two, gt["b"])
    assert one.extra["reentries"] == [50] and two.extra["reentries"] == [40]
    assert result.stats["reentries"] == 2 and result.stats["objects_started"] == 2


def test_without_descriptors_reentry_is_by_position_as_before():
    things, _ = _swap_scene()
    result, gt, _ = run(things)  # box-only detections, no appearance
    tubes = by_id(result)
    assert sorted(tubes) == ["v:track:1", "v:track:2"] and result.stats["reentries"] == 2
    one, two = tubes["v:track:1"], tubes["v:track:2"]
    # position alone: each comeback goes to the object that left nearest it, the swap
    # the appearance cue fixes
    a_back, b_back = (sorted(f for f in gt[n] if f >= 30) for n in ("a", "b"))
    assert [f for f in visible(one) if f >= 30] == b_back
    assert [f for f in visible(two) if f >= 30] == a_back


def test_reentry_with_a_different_appearance_is_a_new_object():
    # the walker of the re-entry test, but a differently dressed person comes back
    walker = Thing("walker", "person", lambda f: _out_and_back(f) if f <= 25 else None)
    stranger = Thing("stranger", "person", lambda f: _out_and_back(f) if f > 25 else None)
    other = Thing("other", "person", lambda f: (30, 30))
    things = [other, walker, stranger]
    gt = render(things)
    dets = detect(gt, things, range(0, N, KEY))
    for back, n_tubes in (((200, 30, 30), 2), ((40, 200, 60), 3)):
        colours = {"other": (230, 230, 230), "walker": (200, 30, 30), "stranger": back}
        result, _, _ = run(things, dets=with_appearance(dets, gt, colours))
        assert len(result.tubelets) == n_tubes, back
        assert result.stats["reentries"] == (1 if n_tubes == 2 else 0)
    tubes = by_id(result)
    assert visible(tubes["v:track:3"]) == sorted(gt["stranger"])  # a new id, from its entry
    assert_follows(tubes["v:track:2"], gt["walker"])
    # a looser threshold lets the position cue win again
    result, _, _ = run(things, dets=with_appearance(dets, gt, colours), reentry_max_appearance=1.0)
    assert len(result.tubelets) == 2


class RefittingTracker(ScriptedTracker):
    """The double, recording its prompts; ``refits_masks`` and ``repeatable_masks`` as a
    tracker declares them."""

    def __init__(self, *args, refits: bool, repeatable: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.refits_masks = refits
        self.repeatable_masks = repeatable
        self.prompts: list[tuple[int, int, list[float] | None, bool]] = []

    def add_prompt(self, frame_idx: int, obj_id: int, box=None, mask=None) -> None:
        self.prompts.append((frame_idx, obj_id, None if box is None else [float(v) for v in box], mask is not None))
        super().add_prompt(frame_idx, obj_id, box=box, mask=mask)


@pytest.mark.parametrize("refits", [True, False], ids=["refits-masks", "box-only"])
def test_a_tracker_that_refits_masks_is_reprompted_with_the_box_and_its_mask(refits):
    things = [Thing("a", "cat", moving(30, 1.0, 60))]
    gt = render(things)
    keyframes = list(range(0, N, KEY))
    dets = detect(gt, things, keyframes)
    # the detector's box is a little larger than the object: a re-prompt shows which box it used
    dets = [
        replace(d, box_xyxy=[d.box_xyxy[0] - 2, d.box_xyxy[1] - 2, d.box_xyxy[2] + 2, d.box_xyxy[3] + 2]) for d in dets
    ]
    tracker = RefittingTracker(gt, things, refits=refits)
    associate(tracker, "v.mp4", VIDEO, FRAMES, TIMES, dets, "s", keyframes=keyframes)
    det_box = {d.frame_idx: d.box_xyxy for d in dets}
    later = [(f, box, has_mask) for f, _, box, has_mask in tracker.prompts if f in det_box and f != 0]
    assert later, "the object is re-prompted on later keyframes"
    for f, box, has_mask in later:
        assert box == pytest.approx(det_box[f])  # the detection corrects where the object is
        assert has_mask == refits  # ... and the refitting tracker keeps the shape it carried


# -- one track per object (issue 15): category votes, relabelled and partial detections,
# weak and moving re-entries ------------------------------------------------------------


def test_a_flickering_category_is_one_track_decided_by_the_votes():
    # the detector calls the dog "cat" on two keyframes, once confidently, and on the
    # anchor it reports both names for the one dog
    dog = Thing("dog", "dog", moving(40, 1, 60), size=(30, 20))
    gt = render([dog])
    dets = detect(gt, [dog], range(0, N, KEY))
    dets = [replace(d, category="cat", score=0.6) if d.frame_idx in (20, 40) else d for d in dets]
    dets.append(replace(dets[0], category="cat", score=0.55))  # the anchor: "dog" 0.9 and "cat" 0.55
    result, _, _ = run([dog], dets=dets)
    [tube] = result.tubelets
    assert tube.category == "dog" and visible(tube) == FRAMES
    assert_follows(tube, gt["dog"])
    votes = tube.extra["category_votes"]
    assert votes == {"dog": pytest.approx(0.9 * 4), "cat": pytest.approx(0.6 * 2)}
    assert tube.extra["category_confidence"] == pytest.approx(3.6 / 4.8, abs=1e-4)


def test_the_majority_of_votes_names_the_track_not_its_first_detection():
    thing = Thing("thing", "cat", moving(40, 1, 60), size=(30, 20), score=0.6)
    gt = render([thing])
    dets = [
        replace(d, category="dog", score=0.9) if d.frame_idx >= 20 else d for d in detect(gt, [thing], range(0, N, KEY))
    ]
    result, _, _ = run([thing], dets=dets)
    [tube] = result.tubelets
    assert tube.category == "dog" and tube.extra["category_votes"] == {"cat": 1.2, "dog": pytest.approx(3.6)}


def test_a_rider_on_a_horse_stays_two_tracks():
    # a person box inside the horse's box, overlapping it far less than relabel_iou
    horse = Thing("horse", "horse", moving(50, 1, 70), size=(50, 30))
    rider = Thing("rider", "person", moving(50, 1, 48), size=(14, 24))
    gt = render([rider, horse])
    assert box_iou(mask_to_box(gt["rider"][0]), mask_to_box(gt["horse"][0])) < AssociationConfig().relabel_iou
    result, _, _ = run([rider, horse])
    assert sorted(t.category for t in result.tubelets) == ["horse", "person"]


def test_a_part_of_the_same_category_is_merged_a_rider_is_not():
    whole = np.zeros((H, W), bool)
    whole[40:60, 40:80] = True
    half = np.zeros((H, W), bool)
    half[40:60, 60:80] = True

    def track(obj, category, mask, keyframe=0):
        t = Track(obj, category, origin_frame=keyframe, origin_score=0.9)
        for f in range(10):
            t.regions[f] = Region(mask=encode_mask(mask))
        t.confirm(keyframe, 0.9, category)
        return t

    kept, merged = merge_duplicates([track(1, "dog", whole), track(2, "dog", half)], 0.7, 0.5, 2, inside=0.8)
    assert merged == 1 and [t.obj_id for t in kept] == [1] and kept[0].merged_from == [2]
    kept, merged = merge_duplicates([track(1, "horse", whole), track(2, "person", half)], 0.7, 0.5, 2, inside=0.8)
    assert merged == 0  # a person inside a horse's mask is a rider, not a part
    kept, merged = merge_duplicates([track(1, "dog", whole), track(2, "cat", whole, keyframe=5)], 0.7, 0.5, 2)
    assert merged == 1 and kept[0].votes == {"dog": 0.9, "cat": 0.9}  # same pixels: one object, both votes
    # a part is merged only where the rule is on (inside > 1: never)
    kept, merged = merge_duplicates([track(1, "dog", whole), track(2, "dog", half)], 0.7, 0.5, 2)
    assert merged == 0


def test_a_lost_object_comes_back_on_a_weak_detection_a_new_one_does_not_start_on_it():
    walker = Thing("walker", "person", _out_and_back)
    other = Thing("other", "person", lambda f: (30, 30))
    gt = render([other, walker])
    dets = detect(gt, [other, walker], range(0, N, KEY))
    back = min(f for f in range(0, N, KEY) if f > 38)
    # the detector is unsure of the walker once it is back (0.4: enough to confirm an
    # object, too little to start one), and reports a weak stranger far from everything
    dets = [replace(d, score=0.4) if d.frame_idx >= back and d.box_xyxy[0] > 60 else d for d in dets]
    dets.append(Detection(back, TIMES[back], [5.0, 90.0, 25.0, 110.0], 0.4, "person", detector="script"))
    result, _, _ = run([other, walker], dets=dets)
    assert len(result.tubelets) == 2  # the walker kept its id; the stranger started nothing
    walker_t = next(t for t in result.tubelets if t.extra["reentries"])
    assert walker_t.extra["reentries"] == [back]


def test_a_moving_object_hidden_for_a_while_is_found_where_its_motion_took_it():
    # crosses the frame left to right at 3 px/frame, hidden (behind something the scene
    # does not draw) from frame 12 to 27: it reappears 48 px from where it was lost,
    # beyond reentry_max_distance, but where its motion says
    runner = Thing("runner", "dog", lambda f: None if 12 <= f <= 27 else (10 + 3 * f, 60))
    other = Thing("other", "person", lambda f: (140, 20))
    cfg = AssociationConfig()
    lost_at, back_at = (10 + 3 * 11, 60), (10 + 3 * 30, 60)
    assert np.hypot(back_at[0] - lost_at[0], 0) / np.hypot(W, H) > cfg.reentry_max_distance
    result, _, _ = run([other, runner])
    dogs = [t for t in result.tubelets if t.category == "dog"]
    assert len(dogs) == 1 and dogs[0].extra["reentries"]
    # without the motion cue it would have been a new object
    result, _, _ = run([other, runner], motion_frames=0)
    assert len([t for t in result.tubelets if t.category == "dog"]) == 2


def test_a_lost_object_named_otherwise_when_it_comes_back_keeps_its_id_when_it_looks_the_same():
    # the red person leaves by the right edge and comes back by it, called "dog" by the
    # detector; a blue stranger coming back the same way and named "dog" does not take the id
    red = Thing("red", "person", _exit_right_back_right(60, 60, 4, 100, back_at=40), score=0.9)
    for colours, kept in (({"red": (200, 30, 30)}, True), ({"red": (30, 60, 210)}, False)):
        gt = render([red])
        dets = detect(gt, [red], range(0, N, KEY))
        look = with_appearance(dets, gt, {"red": (200, 30, 30)})
        back = with_appearance(dets, gt, colours)
        dets = [b if d.frame_idx >= 40 else d for d, b in zip(look, back)]
        dets = [replace(d, category="dog") if d.frame_idx >= 40 else d for d in dets]
        result, _, _ = run([red], dets=dets)
        assert (len(result.tubelets) == 1) == kept, colours
        if kept:
            [tube] = result.tubelets
            assert len(tube.extra["reentries"]) == 1 and tube.category == "person"  # more votes before it left


@pytest.mark.parametrize("repeatable", [True, False], ids=["repeatable", "not-repeatable"])
def test_a_second_walk_from_a_keyframe_reuses_the_mask_a_repeatable_tracker_made_there(repeatable):
    # the backward sweep starts at the anchor again: a tracker whose box prompts always
    # give the same mask gets the mask it made there, others the detection's box again
    thing = Thing("t", "cat", moving(40, 1, 60))
    gt = render([thing])
    keyframes = list(range(0, N, KEY))
    tracker = RefittingTracker(gt, [thing], refits=False, repeatable=repeatable)
    result = associate(tracker, "v.mp4", VIDEO, FRAMES, TIMES, detect(gt, [thing], keyframes), "s", keyframes=keyframes)
    at_anchor = [has_mask for f, _, _, has_mask in tracker.prompts if f == result.anchor_frame]
    assert at_anchor == [False, repeatable]  # forward: the box; backward: the mask, or the box again


def test_a_weak_detection_keeps_an_object_it_covers_well_and_starts_nothing():
    """ByteTrack's second pass: detections below match_score only confirm objects no
    stronger detection matched, and only overlapping them by weak_match_iou."""
    ghost = Thing("ghost", "bag", lambda f: (50, 50))
    person = Thing("person", "person", lambda f: (120, 60))
    gt = render([ghost, person])
    dets = detect(gt, [ghost, person], range(0, N, KEY))
    # after the first keyframe the detector is barely sure of the bag (0.15) ...
    weak = [replace(d, score=0.15) if d.category == "bag" and d.frame_idx > 0 else d for d in dets]
    # ... and sees a weak stranger far from everything
    weak.append(Detection(20, TIMES[20], [5.0, 90.0, 25.0, 110.0], 0.15, "person", detector="script"))
    result, _, _ = run([ghost, person], dets=weak, max_unconfirmed_keyframes=2)
    bag = next(t for t in result.tubelets if t.category == "bag")
    assert visible(bag) == FRAMES  # kept on every keyframe by the weak detections
    assert len(result.tubelets) == 2  # the stranger started nothing
    assert result.stats["weak_matches"] >= len(range(KEY, N, KEY))
    # too weak for the second pass (below weak_score), or too loose a box: dropped as before
    result, _, _ = run([ghost, person], dets=weak, max_unconfirmed_keyframes=2, weak_score=0.2)
    assert visible(next(t for t in result.tubelets if t.category == "bag")) == list(range(0, 10))
    loose = [
        replace(d, box_xyxy=[d.box_xyxy[0] - 15, d.box_xyxy[1] - 15, d.box_xyxy[2] + 15, d.box_xyxy[3] + 15])
        if d.score < 0.3
        else d
        for d in weak
    ]
    result, _, _ = run([ghost, person], dets=loose, max_unconfirmed_keyframes=2)
    bag = next(t for t in result.tubelets if t.category == "bag")
    assert result.stats["weak_matches"] == 0 and result.stats["dropped_unconfirmed"] >= 1
    assert not set(range(10, 40)) & set(visible(bag))
