"""Answers as functions of the tables: the one place that says what is true.

The generator asks a question, then computes its answer here; the checker re-computes
the same answer here from the rows an instruction names. Nothing in this module picks
or phrases questions, so a template change can never change what counts as correct.

Conventions (docs/architecture.md, "Language"): times are the tubelet frames' ``t_s``;
a time ``t`` falls on the tubelet frame nearest to it when that frame is within half a
frame (``0.5 / fps``), else the object is not in the video then; spans are the times of
the first and last visible frames; boxes are the stored absolute-pixel boxes.

Answers carry numbers at the precision their format needs, never float noise: boxes to
one decimal of a pixel (``answer_box``), times to the decimals that tell the video's
frames apart (``answer_time``: 2 up to 50 fps), and a span shorter than one frame step
is an instant (``answer_span`` gives ``[t, t]``; it reads "at 2.24s"). The checker
compares at that precision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tubelet.annotators.language.garments import garment_phrase, is_person
from tubelet.schemas.records import Entity, Event, Tubelet, TubeletFrame

#: Names the template set and its version; bump when templates or derivations change.
GENERATOR_ID = "tubelet-templates/v2"

#: Decimals of a pixel coordinate in an answer.
BOX_DECIMALS = 1

#: Keys of ``Entity.attributes`` read as the entity's colour (first one present wins).
COLOUR_KEYS = ("colour", "color", "dominant_colour", "dominant_color")

_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
_IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "sheep": "sheep",
    "fish": "fish",
    "deer": "deer",
    "goose": "geese",
    "foot": "feet",
}

# A time in a question: "3.2s", "3.25 s", "3 seconds"; not part of a longer number.
_TIME_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(?:s|sec|secs|seconds?)\b")
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


# ---------------------------------------------------------------- formatting


def fmt_t(t: float) -> str:
    """A time in seconds as questions and answers print it: 2 decimals, no trailing zeros."""
    text = f"{t:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def query_time(t: float) -> float:
    """The time a question states for a frame at ``t`` (what ``fmt_t`` prints, as a float)."""
    return float(fmt_t(t))


def fmt_box(box: Sequence[float]) -> str:
    """A box as ``[x1, y1, x2, y2]`` with integers printed without decimals (round it first:
    ``answer_box`` for pixels, ``renderers.box_to`` for the other formats)."""
    return "[" + ", ".join(fmt_num(v) for v in box) + "]"


def _rounded(v: float, decimals: int) -> float:
    return round(float(v), decimals) + 0.0  # + 0.0: no "-0.0"


def answer_box(box: Sequence[float]) -> list[float]:
    """A stored box as answers give it: each coordinate to ``BOX_DECIMALS`` decimals."""
    return [_rounded(v, BOX_DECIMALS) for v in box]


def time_decimals(fps: float | None) -> int:
    """Decimals of a time in an answer: the fewest whose rounding (half a unit) stays
    within a quarter frame, so the time still names its frame (2 up to 50 fps, 3 up to
    500 fps); 3 when the frame rate is unknown."""
    if not fps or fps <= 0:
        return 3
    return max(2, math.ceil(math.log10(2 * fps)))


def answer_time(t: float, fps: float | None) -> float:
    """A time as answers give it: rounded to ``time_decimals(fps)``."""
    return _rounded(t, time_decimals(fps))


def frame_step(fps: float | None) -> float:
    """The time between two frames (0 when the frame rate is unknown)."""
    return 1.0 / fps if fps and fps > 0 else 0.0


def is_instant(start: float, end: float, fps: float | None) -> bool:
    """Whether a span is shorter than one frame step: a moment, worded "at <t>"."""
    return end - start < frame_step(fps) - 1e-9 or end <= start


def answer_span(start: float, end: float, fps: float | None) -> list[float]:
    """A span as answers give it: both ends rounded; an instant is ``[t, t]`` (its start)."""
    t0 = answer_time(start, fps)
    return [t0, t0] if is_instant(start, end, fps) else [t0, answer_time(end, fps)]


def span_words(span: Sequence[float]) -> str:
    """ "from 1.5s to 2.24s", or "at 2.24s" for an instant (both ends the same)."""
    if span[0] == span[1]:
        return f"at {fmt_t(span[0])}s"
    return f"from {fmt_t(span[0])}s to {fmt_t(span[1])}s"


def fmt_num(v: float) -> str:
    """A number printed exactly enough to round-trip (integers without ``.0``)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def times_in(text: str) -> list[float]:
    """Times (``<number>s``) stated in a question, in order."""
    return [float(m.group(1)) for m in _TIME_RE.finditer(text)]


def sub_times(text: str, show: Callable[[float], str]) -> str:
    """``text`` with every time ``times_in`` finds written by ``show`` (e.g. as a relative time token)."""
    return _TIME_RE.sub(lambda m: show(float(m.group(1))), text)


def numbers_in(text: str) -> list[float]:
    """Every number written with digits in ``text``."""
    return [float(m) for m in _NUMBER_RE.findall(text)]


def plural(noun: str) -> str:
    """A simple English plural of a category name ("dog" -> "dogs", "horse and rider" kept)."""
    words = noun.split()
    if not words:
        return noun
    last = words[-1]
    if last.lower() in _IRREGULAR_PLURALS:
        new = _IRREGULAR_PLURALS[last.lower()]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        new = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        new = last[:-1] + "ies"
    else:
        new = last + "s"
    return " ".join(words[:-1] + [new])


def capitalize(text: str) -> str:
    """First letter upper-cased, the rest kept (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- tables


@dataclass
class VideoTables:
    """One video's tubelets, entities and events, indexed for derivations.

    ``names`` is each tubelet's referring phrase: the entity's referring expression,
    else "the <category>"; when two tubelets would share a phrase, "the <ordinal>
    <category>" by order of first appearance (ties by id).
    """

    tubelets: dict[str, Tubelet]
    entities: dict[str, Entity] = field(default_factory=dict)  # by entity_id
    events: dict[str, Event] = field(default_factory=dict)  # by event_id
    entity_of: dict[str, Entity] = field(default_factory=dict)  # tubelet_id -> entity
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, tubelets: Iterable[Tubelet], entities: Iterable[Entity] = (), events: Iterable[Event] = ()
    ) -> VideoTables:
        """Index the rows (any number of videos' rows may be passed; ids are unique)."""
        tubes = {t.tubelet_id: t for t in tubelets}
        ents = {e.entity_id: e for e in entities}
        entity_of: dict[str, Entity] = {}
        for e in sorted(ents.values(), key=lambda e: e.entity_id):
            entity_of.setdefault(e.tubelet_id, e)
        evs = {e.event_id: e for e in events}
        tables = cls(tubes, ents, evs, entity_of)
        tables.names = _names(tables)
        return tables

    def live(self, video_id: str | None = None) -> list[Tubelet]:
        """Tubelets with at least one visible frame, by first appearance then id."""
        tubes = [t for t in self.tubelets.values() if t.visible_frames and (video_id is None or t.video_id == video_id)]
        return sorted(tubes, key=lambda t: (first_visible(t).t_s, t.tubelet_id))

    def events_of(self, tubelet_id: str) -> list[Event]:
        """Events of one tubelet, by start then id."""
        evs = [e for e in self.events.values() if tubelet_id in e.tubelet_ids]
        return sorted(evs, key=lambda e: (e.start_s, e.event_id))

    def video_events(self, video_id: str) -> list[Event]:
        """Events of one video, by start then id."""
        return sorted(
            (e for e in self.events.values() if e.video_id == video_id), key=lambda e: (e.start_s, e.event_id)
        )

    def name(self, tubelet_id: str) -> str:
        return self.names[tubelet_id]


def _names(tables: VideoTables) -> dict[str, str]:
    names: dict[str, str] = {}
    by_video: dict[str, list[Tubelet]] = {}
    for t in tables.live():
        by_video.setdefault(t.video_id, []).append(t)
    for tubes in by_video.values():
        base = {}
        for t in tubes:
            ent = tables.entity_of.get(t.tubelet_id)
            expr = (ent.referring_expression or "").strip() if ent else ""
            base[t.tubelet_id] = expr or f"the {t.category}"
        groups: dict[str, list[Tubelet]] = {}
        for t in tubes:  # already in order of first appearance
            groups.setdefault(base[t.tubelet_id].lower(), []).append(t)
        for group in groups.values():
            if len(group) == 1:
                names[group[0].tubelet_id] = base[group[0].tubelet_id]
                continue
            for i, t in enumerate(group):
                ordinal = _ORDINALS[i] if i < len(_ORDINALS) else f"{i + 1}th"
                names[t.tubelet_id] = f"the {ordinal} {t.category}"
    return names


# ---------------------------------------------------------------- time and space


def half_frame(tubelet: Tubelet) -> float:
    """Half a frame of the tubelet's video, in seconds: the tolerance of every time match."""
    return 0.5 / tubelet.fps if tubelet.fps and tubelet.fps > 0 else 0.0


def frame_at(tubelet: Tubelet, t: float) -> TubeletFrame | None:
    """The tubelet frame at time ``t`` (nearest within half a frame), or None."""
    if not tubelet.frames:
        return None
    best = min(tubelet.frames, key=lambda f: (abs(f.t_s - t), f.frame_idx))
    return best if abs(best.t_s - t) <= half_frame(tubelet) + 1e-9 else None


def visible_at(tubelet: Tubelet, t: float) -> bool:
    """Whether the object is visible at time ``t``."""
    frame = frame_at(tubelet, t)
    return frame is not None and frame.visible


def first_visible(tubelet: Tubelet) -> TubeletFrame:
    return min(tubelet.visible_frames, key=lambda f: f.frame_idx)


def last_visible(tubelet: Tubelet) -> TubeletFrame:
    return max(tubelet.visible_frames, key=lambda f: f.frame_idx)


def visible_span(tubelet: Tubelet) -> list[float]:
    """``[start_s, end_s]``: times of the first and last visible frames."""
    return [first_visible(tubelet).t_s, last_visible(tubelet).t_s]


def visible_answer_span(tubelet: Tubelet) -> list[float]:
    """``visible_span`` as answers give it (``answer_span``)."""
    return answer_span(first_visible(tubelet).t_s, last_visible(tubelet).t_s, tubelet.fps)


def event_active(event: Event, t: float, tolerance: float) -> bool:
    """Whether ``t`` falls in the event's span (its end frame included)."""
    return event.start_s - tolerance <= t <= event.end_s + tolerance


def position_word(box: Sequence[float], width: int, height: int) -> str:
    """Where a box's centre is, by thirds of the frame: "top left", "middle right", "center"…"""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = ["left", "center", "right"][min(2, max(0, int(3 * cx / width)))]
    row = ["top", "middle", "bottom"][min(2, max(0, int(3 * cy / height)))]
    if row == "middle" and col == "center":
        return "center"
    return f"{row} {col}"


def colour_of(entity: Entity | None) -> str | None:
    """The entity's colour attribute (a string), if it has one. A person has none: a
    colour of a whole person reads as the colour of their skin (rows written before
    that rule may hold one; it is never used)."""
    if entity is None or is_person(entity.category):
        return None
    for key in COLOUR_KEYS:
        value = entity.attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def clothing_of(entity: Entity | None) -> str | None:
    """What a person wears, from the measured garment colours: "a white top and blue
    bottoms", "a white top", "blue bottoms"; None when nothing is known."""
    worn = entity.attributes.get("garments") if entity is not None and is_person(entity.category) else None
    if not isinstance(worn, dict):
        return None
    upper, lower = worn.get("upper"), worn.get("lower")
    if not (isinstance(upper, str) or isinstance(lower, str)):
        return None
    phrase = garment_phrase(upper, lower) if upper != lower else f"in a {upper} top and {lower} bottoms"
    return phrase.removeprefix("in ") if phrase else None


# ---------------------------------------------------------------- answers


def event_phrase(event: Event, tables: VideoTables) -> str:
    """The event as a clause with its subject: "the dog runs to the left".

    A text that already names its subject (starts with an article, a capital or the
    subject's name) is kept as it is.
    """
    text = event.text.strip().rstrip(".")
    subject = tables.names.get(event.tubelet_ids[0]) if event.tubelet_ids else None
    if (
        subject is None
        or re.match(r"^(the|a|an)\b", text, re.I)
        or text[:1].isupper()
        or text.lower().startswith(subject.lower())
    ):
        return text
    return f"{subject} {text}"


def describe_region(tubelet_id: str, tables: VideoTables) -> str:
    """Answer of ``region_description``: the entity's caption, else a composed description."""
    tube = tables.tubelets[tubelet_id]
    entity = tables.entity_of.get(tubelet_id)
    if entity is not None and entity.caption and entity.caption.strip():
        return entity.caption.strip()
    colour = colour_of(entity)
    noun = f"{colour} {tube.category}" if colour else tube.category
    article = "an" if noun[:1].lower() in "aeiou" else "a"
    clothing = clothing_of(entity)
    parts = [f"It is {article} {noun}" + (f" in {clothing}." if clothing else ".")]
    events = tables.events_of(tubelet_id)
    if events:
        parts += [
            f"{capitalize(span_words(answer_span(e.start_s, e.end_s, tube.fps)))} it {e.text.strip().rstrip('.')}."
            for e in events
        ]
    else:
        span = visible_answer_span(tube)
        parts.append(f"It is visible {span_words(span)}.")
    return " ".join(parts)


def actions_at(tubelet_id: str, t: float, tables: VideoTables) -> list[Event]:
    """The tubelet's events active at ``t``."""
    tol = half_frame(tables.tubelets[tubelet_id])
    return [e for e in tables.events_of(tubelet_id) if event_active(e, t, tol)]


def region_at_time(tubelet_id: str, t: float, tables: VideoTables) -> str:
    """Answer of ``mask_time_qa``: what the region does at ``t`` (its active events'
    texts), or, when the tubelet has no event then, where it is (or that it is not
    visible)."""
    active = actions_at(tubelet_id, t, tables)
    if active:
        return " ".join(f"It {e.text.strip().rstrip('.')}." for e in active)
    tube = tables.tubelets[tubelet_id]
    frame = frame_at(tube, t)
    if frame is None or not frame.visible:
        return "It is not visible then."
    return f"It is in the {position_word(frame.box_xyxy, tube.width, tube.height)} of the frame."


def events_at(video_id: str, t: float, tables: VideoTables) -> list[Event]:
    """The video's events active at ``t`` (tolerance: half a frame of their tubelets)."""
    out = []
    for e in tables.video_events(video_id):
        tol = max((half_frame(tables.tubelets[i]) for i in e.tubelet_ids if i in tables.tubelets), default=0.0)
        if event_active(e, t, tol):
            out.append(e)
    return out


def happening_at(video_id: str, t: float, tables: VideoTables) -> str:
    """Answer of ``timestamp_qa``: the events active at ``t``; in a video without events,
    the objects visible at ``t``."""
    if tables.video_events(video_id):
        active = events_at(video_id, t, tables)
        if not active:
            return "Nothing annotated happens then."
        return " ".join(capitalize(event_phrase(e, tables)) + "." for e in active)
    seen = [tables.name(t_.tubelet_id) for t_ in tables.live(video_id) if visible_at(t_, t)]
    if not seen:
        return "No annotated object is visible then."
    return capitalize(join_and(seen)) + (" is" if len(seen) == 1 else " are") + " visible."


def join_and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def counted(category: str, video_id: str, tables: VideoTables) -> list[str]:
    """Tubelets of ``category`` in the video with a visible frame (``counting``)."""
    return [t.tubelet_id for t in tables.live(video_id) if t.category == category]


def earliest(tubelet_ids: Sequence[str], tables: VideoTables) -> str | None:
    """Which of the tubelets is first visible (``entity_order``); None on a tie within a frame."""
    tubes = sorted((tables.tubelets[i] for i in tubelet_ids), key=lambda t: first_visible(t).t_s)
    if len(tubes) < 2:
        return None
    gap = first_visible(tubes[1]).t_s - first_visible(tubes[0]).t_s
    if gap <= 2 * max(half_frame(tubes[0]), half_frame(tubes[1])):
        return None
    return tubes[0].tubelet_id


def doing_at(tubelet_id: str, text: str, t: float, tables: VideoTables) -> bool:
    """Truth of "is <tubelet> <text> at t": an event of it with that text is active."""
    return any(e.text == text for e in actions_at(tubelet_id, t, tables))
