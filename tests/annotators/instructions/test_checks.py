"""The checker passes generated sets and catches planted wrong answers and leaks."""

from __future__ import annotations

import copy

import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions import TASK_TYPES, GeneratorConfig, check_instructions, generate_instructions
from tubelet.annotators.instructions import checks as checks_module
from tubelet.annotators.instructions.generator import answer_message


def tables(with_language: bool = True):
    return (s.tubelets(), s.entities(), s.events()) if with_language else (s.tubelets(), [], [])


@pytest.mark.parametrize("with_language", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_sets_pass(with_language: bool, seed: int) -> None:
    tubes, ents, evs = tables(with_language)
    insts = generate_instructions(tubes, ents, evs, config=GeneratorConfig(seed=seed, max_per_task=20))
    report = check_instructions(insts, tubes, ents, evs)
    assert report.ok, report.summary()
    assert sum(report.per_task.values()) == len(insts)
    assert report.yes_ratio("timestamp_verification") == 0.5


def _planted(task: str, change) -> tuple[list, object]:
    tubes, ents, evs = tables()
    insts = generate_instructions(tubes, ents, evs, config=GeneratorConfig(max_per_task=20))
    victim = copy.deepcopy(next(i for i in insts if i.task_type == task))
    change(victim)
    victim.messages[1].content = answer_message(victim.answer)  # consistent turn: only the answer is wrong
    report = check_instructions([victim], tubes, ents, evs)
    return report.problems, victim


def test_shifted_span_fails() -> None:
    def shift(i):
        i.answer.span_s = [i.answer.span_s[0] + 0.1, i.answer.span_s[1] + 0.1]  # one frame at 10 fps

    problems, _ = _planted("temporal_grounding", shift)
    assert [p.kind for p in problems] == ["answer"] and "span" in problems[0].message


def test_span_is_compared_at_the_answer_precision() -> None:
    # 10 fps: times have 2 decimals, so +0.004 is rounding and +0.04 a wrong answer (it
    # was within half a frame, which the checker let pass before answers were rounded)
    problems, _ = _planted("temporal_grounding", lambda i: i.answer.span_s.__setitem__(0, i.answer.span_s[0] + 0.004))
    assert problems == []
    problems, _ = _planted("temporal_grounding", lambda i: i.answer.span_s.__setitem__(0, i.answer.span_s[0] + 0.04))
    assert [p.kind for p in problems] == ["answer"] and "precision" in problems[0].message


def test_moved_box_fails() -> None:
    def move(i):
        i.answer.boxes[0].box_xyxy = [v + 1 for v in i.answer.boxes[0].box_xyxy]

    problems, _ = _planted("spatial_grounding", move)
    assert problems and problems[0].kind == "answer" and "box" in problems[0].message
    problems, _ = _planted("st_grounding", move)
    assert problems and "box" in problems[0].message


def test_box_on_the_wrong_frame_fails() -> None:
    def other_frame(i):
        b = i.answer.boxes[0]
        b.frame_idx += 1

    problems, _ = _planted("spatial_grounding", other_frame)
    assert problems and problems[0].kind == "answer"


def test_flipped_yes_no_fails() -> None:
    problems, _ = _planted(
        "timestamp_verification", lambda i: setattr(i.answer, "text", "no" if i.answer.text == "yes" else "yes")
    )
    assert [p.kind for p in problems] == ["answer"]


def test_wrong_count_fails() -> None:
    problems, _ = _planted("counting", lambda i: setattr(i.answer, "text", str(int(i.answer.text) + 1)))
    assert problems and problems[0].kind == "answer"


def test_wrong_order_and_text_answers_fail() -> None:
    problems, _ = _planted("entity_order", lambda i: setattr(i.answer, "text", "the second dog"))
    assert problems
    problems, _ = _planted("region_qa", lambda i: setattr(i.answer, "text", "giraffe"))
    assert problems
    problems, _ = _planted("timestamp_qa", lambda i: setattr(i.answer, "text", "Nothing happens."))
    assert problems


def test_assistant_turn_must_state_the_answer() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["counting"]))[0])
    inst.messages[1].content = "7"
    assert [p.kind for p in check_instructions([inst], tubes, ents, evs).problems] == ["message"]


def test_leaked_answers_are_flagged() -> None:
    tubes, ents, evs = tables()
    insts = generate_instructions(tubes, ents, evs, config=GeneratorConfig(max_per_task=20))
    tg = copy.deepcopy(next(i for i in insts if i.task_type == "temporal_grounding"))
    tg.messages[0].content += f" (it ends at {tg.answer.span_s[1]:g}s)"
    count = copy.deepcopy(next(i for i in insts if i.task_type == "counting" and i.answer.text == "2"))
    count.messages[0].content = "How many dogs, two of them, appear?"
    box = copy.deepcopy(next(i for i in insts if i.task_type == "spatial_grounding"))
    box.messages[0].content += f" Its left edge is x={box.answer.boxes[0].box_xyxy[0]:g}."
    text = copy.deepcopy(next(i for i in insts if i.task_type == "region_qa" and i.answer.text == "black"))
    text.messages[0].content = "Is <region0> black? What colour is <region0>?"
    report = check_instructions([tg, count, box, text], tubes, ents, evs)
    assert {p.instruction_id for p in report.of_kind("leak")} == {
        tg.instruction_id,
        count.instruction_id,
        box.instruction_id,
        text.instruction_id,
    }


def test_unresolvable_instructions_are_reported() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(
        generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["spatial_grounding"]))[0]
    )
    inst.messages[0].content = "Where is it?"  # the stated time is gone
    assert [p.kind for p in check_instructions([inst], tubes, ents, evs).problems] == ["question"]
    inst.provenance.append("v:no-such-row")
    assert check_instructions([inst], tubes, ents, evs).problems[0].kind == "reference"


def test_yes_no_balance_statistics() -> None:
    tubes, ents, evs = tables()
    insts = generate_instructions(tubes, ents, evs, config=GeneratorConfig(max_per_task=20))
    report = check_instructions(insts, tubes, ents, evs)
    counts = report.yes_no["timestamp_verification"]
    assert counts["yes"] == counts["no"] > 0
    assert "timestamp_verification" in report.summary()


def test_query_records_what_is_asked_and_drives_the_check() -> None:
    tubes, ents, evs = tables()
    insts = generate_instructions(
        tubes, ents, evs, config=GeneratorConfig(task_types=["spatial_grounding", "region_qa"])
    )
    timed = [i for i in insts if i.task_type == "spatial_grounding"]
    asked = [i for i in insts if i.task_type == "region_qa"]
    assert timed and all("t_s" in i.query for i in timed)
    assert asked and all(i.query.get("attribute") in {"category", "colour", "position"} for i in asked)
    # a query time that the question no longer states is reported, not silently used
    broken = copy.deepcopy(timed[0])
    broken.query["t_s"] += 1.0
    assert [p.kind for p in check_instructions([broken], tubes, ents, evs).problems] == ["question"]


def test_a_number_in_a_name_is_not_a_leaked_span() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(
        generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["temporal_grounding"]))[0]
    )
    start = inst.answer.span_s[0]
    inst.messages[0].content += f" (camera #{start:g})"  # a bare number, not a stated time
    assert check_instructions([inst], tubes, ents, evs).ok
    inst.messages[0].content += f" It starts at {start:g}s."  # a stated time: a leak
    assert [p.kind for p in check_instructions([inst], tubes, ents, evs).problems] == ["leak"]


def test_numbers_inside_names_are_not_leaked_boxes() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(
        generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["spatial_grounding"]))[0]
    )
    x1 = inst.answer.boxes[0].box_xyxy[0]
    entity = next(e for e in ents if e.tubelet_id == inst.answer.tubelet_ids[0])
    named = f"{entity.referring_expression} #{x1:g}"
    inst.messages[0].content = inst.messages[0].content.replace(entity.referring_expression, named)
    entity = copy.deepcopy(entity)
    entity.referring_expression = named
    others = [e for e in ents if e.entity_id != entity.entity_id] + [entity]
    assert named in inst.messages[0].content
    assert not check_instructions([inst], tubes, others, evs).of_kind("leak")


def test_every_generated_task_type_has_an_answer_check() -> None:
    assert set(checks_module._ANSWER_CHECKS) == set(TASK_TYPES)


def test_an_unknown_task_type_is_a_question_problem() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["counting"]))[0])
    inst.task_type = "foo"
    problems = check_instructions([inst], tubes, ents, evs).problems
    assert [(p.kind, p.task_type, p.message) for p in problems] == [("question", "foo", "unknown task type 'foo'")]
    inst.provenance.append("v:no-such-row")  # the rows it names are checked before its task type
    assert [p.kind for p in check_instructions([inst], tubes, ents, evs).problems] == ["reference"]


def test_a_region_question_about_an_unknown_attribute_is_a_question_problem() -> None:
    tubes, ents, evs = tables()
    inst = copy.deepcopy(generate_instructions(tubes, ents, evs, config=GeneratorConfig(task_types=["region_qa"]))[0])
    inst.query["attribute"] = "size"
    problems = check_instructions([inst], tubes, ents, evs).problems
    assert [(p.kind, p.message) for p in problems] == [
        ("question", "cannot tell which attribute the question asks about")
    ]
