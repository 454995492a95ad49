"""Checks of instruction rows against the tables they claim to come from.

``check_instructions`` re-derives every answer with ``tubelet.annotators.instructions.derive``
from the rows an instruction names (its regions, answer tubelets and provenance) and
the stated time in its question, and reports each mismatch; it also flags answers
leaked into the question and reports per-task balance (counts, yes/no). Each task type
has one check in ``_ANSWER_CHECKS``, as it has one family in the generator's
``_FAMILIES``; an instruction of any other task type is a "question" problem. Near-duplicate
questions are removed by ``dedup_instructions`` (``tubelet.annotators.instructions.dedup``,
re-exported here), which needs the optional ``dedup`` extra.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tubelet.annotators.instructions import derive as d
from tubelet.annotators.instructions.dedup import DedupResult, dedup_instructions, load_sentence_encoder
from tubelet.annotators.instructions.generator import answer_message
from tubelet.annotators.instructions.templates import attribute_asked
from tubelet.schemas.records import BoxAt, Entity, Event, Instruction, Tubelet, TubeletFrame

__all__ = [
    "CheckReport",
    "DedupResult",
    "Problem",
    "balance",
    "check_instructions",
    "dedup_instructions",
    "load_sentence_encoder",
    "question_of",
]

_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


@dataclass
class Problem:
    """One thing wrong with one instruction."""

    instruction_id: str
    task_type: str
    kind: str  # "answer", "leak", "reference", "question", "message"
    message: str


@dataclass
class CheckReport:
    """What ``check_instructions`` found, with per-task balance statistics."""

    n_instructions: int
    problems: list[Problem] = field(default_factory=list)
    per_task: dict[str, int] = field(default_factory=dict)
    yes_no: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> {"yes": n, "no": n}

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_ids(self) -> set[str]:
        """Ids of the instructions with at least one problem."""
        return {p.instruction_id for p in self.problems}

    def yes_ratio(self, task_type: str) -> float | None:
        """Share of "yes" answers among the yes/no answers of a task type."""
        counts = self.yes_no.get(task_type) or {}
        total = sum(counts.values())
        return counts["yes"] / total if total else None

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def summary(self) -> str:
        """A few lines for logs and the CLI."""
        lines = [
            f"{self.n_instructions} instructions, {len(self.problems)} problems ({len(self.bad_ids)} instructions)"
        ]
        lines += [
            f"  {task}: {n}"
            + (f" (yes {self.yes_no[task]['yes']} / no {self.yes_no[task]['no']})" if task in self.yes_no else "")
            for task, n in sorted(self.per_task.items())
        ]
        lines += [f"  ! {p.instruction_id} [{p.kind}] {p.message}" for p in self.problems[:20]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_instructions": self.n_instructions,
            "ok": self.ok,
            "per_task": self.per_task,
            "yes_no": self.yes_no,
            "problems": [vars(p) for p in self.problems],
        }


def check_instructions(
    instructions: Iterable[Instruction],
    tubelets: Iterable[Tubelet],
    entities: Iterable[Entity] = (),
    events: Iterable[Event] = (),
) -> CheckReport:
    """Re-derive every answer from the tables and report mismatches, leaks and balance.

    Rows of several videos may be passed together. Times match within half a frame of
    the tubelet's video; boxes must equal the stored box at that frame.
    """
    tables = d.VideoTables.of(tubelets, entities, events)
    insts = list(instructions)
    report = CheckReport(n_instructions=len(insts))
    report.per_task = dict(sorted(Counter(i.task_type for i in insts).items()))
    for inst in insts:
        problems: list[str] = []
        kind = "answer"
        try:
            problems = _check_one(inst, tables)
        except _UnresolvedError as error:
            problems, kind = [str(error)], error.kind
        for message in problems:
            report.problems.append(Problem(inst.instruction_id, inst.task_type, kind, message))
        for message in _leaks(inst, tables):
            report.problems.append(Problem(inst.instruction_id, inst.task_type, "leak", message))
        if (
            inst.messages[-1:]
            and inst.messages[-1].role == "assistant"
            and inst.messages[-1].content != answer_message(inst.answer)
        ):
            report.problems.append(
                Problem(
                    inst.instruction_id,
                    inst.task_type,
                    "message",
                    "the assistant turn does not state the structured answer",
                )
            )
        text = (inst.answer.text or "").strip().lower()
        if text in ("yes", "no"):
            report.yes_no.setdefault(inst.task_type, {"yes": 0, "no": 0})[text] += 1
    return report


class _UnresolvedError(Exception):
    """The instruction does not name what its answer depends on."""

    def __init__(self, message: str, kind: str = "reference") -> None:
        super().__init__(message)
        self.kind = kind


def question_of(inst: Instruction) -> str:
    """The first user turn."""
    for m in inst.messages:
        if m.role == "user":
            return m.content
    raise _UnresolvedError("no user message", "question")


def _tubelet(inst: Instruction, tables: d.VideoTables) -> Tubelet:
    """The tubelet an instruction is about: its first region, else its first answer tubelet."""
    ids = [r.tubelet_id for r in inst.regions] or list(inst.answer.tubelet_ids)
    if not ids:
        raise _UnresolvedError("names no tubelet (no region, no answer tubelet)")
    if ids[0] not in tables.tubelets:
        raise _UnresolvedError(f"tubelet {ids[0]} is not in the tubelets table")
    tube = tables.tubelets[ids[0]]
    if not tube.visible_frames:
        raise _UnresolvedError(f"tubelet {ids[0]} has no visible frame")
    return tube


def _time(inst: Instruction) -> float:
    """The time the question asks about: its ``query``, else the one time its text states."""
    times = d.times_in(question_of(inst))
    if "t_s" in inst.query:
        t = float(inst.query["t_s"])
        if not any(abs(t - stated) < 1e-6 for stated in times):
            raise _UnresolvedError(f"the question does not state its query time {d.fmt_t(t)}s", "question")
        return t
    if len(times) != 1:
        raise _UnresolvedError(f"the question states {len(times)} times, expected 1", "question")
    return times[0]


def _provenance_events(inst: Instruction, tables: d.VideoTables) -> list[Event]:
    return [tables.events[i] for i in inst.provenance if i in tables.events]


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol + 1e-9


def _expect_text(got: str | None, want: str | None) -> list[str]:
    if want is None:
        return ["the tables hold no value for what is asked"]
    return [] if (got or "").strip() == want.strip() else [f"answer {got!r} but the tables say {want!r}"]


# ---------------------------------------------------------------- answers

#: Re-derives the answer of one task type from the tables and says what is wrong with the
#: given one; raises ``_UnresolvedError`` when the instruction does not name its inputs.
_AnswerCheck = Callable[[Instruction, d.VideoTables], list[str]]
#: Reads one attribute of a region_qa question's tubelet from the tables (None: no value).
_AttributeReader = Callable[[Instruction, Tubelet, d.VideoTables], str | None]


def _check_one(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """Problems with the instruction's answer, found by the check of its task type."""
    _require_known_provenance(inst, tables)
    check = _ANSWER_CHECKS.get(inst.task_type)
    if check is None:
        raise _UnresolvedError(f"unknown task type {inst.task_type!r}", "question")
    return check(inst, tables)


def _require_known_provenance(inst: Instruction, tables: d.VideoTables) -> None:
    """Every row the instruction says it came from must be in the tables."""
    known = (tables.tubelets, tables.entities, tables.events)
    missing = [i for i in inst.provenance if not any(i in table for table in known)]
    if missing:
        raise _UnresolvedError(f"provenance names rows not in the tables: {missing}")


# ---------------------------------------------------------------- region questions


def _check_region_description(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """The region's description: what it is and what it does, from its entity and events."""
    return _expect_text(inst.answer.text, d.describe_region(_tubelet(inst, tables).tubelet_id, tables))


def _check_region_qa(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """The one attribute of the region that the question asks about."""
    tube = _tubelet(inst, tables)
    read = _attribute_reader(inst)
    return _expect_text(inst.answer.text, read(inst, tube, tables))


def _attribute_reader(inst: Instruction) -> _AttributeReader:
    """How to read the asked attribute: the one in the query, else the one the wording names."""
    attribute = inst.query.get("attribute") or attribute_asked(question_of(inst))
    read = _ATTRIBUTE_READERS.get(attribute) if isinstance(attribute, str) else None  # a query is free-form JSON
    if read is None:
        raise _UnresolvedError("cannot tell which attribute the question asks about", "question")
    return read


def _category_of(inst: Instruction, tube: Tubelet, tables: d.VideoTables) -> str | None:
    return tube.category


def _colour_of(inst: Instruction, tube: Tubelet, tables: d.VideoTables) -> str | None:
    return d.colour_of(tables.entity_of.get(tube.tubelet_id))


def _clothing_of(inst: Instruction, tube: Tubelet, tables: d.VideoTables) -> str | None:
    return d.clothing_of(tables.entity_of.get(tube.tubelet_id))


def _position_of(inst: Instruction, tube: Tubelet, tables: d.VideoTables) -> str | None:
    """Where in the picture the region is on the frame the question shows (it moves)."""
    frame = _shown_frame(inst, tube)
    return d.position_word(frame.box_xyxy, tube.width, tube.height)


def _shown_frame(inst: Instruction, tube: Tubelet) -> TubeletFrame:
    """The visible frame a position question shows: its region's first (and only) frame."""
    frames = inst.regions[0].frame_idx if inst.regions else []
    frame = next((f for f in tube.frames if frames and f.frame_idx == frames[0] and f.visible), None)
    if frame is None:
        raise _UnresolvedError("a position question needs its region on one visible frame")
    return frame


#: The attributes a region_qa question may ask about (the generator's ``region_qa.*`` templates).
_ATTRIBUTE_READERS: dict[str, _AttributeReader] = {
    "category": _category_of,
    "colour": _colour_of,
    "clothing": _clothing_of,
    "position": _position_of,
}


# ---------------------------------------------------------------- questions at a time


def _check_timestamp_qa(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """What happens in the video at the stated time."""
    return _expect_text(inst.answer.text, d.happening_at(inst.video_id, _time(inst), tables))


def _check_mask_time_qa(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """What the region does at the stated time."""
    return _expect_text(inst.answer.text, d.region_at_time(_tubelet(inst, tables).tubelet_id, _time(inst), tables))


def _check_timestamp_verification(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """Yes or no: whether the asked statement holds at the stated time."""
    tube, t = _tubelet(inst, tables), _time(inst)
    return _expect_text(inst.answer.text, "yes" if _holds_at(inst, tube, t, tables) else "no")


def _holds_at(inst: Instruction, tube: Tubelet, t: float, tables: d.VideoTables) -> bool:
    """The tubelet does the action its provenance events name at ``t``; without events: it is visible."""
    texts = {e.text for e in _provenance_events(inst, tables)}
    if len(texts) > 1:
        raise _UnresolvedError(f"provenance names events with different texts: {sorted(texts)}")
    if texts:
        return d.doing_at(tube.tubelet_id, texts.pop(), t, tables)
    return d.visible_at(tube, t)


# ---------------------------------------------------------------- grounding


def _check_temporal_grounding(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """The span of the tubelet's event, or of its visibility."""
    tube = _tubelet(inst, tables)
    return _span_problems(inst.answer.span_s, _expected_span(inst, tube, tables), _time_tol(tube))


def _check_spatial_grounding(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """One box: the tubelet's, on its frame at the stated time."""
    tube, t = _tubelet(inst, tables), _time(inst)
    frame = d.frame_at(tube, t)
    if frame is None or not frame.visible:
        return [f"{tube.tubelet_id} is not visible at {t}s, yet the answer gives a box"]
    boxes = inst.answer.boxes
    if len(boxes) != 1:
        return [f"expected one box, got {len(boxes)}"]
    if boxes[0].frame_idx != frame.frame_idx:
        return [f"box at frame {boxes[0].frame_idx}, but {t}s is frame {frame.frame_idx}"]
    return _box_problems(boxes[0], tube)


def _check_st_grounding(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """The span as in temporal grounding, and the tubelet's boxes within it."""
    tube = _tubelet(inst, tables)
    span, tol = _expected_span(inst, tube, tables), d.half_frame(tube)
    return _span_problems(inst.answer.span_s, span, _time_tol(tube)) + _track_problems(
        inst.answer.boxes, tube, span, tol
    )


def _expected_span(inst: Instruction, tube: Tubelet, tables: d.VideoTables) -> list[float]:
    """The first provenance event's span, else the tubelet's visible span (as the generator
    picks them), as answers give it: rounded, an instant as ``[t, t]``."""
    events = _provenance_events(inst, tables)
    if events:
        return d.answer_span(events[0].start_s, events[0].end_s, tube.fps)
    return d.visible_answer_span(tube)


def _time_tol(tube: Tubelet) -> float:
    """How far an answer's time may be from the tables': half a unit of its last decimal."""
    return 0.5 * 10 ** -d.time_decimals(tube.fps)


def _span_problems(span: list[float] | None, want: list[float], tol: float) -> list[str]:
    """A span is right when both ends are within ``tol`` (the answer's precision) of the
    tables' span as answers give it (``derive.answer_span``: an instant is ``[t, t]``)."""
    if not span or len(span) != 2:
        return ["no answer span"]
    if not (_close(span[0], want[0], tol) and _close(span[1], want[1], tol)):
        return [f"span {span} differs from the tables' {want} beyond the answer's precision (±{tol:g} s)"]
    return []


def _track_problems(boxes: list[BoxAt], tube: Tubelet, span: list[float], tol: float) -> list[str]:
    """Boxes that are not the tubelet's, or lie outside the span; no box at all is one problem."""
    problems = [] if boxes else ["no boxes"]
    for box in boxes:
        problems += _box_problems(box, tube)
        if not span[0] - tol <= box.t_s <= span[1] + tol:
            problems.append(f"box at {box.t_s}s is outside the span {span}")
    return problems


def _box_problems(box: BoxAt, tube: Tubelet) -> list[str]:
    """A box must be the tubelet's stored box on a visible frame, at that frame's time,
    both compared at the precision answers give them (``derive.answer_box``, ``answer_time``)."""
    frame = next((f for f in tube.frames if f.frame_idx == box.frame_idx), None)
    if frame is None or not frame.visible:
        return [f"frame {box.frame_idx} is not a visible frame of {tube.tubelet_id}"]
    problems = []
    if not _close(box.t_s, frame.t_s, _time_tol(tube)):
        problems.append(f"box time {box.t_s} is not frame {frame.frame_idx}'s time {d.fmt_t(frame.t_s)}")
    box_tol = 0.5 * 10**-d.BOX_DECIMALS
    if len(box.box_xyxy) != 4 or any(not _close(a, b, box_tol) for a, b in zip(box.box_xyxy, frame.box_xyxy)):
        problems.append(
            f"box {d.fmt_box(box.box_xyxy)} at frame {frame.frame_idx} is not the tubelet's "
            f"{d.fmt_box(d.answer_box(frame.box_xyxy))}"
        )
    return problems


# ---------------------------------------------------------------- several tubelets


def _check_entity_order(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """Which of the two tubelets appears first: its name, and it alone as answer tubelet."""
    first = d.earliest(_compared_pair(inst, tables), tables)
    if first is None:
        return ["the two first appear within a frame of each other: no order"]
    problems = _expect_text(inst.answer.text, tables.name(first))
    if list(inst.answer.tubelet_ids) != [first]:
        problems.append(f"answer tubelets {inst.answer.tubelet_ids}, but {first} appears first")
    return problems


def _compared_pair(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """The two tubelets an entity_order question compares: those in its provenance."""
    ids = [i for i in inst.provenance if i in tables.tubelets]
    if len(ids) != 2:
        raise _UnresolvedError(f"entity_order needs two tubelets in provenance, got {len(ids)}")
    return ids


def _check_counting(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """How many tubelets of the category the video holds, and which ones."""
    ids = d.counted(_counted_category(inst, tables), inst.video_id, tables)
    problems = _expect_text(inst.answer.text, str(len(ids)))
    if sorted(inst.answer.tubelet_ids) != sorted(ids):
        problems.append(f"answer tubelets {sorted(inst.answer.tubelet_ids)} but the tables count {sorted(ids)}")
    return problems


def _counted_category(inst: Instruction, tables: d.VideoTables) -> str:
    """The category a counting question asks about: the one its provenance tubelets share."""
    categories = {tables.tubelets[i].category for i in inst.provenance if i in tables.tubelets}
    if len(categories) != 1:
        raise _UnresolvedError(f"counting needs tubelets of one category in provenance, got {sorted(categories)}")
    return categories.pop()


#: One check per task type, as the generator keeps one family per task type.
_ANSWER_CHECKS: dict[str, _AnswerCheck] = {
    "region_description": _check_region_description,
    "region_qa": _check_region_qa,
    "timestamp_qa": _check_timestamp_qa,
    "mask_time_qa": _check_mask_time_qa,
    "temporal_grounding": _check_temporal_grounding,
    "spatial_grounding": _check_spatial_grounding,
    "st_grounding": _check_st_grounding,
    "timestamp_verification": _check_timestamp_verification,
    "entity_order": _check_entity_order,
    "counting": _check_counting,
}


# ---------------------------------------------------------------- leaks


def _names(inst: Instruction, tables: d.VideoTables) -> set[str]:
    """How the question may name the entities of its video (expressions and names)."""
    names = {e.referring_expression for e in tables.entities.values() if e.referring_expression}
    return names | set(tables.names.values())


def _leaks(inst: Instruction, tables: d.VideoTables) -> list[str]:
    """Parts of the answer that the question gives away."""
    try:
        question = question_of(inst)
    except _UnresolvedError:
        return []
    ans, task = inst.answer, inst.task_type
    stated = d.times_in(question)
    # numbers inside entity names ("the bicycle #9", "bus 66") are names, not answers
    unnamed = question
    for name in sorted(_names(inst, tables), key=len, reverse=True):
        unnamed = unnamed.replace(name, " ")
    numbers = [n for n in d.numbers_in(unnamed) if not any(_close(n, t, 1e-9) for t in stated)]
    leaked: list[str] = []
    if ans.span_s:
        # only numbers stated as times: "dog #2" in a name does not give away a span at 2 s
        for v in ans.span_s:
            if any(_close(n, v, 0.006) for n in stated):
                leaked.append(f"the span value {d.fmt_t(v)} is in the question")
    for box in ans.boxes:
        for v in box.box_xyxy:
            if any(math.isclose(n, v, abs_tol=0.5) for n in numbers):
                leaked.append(f"the box coordinate {d.fmt_num(v)} is in the question")
                break
    if task == "counting" and ans.text:
        words = {ans.text.strip()}
        if ans.text.strip().isdigit() and int(ans.text) < len(_NUMBER_WORDS):
            words.add(_NUMBER_WORDS[int(ans.text)])
        tokens = set(question.lower().replace("?", " ").replace(".", " ").replace(",", " ").split())
        if words & tokens:
            leaked.append(f"the count {ans.text} is in the question")
    elif task in ("region_description", "region_qa", "timestamp_qa", "mask_time_qa") and ans.text:
        text = ans.text.strip().rstrip(".").lower()
        if len(text) >= 3 and re.search(rf"(?<!\w){re.escape(text)}(?!\w)", question.lower()):
            leaked.append(f"the answer {ans.text!r} is in the question")
    return leaked


def balance(instructions: Sequence[Instruction]) -> dict[str, Any]:
    """Per-task counts and yes/no counts, without checking answers."""
    report = CheckReport(n_instructions=len(instructions))
    report.per_task = dict(sorted(Counter(i.task_type for i in instructions).items()))
    for inst in instructions:
        text = (inst.answer.text or "").strip().lower()
        if text in ("yes", "no"):
            report.yes_no.setdefault(inst.task_type, {"yes": 0, "no": 0})[text] += 1
    return {"per_task": report.per_task, "yes_no": report.yes_no}
