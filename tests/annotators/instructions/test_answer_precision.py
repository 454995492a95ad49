"""Answers fit to publish: numbers at the precision their format needs (no float noise),
instants worded as moments, people asked what they wear and never their colour."""

from __future__ import annotations

import copy
import json
import re

import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions import GeneratorConfig, check_instructions, generate_instructions
from tubelet.annotators.instructions.derive import VideoTables, answer_span, answer_time, describe_region, time_decimals
from tubelet.annotators.instructions.renderers import TimeFormat, parse_open_o3, parse_unistg, to_open_o3, to_unistg
from tubelet.schemas.records import Entity, Event, Tubelet, TubeletFrame

FPS = 29.97  # NTSC: frame times have endless decimals
NOISY = [0.0, 51.99984, 10.0, 109.99980000000001]  # the box
_LONG = re.compile(r"\d+\.\d{4,}")


def noisy_tables() -> tuple[list[Tubelet], list[Entity], list[Event]]:
    """A person at 29.97 fps with noisy boxes, an instant "appears" event (one frame) and a
    span event; a dog with a colour; the person has a (pre-rule) whole-body colour too."""
    frames = [TubeletFrame(f, f / FPS, [v + 3.00001 * f for v in NOISY]) for f in range(60, 120)]
    person = Tubelet("v:p", "v", "person", "test", "p", FPS, 640, 360, frames)
    dog_frames = [TubeletFrame(f, f / FPS, [300.123456, 200.1, 400.0000001, 290.0]) for f in range(0, 120)]
    dog = Tubelet("v:d", "v", "dog", "test", "d", FPS, 640, 360, dog_frames)
    entities = [
        Entity(
            "v:p:entity",
            "v",
            "v:p",
            "person",
            referring_expression="the person in a white top and blue bottoms",
            attributes={"colour": "black", "garments": {"upper": "white", "lower": "blue"}},
        ),
        Entity("v:d:entity", "v", "v:d", "dog", referring_expression="the brown dog", attributes={"colour": "brown"}),
    ]
    events = [
        Event("v:event:0:0", "v", ["v:p"], 60 / FPS, 60 / FPS, 60, 60, "appears", label="appear"),
        Event("v:event:0:1", "v", ["v:p"], 61 / FPS, 100 / FPS, 61, 100, "moves right", label="move_right"),
    ]
    return [person, dog], entities, events


@pytest.fixture(scope="module")
def noisy():
    tubes, ents, evs = noisy_tables()
    return generate_instructions(tubes, ents, evs, config=GeneratorConfig(max_per_task=50)), (tubes, ents, evs)


def test_no_float_noise_in_any_answer(noisy) -> None:
    insts, tables = noisy
    boxes = [b for i in insts for b in i.answer.boxes]
    assert boxes
    for box in boxes:
        assert all(v == round(v, 1) for v in box.box_xyxy) and box.t_s == round(box.t_s, 2)
    person_boxes = {b.frame_idx: b.box_xyxy for i in insts for b in i.answer.boxes if i.answer.tubelet_ids == ["v:p"]}
    if 60 in person_boxes:
        assert person_boxes[60] == [180.0, 232.0, 190.0, 290.0]  # 51.99984 + 180.0006 -> 232
    for inst in insts:
        assert all(t == round(t, 2) for t in inst.answer.span_s or [])
        text = " ".join(m.content for m in inst.messages) + json.dumps(to_unistg(inst, 640, 360))
        assert not _LONG.search(text), text
    assert check_instructions(insts, *tables).ok


def test_the_checker_compares_at_the_answer_precision(noisy) -> None:
    insts, tables = noisy
    inst = copy.deepcopy(next(i for i in insts if i.task_type == "spatial_grounding"))
    inst.answer.boxes[0].box_xyxy[1] += 0.04  # within the rounding of one decimal
    assert check_instructions([inst], *tables).of_kind("answer") == []
    inst.answer.boxes[0].box_xyxy[1] += 0.1
    [problem] = check_instructions([inst], *tables).of_kind("answer")
    assert "box" in problem.message and "at frame" in problem.message


def test_an_instant_is_worded_as_a_moment(noisy) -> None:
    insts, tables = noisy
    t = answer_time(60 / FPS, FPS)
    assert t == 2.0  # 2.002002... at 2 decimals
    instants = [i for i in insts if i.answer.span_s == [t, t]]
    assert {i.task_type for i in instants} >= {"temporal_grounding", "st_grounding"}
    for inst in instants:
        answer = inst.messages[1].content
        assert answer.startswith("At 2s.") and "From 2s to 2s" not in answer
        assert "span" not in inst.messages[0].content  # asked as a moment
        assert to_unistg(inst, 640, 360)["answer"].startswith("At 2s.")
        assert parse_unistg(to_unistg(inst, 640, 360)["answer"], 640, 360)[0] == [2.0, 2.0]
        names = VideoTables.of(*tables).names
        o3 = to_open_o3(inst, names, 640, 360)["answer"]
        assert "at <t>2s</t>" in o3 and parse_open_o3(o3, 640, 360)["span_s"] == [2.0, 2.0]
    tokens = TimeFormat(bins=10, duration_s=4.0)
    assert to_unistg(instants[0], 640, 360, time=tokens)["answer"].startswith("At <t_")
    description = describe_region("v:p", VideoTables.of(*tables))
    assert "At 2s it appears." in description and "From 2.04s to 3.34s it moves right." in description
    assert check_instructions(insts, *tables).ok


def test_spans_shorter_than_a_frame_step_are_instants() -> None:
    assert answer_span(1.0, 1.0, 30) == [1.0, 1.0]
    assert answer_span(1.0, 1.02, 30) == [1.0, 1.0]  # less than 1/30 s apart
    assert answer_span(1.0, 1.0334, 30) == [1.0, 1.03]  # one frame step: a span
    assert answer_span(1.0, 1.0, None) == [1.0, 1.0] and answer_span(1.0, 1.001, None) == [1.0, 1.001]
    assert [time_decimals(f) for f in (10, 29.97, 50, 60, 240, None)] == [2, 2, 2, 3, 3, 3]


def test_a_person_is_asked_what_they_wear_never_their_colour(noisy) -> None:
    insts, tables = noisy
    qa = [i for i in insts if i.task_type == "region_qa"]
    person = {i.query["attribute"]: i.answer.text for i in qa if i.regions[0].tubelet_id == "v:p"}
    assert "colour" not in person  # its stored whole-body "black" is never used
    assert person["clothing"] == "a white top and blue bottoms"
    dog = {i.query["attribute"]: i.answer.text for i in qa if i.regions[0].tubelet_id == "v:d"}
    assert dog["colour"] == "brown" and "clothing" not in dog
    description = describe_region("v:p", VideoTables.of(*tables))
    assert description.startswith("It is a person in a white top and blue bottoms.")
    assert "black" not in " ".join(m.content for i in insts for m in i.messages)
    wearing = copy.deepcopy(next(i for i in qa if i.query["attribute"] == "clothing"))
    wearing.answer.text = "a red top"
    wearing.messages[1].content = "a red top"
    [problem] = check_instructions([wearing], *tables).of_kind("answer")
    assert "a white top and blue bottoms" in problem.message


def test_scripted_tables_still_check_clean() -> None:
    insts = generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(max_per_task=20))
    assert check_instructions(insts, s.tubelets(), s.entities(), s.events()).ok
