"""Structured output on top of any backend: extract JSON, validate it, re-ask the failures.

Models wrap JSON in code fences, preface it with prose, or get the schema wrong.
``generate_structured`` takes what can be taken, validates it with ``jsonschema`` and
asks again — with the validation error in the prompt — for the ones that failed.
What still fails comes back as a ``StructuredFailure`` with a reason, for the caller's
``rejects``: nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from tubelet.annotators.language.backends.base import VLMBackend, VLMRequest, VLMResponse

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


@dataclass
class StructuredFailure:
    """A request that never produced valid JSON: why, after how many asks, and the last text."""

    request_id: str
    reason: str
    asks: int
    last_text: str


@dataclass
class StructuredResults:
    """Validated values by request id (input order), the failures, and every request's
    last response (for token counts and model ids)."""

    values: dict[str, Any] = field(default_factory=dict)
    failures: list[StructuredFailure] = field(default_factory=list)
    responses: dict[str, VLMResponse] = field(default_factory=dict)


def extract_json(text: str, want: str = "object") -> Any:
    """The first JSON value of type ``want`` ("object" or "array") in ``text``.

    Looks inside ```json fences first, then anywhere in the text (so leading or
    trailing prose is fine). Raises ``ValueError`` saying what was wrong.
    """
    opener = "[" if want == "array" else "{"
    decoder = json.JSONDecoder()
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_error: str | None = None
    for candidate in candidates:
        start = candidate.find(opener)
        while start >= 0:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError as error:
                first_error = first_error or f"{error.msg} at char {error.pos - start} of the JSON"
                # Skip the whole broken value: a valid fragment nested in it is not the answer.
                start = candidate.find(opener, _balanced_end(candidate, start))
                continue
            return value
    if first_error:
        raise ValueError(f"malformed JSON: {first_error}")
    raise ValueError(f"no JSON {want} in the answer")


def _balanced_end(text: str, start: int) -> int:
    """Index just past the bracket that closes the one at ``start`` (strings respected),
    or the end of ``text`` when it never closes."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def validation_error(value: Any, validator: jsonschema.protocols.Validator) -> str | None:
    """None when ``value`` is valid, else the most relevant error, with its path."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"schema violation at {where}: {error.message[:300]}"


def generate_structured(
    backend: VLMBackend, requests: list[VLMRequest], schema: dict[str, Any], retries: int = 2
) -> StructuredResults:
    """Ask ``backend`` for JSON matching ``schema`` and validate every answer.

    Each request is sent with ``json_schema=schema``. An answer without valid JSON is
    asked again (up to ``retries`` more times) with the reason appended to its prompt;
    a transport failure (``VLMResponse.error``) is not re-asked — the backend already
    retried it. An invalid ``schema`` raises ``jsonschema.SchemaError`` at once.
    """
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    want = "array" if schema.get("type") == "array" else "object"
    results = StructuredResults()
    reasons: dict[str, str] = {}
    asks: dict[str, int] = {r.request_id: 0 for r in requests}
    if len(asks) != len(requests):
        raise ValueError("request ids must be unique")
    originals = {r.request_id: dataclasses.replace(r, json_schema=schema) for r in requests}
    pending = list(originals.values())
    for round_ in range(retries + 1):
        if not pending:
            break
        again = []
        for request, response in zip(pending, backend.generate(pending)):
            rid = request.request_id
            asks[rid] += 1
            results.responses[rid] = response
            if response.error is not None:
                reasons[rid] = f"backend error: {response.error}"
                continue
            try:
                value = extract_json(response.text, want)
                problem = validation_error(value, validator)
            except ValueError as error:
                problem = str(error)
            if problem is None:
                results.values[rid] = value
                reasons.pop(rid, None)
                continue
            reasons[rid] = problem
            if round_ < retries:
                again.append(_reask(originals[rid], problem, response.text))
        pending = again
    order = {r.request_id: i for i, r in enumerate(requests)}
    results.values = dict(sorted(results.values.items(), key=lambda kv: order[kv[0]]))
    results.failures = [
        StructuredFailure(request_id=rid, reason=reasons[rid], asks=asks[rid], last_text=results.responses[rid].text)
        for rid in sorted(reasons, key=order.__getitem__)
    ]
    return results


def _reask(request: VLMRequest, problem: str, previous: str) -> VLMRequest:
    # Re-ask from the original prompt (not the last re-ask) so notes do not pile up.
    note = (
        f"\n\nYour previous answer was rejected ({problem}). Previous answer: "
        f"{previous[:500]!r}\nReply again with only a JSON value that fixes this."
    )
    return dataclasses.replace(request, prompt=request.prompt + note)
