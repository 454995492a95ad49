"""``evaluate``: compare a predicted tubelets table with a ground-truth one, per video.

Per video: match tubelets (``matching``) to the ground-truth tubelets that are to be
scored (MOT's non-pedestrian tracks are not; see ``tracks``), score each against its
match (``masks``, ``temporal``; an unmatched one scores 0 everywhere), then the
identity metrics and box recall over all tracks of the video (``identity``).
Per-video figures are means over the video's ground-truth tubelets; the overall
figures are means over all ground-truth tubelets (DAVIS reports its J&F-Mean over
objects), box recall is pooled over all boxes, the identity metrics are motmetrics'
overall summary (its counts summed over videos) and HOTA is TrackEval's (``hota``),
combined over videos as TrackEval combines sequences.

That is the ``tubelet`` protocol, the default. ``protocol="motchallenge"`` scores MOT
ground truth as TrackEval's official MOT17 evaluation does instead (``motchallenge``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from tubelet.engine.dataset import Dataset
from tubelet.evaluation.davis import BOUND_TH
from tubelet.evaluation.hota import hota_pairs
from tubelet.evaluation.identity import accumulate, box_recall_counts, identity_metrics, scored_frames
from tubelet.evaluation.masks import mask_scores
from tubelet.evaluation.matching import match_tracks, uses_masks
from tubelet.evaluation.motchallenge import evaluate_motchallenge
from tubelet.evaluation.results import PROTOCOLS, EvalReport, ObjectResult, VideoResult
from tubelet.evaluation.temporal import mean_box_iou, tiou, viou
from tubelet.evaluation.trackeval_metrics import plain, run_trackeval, sequence_data, summary
from tubelet.evaluation.tracks import Track, frame_counts, frame_grid, select_videos, tracks_by_video

#: vIoU thresholds reported as the fraction of ground-truth tubelets reaching them.
VIOU_THRESHOLDS = (0.3, 0.5)


def score_object(
    pred: Track | None, gt: Track, grid: Sequence[int], similarity: float, bound_th: float
) -> ObjectResult:
    """All per-pair metrics of one ground-truth tubelet (``pred`` None: a miss)."""
    masks = mask_scores(pred, gt, bound_th)  # a miss scores as an empty prediction
    return ObjectResult(
        gt_tubelet_id=gt.tubelet_id,
        pred_tubelet_id=pred.tubelet_id if pred is not None else None,
        similarity=similarity,
        j=masks.j if masks else None,
        f=masks.f if masks else None,
        jf=masks.jf if masks else None,
        box_iou=mean_box_iou(pred, gt),
        tiou=tiou(pred, gt, grid),
        viou=viou(pred, gt, grid),
    )


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _object_summary(objects: Sequence[ObjectResult]) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: _mean(getattr(o, key) for o in objects) for key in ("j", "f", "jf", "box_iou", "tiou", "viou")
    }
    vious = [o.viou for o in objects if o.viou is not None]
    for k in VIOU_THRESHOLDS:
        out[f"viou@{k}"] = sum(v >= k for v in vious) / len(vious) if vious else None
    return out


def evaluate(
    pred: pa.Table,
    gt: pa.Table,
    *,
    gt_videos: pa.Table | None = None,
    iou: float = 0.5,
    videos: Sequence[str] | None = None,
    bound_th: float = BOUND_TH,
    protocol: str = "tubelet",
) -> EvalReport:
    """Compare two ``tubelets`` tables; ``gt_videos`` (the GT ``videos`` table) sets each
    video's frame count, so frames where nothing is annotated still count (predictions
    there are false positives). ``videos`` restricts the evaluation to those ids.
    ``protocol`` is ``"tubelet"`` (the default, this module) or ``"motchallenge"``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    if protocol == "motchallenge":
        if iou != 0.5:
            raise ValueError(f"the motchallenge protocol matches at IoU 0.5, as TrackEval does (got --iou {iou:g})")
        return evaluate_motchallenge(pred, gt, gt_videos=gt_videos, videos=videos)
    n_frames = frame_counts(gt_videos) if gt_videos is not None else {}
    gt_tracks = tracks_by_video(gt)
    pred_tracks = tracks_by_video(pred)
    known = select_videos(set(gt_tracks) | set(n_frames), videos)

    results: list[VideoResult] = []
    accumulators, all_objects, sequences = [], [], {}
    recalled = total = 0
    for video_id in known:
        every_gt = gt_tracks.get(video_id, [])
        gts = [t for t in every_gt if t.considered]  # not MOT's occluders, cars, reflections
        preds = pred_tracks.get(video_id, [])
        grid = frame_grid(every_gt, n_frames.get(video_id))
        matches = {m.gt: m for m in match_tracks(preds, gts, grid)}
        objects = [
            score_object(
                preds[matches[j].pred] if j in matches else None,
                g,
                grid,
                matches[j].similarity if j in matches else 0.0,
                bound_th,
            )
            for j, g in enumerate(gts)
        ]
        frames = scored_frames(preds, every_gt, grid, iou)
        r, n = box_recall_counts(frames, iou)
        recalled, total = recalled + r, total + n
        metrics = _object_summary(objects)
        metrics["box_recall"] = r / n if n else None
        metrics["ignored_gt"] = len(every_gt) - len(gts)
        masks = uses_masks(preds, gts)
        metrics["hota_similarity"] = "mask" if masks else "box"
        results.append(VideoResult(video_id, len(gts), len(preds), len(matches), metrics, objects))
        accumulators.append(accumulate(frames, iou))
        sequences[video_id] = sequence_data(video_id, hota_pairs(frames, preds, every_gt, masks))
        all_objects.extend(objects)

    identity = identity_metrics(accumulators, [r.video_id for r in results])
    hota, hota_overall = run_trackeval(sequences, ["HOTA"])
    for result in results:
        result.metrics.update(identity.get(result.video_id, {}))
        result.metrics.update(summary(hota[result.video_id]))
        result.trackeval = plain(hota[result.video_id])
    overall = _object_summary(all_objects)
    overall["box_recall"] = recalled / total if total else None
    overall.update(identity.get("OVERALL", {}))
    overall.update(summary(hota_overall))
    overall.update(
        n_videos=len(results),
        n_gt=sum(r.n_gt for r in results),
        n_pred=sum(r.n_pred for r in results),
        n_matched=sum(r.n_matched or 0 for r in results),
        ignored_gt=sum(r.metrics["ignored_gt"] for r in results),
        hota_similarity=_similarity_kinds(results),
    )
    pred_only = sorted(set(pred_tracks) - set(known)) if videos is None else []
    return EvalReport(iou, bound_th, results, overall, pred_only, "tubelet", plain(hota_overall))


def _similarity_kinds(results: Sequence[VideoResult]) -> str | None:
    """``box``, ``mask``, or ``box+mask`` when videos differ (None with no video)."""
    kinds = sorted({r.metrics["hota_similarity"] for r in results})
    return "+".join(kinds) if kinds else None


def evaluate_datasets(pred_root: str, gt_root: str, **kwargs: Any) -> EvalReport:
    """``evaluate`` on two dataset folders (their committed ``tubelets``; the GT's ``videos``)."""
    pred, gt = Dataset(pred_root), Dataset(gt_root)
    return evaluate(pred.read_table("tubelets"), gt.read_table("tubelets"), gt_videos=gt.read_table("videos"), **kwargs)
