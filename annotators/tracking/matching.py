"""The pieces of association that look at one keyframe: IoU, Hungarian matching, NMS,
anchor choice and the re-entry cues (position, appearance). Pure functions over
detections and regions: appearance is compared as descriptors, never as pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tubelet.annotators.tracking.propagator import Region
from tubelet.schemas import geometry
from tubelet.schemas.geometry import box_iou
from tubelet.schemas.records import Detection
from tubelet.schemas.rle import merge_rles, rle_area, rle_iou


def region_of(det: Detection) -> Region:
    """A detection as a region (its box and, when the detector segments, its mask)."""
    return Region(box_xyxy=list(det.box_xyxy), mask=det.mask_rle, score=float(det.score))


def overlap(a: Region, b: Region) -> float:
    """Mask IoU when both regions have masks, else box IoU (the fallback for box-only
    detectors)."""
    if a.mask is not None and b.mask is not None:
        return rle_iou(a.mask_rle, b.mask_rle)  # type: ignore[arg-type]
    box_a, box_b = a.box, b.box
    if box_a is None or box_b is None:
        return 0.0
    return float(box_iou(box_a, box_b))


def containment(a: Region, b: Region) -> float:
    """How much of the smaller region lies inside the other (intersection over the
    smaller area): 1 for a part inside its whole. Masks when both have one, else boxes."""
    if a.mask is not None and b.mask is not None:
        ra, rb = a.mask_rle, b.mask_rle
        smaller = min(rle_area(ra), rle_area(rb))  # type: ignore[arg-type]
        if smaller == 0:
            return 0.0
        return rle_area(merge_rles([ra, rb], intersect=True)) / smaller  # type: ignore[list-item]
    box_a, box_b = a.box, b.box
    if box_a is None or box_b is None:
        return 0.0
    iw = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
    ih = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
    smaller = min((box_a[2] - box_a[0]) * (box_a[3] - box_a[1]), (box_b[2] - box_b[0]) * (box_b[3] - box_b[1]))
    return float(max(0.0, iw) * max(0.0, ih) / smaller) if smaller > 0 else 0.0


def overlap_matrix(a: Sequence[Region], b: Sequence[Region]) -> np.ndarray:
    """Pairwise :func:`overlap`, shape ``(len(a), len(b))``."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    for i, ra in enumerate(a):
        for j, rb in enumerate(b):
            out[i, j] = overlap(ra, rb)
    return out


def hungarian(score: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` maximising the total ``score`` over ``allowed`` cells only.

    One-to-one; rows or columns with no allowed cell stay unmatched. Disallowed cells get
    a cost no allowed assignment can beat, and any pair landing on one is dropped.
    """
    from scipy.optimize import linear_sum_assignment  # scipy is slow to import: only where it is used

    if score.size == 0 or not allowed.any():
        return []
    big = float(np.abs(score[allowed]).sum()) + 1.0
    cost = np.where(allowed, -score, big)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def suppress_duplicates(dets: Sequence[Detection], iou: float) -> tuple[list[Detection], int]:
    """Per-category NMS on one keyframe: the kept detections (best score first, ties in
    input order) and how many were suppressed. A detector that boxes one object twice
    must not start two objects."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
    kept: list[Detection] = []
    for i in order:
        d = dets[i]
        if any(k.category == d.category and overlap(region_of(k), region_of(d)) >= iou for k in kept):
            continue
        kept.append(d)
    return kept, len(dets) - len(kept)


def select_anchor(confident_by_frame: dict[int, list[Detection]]) -> int | None:
    """The keyframe with the most confident detections, the earliest on ties (Strefer's
    anchor: where the most objects are seen at once); None when nothing was detected."""
    best: int | None = None
    for frame in sorted(confident_by_frame):
        n = len(confident_by_frame[frame])
        if n and (best is None or n > len(confident_by_frame[best])):
            best = frame
    return best


def edges_touched(box: Sequence[float], width: int, height: int, margin: float) -> set[str]:
    """Which frame edges ``box`` lies within ``margin`` (a fraction of the frame size) of."""
    return set(geometry.edges_touched(box, width, height, margin))


def reentry_distance(
    last_box: Sequence[float],
    det_box: Sequence[float],
    width: int,
    height: int,
    edge_margin: float,
    max_distance: float,
) -> float | None:
    """How well a detection fits a lost object's last-seen box, or None when it cannot be
    the same object.

    The position cue (:func:`reentry_costs` adds appearance): the object left through a
    frame edge and the detection touches the same edge (it comes back the way it went),
    or the detection is within ``max_distance`` (fraction of the frame diagonal) of where
    the object was last seen (it was occluded and reappears in place). Smaller is better:
    the normalised distance between box centres.
    """
    diag = float(np.hypot(width, height))
    cl = np.array([(last_box[0] + last_box[2]) / 2, (last_box[1] + last_box[3]) / 2])
    cd = np.array([(det_box[0] + det_box[2]) / 2, (det_box[1] + det_box[3]) / 2])
    distance = float(np.linalg.norm(cl - cd)) / diag
    same_edge = edges_touched(last_box, width, height, edge_margin) & edges_touched(det_box, width, height, edge_margin)
    if same_edge or distance <= max_distance:
        return distance
    return None


def reentry_costs(position: np.ndarray, appearance: np.ndarray, max_appearance: float) -> np.ndarray:
    """Costs of pairing re-entering detections (rows) with lost objects (columns);
    ``inf`` where they cannot be the same object.

    ``position`` is :func:`reentry_distance` (``inf`` where the position is implausible:
    a gate, never overruled); ``appearance`` the descriptor distance (``nan`` where a side
    has no descriptor). A pair whose appearance is farther than ``max_appearance`` is
    ruled out, so a stranger at the same edge becomes a new object. Among the plausible
    pairs the appearance decides (position only breaks ties) when every one of them has
    it; otherwise position alone decides, as without descriptors (two scales that do not
    compare are never mixed).
    """
    known = ~np.isnan(appearance)
    allowed = np.isfinite(position) & ~(known & (appearance > max_appearance))
    if allowed.any() and known[allowed].all():
        cost = appearance + 1e-3 * np.where(allowed, position, 0.0)
    else:
        cost = position.astype(np.float64, copy=True)
    return np.where(allowed, cost, np.inf)
