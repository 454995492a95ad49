"""Instruction generator: questions from templates, answers computed from the tables.

``generate_instructions(tubelets, entities, events, video=..., config=...)`` turns one
video's rows into ``Instruction`` rows of the task types in ``TASK_TYPES``. Every answer
comes from ``tubelet.annotators.instructions.derive`` (the functions the checker re-runs); a
phrasing is drawn per question with a RNG seeded by (seed, video, task type), so the
output is a pure function of the rows and the config. A paraphrase hook may rewrite the
question text only; a rewrite that drops the stated time, a region placeholder or the
asked attribute is discarded.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tubelet.annotators.instructions import derive as d
from tubelet.annotators.instructions.templates import TEMPLATES, attribute_asked
from tubelet.schemas.records import Answer, BoxAt, Entity, Event, Instruction, Message, RegionRef, Tubelet, VideoRecord

#: Every task type the generator knows, in output order.
TASK_TYPES: tuple[str, ...] = (
    "region_description",
    "region_qa",
    "timestamp_qa",
    "mask_time_qa",
    "temporal_grounding",
    "spatial_grounding",
    "st_grounding",
    "timestamp_verification",
    "entity_order",
    "counting",
)
GROUNDING_TASK_TYPES: tuple[str, ...] = ("temporal_grounding", "spatial_grounding", "st_grounding")

_PLACEHOLDER_RE = re.compile(r"<region\d+>")


@dataclass
class GeneratorConfig:
    """What to generate. ``max_per_task`` bounds each task type per video (yes/no tasks
    take half yes, half no); ``region_frames`` is how many keyframes a region placeholder
    shows; ``st_boxes`` how many boxes a spatio-temporal answer samples."""

    task_types: Sequence[str] = TASK_TYPES
    seed: int = 0
    max_per_task: int = 6
    region_frames: int = 3
    st_boxes: int = 4
    paraphrase: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.task_types) - set(TASK_TYPES))
        if unknown:
            raise ValueError(f"unknown task types {unknown}; known: {', '.join(TASK_TYPES)}")
        if self.max_per_task < 1 or self.region_frames < 1 or self.st_boxes < 1:
            raise ValueError("max_per_task, region_frames and st_boxes must be >= 1")


@dataclass
class _Draft:
    """A question before its phrasing is drawn: template key, fields, computed answer."""

    template: str
    fields: dict[str, str]
    answer: Answer
    provenance: list[str]
    regions: list[RegionRef] = field(default_factory=list)


def answer_message(answer: Answer) -> str:
    """The assistant turn for a structured answer (spans and boxes as plain text); an
    instant (a span whose ends are the same) reads "At 2.24s."."""
    parts = []
    if answer.span_s:
        parts.append(d.capitalize(d.span_words(answer.span_s)) + ".")
    if answer.boxes:
        parts.append(" ".join(f"At {d.fmt_t(b.t_s)}s: {d.fmt_box(b.box_xyxy)}." for b in answer.boxes))
    if not parts:
        return answer.text or ""
    return " ".join(parts)


def instruction_id(video_id: str, task_type: str, question: str, provenance: Sequence[str]) -> str:
    """``<video_id>:<task_type>:<sha1 of the question and the rows it uses, 12 hex>``."""
    digest = hashlib.sha1("\n".join([question, *provenance]).encode("utf-8")).hexdigest()[:12]
    return f"{video_id}:{task_type}:{digest}"


def generate_instructions(
    tubelets: Iterable[Tubelet],
    entities: Iterable[Entity] = (),
    events: Iterable[Event] = (),
    *,
    video: VideoRecord | None = None,
    config: GeneratorConfig | None = None,
) -> list[Instruction]:
    """Instructions for one video's rows (all rows must share one ``video_id``).

    ``video`` (optional) adds the video's frame times outside every tubelet as
    candidate negative times for ``timestamp_verification``.
    """
    config = config or GeneratorConfig()
    tables = d.VideoTables.of(tubelets, entities, events)
    videos = {t.video_id for t in tables.tubelets.values()}
    if len(videos) > 1:
        raise ValueError(f"generate_instructions takes one video's rows, got {sorted(videos)}")
    if not videos:
        return []
    video_id = videos.pop()
    ctx = _Context(video_id, tables, config, _known_times(tables, video))
    out: list[Instruction] = []
    seen: set[str] = set()
    for task_type in TASK_TYPES:
        if task_type not in config.task_types:
            continue
        rng = random.Random(f"{config.seed}:{video_id}:{task_type}")
        for draft in _FAMILIES[task_type](ctx, rng):
            inst = _finish(ctx, task_type, draft, rng)
            if inst.instruction_id not in seen:
                seen.add(inst.instruction_id)
                out.append(inst)
    return out


# ---------------------------------------------------------------- plumbing


@dataclass
class _Context:
    video_id: str
    tables: d.VideoTables
    config: GeneratorConfig
    times: list[float]  # every known frame time of the video, sorted

    def live(self) -> list[Tubelet]:
        return self.tables.live(self.video_id)

    def refs(self, tubelet_id: str) -> list[str]:
        """Row ids behind a mention of the tubelet: it and the entity that names it."""
        entity = self.tables.entity_of.get(tubelet_id)
        return [tubelet_id] + ([entity.entity_id] if entity else [])

    def region(self, tube: Tubelet, frames: list[int] | None = None) -> RegionRef:
        return RegionRef(
            "<region0>",
            tube.tubelet_id,
            frames
            if frames is not None
            else [
                f.frame_idx
                for f in _spread(sorted(tube.visible_frames, key=lambda f: f.frame_idx), self.config.region_frames)
            ],
        )


def _known_times(tables: d.VideoTables, video: VideoRecord | None) -> list[float]:
    by_frame: dict[int, float] = {}
    for tube in tables.tubelets.values():
        for f in tube.frames:
            by_frame.setdefault(f.frame_idx, f.t_s)
    if video is not None and video.fps > 0:
        for i in range(video.n_frames):
            by_frame.setdefault(i, i / video.fps)  # container times are unknown here; nominal
    return sorted(by_frame.values())


def _spread(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items evenly spread from first to last (all when fewer)."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def _sample(rng: random.Random, items: Sequence[Any], k: int) -> list[Any]:
    """``k`` items drawn by ``rng``, kept in their original order."""
    if len(items) <= k:
        return list(items)
    return [items[i] for i in sorted(rng.sample(range(len(items)), k))]


def _finish(ctx: _Context, task_type: str, draft: _Draft, rng: random.Random) -> Instruction:
    template = rng.choice(TEMPLATES[draft.template])
    question = template.format(**draft.fields)
    shown = _paraphrased(question, ctx.config.paraphrase, task_type)
    return Instruction(
        instruction_id=instruction_id(ctx.video_id, task_type, question, draft.provenance),
        video_id=ctx.video_id,
        task_type=task_type,
        messages=[Message("user", shown), Message("assistant", answer_message(draft.answer))],
        answer=draft.answer,
        regions=draft.regions,
        generator_id=d.GENERATOR_ID,
        provenance=list(dict.fromkeys(draft.provenance)),
        query=_query(draft),
    )


def _query(draft: _Draft) -> dict[str, Any]:
    """What the question asks, machine-readable: the stated time (as the question
    prints it, so the checker and the wording agree) and the attribute asked about."""
    query: dict[str, Any] = {}
    if "t" in draft.fields:
        query["t_s"] = float(draft.fields["t"])
    if draft.template.startswith("region_qa."):
        query["attribute"] = draft.template.split(".", 1)[1]
    return query


def _paraphrased(question: str, paraphrase: Callable[[str], str] | None, task_type: str) -> str:
    """The paraphrase when it keeps what the answer depends on, else the question."""
    if paraphrase is None:
        return question
    try:
        new = (paraphrase(question) or "").strip()
    except Exception:  # noqa: BLE001 - a paraphraser failing must not lose the instruction
        return question
    if not new:
        return question
    if d.times_in(new) != d.times_in(question):
        return question
    if sorted(_PLACEHOLDER_RE.findall(new)) != sorted(_PLACEHOLDER_RE.findall(question)):
        return question
    if task_type == "region_qa" and attribute_asked(new) != attribute_asked(question):
        return question
    return new


# ---------------------------------------------------------------- families


def _region_description(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for tube in ctx.live():
        tid = tube.tubelet_id
        answer = Answer(text=d.describe_region(tid, ctx.tables), tubelet_ids=[tid])
        prov = ctx.refs(tid) + [e.event_id for e in ctx.tables.events_of(tid)]
        drafts.append(_Draft("region_description", {"region": "<region0>"}, answer, prov, [ctx.region(tube)]))
    return _sample(rng, drafts, ctx.config.max_per_task)


def _region_qa(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for tube in ctx.live():
        tid = tube.tubelet_id
        fields = {"region": "<region0>"}
        drafts.append(
            _Draft(
                "region_qa.category", fields, Answer(text=tube.category, tubelet_ids=[tid]), [tid], [ctx.region(tube)]
            )
        )
        frame = rng.choice(sorted(tube.visible_frames, key=lambda f: f.frame_idx))
        where = d.position_word(frame.box_xyxy, tube.width, tube.height)
        drafts.append(
            _Draft(
                "region_qa.position",
                fields,
                Answer(text=where, tubelet_ids=[tid]),
                [tid],
                [ctx.region(tube, [frame.frame_idx])],
            )
        )
        entity = ctx.tables.entity_of.get(tid)
        # a person is asked what they wear, never their colour (d.colour_of gives them none)
        for attribute, value in (("colour", d.colour_of(entity)), ("clothing", d.clothing_of(entity))):
            if value:
                drafts.append(
                    _Draft(
                        f"region_qa.{attribute}",
                        fields,
                        Answer(text=value, tubelet_ids=[tid]),
                        ctx.refs(tid),
                        [ctx.region(tube)],
                    )
                )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _timestamp_qa(ctx: _Context, rng: random.Random) -> list[_Draft]:
    events = ctx.tables.video_events(ctx.video_id)
    times: list[float] = []
    if events:
        for ev in events:  # one time inside each event, on a frame of its tubelet
            tube = ctx.tables.tubelets.get(ev.tubelet_ids[0]) if ev.tubelet_ids else None
            inside = [f.t_s for f in tube.frames if d.event_active(ev, f.t_s, 0.0)] if tube else []
            if inside:
                times.append(rng.choice(inside))
    else:
        visible = sorted({f.t_s for tube in ctx.live() for f in tube.visible_frames})
        times = _sample(rng, visible, ctx.config.max_per_task)
    drafts, used = [], set()
    for t in times:
        tq = d.query_time(t)
        if tq in used:
            continue
        used.add(tq)
        text = d.happening_at(ctx.video_id, tq, ctx.tables)
        if events:
            active = d.events_at(ctx.video_id, tq, ctx.tables)
            prov = [i for e in active for i in (*e.tubelet_ids, e.event_id)]
            ids = [i for e in active for i in e.tubelet_ids]
        else:
            ids = [tb.tubelet_id for tb in ctx.live() if d.visible_at(tb, tq)]
            prov = list(ids)
        drafts.append(
            _Draft("timestamp_qa", {"t": d.fmt_t(tq)}, Answer(text=text, tubelet_ids=list(dict.fromkeys(ids))), prov)
        )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _mask_time_qa(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for tube in ctx.live():
        tid = tube.tubelet_id
        visible = sorted(tube.visible_frames, key=lambda f: f.frame_idx)
        events = ctx.tables.events_of(tid)
        if events:
            pools = [[f for f in visible if d.event_active(e, f.t_s, 0.0)] for e in events]
            frames = [rng.choice(p) for p in pools if p]
        else:
            frames = _sample(rng, visible, 2)
        for frame in frames:
            tq = d.query_time(frame.t_s)
            answer = Answer(text=d.region_at_time(tid, tq, ctx.tables), tubelet_ids=[tid])
            prov = [tid] + [e.event_id for e in d.actions_at(tid, tq, ctx.tables)]
            drafts.append(
                _Draft("mask_time_qa", {"region": "<region0>", "t": d.fmt_t(tq)}, answer, prov, [ctx.region(tube)])
            )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _spans(ctx: _Context) -> list[tuple[str, Tubelet, Event | None, list[float]]]:
    """(template suffix, tubelet, event or None, answer span) for visibility and event
    spans; an event shorter than a frame step is an ``instant``, asked as a moment."""
    out: list[tuple[str, Tubelet, Event | None, list[float]]] = []
    for tube in ctx.live():
        out.append(("visible", tube, None, d.visible_answer_span(tube)))
        for ev in ctx.tables.events_of(tube.tubelet_id):
            if ev.tubelet_ids[0] == tube.tubelet_id:  # an event with several subjects: once
                span = d.answer_span(ev.start_s, ev.end_s, tube.fps)
                out.append(("instant" if span[0] == span[1] else "event", tube, ev, span))
    return out


def _span_fields(ctx: _Context, tube: Tubelet, event: Event | None) -> tuple[dict[str, str], list[str]]:
    prov = ctx.refs(tube.tubelet_id)
    if event is None:
        return {"name": ctx.tables.name(tube.tubelet_id)}, prov
    return {"phrase": d.event_phrase(event, ctx.tables)}, prov + [event.event_id]


def _temporal_grounding(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for kind, tube, event, span in _spans(ctx):
        fields, prov = _span_fields(ctx, tube, event)
        drafts.append(
            _Draft(f"temporal_grounding.{kind}", fields, Answer(span_s=list(span), tubelet_ids=[tube.tubelet_id]), prov)
        )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _box_at(frame: Any, fps: float | None) -> BoxAt:
    """The frame's box as answers give it (one decimal; the time to its frame's precision)."""
    return BoxAt(frame.frame_idx, d.answer_time(frame.t_s, fps), d.answer_box(frame.box_xyxy))


def _spatial_grounding(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for tube in ctx.live():
        for frame in _sample(rng, sorted(tube.visible_frames, key=lambda f: f.frame_idx), 2):
            tq = d.query_time(frame.t_s)
            at = d.frame_at(tube, tq)
            if at is None or not at.visible:
                continue
            answer = Answer(boxes=[_box_at(at, tube.fps)], tubelet_ids=[tube.tubelet_id])
            drafts.append(
                _Draft(
                    "spatial_grounding",
                    {"name": ctx.tables.name(tube.tubelet_id), "t": d.fmt_t(tq)},
                    answer,
                    ctx.refs(tube.tubelet_id),
                )
            )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _st_grounding(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for kind, tube, event, span in _spans(ctx):
        tol = d.half_frame(tube)
        inside = sorted(
            (f for f in tube.visible_frames if span[0] - tol <= f.t_s <= span[1] + tol), key=lambda f: f.frame_idx
        )
        if not inside:
            continue
        fields, prov = _span_fields(ctx, tube, event)
        boxes = [_box_at(f, tube.fps) for f in _spread(inside, ctx.config.st_boxes)]
        drafts.append(
            _Draft(
                f"st_grounding.{kind}",
                fields,
                Answer(span_s=list(span), boxes=boxes, tubelet_ids=[tube.tubelet_id]),
                prov,
            )
        )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _timestamp_verification(ctx: _Context, rng: random.Random) -> list[_Draft]:
    yes: list[_Draft] = []
    no: list[_Draft] = []
    for tube in ctx.live():
        tid, tol = tube.tubelet_id, d.half_frame(tube)
        # predicates: visibility, and each distinct action text of the tubelet
        preds: list[tuple[str, list[Event]]] = [("", [])]
        for ev in ctx.tables.events_of(tid):
            if ev.text not in [p for p, _ in preds]:
                preds.append((ev.text, [e for e in ctx.tables.events_of(tid) if e.text == ev.text]))
        for text, evs in preds:
            if not text:
                spans = [d.visible_span(tube)]
                pos = [f.t_s for f in tube.visible_frames]
                fields = {"name": ctx.tables.name(tid)}
                template, prov = "timestamp_verification.visible", ctx.refs(tid)
            else:
                spans = [[e.start_s, e.end_s] for e in evs]
                pos = [f.t_s for f in tube.frames if any(d.event_active(e, f.t_s, 0.0) for e in evs)]
                fields = {"phrase": d.event_phrase(evs[0], ctx.tables)}
                template, prov = "timestamp_verification.event", [tid] + [e.event_id for e in evs]
            # negatives: more than a frame outside every span of the predicate
            neg = [t for t in ctx.times if all(t < s - 3 * tol or t > e + 3 * tol for s, e in spans)]
            for t, want in [(t, True) for t in _sample(rng, sorted(set(pos)), 3)] + [
                (t, False) for t in _sample(rng, neg, 3)
            ]:
                tq = d.query_time(t)
                truth = d.visible_at(tube, tq) if not text else d.doing_at(tid, text, tq, ctx.tables)
                if truth != want:
                    continue  # rounding moved the time across a boundary: skip it
                draft = _Draft(
                    template,
                    {**fields, "t": d.fmt_t(tq)},
                    Answer(text="yes" if truth else "no", tubelet_ids=[tid]),
                    prov,
                )
                (yes if truth else no).append(draft)
    # balanced: as many no as yes
    k = min(len(yes), len(no), max(1, ctx.config.max_per_task // 2))
    picked = _sample(rng, yes, k) + _sample(rng, no, k)
    rng.shuffle(picked)
    return picked


def _entity_order(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    live = ctx.live()
    for i, a in enumerate(live):
        for b in live[i + 1 :]:
            first = d.earliest([a.tubelet_id, b.tubelet_id], ctx.tables)
            if first is None:
                continue
            pair = [a, b] if rng.random() < 0.5 else [b, a]
            fields = {"a": ctx.tables.name(pair[0].tubelet_id), "b": ctx.tables.name(pair[1].tubelet_id)}
            answer = Answer(text=ctx.tables.name(first), tubelet_ids=[first])
            drafts.append(
                _Draft("entity_order", fields, answer, ctx.refs(pair[0].tubelet_id) + ctx.refs(pair[1].tubelet_id))
            )
    return _sample(rng, drafts, ctx.config.max_per_task)


def _counting(ctx: _Context, rng: random.Random) -> list[_Draft]:
    drafts = []
    for category in sorted({t.category for t in ctx.live()}):
        ids = d.counted(category, ctx.video_id, ctx.tables)
        drafts.append(
            _Draft("counting", {"plural": d.plural(category)}, Answer(text=str(len(ids)), tubelet_ids=ids), list(ids))
        )
    return _sample(rng, drafts, ctx.config.max_per_task)


_FAMILIES: dict[str, Callable[[_Context, random.Random], list[_Draft]]] = {
    "region_description": _region_description,
    "region_qa": _region_qa,
    "timestamp_qa": _timestamp_qa,
    "mask_time_qa": _mask_time_qa,
    "temporal_grounding": _temporal_grounding,
    "spatial_grounding": _spatial_grounding,
    "st_grounding": _st_grounding,
    "timestamp_verification": _timestamp_verification,
    "entity_order": _entity_order,
    "counting": _counting,
}
