"""Association: keyframe detections + a propagating tracker -> objects with stable ids.

The one algorithm both masklet trackers share (SAM 2 in the full profile, optical flow +
GrabCut in the lite one); they only implement :class:`~.propagator.Propagator`.

1. Detections are filtered by score and de-duplicated per keyframe (per-category NMS).
2. The anchor is the keyframe with the most confident detections (earliest on ties);
   its detections become objects 1..n (best score first).
3. A forward sweep, then a backward sweep, walk from the anchor window by window (a
   window ends at every keyframe, and every ``max_window`` tracked frames). Each window
   re-prompts the live objects on its first frame and propagates them to its last.
4. At each keyframe the regions found there are matched to the detections (Hungarian on
   mask IoU, box IoU when either side has no mask): a detection of the object's
   category, or of one a detection confirming it gave before, by ``match_iou``; of any
   other category by ``relabel_iou`` (the detector named the same object differently).
   Then ByteTrack's second pass: detections weaker than ``match_score`` (down to
   ``weak_score``) may confirm the objects still unconfirmed, by ``weak_match_iou``.
   A matched object is confirmed (its category gets the detection's score as a vote)
   and re-prompted from its detection; an object left
   unconfirmed on more than ``max_unconfirmed_keyframes`` keyframes in a row is taken to
   have drifted: it is dropped and its frames from the first unconfirmed keyframe on
   are removed. A detection that matches nothing and overlaps no region (its category's
   by ``new_object_iou``, any by ``relabel_iou``) is either a *re-entry* (a lost object
   it may be fits by position — where it was lost, where its last motion would have
   taken it, or the same frame edge — and by appearance, see ``matching``: it keeps its
   old id; a weak detection is enough for that) or, when confident, a *new* object (one
   per object however many names the detector gave it). Both are also propagated the
   other way from this keyframe, until they disappear, so an object entering between
   keyframes is tracked from the frame it enters, and no earlier.
5. Tracks that overlap on most shared frames are merged (whatever their categories; a
   part of an object of its category, lying inside it, too), and tubelets are built and
   filtered (``tubelet.annotators.tracking.tubelets``). A tubelet's category is decided
   once, by the score-weighted votes of the detections that confirmed it, and recorded
   with them (``extra.category_votes``, ``extra.category_confidence``).

Crossing objects keep their ids because matching compares detections with where each
object's own propagated mask is, not with where objects were on the last keyframe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tubelet.annotators.detectors.appearance import appearance_distance, mean_descriptor, remember
from tubelet.annotators.tracking.matching import (
    hungarian,
    overlap,
    overlap_matrix,
    reentry_costs,
    reentry_distance,
    region_of,
    select_anchor,
    suppress_duplicates,
)
from tubelet.annotators.tracking.propagator import Propagator, Region, frames_between
from tubelet.annotators.tracking.tubelets import Track, build_tubelets, merge_duplicates
from tubelet.schemas.records import Detection, Tubelet, VideoRecord

#: Added to a detection's overlap with an object of its own category when matching: the
#: category breaks near ties, the overlap decides.
_SAME_CATEGORY_BONUS = 0.1


@dataclass
class AssociationConfig:
    """Thresholds of association; IoUs are mask IoU, or box IoU where a mask is missing."""

    detection_score: float = 0.5  # a detection this confident can start an object / count for the anchor
    match_score: float = 0.3  # a detection this confident can confirm an existing object
    # ByteTrack's second pass: a weaker detection (down to weak_score) can only confirm an
    # object no stronger detection matched, and only overlapping it by weak_match_iou
    weak_score: float = 0.1
    weak_match_iou: float = 0.5
    match_iou: float = 0.3  # least overlap for a detection to match a propagated region
    new_object_iou: float = 0.5  # an unmatched detection overlapping a region this much is a duplicate, not an object
    duplicate_iou: float = 0.7  # NMS per keyframe, and track merging
    relabel_iou: float = 0.6  # a detection of another category overlapping an object this much is that object
    part_inside: float = 0.8  # a track of one category lying this much inside another (most frames) is a part of it
    duplicate_frame_fraction: float = 0.5  # merge two tracks overlapping on more than this share of shared frames
    duplicate_min_shared: int = 2  # ... and on at least this many shared frames
    reentry_window_s: float = 10.0  # a lost object can come back within this long
    reentry_edge_margin: float = 0.05  # "touches an edge": within this fraction of the frame size
    reentry_max_distance: float = 0.1  # or reappears within this fraction of the diagonal of where it was
    reentry_max_appearance: float = 0.5  # colour distance (0..1) past which a re-entry is a new object
    motion_frames: int = 8  # a lost object's velocity: over at most this many frames before it was lost
    appearance_memory: int = 5  # a track's appearance: mean descriptor of its last this many confirmations
    lost_patience: int = 2  # absent frames that end a propagation the other way
    max_unconfirmed_keyframes: int | None = 2  # None: never drop unconfirmed objects
    reprompt_with_detections: bool = True  # re-prompt matched objects from their detection (corrects drift)
    resegment_every: int | None = None  # trackers that refit masks: every n-th confirmation prompts the box alone
    max_window: int | None = None  # most tracked frames per propagate call (bounds tracker memory)
    min_length: int = 3  # quality filters: visible frames,
    min_mean_score: float = 0.0  # mean frame score,
    min_area: float = 0.0  # median visible area (mask pixels, or box area)


@dataclass
class AssociationResult:
    """Tubelets, their rejections as ``(tubelet_id, reason)``, and what happened."""

    tubelets: list[Tubelet]
    rejects: list[tuple[str, str]]
    anchor_frame: int | None
    stats: dict[str, Any] = field(default_factory=dict)


def associate(
    propagator: Propagator,
    media: Any,
    video: VideoRecord,
    frames: Sequence[int],
    timestamps: Mapping[int, float] | Sequence[float],
    detections: Sequence[Detection],
    source: str,
    keyframes: Sequence[int] | None = None,
    config: AssociationConfig | None = None,
) -> AssociationResult:
    """Track the objects of ``detections`` through ``frames`` of one video.

    ``media`` is what ``propagator.start`` opens; ``video`` gives the id, fps and frame
    size; ``frames`` are the absolute frame indices to track (ascending), ``timestamps``
    maps an absolute frame index to seconds; ``keyframes`` are the frames the detector
    ran on (default: the frames of ``detections``; a keyframe without detections still
    counts, as evidence of absence). Tubelet ids are ``<video_id>:track:<obj_id>``.
    """
    session = _Session(propagator, video, frames, timestamps, detections, keyframes, config or AssociationConfig())
    propagator.start(media, list(session.frames))
    tracks = session.run()
    cfg = session.cfg
    tracks, n_merged = merge_duplicates(
        tracks, cfg.duplicate_iou, cfg.duplicate_frame_fraction, cfg.duplicate_min_shared, cfg.part_inside
    )
    tubelets, rejects = build_tubelets(
        tracks,
        video,
        session.frames,
        timestamps,
        source,
        session.anchor,
        cfg.min_length,
        cfg.min_mean_score,
        cfg.min_area,
    )
    stats = dict(session.stats, merged=n_merged, tubelets=len(tubelets), rejected=len(rejects))
    return AssociationResult(tubelets, rejects, session.anchor, stats)


class _Session:
    """The state of one video's association (see the module docstring)."""

    def __init__(
        self,
        propagator: Propagator,
        video: VideoRecord,
        frames: Sequence[int],
        timestamps: Mapping[int, float] | Sequence[float],
        detections: Sequence[Detection],
        keyframes: Sequence[int] | None,
        cfg: AssociationConfig,
    ) -> None:
        self.p = propagator
        self.video = video
        self.cfg = cfg
        self.timestamps = timestamps
        self.frames = sorted(set(int(f) for f in frames))
        frame_set = set(self.frames)
        keys = set(keyframes) if keyframes is not None else {d.frame_idx for d in detections}
        outside = sorted(k for k in keys | {d.frame_idx for d in detections} if k not in frame_set)
        if outside:
            raise ValueError(f"keyframes/detections on frames that are not tracked: {outside[:5]}")
        self.keyframes = keys
        # Per keyframe: detections that may confirm objects, NMS'd, best first.
        self.dets: dict[int, list[Detection]] = {}
        suppressed = 0
        for k in sorted(keys):
            least = min(cfg.match_score, cfg.weak_score)
            usable = [d for d in detections if d.frame_idx == k and d.score >= least]
            self.dets[k], n = suppress_duplicates(usable, cfg.duplicate_iou)
            suppressed += n
        self.tracks: dict[int, Track] = {}
        self.anchor: int | None = None
        self.stats: dict[str, Any] = {
            "keyframes": len(keys),
            "detections_suppressed": suppressed,
            "objects_started": 0,
            "reentries": 0,
            "dropped_unconfirmed": 0,
            "weak_matches": 0,
            "windows": 0,
            "propagated_frames": 0,
        }

    # -- the two sweeps -------------------------------------------------------------
    def run(self) -> list[Track]:
        confident = {k: self._confident(k) for k in self.dets}
        self.anchor = select_anchor(confident)
        if self.anchor is None:
            return []
        prompts = {self._new_track(d, self.anchor): region_of(d) for d in self._distinct(confident[self.anchor])}
        self._sweep(self.anchor, dict(prompts), reverse=False)
        # Backward: the anchor objects from their detections, plus whatever else (found
        # forward and propagated back) is on the anchor frame.
        back = self._made_here(dict(prompts), self.anchor)
        for obj, track in self.tracks.items():
            if obj not in back and self.anchor in track.regions:
                back[obj] = track.regions[self.anchor]
        self._sweep(self.anchor, back, reverse=True)
        return [t for t in self.tracks.values() if t.regions]

    def _sweep(self, start: int, prompts: dict[int, Region], reverse: bool) -> None:
        """Walk from ``start`` to the end of the video (the start with ``reverse``)."""
        end = self.frames[0] if reverse else self.frames[-1]
        walk = frames_between(self.frames, start, end)
        streak: dict[int, tuple[int, int]] = {}  # obj -> (unconfirmed keyframes in a row, first of them)
        if len(walk) == 1 and prompts:
            self._window(start, start, prompts, reverse)  # a one-frame sweep still records the start
        cur, since_cut = start, 0
        for f in walk[1:]:
            since_cut += 1
            if not (f in self.keyframes or f == end or (self.cfg.max_window and since_cut >= self.cfg.max_window)):
                continue
            if prompts:
                self._window(cur, f, prompts, reverse)
            present = {o: t.regions[f] for o, t in self.tracks.items() if f in t.regions}
            if f in self.keyframes:
                prompts = self._keyframe(f, present, reverse, streak)
            else:
                prompts = present  # carried-over prompts: the window's last regions
            cur, since_cut = f, 0

    def _window(self, start: int, end: int, prompts: dict[int, Region], reverse: bool) -> None:
        self.p.reset()
        for obj, region in prompts.items():
            self.p.add_prompt(start, obj, box=region.box, mask=region.mask)
        self.stats["windows"] += 1
        stream = self.p.propagate(start, end, reverse)
        for f, regions in stream:
            self.stats["propagated_frames"] += 1
            for obj in prompts:
                if obj in regions:
                    self._record(obj, f, regions[obj])

    # -- one keyframe --------------------------------------------------------------
    def _keyframe(
        self, k: int, present: dict[int, Region], reverse: bool, streak: dict[int, tuple[int, int]]
    ) -> dict[int, Region]:
        """Match, confirm, drop, re-enter and start objects on keyframe ``k``; the prompts
        of the next window."""
        prompts, left = self._confirm(k, present, streak)
        for obj in present:
            if obj not in prompts and not self._unconfirmed(obj, k, streak, reverse):
                prompts[obj] = present[obj]
        started = self._arrivals(k, left, present, reverse)
        for obj in started:
            streak.pop(obj, None)  # a lost object back: its unconfirmed keyframes start again
        if started:
            # Back the other way from here: where did these objects come in?
            stop = {o: self._nearest_seen(o, k, behind=not reverse) for o in started}
            self._side_trip(k, started, not reverse, stop)
        prompts.update(self._made_here(started, k))
        return prompts

    def _confirm(
        self, k: int, present: dict[int, Region], streak: dict[int, tuple[int, int]]
    ) -> tuple[dict[int, Region], list[Detection]]:
        """Confirm the objects ``present`` on keyframe ``k`` from its detections, in two
        passes as ByteTrack does: those of at least ``match_score`` first, then the weaker
        ones (from ``weak_score``) for the objects still unconfirmed. The prompts of the
        confirmed objects and the detections left over."""
        strong = [d for d in self.dets[k] if d.score >= self.cfg.match_score]
        weak = [d for d in self.dets[k] if d.score < self.cfg.match_score]
        prompts: dict[int, Region] = {}
        left: list[Detection] = []
        for dets in (strong, weak):
            pairs = self._pairs(dets, {o: r for o, r in present.items() if o not in prompts})
            for i, obj in pairs:
                det, track = dets[i], self.tracks[obj]
                track.confirm(k, det.score, det.category)
                remember(track.appearance, det.appearance, self.cfg.appearance_memory)
                streak.pop(obj, None)
                prompts[obj] = self._reprompt(region_of(det), present[obj], len(track.confirmed))
            matched = {i for i, _ in pairs}
            left += [d for i, d in enumerate(dets) if i not in matched]
            if dets is weak:
                self.stats["weak_matches"] += len(pairs)
        return prompts, left

    def _pairs(self, dets: list[Detection], objects: dict[int, Region]) -> list[tuple[int, int]]:
        """``(detection index, object)`` pairs, Hungarian on overlap over the pairs
        :meth:`_may_confirm` allows; the category only breaks near ties."""
        objs = list(objects)
        if not dets or not objs:
            return []
        iou = overlap_matrix([region_of(d) for d in dets], list(objects.values()))
        same = np.array([[self.tracks[o].answers_to(d.category) for o in objs] for d in dets], dtype=bool)
        allowed = np.array(
            [[self._may_confirm(d, o, iou[i, j]) for j, o in enumerate(objs)] for i, d in enumerate(dets)], dtype=bool
        )
        return [(i, objs[j]) for i, j in hungarian(iou + _SAME_CATEGORY_BONUS * same, allowed)]

    def _may_confirm(self, det: Detection, obj: int, overlap_: float) -> bool:
        """Whether ``det``, overlapping object ``obj`` by ``overlap_``, may confirm it: a
        detection of the object's category (or of one it was called before) by
        ``match_iou``, of another by ``relabel_iou`` (the detector named the same object
        differently); a weak one (under ``match_score``) by ``weak_match_iou`` whatever its
        category, since a weak detection names nothing reliably."""
        if det.score < self.cfg.match_score:
            return overlap_ >= self.cfg.weak_match_iou
        same = self.tracks[obj].answers_to(det.category)
        return overlap_ >= self.cfg.relabel_iou or (same and overlap_ >= self.cfg.match_iou)

    def _arrivals(self, k: int, left: list[Detection], present: dict[int, Region], reverse: bool) -> dict[int, Region]:
        """Objects that arrive on keyframe ``k``, with their prompts: of the detections
        ``left`` unmatched, those no region already covers (of their category by
        ``new_object_iou``, of any by ``relabel_iou``), one per object. A lost object may
        come back on any of them, a weak one too (the detector is often unsure of what it
        lost sight of); a new object starts only from a confident one."""
        objs = list(present)
        iou = overlap_matrix([region_of(d) for d in left], [present[o] for o in objs])
        same = np.array([[self.tracks[o].answers_to(d.category) for o in objs] for d in left], dtype=bool)
        covered = (same.reshape(iou.shape) & (iou >= self.cfg.new_object_iou)) | (iou >= self.cfg.relabel_iou)
        arriving = self._distinct([d for i, d in enumerate(left) if not covered[i].any()])
        reentered = self._reentries(k, arriving, set(present), reverse)
        started: dict[int, Region] = {}
        for n, det in enumerate(arriving):
            obj = reentered.get(n)
            if obj is None:
                if det.score < self.cfg.detection_score:
                    continue
                obj = self._new_track(det, k)  # remembers the detection's appearance
            else:
                remember(self.tracks[obj].appearance, det.appearance, self.cfg.appearance_memory)
                self.tracks[obj].confirm(k, det.score, det.category)
            started[obj] = region_of(det)
        return started

    def _made_here(self, prompts: dict[int, Region], k: int) -> dict[int, Region]:
        """``prompts`` for a second walk from keyframe ``k``: for a tracker whose masks
        are a function of the frame and the prompt (``repeatable_masks``), the region it
        already made there from a box-only detection (segmenting the same box again would
        cost as much and give the same mask); other trackers get the detections again."""
        if not getattr(self.p, "repeatable_masks", False):
            return prompts
        out = {}
        for obj, region in prompts.items():
            made = self.tracks[obj].regions.get(k)
            out[obj] = made if region.mask is None and made is not None and made.mask is not None else region
        return out

    def _reprompt(self, det: Region, tracked: Region, confirmations: int) -> Region:
        """The prompt of an object a detection confirmed: the detection (it corrects the
        tracker's drift), with the object's propagated mask when the detection has none and
        the tracker fits masks into boxes (``refits_masks``: the lite flow tracker keeps the
        shape instead of segmenting the box again) — except on every
        ``resegment_every``-th confirmation, where the box alone starts the shape afresh."""
        if not self.cfg.reprompt_with_detections:
            return tracked
        every = self.cfg.resegment_every
        fresh = bool(every) and confirmations % every == 0
        if det.mask is None and tracked.mask is not None and getattr(self.p, "refits_masks", False) and not fresh:
            return Region(box_xyxy=det.box, mask=tracked.mask, score=det.score)
        return det

    def _reentries(self, k: int, dets: list[Detection], present: set[int], reverse: bool) -> dict[int, int]:
        """Which of ``dets`` are lost objects coming back: ``{det: obj}``. Position gates
        (``reentry_distance``), appearance decides among the plausible (``reentry_costs``)."""
        if not dets:
            return {}
        t_k = float(self.timestamps[k])
        lost: list[tuple[int, list[float]]] = []
        for obj, track in self.tracks.items():
            if obj in present or not track.regions:
                continue
            # Lost behind us (walking direction) and not seen anywhere ahead yet.
            last = self._nearest_seen(obj, k, behind=not reverse)
            ahead = self._nearest_seen(obj, k, behind=reverse)
            if last is None or ahead is not None:
                continue
            if abs(t_k - float(self.timestamps[last])) > self.cfg.reentry_window_s:
                continue
            box = track.regions[last].box
            if box is not None:
                lost.append((obj, box, self._predicted_box(track, last, k)))
        if not lost:
            return {}
        w, h = self.video.width, self.video.height
        looks = [mean_descriptor(self.tracks[obj].appearance) for obj, _, _ in lost]
        dist = np.full((len(dets), len(lost)), np.inf)
        app = np.full((len(dets), len(lost)), np.nan)  # nan: a side has no descriptor
        for i, det in enumerate(dets):
            for j, (obj, box, predicted) in enumerate(lost):
                # where it was lost, or where its last motion would have taken it by now
                fits = [
                    reentry_distance(b, det.box_xyxy, w, h, self.cfg.reentry_edge_margin, self.cfg.reentry_max_distance)
                    for b in (box, predicted)
                ]
                d = min((f for f in fits if f is not None), default=None)
                if d is None:
                    continue
                looks_like = None
                if det.appearance is not None and looks[j] is not None:
                    looks_like = appearance_distance(det.appearance, looks[j])
                if not self.tracks[obj].answers_to(det.category):
                    # named otherwise (the dog that comes back as a "cat"): only when it
                    # looks much like the object, twice as close as a re-entry must be
                    if looks_like is None or looks_like > self.cfg.reentry_max_appearance / 2:
                        continue
                dist[i, j] = d
                if looks_like is not None:
                    app[i, j] = looks_like
        cost = reentry_costs(dist, app, self.cfg.reentry_max_appearance)
        allowed = np.isfinite(cost)
        pairs = hungarian(np.where(allowed, -cost, 0.0), allowed)
        self.stats["reentries"] += len(pairs)
        for _, j in pairs:
            self.tracks[lost[j][0]].reentries.append(k)
        return {i: lost[j][0] for i, j in pairs}

    def _predicted_box(self, track: Track, last: int, k: int) -> list[float]:
        """The box ``track`` had on frame ``last`` moved on to frame ``k`` at the velocity
        of its box centre over the frames before ``last`` (up to ``motion_frames`` of them,
        on the side it came from): the motion cue of re-entry."""
        box = track.regions[last].box
        assert box is not None
        # seen frames on the far side of ``last`` from ``k``, at most motion_frames away
        behind = [f for f in track.regions if (last - f) * (k - last) > 0 and abs(last - f) <= self.cfg.motion_frames]
        if not behind:
            return box
        first = max(behind, key=lambda f: abs(last - f))  # the farthest back: a steadier velocity
        before = track.regions[first].box
        if before is None:
            return box
        step = (k - last) / (last - first)
        dx = ((box[0] + box[2]) - (before[0] + before[2])) / 2 * step
        dy = ((box[1] + box[3]) - (before[1] + before[3])) / 2 * step
        return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy]

    # -- propagation the other way -------------------------------------------------
    def _side_trip(self, k: int, prompts: dict[int, Region], reverse: bool, stop: dict[int, int | None]) -> None:
        """Propagate ``prompts`` from ``k`` towards the video's end (start with
        ``reverse``) until each object disappears for longer than ``lost_patience``
        frames, reaches ``stop[obj]`` (where it was last seen), or drifts (unconfirmed)."""
        end = self.frames[0] if reverse else self.frames[-1]
        if end == k:
            return
        alive = set(prompts)
        misses = dict.fromkeys(prompts, 0)
        streak: dict[int, tuple[int, int]] = {}

        def carry(f: int) -> dict[int, Region]:
            # an object not seen on a chunk's last frame has nothing to carry: it ends there
            return {o: self.tracks[o].regions[f] for o in sorted(alive) if f in self.tracks[o].regions}

        stream = self._chunked(k, end, prompts, reverse, carry)
        try:
            for f, regions in stream:
                for obj in sorted(alive):
                    limit = stop[obj]
                    if limit is not None and (f <= limit if reverse else f >= limit):
                        alive.discard(obj)
                        continue
                    region = regions.get(obj)
                    if region is None or region.is_empty:
                        misses[obj] += 1
                        if misses[obj] > self.cfg.lost_patience:
                            alive.discard(obj)
                        continue
                    misses[obj] = 0
                    self._record(obj, f, region)
                    if f != k and f in self.keyframes and not self._drift_check(obj, f, region, streak, reverse):
                        alive.discard(obj)
                if not alive:
                    break
        finally:
            stream.close()

    def _chunked(
        self,
        start: int,
        end: int,
        prompts: dict[int, Region],
        reverse: bool,
        carry: Callable[[int], dict[int, Region]],
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        """Propagate from ``start`` to ``end`` in windows of at most ``max_window`` frames,
        re-prompting each window from ``carry(first frame)``; every frame yielded once."""
        walk = frames_between(self.frames, start, end)
        step = self.cfg.max_window or len(walk)
        i = 0
        while prompts:
            j = min(i + max(1, step), len(walk) - 1)
            self.p.reset()
            for obj, region in prompts.items():
                self.p.add_prompt(walk[i], obj, box=region.box, mask=region.mask)
            self.stats["windows"] += 1
            stream = self.p.propagate(walk[i], walk[j], reverse)
            try:
                for f, regions in stream:
                    self.stats["propagated_frames"] += 1
                    if f != walk[i] or i == 0:  # a window's first frame ended the last one
                        yield f, regions
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # let the tracker release the window when we stop early
            if j >= len(walk) - 1:
                return
            i, prompts = j, carry(walk[j])

    def _drift_check(self, obj: int, f: int, region: Region, streak: dict[int, tuple[int, int]], reverse: bool) -> bool:
        """On a keyframe passed the other way: is ``obj`` still confirmed by some detection
        (:meth:`_may_confirm`)? Drops it (False) after too many
        unconfirmed keyframes."""
        track = self.tracks[obj]
        hits = [d for d in self.dets[f] if self._may_confirm(d, obj, overlap(region_of(d), region))]
        if hits:
            best = max(hits, key=lambda d: d.score)
            track.confirm(f, best.score, best.category)
            streak.pop(obj, None)
            return True
        return not self._unconfirmed(obj, f, streak, reverse)

    def _unconfirmed(self, obj: int, k: int, streak: dict[int, tuple[int, int]], reverse: bool) -> bool:
        """No detection confirmed ``obj`` on keyframe ``k``: count it, and once that has
        happened on more than ``max_unconfirmed_keyframes`` in a row, take the object to
        have drifted: drop it from the first of them on. True when dropped."""
        count, first = streak.get(obj, (0, k))
        streak[obj] = (count + 1, first)
        limit = self.cfg.max_unconfirmed_keyframes
        if limit is None or count + 1 <= limit:
            return False
        self._trim(obj, first, reverse)
        self.stats["dropped_unconfirmed"] += 1
        return True

    # -- bookkeeping ---------------------------------------------------------------
    def _confident(self, k: int) -> list[Detection]:
        return [d for d in self.dets[k] if d.score >= self.cfg.detection_score]

    def _distinct(self, dets: Sequence[Detection]) -> list[Detection]:
        """``dets`` less those overlapping a better one by ``relabel_iou``, whatever the
        categories: one object named twice by the detector starts one object."""
        kept: list[Detection] = []
        for d in sorted(dets, key=lambda d: -d.score):
            if not any(overlap(region_of(d), region_of(b)) >= self.cfg.relabel_iou for b in kept):
                kept.append(d)
        return [d for d in dets if any(d is b for b in kept)]

    def _new_track(self, det: Detection, k: int) -> int:
        obj = max(self.tracks, default=0) + 1
        self.tracks[obj] = Track(obj, det.category, origin_frame=k, origin_score=float(det.score))
        self.tracks[obj].confirm(k, det.score, det.category)
        remember(self.tracks[obj].appearance, det.appearance, self.cfg.appearance_memory)
        self.stats["objects_started"] += 1
        return obj

    def _record(self, obj: int, f: int, region: Region) -> None:
        """Keep the first region seen for ``obj`` on ``f`` (the main sweep's wins over a
        later pass), as RLE so a long video's tracks stay small."""
        track = self.tracks[obj]
        if f in track.regions or region.is_empty:
            return
        compact = region.compact()
        if compact.mask is not None and list(compact.mask["size"]) != [self.video.height, self.video.width]:
            raise ValueError(
                f"tracker mask of size {compact.mask['size']} on frame {f}, but the video is "
                f"{self.video.height}x{self.video.width}: regions must be in the video's pixel grid"
            )
        track.regions[f] = compact

    def _trim(self, obj: int, first: int, reverse: bool) -> None:
        """Forget ``obj`` from keyframe ``first`` on, in the walking direction."""
        track = self.tracks[obj]
        for f in [f for f in track.regions if (f <= first if reverse else f >= first)]:
            del track.regions[f]
        track.forget([f for f in track.confirmed if (f <= first if reverse else f >= first)])

    def _nearest_seen(self, obj: int, k: int, behind: bool) -> int | None:
        """The frame nearest ``k`` where ``obj`` was seen, before ``k`` (``behind``) or
        after it."""
        seen = [f for f in self.tracks[obj].regions if (f < k if behind else f > k)]
        if not seen:
            return None
        return max(seen) if behind else min(seen)
