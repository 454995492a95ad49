"""LLMParaphraser and the stage's paraphrase option: rewordings through a scripted
OpenAI-compatible server; answers never change, bad rewrites and errors keep the
template question, and the checker still passes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.annotators.instructions import scripted as s
from tests.annotators.language.fake_server import CallbackChatServer, FakeChatServer
from tubelet.annotators.instructions import derive as d
from tubelet.annotators.instructions.checks import check_instructions, question_of
from tubelet.annotators.instructions.paraphrase import PARAPHRASE_QUESTION, LLMParaphraser, clean_rewrite
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.annotators.language.backends.base import VLMRequest, VLMResponse
from tubelet.engine.task import VideoTask

pytest.importorskip("httpx")

DROPS_TIME = "What happens at 2.7s?"  # the server answers without the time
DROPS_PLACEHOLDER = "Describe <region0> at 0.5s."  # ... without the placeholder
CHANGES_ATTRIBUTE = "Name the main colour of <region0>."  # ... asking about another attribute
FAILS = "How many dogs appear in the video?"  # the server answers 500


def reword(question: str) -> str | int:
    """The scripted model: an int is an HTTP error status."""
    if question == DROPS_TIME:
        return "What happens at that moment?"
    if question == DROPS_PLACEHOLDER:
        return "Describe the highlighted object at 0.5s."
    if question == CHANGES_ATTRIBUTE:
        return "How big is <region0>?"
    if question == FAILS:
        return 500
    # a chatty answer: a label and quotes around the question, then an explanation
    return f'Rephrased question: "Tell me: {question[0].lower()}{question[1:]}"\nI kept the times.'


def _question(prompt: str) -> str:
    return prompt.rsplit("Question: ", 1)[1]


def ParaphraseServer(answer: Callable[[str], str | int]) -> CallbackChatServer:  # noqa: N802 - reads as a class
    """A server answering ``answer(question)`` for the question in the prompt."""
    return CallbackChatServer(lambda prompt: answer(_question(prompt)), key=_question)


def _options(server: FakeChatServer) -> dict[str, Any]:
    return {"base_url": server.base_url, "model": "fake-llm", "api_key_env": None, "max_retries": 0}


def _task() -> VideoTask:
    return VideoTask(video_id=s.VIDEO, uri="v.mp4", tubelets=s.tubelets(), entities=s.entities(), events=s.events())


# -- the paraphraser ------------------------------------------------------------------


class RecordingBackend:
    """A backend that answers ``reply(prompt)`` and records each ``generate`` call."""

    model_id = "rec"

    def __init__(self, reply: Callable[[VLMRequest], VLMResponse]) -> None:
        self.reply = reply
        self.calls: list[list[VLMRequest]] = []

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        self.calls.append(list(requests))
        return [self.reply(r) for r in requests]


def _response(request: VLMRequest, text: str, error: str | None = None) -> VLMResponse:
    return VLMResponse(request_id=request.request_id, text=text, model_id="rec", error=error)


def test_paraphrase_all_sends_one_text_only_call_per_batch_of_distinct_questions() -> None:
    backend = RecordingBackend(lambda r: _response(r, "Q: " + r.prompt.rsplit("Question: ", 1)[1]))
    para = LLMParaphraser(backend, max_new_tokens=40)
    out = para.paraphrase_all(["a?", "b?", "a?"])
    assert out == ["Q: a?", "Q: b?", "Q: a?"]
    [call] = backend.calls
    assert [r.prompt.rsplit("Question: ", 1)[1] for r in call] == ["a?", "b?"]
    assert all(r.images == [] and r.json_schema is None and r.max_new_tokens == 40 for r in call)
    assert call[0].system == PARAPHRASE_QUESTION.system
    assert para("b?") == "Q: b?" and para.paraphrase_all([]) == []
    assert para.paraphraser_id == "rec/question_paraphrase@1"


def test_errors_and_empty_answers_keep_the_question() -> None:
    def reply(r: VLMRequest) -> VLMResponse:
        q = r.prompt.rsplit("Question: ", 1)[1]
        if q == "err?":
            return _response(r, "", error="HTTP 500")
        return _response(r, '  \n""\n' if q == "empty?" else "new " + q)

    para = LLMParaphraser(RecordingBackend(reply))
    assert para.paraphrase_all(["err?", "empty?", "ok?"]) == ["err?", "empty?", "new ok?"]

    class Raising(RecordingBackend):
        def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
            raise RuntimeError("backend broke its contract")

    assert LLMParaphraser(Raising(reply)).paraphrase_all(["x?", "y?"]) == ["x?", "y?"]


def test_clean_rewrite() -> None:
    assert (
        clean_rewrite('Rephrased question: "When does <region0> stop?"\nNote: kept it.') == "When does <region0> stop?"
    )
    assert clean_rewrite("\n\n  Question: Is it red?  ") == "Is it red?"
    assert clean_rewrite("“Where is it at 1.5s?”") == "Where is it at 1.5s?"
    assert clean_rewrite("  \n ") == ""


def test_the_released_prompt_is_pinned() -> None:
    # a wording change needs a version bump (then update the fingerprint here)
    assert PARAPHRASE_QUESTION.id == "question_paraphrase@1"
    assert PARAPHRASE_QUESTION.fingerprint == "7f69a188c4f8"
    assert PARAPHRASE_QUESTION.fields == {"question"}
    text = PARAPHRASE_QUESTION.render(question="Where is <region0> at 1.5s?")
    assert text.endswith("Question: Where is <region0> at 1.5s?") and "<region0>" in text


# -- the stage ------------------------------------------------------------------------


def test_stage_paraphrases_questions_and_never_answers() -> None:
    plain = GenerateInstructions(seed=5).process([_task()])[0]
    with ParaphraseServer(reword) as server:
        stage = GenerateInstructions(seed=5, paraphrase_backend="openai", paraphrase_options=_options(server))
        assert stage.needs_actor and stage.model_id == "fake-llm"
        with stage.started():
            task = stage.process([_task()])[0]
    questions = {question_of(i) for i in plain.instructions}
    # one request per distinct question, each asked once (one batched generate call)
    assert set(server.calls) == questions and set(server.calls.values()) == {1}

    assert task.rejects == []
    assert [i.instruction_id for i in task.instructions] == [i.instruction_id for i in plain.instructions]
    tag = f"{d.GENERATOR_ID}+paraphrase:fake-llm/question_paraphrase@1"
    kept = {DROPS_TIME, DROPS_PLACEHOLDER, CHANGES_ATTRIBUTE, FAILS}
    assert kept <= questions
    for before, after in zip(plain.instructions, task.instructions):
        # answers, regions, provenance and the query are the template row's
        assert after.answer == before.answer and after.messages[1:] == before.messages[1:]
        assert (after.regions, after.provenance, after.query) == (before.regions, before.provenance, before.query)
        q = question_of(before)
        if q in kept:  # dropped a time / placeholder / attribute, or the server failed
            assert question_of(after) == q and after.generator_id == d.GENERATOR_ID
        else:
            assert question_of(after) == f"Tell me: {q[0].lower()}{q[1:]}"
            assert after.generator_id == tag
            assert d.times_in(question_of(after)) == d.times_in(q)
            assert re.findall(r"<region\d+>", question_of(after)) == re.findall(r"<region\d+>", q)
    # the paraphrased set passes the checker on its own, too
    report = check_instructions(task.instructions, task.tubelets, task.entities, task.events)
    assert report.problems == []


def test_stage_batches_all_tasks_of_a_batch_in_one_call() -> None:
    with ParaphraseServer(reword) as server:
        stage = GenerateInstructions(
            seed=1,
            task_types=("timestamp_qa", "counting"),
            paraphrase_backend="openai",
            paraphrase_options=_options(server),
        )
        stage.setup()
        calls: list[int] = []
        generate = stage._backend.generate  # type: ignore[union-attr]
        stage._backend.generate = lambda rs: (calls.append(len(rs)), generate(rs))[1]  # type: ignore[union-attr]
        tasks = stage.process([_task(), _task()])
        stage.teardown()
    assert len(calls) == 1  # two tasks, one call
    assert all(t.rejects == [] and t.instructions for t in tasks)
    assert [question_of(i) for i in tasks[0].instructions] == [question_of(i) for i in tasks[1].instructions]


def test_paraphrase_options_fail_at_build_time() -> None:
    with pytest.raises(ValueError, match="unknown VLM backend"):
        GenerateInstructions(paraphrase_backend="nope")
    with pytest.raises(ValueError, match="unknown option"):
        GenerateInstructions(paraphrase_backend="openai", paraphrase_options={"modle": "x"})
    plain = GenerateInstructions()
    assert not plain.needs_actor and plain.model_id is None
