"""Apply one reviewed task to its video's rows: the new rows, and a ``reviews`` row per verdict.

Compared with the rows that were pushed:

* a track whose keyframes the reviewer moved, added or deleted is **corrected** only
  where that changes what Label Studio shows (``corrections``): on those spans, bounded by
  the keyframes the reviewer left in place, its boxes become the reviewer's and the
  tracker, prompted at the edits, regenerates their masks (``retrack``); every other
  row stays as it was, byte for byte. A visible frame of a span left without a mask is
  counted and named in a reject row;
* a track that is gone was **rejected**: the tubelet, its entity and the events it alone
  takes part in leave the dataset; a track the reviewer drew is a new ``review`` tubelet;
* an event span or label that changed is corrected, a deleted one rejected, a new one added;
* a changed referring expression or caption replaces the entity's text;
* a ticked instruction is rejected, and stays out when instructions are regenerated;
* everything else is **accepted** as it was.

When anything other than an instruction rejection changed, the video's instructions are
generated again from the reviewed rows (``regenerate``). Review ids are hashes of the
annotation and the item, so applying the same annotation twice gives the same rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tubelet.review.corrections import Correction, Retracked, Span, clip_box, find_corrections, splice
from tubelet.review.results import ReviewedEvent, ReviewedTask, ReviewedTrack
from tubelet.review.tasks import VideoRows
from tubelet.schemas.records import (
    Entity,
    Event,
    Instruction,
    Reject,
    Review,
    Tubelet,
    TubeletFrame,
)

STAGE = "review"

#: (tubelet, one span's reviewed boxes by frame, prompt frames) -> the span's re-tracked rows
Retrack = Callable[[Tubelet, dict[int, list[float] | None], list[int]], Retracked]
#: (reviewed rows of the video) -> its instructions
Regenerate = Callable[[VideoRows], list[Instruction]]


@dataclass
class Applied:
    """The video's rows after the review, its ``reviews`` rows, and what could not be applied."""

    rows: VideoRows
    reviews: list[Review] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        """Whether any row differs from before (accepts alone change nothing)."""
        return any(r.verdict != "accept" for r in self.reviews)


def apply_review(
    rows: VideoRows,
    reviewed: ReviewedTask,
    *,
    project: str,
    tolerance_px: float,
    retrack: Retrack | None = None,
    regenerate: Regenerate | None = None,
    rejected_before: Collection[str] = (),
) -> Applied:
    """The rows of ``rows.video`` once ``reviewed`` is applied (``rows`` is not modified).

    ``tolerance_px``: the push's keyframe tolerance; a box within it (plus rounding) of
    the pushed one is unchanged. ``rejected_before``: instruction ids rejected by
    earlier reviews, kept out of regenerated instructions.
    """
    out = Applied(rows=VideoRows(video=rows.video))
    verdict = _Verdicts(project, reviewed, out)
    out.rejects += [
        Reject(item=f"task {reviewed.task_id}", stage=STAGE, reason=p, video_id=reviewed.video_id)
        for p in reviewed.problems
    ]
    tubelets = _apply_tracks(rows, reviewed, tolerance_px, retrack, verdict, out)
    kept = {t.tubelet_id for t in tubelets}
    out.rows.tubelets = tubelets
    out.rows.entities = _apply_texts(rows, reviewed, kept, tubelets, verdict, out)
    out.rows.events = _apply_events(rows, reviewed, kept, tubelets, verdict, out)
    rejected = set(rejected_before) | set(reviewed.rejected_instructions)
    for inst_id in reviewed.rejected_instructions:
        verdict.add("instructions", inst_id, "reject")
    if any(r.verdict != "accept" and r.item_table != "instructions" for r in out.reviews) and regenerate:
        fresh = regenerate(out.rows)
        out.counts["instructions_regenerated"] = len(fresh)
    else:
        fresh = list(rows.instructions)
    out.rows.instructions = [i for i in fresh if i.instruction_id not in rejected]
    out.counts["instructions_before"] = len(rows.instructions)
    out.counts["instructions_after"] = len(out.rows.instructions)
    return out


class _Verdicts:
    """Makes the ``reviews`` rows of one annotation."""

    def __init__(self, project: str, reviewed: ReviewedTask, out: Applied) -> None:
        self.project, self.reviewed, self.out = project, reviewed, out

    def add(self, table: str, item_id: str, verdict: str, **payload: Any) -> None:
        r = self.reviewed
        # the annotation's update time too: a reviewer who comes back makes new verdicts
        key = f"{self.project}|{r.task_id}|{r.annotation_id}|{r.reviewed_at}|{table}|{item_id}"
        self.out.reviews.append(
            Review(
                review_id="review:" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16],
                video_id=r.video_id,
                item_table=table,
                item_id=item_id,
                verdict=verdict,
                reviewer=r.reviewer,
                reviewed_at=r.reviewed_at,
                project=self.project,
                payload={"task_id": r.task_id, "annotation_id": r.annotation_id, **payload},
            )
        )
        self.out.counts[f"{table}_{verdict}"] += 1


# ------------------------------------------------------------------------- tracks


def _apply_tracks(
    rows: VideoRows,
    reviewed: ReviewedTask,
    tolerance_px: float,
    retrack: Retrack | None,
    verdict: _Verdicts,
    out: Applied,
) -> list[Tubelet]:
    by_tubelet = {t.tubelet_id: t for t in reviewed.tracks if t.tubelet_id}
    result: list[Tubelet] = []
    for tube in rows.tubelets:
        track = by_tubelet.get(tube.tubelet_id)
        if track is None:
            if any(f.visible for f in tube.frames):  # it was pushed, and the reviewer deleted it
                verdict.add("tubelets", tube.tubelet_id, "reject")
            else:
                result.append(tube)  # never shown, so never reviewed
            continue
        category = track.category or tube.category
        recategorised = {"category": [tube.category, category]} if category != tube.category else {}
        tube = replace(tube, category=category)
        correction = find_corrections(tube, track, tolerance_px=tolerance_px)
        if not correction.spans:
            verdict.add("tubelets", tube.tubelet_id, "correct" if recategorised else "accept", **recategorised)
            result.append(tube)
            continue
        result.append(_corrected(tube, correction, retrack, out, reviewed.video_id))
        verdict.add(
            "tubelets",
            tube.tubelet_id,
            "correct",
            spans=[[span.frames[0], span.frames[-1]] for span in correction.spans],
            prompt_frames=[p for span in correction.spans for p in span.prompts],
            **recategorised,
        )
    for track in reviewed.tracks:
        if track.tubelet_id is None:
            new = _new_tubelet(rows, track)
            result.append(
                _corrected(
                    new, find_corrections(new, track, tolerance_px=tolerance_px), retrack, out, reviewed.video_id
                )
            )
            verdict.add("tubelets", new.tubelet_id, "add", frames=len(track.boxes))
    return result


def _corrected(tube: Tubelet, correction: Correction, retrack: Retrack | None, out: Applied, video_id: str) -> Tubelet:
    """``tube`` with its corrected spans replaced: the reviewer's boxes, masks re-tracked
    span by span where the tubelet has masks (or is new); every other row kept as it is.
    A visible frame of a span left without a mask is counted and named in a reject."""
    had_masks = any(f.mask_rle is not None for f in tube.frames)
    masked = had_masks or not tube.frames  # a drawn track gets masks when a tracker is given
    spanned = set(correction.frames)
    out.counts["frames_corrected"] += len(spanned)
    out.counts["masks_kept"] += sum(1 for f in tube.frames if f.frame_idx not in spanned and f.mask_rle is not None)
    new_rows: dict[int, TubeletFrame] = {}
    missing: dict[int, str] = {}
    for span in correction.spans:
        fixed, why = _retracked_span(tube, span, retrack if masked else None)
        new_rows.update({f.frame_idx: f for f in fixed})
        if had_masks or (masked and retrack is not None):  # masks were expected on these frames
            missing.update(why)
    out.counts["masks_regenerated"] += sum(1 for f in new_rows.values() if f.visible and f.mask_rle is not None)
    out.counts["masks_not_regenerated"] += len(missing)
    for frames, reason in _runs_of(missing, sorted({f.frame_idx for f in tube.frames} | set(new_rows))):
        where = f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}-{frames[-1]}"
        out.rejects.append(
            Reject(
                item=f"{tube.tubelet_id} {where}",
                stage=STAGE,
                video_id=video_id,
                reason=f"mask not regenerated: {reason}; the reviewed box is kept without a mask",
            )
        )
    return splice(tube, new_rows)


def _retracked_span(tube: Tubelet, span: Span, retrack: Retrack | None) -> tuple[list[TubeletFrame], dict[int, str]]:
    """The span's new rows and, per visible frame left without a mask, why."""
    if retrack is not None and span.visible:
        try:
            done = retrack(tube, dict(span.boxes), list(span.prompts))
            return list(done.tubelet.frames), dict(done.missing)
        except Exception as error:  # noqa: BLE001 - one tubelet's failure must not lose the review
            failure = f"re-tracking failed ({type(error).__name__}: {error})"
            return _boxes_only(tube, span), {f: failure for f in span.visible}
    why = "no tracker was given" if retrack is None else ""
    return _boxes_only(tube, span), {f: why for f in span.visible} if why else {}


def _runs_of(missing: dict[int, str], frames: list[int]) -> list[tuple[list[int], str]]:
    """The ``missing`` frames grouped into runs of neighbouring rows (in ``frames``, the
    tubelet's rows in order: a sampled tubelet's rows skip frames) with the same reason."""
    position = {f: i for i, f in enumerate(frames)}
    runs: list[tuple[list[int], str]] = []
    for frame in sorted(missing):
        if runs and runs[-1][1] == missing[frame] and position[runs[-1][0][-1]] == position[frame] - 1:
            runs[-1][0].append(frame)
        else:
            runs.append(([frame], missing[frame]))
    return runs


def _boxes_only(tube: Tubelet, span: Span) -> list[TubeletFrame]:
    """The span's rows with the reviewer's boxes (clipped to the frame) and no masks; an
    out-of-view row's box is placed by ``splice``."""
    rows = {f.frame_idx: f for f in tube.frames}
    out = []
    for frame, box in span.boxes.items():
        clipped, amodal = clip_box(box, tube.width, tube.height)
        row = rows.get(frame)
        held = row.box_xyxy if row is not None else [0.0, 0.0, 0.0, 0.0]
        out.append(
            TubeletFrame(
                frame_idx=frame,
                t_s=row.t_s if row is not None else frame / tube.fps,
                box_xyxy=list(clipped if clipped is not None else held),
                visible=clipped is not None,
                amodal_xyxy=amodal,
            )
        )
    return out


def _new_tubelet(rows: VideoRows, track: ReviewedTrack) -> Tubelet:
    v = rows.video
    return Tubelet(
        tubelet_id=f"{v.video_id}:review:{track.region_id}",
        video_id=v.video_id,
        category=track.category or "object",
        source="review",
        track_id=track.region_id,
        fps=v.fps,
        width=v.width,
        height=v.height,
        frames=[],
        extra={"reviewed": True},
    )


# ------------------------------------------------------------------- entities (texts)


def _apply_texts(
    rows: VideoRows,
    reviewed: ReviewedTask,
    kept: set[str],
    tubelets: Sequence[Tubelet],
    verdict: _Verdicts,
    out: Applied,
) -> list[Entity]:
    region_of = {t.tubelet_id: t.region_id for t in reviewed.tracks if t.tubelet_id}
    region_of.update({tube.tubelet_id: tube.track_id for tube in tubelets if tube.source == "review"})
    category = {t.tubelet_id: t.category for t in tubelets}
    result = []
    for entity in rows.entities:
        if entity.tubelet_id not in kept:
            continue
        rid = region_of.get(entity.tubelet_id)
        changes: dict[str, list[Any]] = {}
        updated = entity
        for field_name, texts in (("referring_expression", reviewed.expressions), ("caption", reviewed.captions)):
            if rid is None or rid not in texts:
                continue
            old, new = getattr(entity, field_name), texts[rid] or None
            if (old or None) != new:
                changes[field_name] = [old, new]
                updated = replace(updated, **{field_name: new})
        if category.get(entity.tubelet_id) and category[entity.tubelet_id] != entity.category:
            changes["category"] = [entity.category, category[entity.tubelet_id]]
            updated = replace(updated, category=category[entity.tubelet_id])
        if changes:
            updated = replace(updated, attributes={**updated.attributes, "reviewed": True})
        verdict.add("entities", entity.entity_id, "correct" if changes else "accept", **changes)
        result.append(updated)
    described = {e.tubelet_id for e in result}
    for tube in tubelets:
        rid = tube.track_id
        text = reviewed.expressions.get(rid) if tube.source == "review" else None
        if tube.tubelet_id not in described and text:
            entity = Entity(
                entity_id=f"{tube.tubelet_id}:entity",
                video_id=tube.video_id,
                tubelet_id=tube.tubelet_id,
                category=tube.category,
                referring_expression=text,
                caption=reviewed.captions.get(rid) or None,
                model_id="review",
            )
            verdict.add("entities", entity.entity_id, "add")
            result.append(entity)
    return result


# -------------------------------------------------------------------------- events


def _apply_events(
    rows: VideoRows,
    reviewed: ReviewedTask,
    kept: set[str],
    tubelets: Sequence[Tubelet],
    verdict: _Verdicts,
    out: Applied,
) -> list[Event]:
    times = _frame_times(rows, tubelets)
    spans: dict[str, list[ReviewedEvent]] = {}
    for span in reviewed.events:
        spans.setdefault(span.event_id or "", []).append(span)
    result = []
    for event in rows.events:
        reviewed_spans = spans.pop(event.event_id, [])
        participants = [t for t in event.tubelet_ids if t in kept]
        if event.tubelet_ids and not participants:
            out.counts["events_dropped_with_their_tubelets"] += 1
            continue
        if not reviewed_spans:
            verdict.add("events", event.event_id, "reject")
            continue
        first, *extra = reviewed_spans
        updated = replace(event, tubelet_ids=participants)
        changes: dict[str, list[Any]] = {}
        if (first.start_frame, first.end_frame) != (event.start_frame, event.end_frame):
            changes["frames"] = [[event.start_frame, event.end_frame], [first.start_frame, first.end_frame]]
            updated = replace(
                updated,
                start_frame=first.start_frame,
                end_frame=first.end_frame,
                start_s=times(first.start_frame),
                end_s=times(first.end_frame),
            )
        if first.label and first.label != (event.label or event.text):
            changes["label"] = [event.label, first.label]
            updated = replace(updated, label=first.label, text=first.label)
        verdict.add("events", event.event_id, "correct" if changes else "accept", **changes)
        result.append(updated)
        for n, span in enumerate(extra, start=1):
            result.append(_new_event(rows, f"{event.event_id}:{n}", span, event.tubelet_ids, times))
            verdict.add("events", result[-1].event_id, "add")
    for new_spans in spans.values():
        for n, span in enumerate(new_spans):
            event = _new_event(rows, f"{rows.video.video_id}:event:review:{span.region_id}:{n}", span, [], times)
            verdict.add("events", event.event_id, "add")
            result.append(event)
    return result


def _frame_times(rows: VideoRows, tubelets: Sequence[Tubelet]) -> Callable[[int], float]:
    known = {f.frame_idx: f.t_s for t in [*rows.tubelets, *tubelets] for f in t.frames}
    fps = rows.video.fps
    return lambda frame: float(known.get(frame, frame / fps))


def _new_event(
    rows: VideoRows, event_id: str, span: ReviewedEvent, tubelet_ids: list[str], times: Callable[[int], float]
) -> Event:
    return Event(
        event_id=event_id,
        video_id=rows.video.video_id,
        tubelet_ids=list(tubelet_ids),
        start_s=times(span.start_frame),
        end_s=times(span.end_frame),
        start_frame=span.start_frame,
        end_frame=span.end_frame,
        text=span.label,
        label=span.label,
        source="review",
    )
