"""generate_structured: JSON extraction, schema validation, re-asking, clean rejection."""

from __future__ import annotations

import jsonschema
import pytest

from tests.annotators.language.fake_server import FakeChatServer
from tests.annotators.language.scripted_backend import ScriptedBackend
from tubelet.annotators.language.backends import VLMRequest, make_backend
from tubelet.annotators.language.backends.structured import extract_json, generate_structured

SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string", "minLength": 1}, "moving": {"type": "boolean"}},
    "required": ["caption", "moving"],
    "additionalProperties": False,
}


def _requests(*ids: str) -> list[VLMRequest]:
    return [VLMRequest(request_id=i, prompt=f"Describe object {i}.") for i in ids]


def test_fenced_json_with_prose_is_accepted_first_time() -> None:
    backend = ScriptedBackend(
        {
            "a": ['Sure! Here is the description:\n```json\n{"caption": "a red car {old}", "moving": true}\n```'],
            "b": ['{"caption": "a dog", "moving": false} I hope this helps.'],
        }
    )
    results = generate_structured(backend, _requests("a", "b"), SCHEMA)
    assert results.values == {
        "a": {"caption": "a red car {old}", "moving": True},
        "b": {"caption": "a dog", "moving": False},
    }
    assert results.failures == [] and len(backend.seen) == 2
    assert all(r.json_schema == SCHEMA for r in backend.seen)  # the backend is asked for structure


def test_malformed_json_is_reasked_then_rejected_with_a_reason() -> None:
    backend = ScriptedBackend(
        {
            "ok": ['{"caption": "a cup", "moving": false}'],
            "bad": ['{"caption": "a man", moving: true', "```json\n{caption}\n```", "no idea"],
        }
    )
    results = generate_structured(backend, _requests("bad", "ok"), SCHEMA, retries=2)
    assert list(results.values) == ["ok"]
    [failure] = results.failures
    assert failure.request_id == "bad" and failure.asks == 3 and failure.last_text == "no idea"
    assert failure.reason == "no JSON object in the answer"
    reasks = [r for r in backend.seen if r.request_id == "bad"][1:]
    assert "malformed JSON: Expecting property name" in reasks[0].prompt
    assert reasks[1].prompt.startswith("Describe object bad.") and reasks[1].prompt.count("rejected") == 1


def test_schema_violation_is_fixed_on_reask() -> None:
    backend = ScriptedBackend({"a": ['{"caption": "", "moving": "yes"}', '{"caption": "a bus", "moving": true}']})
    results = generate_structured(backend, _requests("a"), SCHEMA)
    assert results.values == {"a": {"caption": "a bus", "moving": True}} and results.failures == []
    reask = backend.seen[1].prompt
    assert "schema violation at" in reask and '{"caption": "", "moving": "yes"}' in reask


def test_invalid_json_is_rejected_with_the_validation_error() -> None:
    backend = ScriptedBackend({"a": ['{"caption": "x", "moving": true, "extra": 1}'] * 2})
    results = generate_structured(backend, _requests("a"), SCHEMA, retries=1)
    [failure] = results.failures
    assert failure.asks == 2 and "Additional properties are not allowed" in failure.reason
    assert results.values == {}


def test_transport_errors_are_not_reasked() -> None:
    backend = ScriptedBackend({"a": [None], "b": ['{"caption": "b", "moving": false}']})
    results = generate_structured(backend, _requests("a", "b"), SCHEMA)
    [failure] = results.failures
    assert failure.asks == 1 and failure.reason == "backend error: server at http://x: HTTP 503"
    assert list(results.values) == ["b"] and len(backend.seen) == 2


def test_bad_schema_and_duplicate_ids_fail_at_once() -> None:
    with pytest.raises(jsonschema.SchemaError):
        generate_structured(ScriptedBackend({}), _requests("a"), {"type": "objekt"})
    with pytest.raises(ValueError, match="unique"):
        generate_structured(ScriptedBackend({}), _requests("a", "a"), SCHEMA)


def test_extract_json_edge_cases() -> None:
    # A valid fragment inside broken JSON is not taken for the answer.
    with pytest.raises(ValueError, match="malformed"):
        extract_json('{"a": {"b": 1}, oops}')
    assert extract_json('thinking {about it} ... {"a": "}\\"{"}') == {"a": '}"{'}
    assert extract_json("items: [1, 2]", want="array") == [1, 2]


def test_through_the_openai_backend() -> None:
    pytest.importorskip("httpx")
    with FakeChatServer() as server:
        backend = make_backend(
            "openai", {"model": "m", "base_url": server.base_url, "backoff_s": 0.01, "api_key_env": None}
        )
        backend.setup()
        try:
            results = generate_structured(
                backend,
                [
                    VLMRequest(request_id="1", prompt='json ```json\n{"caption": "kite", "moving": true}\n```'),
                    VLMRequest(request_id="2", prompt='json {"caption": "kite"}'),
                ],
                SCHEMA,
                retries=1,
            )
        finally:
            backend.close()
    assert results.values == {"1": {"caption": "kite", "moving": True}}
    [failure] = results.failures
    assert failure.request_id == "2" and failure.asks == 2 and "'moving' is a required property" in failure.reason
    assert results.responses["2"].ok and all("response_format" in b for b in server.bodies)
