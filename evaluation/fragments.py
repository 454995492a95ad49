"""Fragmentation: into how many predicted tracks each ground-truth object was split.

One object should be one track. On every frame, the ground-truth boxes to score and the
predicted boxes are matched one to one (the CLEAR MOT frame matching of ``identity``:
Hungarian on box IoU, pairs at or above the threshold); a ground-truth object's
*fragments* are the distinct predicted tracks it was matched to over the video. An
object matched to one track scores 1; one that three tracks took turns on scores 3; an
object never matched has no fragments and is left out of the mean (that is a miss,
which recall measures). ID switches count the changes between consecutive matches,
this counts the tracks: a track that comes back after a switch is not counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tubelet.evaluation.identity import scored_frames
from tubelet.evaluation.tracks import frame_counts, frame_grid, select_videos, tracks_by_video
from tubelet.schemas.geometry import box_iou


@dataclass(frozen=True)
class Fragments:
    """The predicted tracks matched to each ground-truth object of one video."""

    video_id: str
    by_object: dict[str, list[str]]  # ground-truth tubelet id -> predicted tubelet ids, sorted

    @property
    def matched(self) -> int:
        """Ground-truth objects matched at least once."""
        return sum(1 for ids in self.by_object.values() if ids)

    @property
    def tracks_per_object(self) -> float | None:
        """Mean number of predicted tracks per matched object (None: none matched)."""
        counts = [len(ids) for ids in self.by_object.values() if ids]
        return float(np.mean(counts)) if counts else None

    @property
    def split(self) -> int:
        """Objects matched to more than one track."""
        return sum(1 for ids in self.by_object.values() if len(ids) > 1)


def fragments(
    pred: pa.Table,
    gt: pa.Table,
    *,
    gt_videos: pa.Table | None = None,
    iou: float = 0.5,
    videos: Sequence[str] | None = None,
) -> list[Fragments]:
    """:class:`Fragments` of every video of ``gt`` (scored ground-truth tracks only,
    as ``tubelet eval`` scores them: MOT's non-pedestrian tracks are left out)."""
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    n_frames = frame_counts(gt_videos) if gt_videos is not None else {}
    gt_tracks, pred_tracks = tracks_by_video(gt), tracks_by_video(pred)
    out = []
    for video_id in select_videos(set(gt_tracks) | set(n_frames), videos):
        every_gt = gt_tracks.get(video_id, [])
        preds = pred_tracks.get(video_id, [])
        seen: dict[int, set[int]] = {k: set() for k, g in enumerate(every_gt) if g.considered}
        for frame in scored_frames(preds, every_gt, frame_grid(every_gt, n_frames.get(video_id)), iou):
            if not frame.gt_ids or not frame.pred_ids:
                continue
            ious = np.asarray(box_iou(frame.gt_boxes, frame.pred_boxes)).reshape(len(frame.gt_ids), -1)
            rows, cols = linear_sum_assignment(ious, maximize=True)
            for r, c in zip(rows, cols):
                g = frame.gt_ids[r]
                if ious[r, c] >= iou and g in seen:
                    seen[g].add(frame.pred_ids[c])
        by_object = {
            every_gt[g].tubelet_id: sorted(preds[p].tubelet_id for p in matched) for g, matched in seen.items()
        }
        out.append(Fragments(video_id, by_object))
    return out


def overall_tracks_per_object(results: Sequence[Fragments]) -> float | None:
    """Mean tracks per matched object over all videos' objects."""
    counts = [len(ids) for r in results for ids in r.by_object.values() if ids]
    return float(np.mean(counts)) if counts else None
