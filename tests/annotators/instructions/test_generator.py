"""Each task type on scripted tables, with the answers known by construction."""

from __future__ import annotations

import dataclasses

import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions import (
    GENERATOR_ID,
    TASK_TYPES,
    GeneratorConfig,
    generate_instructions,
    instruction_id,
)
from tubelet.annotators.instructions.derive import times_in

CAT, DOG1, DOG2 = "v:cat", "v:dog1", "v:dog2"


@pytest.fixture(scope="module")
def insts():
    return generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(max_per_task=20))


def by_task(insts, task):
    return [i for i in insts if i.task_type == task]


def q(inst) -> str:
    return inst.messages[0].content


def test_every_task_type_is_generated_with_ids_provenance_and_generator(insts) -> None:
    assert {i.task_type for i in insts} == set(TASK_TYPES)
    for inst in insts:
        assert inst.generator_id == GENERATOR_ID
        assert inst.instruction_id.startswith(f"v:{inst.task_type}:") and len(inst.instruction_id.split(":")[-1]) == 12
        assert inst.provenance and inst.messages[0].role == "user" and inst.messages[1].role == "assistant"
    assert len({i.instruction_id for i in insts}) == len(insts)


def test_instruction_id_is_the_sha1_of_question_and_rows() -> None:
    import hashlib

    want = hashlib.sha1(b"Q?\na\nb").hexdigest()[:12]
    assert instruction_id("v", "counting", "Q?", ["a", "b"]) == f"v:counting:{want}"


def test_deterministic_given_a_seed_and_varied_phrasing() -> None:
    a = generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(seed=3))
    b = generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(seed=3))
    c = generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(seed=4))
    assert a == b
    assert [q(i) for i in a] != [q(i) for i in c]
    spatial = [q(i).split(" the ")[0] for i in by_task(a + c, "spatial_grounding")]
    assert len(set(spatial)) >= 2  # several phrasings in use


def test_region_description_uses_entity_and_events(insts) -> None:
    got = {i.regions[0].tubelet_id: i for i in by_task(insts, "region_description")}
    assert got[CAT].answer.text == "It is a black cat. From 0s to 2.9s it sleeps."
    assert got[DOG1].answer.text == "It is a dog. From 0.5s to 1s it runs to the left. From 1.2s to 1.4s it sits down."
    assert got[DOG2].answer.text == "It is a dog. It is visible from 1s to 2.9s."
    assert got[DOG1].regions[0].placeholder == "<region0>" and "<region0>" in q(got[DOG1])
    assert got[DOG1].regions[0].frame_idx == [5, 11, 20]  # spread over visible frames
    assert set(got[DOG1].provenance) == {DOG1, "v:event:dog1:0", "v:event:dog1:1"}


def test_region_qa_colour_category_position(insts) -> None:
    answers = {(i.regions[0].tubelet_id, i.answer.text) for i in by_task(insts, "region_qa")}
    assert {(CAT, "cat"), (CAT, "black"), (CAT, "top left"), (DOG2, "dog"), (DOG2, "bottom right")} <= answers
    assert not any(t == DOG1 and a == "black" for t, a in answers)  # no colour attribute: not asked


def test_timestamp_and_mask_time_qa_answers_from_events(insts) -> None:
    for inst in by_task(insts, "timestamp_qa"):
        (t,) = times_in(q(inst))
        expected = ["The black cat sleeps."]
        if 0.5 <= t <= 1.0:
            expected.append("The first dog runs to the left.")
        if 1.2 <= t <= 1.4:
            expected.append("The first dog sits down.")
        assert inst.answer.text == " ".join(expected)
    for inst in by_task(insts, "mask_time_qa"):
        (t,) = times_in(q(inst))
        tid = inst.regions[0].tubelet_id
        want = {CAT: "It sleeps.", DOG2: "It is in the bottom right of the frame."}.get(tid)
        if tid == DOG1:
            want = "It runs to the left." if t <= 1.0 else "It sits down."
        assert inst.answer.text == want


def test_temporal_grounding_spans(insts) -> None:
    spans = {(i.answer.tubelet_ids[0], tuple(i.answer.span_s)) for i in by_task(insts, "temporal_grounding")}
    assert (DOG1, (0.5, 2.0)) in spans  # visibility: first and last visible frame
    assert (DOG1, (0.5, 1.0)) in spans and (DOG1, (1.2, 1.4)) in spans  # events
    assert (DOG2, (1.0, 2.9)) in spans


def test_spatial_and_st_grounding_boxes(insts) -> None:
    for inst in by_task(insts, "spatial_grounding"):
        (t,) = times_in(q(inst))
        (box,) = inst.answer.boxes
        assert box.frame_idx == round(t * 10) and box.t_s == pytest.approx(t)
        want = {CAT: s.BOX_CAT, DOG2: s.BOX_DOG2}.get(inst.answer.tubelet_ids[0]) or s.box_dog1(box.frame_idx)
        assert box.box_xyxy == want
    st = [i for i in by_task(insts, "st_grounding") if i.answer.tubelet_ids == [DOG1] and i.answer.span_s == [0.5, 2.0]]
    (inst,) = st
    assert [b.frame_idx for b in inst.answer.boxes] == [5, 9, 13, 20]  # hidden frames 15-17 never used
    assert all(b.box_xyxy == s.box_dog1(b.frame_idx) for b in inst.answer.boxes)


def test_timestamp_verification_is_balanced_and_true(insts) -> None:
    ver = by_task(insts, "timestamp_verification")
    yes = [i for i in ver if i.answer.text == "yes"]
    assert len(yes) * 2 == len(ver) and yes
    for inst in ver:
        (t,) = times_in(q(inst))
        f = round(t * 10)
        if "visible" in q(inst) or "seen" in q(inst) or "in view" in q(inst):
            tid = inst.answer.tubelet_ids[0]
            vis = {CAT: 0 <= f <= 29, DOG2: 10 <= f <= 29, DOG1: 5 <= f <= 14 or 18 <= f <= 20}[tid]
            assert inst.answer.text == ("yes" if vis else "no")


def test_entity_order_and_counting(insts) -> None:
    order = {
        frozenset(p for p in i.provenance if not p.endswith(":entity")): i.answer.text
        for i in by_task(insts, "entity_order")
    }
    assert order[frozenset({CAT, DOG1})] == "the black cat"
    assert order[frozenset({DOG1, DOG2})] == "the first dog"
    counts = {i.messages[0].content: i.answer.text for i in by_task(insts, "counting")}
    assert sorted(counts.values()) == ["1", "2"]
    assert any("dogs" in k and v == "2" for k, v in counts.items())


def test_without_entities_or_events_names_by_category_with_ordinals() -> None:
    insts = generate_instructions(s.tubelets(), config=GeneratorConfig(max_per_task=20))
    texts = " ".join(q(i) for i in insts)
    assert "the first dog" in texts and "the second dog" in texts and "the cat" in texts
    tsqa = [i for i in insts if i.task_type == "timestamp_qa" and times_in(q(i)) == [1.0]]
    assert tsqa and tsqa[0].answer.text == "The cat, the first dog and the second dog are visible."


def test_task_type_subset_and_max_per_task() -> None:
    insts = generate_instructions(
        s.tubelets(), config=GeneratorConfig(task_types=["counting", "spatial_grounding"], max_per_task=1)
    )
    assert sorted(i.task_type for i in insts) == ["counting", "spatial_grounding"]
    with pytest.raises(ValueError, match="unknown task types"):
        GeneratorConfig(task_types=["bogus"])


def test_paraphrase_hook_changes_questions_never_answers() -> None:
    plain = generate_instructions(s.tubelets(), s.entities(), s.events())
    para = generate_instructions(
        s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(paraphrase=lambda text: "Please answer: " + text)
    )
    assert [i.answer for i in plain] == [i.answer for i in para]
    assert [i.instruction_id for i in plain] == [i.instruction_id for i in para]  # ids from the template question
    assert all(q(i).startswith("Please answer: ") for i in para)
    # a paraphrase that loses the stated time or the region is refused
    broken = generate_instructions(
        s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(paraphrase=lambda text: "What?")
    )
    assert [q(i) for i in broken if times_in(q(i)) or "<region0>" in q(i)] == [
        q(i) for i in plain if times_in(q(i)) or "<region0>" in q(i)
    ]
    assert [dataclasses.asdict(i.answer) for i in broken] == [dataclasses.asdict(i.answer) for i in plain]
