"""Do the counting, order and verification answers of a tracked dataset hold against
ground truth?

Both datasets' tubelets go through the same instruction generator
(``annotators/instructions``, task types ``counting``, ``entity_order`` and
``timestamp_verification``). A question of one dataset (the *source*) is then asked of
the other (the *target*) and answered there with the derivation the generator itself
uses (``derive``), so the two answers are to the same question:

- **objects** correspond one to one as ``tubelet eval`` pairs them (``matching``: mean
  per-frame IoU over the frames either is visible), when their similarity reaches
  ``min_similarity``; a question about an object without a counterpart cannot be asked
  of the target (it is *not comparable*: ground truth that annotates one object per
  video, as DAVIS does, says nothing about the others);
- **counting** "how many <c>": the target's answer counts its objects of every
  category a <c> object of the source corresponds to (the tracker's "bird" for the
  ground truth's "swan" and "duck"); not comparable when no <c> object has a counterpart;
- **entity_order** "which appears first, a or b": both objects need counterparts; the
  answers are the first one (mapped back), or no answer when the target sees both
  appear within a frame of each other;
- **timestamp_verification** "is x visible at t": the object needs a counterpart; the
  answers are yes/no at the time the question states.

The ground truth is taken as ``tubelet eval`` scores it (MOT's tracks that are never
counted — occluders, vehicles, static people — are left out). The question's wording
never enters (categories are named differently on each side:
DAVIS's "swan" is YOLO's "bird"): a question is its template, its objects and its
time. Run both ways: ``tracked -> gt`` (is what the tracked dataset publishes true?)
and ``gt -> tracked`` (would the tracked dataset answer the ground truth's questions?).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from tubelet.annotators.instructions import derive as d
from tubelet.annotators.instructions.generator import GeneratorConfig, generate_instructions
from tubelet.evaluation.matching import match_tracks
from tubelet.evaluation.tracks import frame_counts, frame_grid, tracks_by_video
from tubelet.schemas.arrow import table_to_records
from tubelet.schemas.records import Instruction, Tubelet

#: The task types compared.
TASKS: tuple[str, ...] = ("counting", "entity_order", "timestamp_verification")


@dataclass
class Tally:
    """Questions of one task type: generated from the source, comparable, equal."""

    asked: int = 0
    comparable: int = 0
    equal: int = 0

    def add(self, other: Tally) -> None:
        self.asked += other.asked
        self.comparable += other.comparable
        self.equal += other.equal

    @property
    def share(self) -> float | None:
        """Equal answers over comparable questions (None: nothing comparable)."""
        return self.equal / self.comparable if self.comparable else None


@dataclass
class Agreement:
    """Per task type, per video and overall, for one direction (``source -> target``)."""

    direction: str
    by_video: dict[str, dict[str, Tally]] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)  # disagreements, for reading

    def overall(self) -> dict[str, Tally]:
        out = {task: Tally() for task in TASKS}
        for tallies in self.by_video.values():
            for task, tally in tallies.items():
                out[task].add(tally)
        return out

    def total(self) -> Tally:
        out = Tally()
        for tally in self.overall().values():
            out.add(tally)
        return out


def answer_agreement(
    tracked: pa.Table,
    gt: pa.Table,
    gt_videos: pa.Table,
    *,
    min_similarity: float = 0.3,
    config: GeneratorConfig | None = None,
) -> tuple[Agreement, Agreement]:
    """``(tracked -> gt, gt -> tracked)`` agreement of two ``tubelets`` tables over the
    videos of ``gt_videos`` (see the module docstring)."""
    config = config or GeneratorConfig(task_types=TASKS)
    videos = {v.video_id: v for v in table_to_records("videos", gt_videos)}
    tracked_tracks = tracks_by_video(tracked)
    # the ground truth as `tubelet eval` scores it: MOT's occluders, cars, static people
    # and other tracks never counted are left out (a tracker of people is not asked them)
    gt_tracks = {v: [t for t in ts if t.considered] for v, ts in tracks_by_video(gt).items()}
    scored = {t.tubelet_id for ts in gt_tracks.values() for t in ts}
    tracked_rows = _by_video(table_to_records("tubelets", tracked))
    gt_rows = _by_video([t for t in table_to_records("tubelets", gt) if t.tubelet_id in scored])
    n_frames = frame_counts(gt_videos)
    forward, backward = Agreement("tracked -> gt"), Agreement("gt -> tracked")
    for video_id in sorted(videos):
        mine, theirs = tracked_rows.get(video_id, []), gt_rows.get(video_id, [])
        preds, truth = tracked_tracks.get(video_id, []), gt_tracks.get(video_id, [])
        grid = frame_grid(truth, n_frames.get(video_id))
        pairs = {
            preds[m.pred].tubelet_id: truth[m.gt].tubelet_id
            for m in match_tracks(preds, truth, grid)
            if m.similarity >= min_similarity
        }
        video = videos[video_id]
        tables = {"tracked": d.VideoTables.of(mine), "gt": d.VideoTables.of(theirs)}
        for agreement, source, target, mapping in (
            (forward, "tracked", "gt", pairs),
            (backward, "gt", "tracked", {g: p for p, g in pairs.items()}),
        ):
            rows = mine if source == "tracked" else theirs
            questions = generate_instructions(rows, video=video, config=config) if rows else []
            agreement.by_video[video_id] = _compare(
                questions, tables[source], tables[target], mapping, video_id, agreement.examples
            )
    return forward, backward


def _by_video(tubelets: Sequence[Tubelet]) -> dict[str, list[Tubelet]]:
    out: dict[str, list[Tubelet]] = {}
    for t in tubelets:
        out.setdefault(t.video_id, []).append(t)
    return out


def _compare(
    questions: Sequence[Instruction],
    source: d.VideoTables,
    target: d.VideoTables,
    mapping: Mapping[str, str],
    video_id: str,
    examples: list[dict[str, str]],
) -> dict[str, Tally]:
    tallies = {task: Tally() for task in TASKS}
    for q in questions:
        if q.task_type not in tallies:
            continue
        tally = tallies[q.task_type]
        tally.asked += 1
        theirs = _target_answer(q, source, target, mapping, video_id)
        if theirs is None:
            continue
        tally.comparable += 1
        mine = q.answer.tubelet_ids[0] if q.task_type == "entity_order" else (q.answer.text or "")
        if mine == theirs:
            tally.equal += 1
        elif len(examples) < 50:
            examples.append({"video_id": video_id, "question": q.messages[0].content, "source": mine, "target": theirs})
    return tallies


def _target_answer(
    q: Instruction, source: d.VideoTables, target: d.VideoTables, mapping: Mapping[str, str], video_id: str
) -> str | None:
    """The target's answer to ``q`` in the source's terms, or None when the target
    cannot be asked it (an object or category without a counterpart)."""
    if q.task_type == "counting":
        counted = [source.tubelets[i] for i in q.answer.tubelet_ids]
        categories = _counterpart_categories(counted, target, mapping)
        if not categories:
            return None
        return str(sum(len(d.counted(c, video_id, target)) for c in sorted(categories)))
    if q.task_type == "entity_order":
        pair = [i for i in q.provenance if i in source.tubelets]
        if len(pair) != 2 or any(i not in mapping or mapping[i] not in target.tubelets for i in pair):
            return None
        first = d.earliest([mapping[i] for i in pair], target)
        back = {mapping[i]: i for i in pair}
        return back[first] if first is not None else "neither"
    if q.task_type == "timestamp_verification":
        (tid,) = q.answer.tubelet_ids
        counterpart = mapping.get(tid)
        if counterpart is None or counterpart not in target.tubelets or "t_s" not in q.query:
            return None
        return "yes" if d.visible_at(target.tubelets[counterpart], float(q.query["t_s"])) else "no"
    return None


def _counterpart_categories(counted: Sequence[Tubelet], target: d.VideoTables, mapping: Mapping[str, str]) -> set[str]:
    """The target categories of ``counted``'s counterparts (empty: none has one)."""
    return {
        target.tubelets[mapping[t.tubelet_id]].category for t in counted if mapping.get(t.tubelet_id) in target.tubelets
    }
