"""Renderers produce parseable output that gives the numbers back."""

from __future__ import annotations

import json

import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions import GeneratorConfig, VideoTables, generate_instructions
from tubelet.annotators.instructions.renderers import (
    TimeFormat,
    bin_to_time,
    box_tolerance,
    parse_open_o3,
    parse_unistg,
    time_to_bin,
    to_open_o3,
    to_unistg,
)


@pytest.fixture(scope="module")
def insts():
    return generate_instructions(s.tubelets(), s.entities(), s.events(), config=GeneratorConfig(max_per_task=20))


def grounded(insts):
    return [i for i in insts if i.answer.span_s or i.answer.boxes]


@pytest.mark.parametrize("box_format", ["pixel", "unit", "thousand"])
@pytest.mark.parametrize("time", [TimeFormat(), TimeFormat(bins=100, duration_s=2.9)])
def test_unistg_round_trips(insts, box_format, time) -> None:
    for inst in grounded(insts):
        row = json.loads(json.dumps(to_unistg(inst, s.W, s.H, box_format, time)))
        span, boxes = parse_unistg(row["answer"], s.W, s.H, box_format, time)
        if inst.answer.span_s:
            assert span == pytest.approx(inst.answer.span_s, abs=time.tolerance())
            assert row["answer"].startswith("From ")
        assert len(boxes) == len(inst.answer.boxes)
        for (t, box), want in zip(boxes, inst.answer.boxes):
            assert t == pytest.approx(want.t_s, abs=time.tolerance())
            assert box == pytest.approx(want.box_xyxy, abs=box_tolerance(s.W, s.H, box_format))
        if box_format != "pixel":
            for _, box in boxes:
                assert all(0 <= v <= max(s.W, s.H) for v in box)


def test_unistg_formats_look_as_documented(insts) -> None:
    inst = next(i for i in insts if i.task_type == "st_grounding" and i.answer.span_s == [0.5, 2.0])
    assert to_unistg(inst, s.W, s.H)["answer"].startswith("From 0.5s to 2s. At 0.5s: [50, 200, 100, 260].")
    unit = to_unistg(inst, s.W, s.H, "unit")["answer"]
    assert "[0.0781, 0.4167, 0.1562, 0.5417]" in unit
    assert "[78, 417, 156, 542]" in to_unistg(inst, s.W, s.H, "thousand")["answer"]
    tokens = to_unistg(inst, s.W, s.H, time=TimeFormat(bins=30, duration_s=2.9))["answer"]
    assert tokens.startswith("From <t_5> to <t_20>.")


def test_relative_time_tokens() -> None:
    assert time_to_bin(0.0, 10, 11) == 0 and time_to_bin(10, 10, 11) == 10 and time_to_bin(12, 10, 11) == 10
    assert bin_to_time(time_to_bin(3.3, 10, 11), 10, 11) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        TimeFormat(bins=10)


@pytest.mark.parametrize("time", [TimeFormat(), TimeFormat(bins=50, duration_s=2.9)])
def test_open_o3_tags_round_trip(insts, time) -> None:
    names = VideoTables.of(s.tubelets(), s.entities(), s.events()).names
    for inst in grounded(insts):
        row = to_open_o3(inst, names, s.W, s.H, "thousand", time)
        parsed = parse_open_o3(row["answer"], s.W, s.H, "thousand", time)
        assert parsed["objects"] == [names[i] for i in inst.answer.tubelet_ids]
        if inst.answer.span_s:
            assert parsed["span_s"] == pytest.approx(inst.answer.span_s, abs=time.tolerance())
        assert [b for _, b in parsed["boxes"]] == [
            pytest.approx(b.box_xyxy, abs=box_tolerance(s.W, s.H, "thousand")) for b in inst.answer.boxes
        ]
    text_inst = next(i for i in insts if i.task_type == "entity_order")
    assert to_open_o3(text_inst, names, s.W, s.H)["answer"].startswith("<obj>")
