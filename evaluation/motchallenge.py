"""``tubelet eval --protocol motchallenge``: TrackEval's official MOT17 evaluation.

The preprocessing of TrackEval's ``MotChallenge2DBox`` (benchmark MOT17, the MOTChallenge
devkit's rules), applied to tubelets, then TrackEval's own HOTA, CLEAR and Identity code
(``trackeval_metrics``). Per frame (``timestep``) of each video, 1 … the video's
``n_frames``:

- ground truth is every ``gt.txt`` row the MOT import kept, whatever its class, consider
  flag or visibility: its unclipped box (``amodal_xyxy``, else ``box_xyxy``), its class
  (``extra.mot_classes``) and consider flag (``extra.consider``), and the rows wholly
  outside the frame (``extra.outside``). Visibility is not used (TrackEval's MOT17
  preprocessing does not read it): a fully occluded pedestrian is still to be found. A
  frame a reviewer added to an imported track takes the track's class and usual flag;
- predictions are the visible frames of the predicted tubelets, whatever their category,
  with ``amodal_xyxy`` where a tubelet has one, else ``box_xyxy``;
- similarity is box IoU; predictions and all ground truth are matched one to one
  (Hungarian on IoU ≥ 0.5) and a prediction matched to a distractor class
  (person_on_vehicle 2, static_person 7, distractor 8, reflection 12) is removed;
- then only pedestrians (class 1) with consider = 1 stay ground truth; every other
  prediction stays (one on a car or an occluder is a false positive).

Ids: MOT track ids for ground truth, the predicted tubelets numbered 1… in ``tubelet_id``
order, both relabelled ``0..n-1`` as TrackEval does. Within a frame, ground truth is in
ascending MOT id (the order of MOTChallenge's own ``gt.txt``, sorted by id) and
predictions in that numbering, which only matters for exact ties in the Hungarian steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tubelet.evaluation.davis import BOUND_TH
from tubelet.evaluation.results import EvalReport, VideoResult
from tubelet.evaluation.trackeval_metrics import FramePairs, plain, run_trackeval, sequence_data, summary
from tubelet.evaluation.tracks import frame_counts, select_videos
from tubelet.schemas.geometry import box_iou

PEDESTRIAN = 1
#: TrackEval's MOT17 distractor classes: a prediction matched to one is not counted.
DISTRACTORS = frozenset({2, 7, 8, 12})  # person_on_vehicle, static_person, distractor, reflection
#: Class ids TrackEval accepts in MOT17 ground truth (13: crowd).
VALID_CLASSES = frozenset(range(1, 14))
#: The match threshold of the preprocessing, CLEAR and Identity (TrackEval's default).
THRESHOLD = 0.5
_EPS = float(np.finfo(float).eps)

#: The ``extra`` lists (aligned with ``frames``) the protocol reads from MOT ground truth.
NEEDED = ("mot_classes", "consider")


class ProtocolInputError(ValueError):
    """The ground truth lacks what the MOTChallenge protocol needs."""


@dataclass(frozen=True)
class GtBox:
    gt_id: int
    box: list[float]
    cls: int
    consider: bool
    tubelet_id: str


def _box(frame: dict[str, Any]) -> list[float]:
    """The unclipped box: ``amodal_xyxy`` when the tubelet has one there, else ``box_xyxy``."""
    return frame["amodal_xyxy"] if frame.get("amodal_xyxy") is not None else frame["box_xyxy"]


def _missing(row: dict[str, Any], extra: dict[str, Any]) -> str | None:
    """Why a ground-truth row cannot be scored under the protocol (None: it can)."""
    n = len(row["frames"] or [])
    lacking = [k for k in NEEDED if not (isinstance(extra.get(k), list) and len(extra[k]) == n)]
    if lacking:
        return ", ".join(f"extra.{k}" for k in lacking)
    if not str(row["track_id"]).lstrip("-").isdigit():
        return f"an integer MOT track id (track_id is {row['track_id']!r})"
    return None


def _filled(extra: dict[str, Any]) -> tuple[list[int], list[bool]]:
    """Per frame class and consider flag. A frame a reviewer added to an imported track has
    neither (``review.retrack`` aligns the lists with None): it takes the track's class
    and its most frequent consider flag."""
    flags = [bool(k) for k in extra["consider"] if k is not None]
    usual = flags.count(True) >= flags.count(False)
    classes = [int(c) if c is not None else int(extra.get("mot_class", PEDESTRIAN)) for c in extra["mot_classes"]]
    return classes, [bool(k) if k is not None else usual for k in extra["consider"]]


def _check_ground_truth(rows: list[dict[str, Any]], extras: list[dict[str, Any]]) -> None:
    bad = [(r, e, why) for r, e in zip(rows, extras) if (why := _missing(r, e)) is not None]
    if not bad:
        return
    row, extra, why = bad[0]
    if row["source"] == "import:mot" and "consider" in extra:  # a MOT import of older code
        how = (
            "it was imported from MOT before tubelet stored every gt.txt row (per-row class, rows outside the frame): "
            "re-import it — run its import manifest (e.g. manifests/mot17-import.yaml) into a new output folder — "
            "and evaluate against that"
        )
    else:
        how = (
            "the protocol scores MOTChallenge ground truth: import a MOT gt.txt with the `import` pipeline "
            "(annotations: {format: mot, path: <seq>/gt/gt.txt}) and evaluate against that dataset"
        )
    raise ProtocolInputError(
        f"--protocol motchallenge: {len(bad)} of {len(rows)} ground-truth tubelets lack what it needs, "
        f"e.g. {row['tubelet_id']} (source {row['source']}) has no {why}; {how}"
    )


def _ground_truth(table: pa.Table, wanted: set[str]) -> dict[str, dict[int, list[GtBox]]]:
    """``{video_id: {frame_idx: [GtBox…]}}`` of every gt row, ascending MOT id per frame."""
    rows = [
        r
        for r in table.select(["tubelet_id", "video_id", "track_id", "source", "frames", "extra"]).to_pylist()
        if r["video_id"] in wanted
    ]
    extras = [json.loads(r["extra"]) if r["extra"] else {} for r in rows]
    _check_ground_truth(rows, extras)
    out: dict[str, dict[int, list[GtBox]]] = {}
    for row, extra in zip(rows, extras):
        gt_id, tid = int(row["track_id"]), row["tubelet_id"]
        frames = out.setdefault(row["video_id"], {})
        classes, consider = _filled(extra)
        listed = [(f["frame_idx"], _box(f), c, k) for f, c, k in zip(row["frames"], classes, consider, strict=True)]
        listed += [(o["frame_idx"], o["xyxy"], o["mot_class"], o["consider"]) for o in extra.get("outside", [])]
        for frame_idx, box, cls, consider in listed:
            frames.setdefault(int(frame_idx), []).append(GtBox(gt_id, box, int(cls), bool(consider), tid))
    for frames in out.values():
        for boxes in frames.values():
            boxes.sort(key=lambda b: b.gt_id)
    return out


def _predictions(table: pa.Table, wanted: set[str]) -> dict[str, dict[int, list[tuple[int, list[float], str]]]]:
    """``{video_id: {frame_idx: [(pred id, box, tubelet_id)…]}}``: visible frames only, the
    tubelets of a video numbered 1… in ``tubelet_id`` order."""
    rows = sorted(
        (r for r in table.select(["tubelet_id", "video_id", "frames"]).to_pylist() if r["video_id"] in wanted),
        key=lambda r: (r["video_id"], r["tubelet_id"]),
    )
    out: dict[str, dict[int, list[tuple[int, list[float], str]]]] = {}
    numbers: dict[str, int] = {}
    for row in rows:
        video = row["video_id"]
        numbers[video] = pred_id = numbers.get(video, 0) + 1
        frames = out.setdefault(video, {})
        for f in row["frames"] or []:
            if f["visible"] and f["box_xyxy"] is not None:
                frames.setdefault(int(f["frame_idx"]), []).append((pred_id, _box(f), row["tubelet_id"]))
    return out


def preprocess_frame(
    gts: Sequence[GtBox], preds: Sequence[tuple[int, list[float], str]], where: str
) -> tuple[FramePairs, int]:
    """One timestep as TrackEval's ``MotChallenge2DBox.get_preprocessed_seq_data`` leaves
    it, and how many predictions it removed as matches of distractors."""
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    g_boxes = np.array([g.box for g in gts], dtype=np.float64).reshape(-1, 4)
    p_boxes = np.array([p[1] for p in preds], dtype=np.float64).reshape(-1, 4)
    sim = np.zeros((len(gts), len(preds)), dtype=np.float64)
    removed: set[int] = set()
    if gts and preds:
        invalid = sorted({g.cls for g in gts} - VALID_CLASSES)
        if invalid:
            tube = next(g.tubelet_id for g in gts if g.cls in invalid)
            raise ProtocolInputError(f"{where}: ground-truth class {invalid[0]} of {tube} is not a MOT17 class (1-13)")
        sim = np.asarray(box_iou(g_boxes, p_boxes), dtype=np.float64)
        scores = sim.copy()
        scores[scores < THRESHOLD - _EPS] = 0
        rows, cols = linear_sum_assignment(-scores)
        matched = scores[rows, cols] > _EPS
        removed = {int(c) for r, c in zip(rows[matched], cols[matched]) if gts[r].cls in DISTRACTORS}
    keep_p = [k for k in range(len(preds)) if k not in removed]
    keep_g = [k for k, g in enumerate(gts) if g.consider and g.cls == PEDESTRIAN]
    pairs = FramePairs([gts[k].gt_id for k in keep_g], [preds[k][0] for k in keep_p], sim[np.ix_(keep_g, keep_p)])
    return pairs, len(removed)


def _timesteps(video_id: str, n_frames: int | None, gt: dict[int, list[GtBox]], preds: dict[int, list[Any]]) -> int:
    """The video's frame count (TrackEval's seqLength); a box beyond it is an error, as
    TrackEval refuses rows beyond the sequence."""
    n = n_frames if n_frames else max([*gt, -1]) + 1
    for side, frames in (("ground truth", gt), ("prediction", preds)):
        beyond = sorted(f for f in frames if f >= n)
        if beyond:
            first = frames[beyond[0]][0]
            tube = first.tubelet_id if isinstance(first, GtBox) else first[2]
            raise ProtocolInputError(
                f"{video_id}: {side} {tube} has a box on frame {beyond[0]}, beyond the video's {n} frames"
            )
    return n


def evaluate_motchallenge(
    pred: pa.Table,
    gt: pa.Table,
    *,
    gt_videos: pa.Table | None = None,
    videos: Sequence[str] | None = None,
) -> EvalReport:
    """Score ``pred`` against MOT ground truth as TrackEval's MOT17 evaluation does (per
    video and combined); raises ``ProtocolInputError`` when the ground truth lacks what
    the protocol needs (see ``NEEDED``)."""
    n_frames = frame_counts(gt_videos) if gt_videos is not None else {}
    gt_videos_ids = set(gt.column("video_id").to_pylist()) | set(n_frames)
    known = select_videos(gt_videos_ids, videos)
    wanted = set(known)
    gt_boxes = _ground_truth(gt, wanted)
    pred_boxes = _predictions(pred, wanted)

    sequences, removed = {}, {}
    for video_id in known:
        g, p = gt_boxes.get(video_id, {}), pred_boxes.get(video_id, {})
        n = _timesteps(video_id, n_frames.get(video_id), g, p)
        frames, removed[video_id] = [], 0
        for t in range(n):
            pairs, dropped = preprocess_frame(g.get(t, []), p.get(t, []), f"{video_id} frame {t}")
            frames.append(pairs)
            removed[video_id] += dropped
        sequences[video_id] = sequence_data(video_id, frames)
    per_video, combined = run_trackeval(sequences)

    results = []
    for video_id in known:
        data = sequences[video_id]
        metrics: dict[str, Any] = summary(per_video[video_id])
        metrics.update(
            gt_boxes=data["num_gt_dets"], pred_boxes=data["num_tracker_dets"], distractor_matches=removed[video_id]
        )
        results.append(
            VideoResult(
                video_id,
                n_gt=data["num_gt_ids"],
                n_pred=data["num_tracker_ids"],
                n_matched=None,
                metrics=metrics,
                trackeval=plain(per_video[video_id]),
            )
        )
    overall: dict[str, Any] = summary(combined)
    overall.update(
        {key: sum(r.metrics[key] for r in results) for key in ("gt_boxes", "pred_boxes", "distractor_matches")},
        n_videos=len(results),
        n_gt=sum(r.n_gt for r in results),
        n_pred=sum(r.n_pred for r in results),
        n_matched=None,
    )
    pred_only = sorted(set(pred.column("video_id").to_pylist()) - set(known)) if videos is None else []
    return EvalReport(THRESHOLD, BOUND_TH, results, overall, pred_only, "motchallenge", plain(combined))
