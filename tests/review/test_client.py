"""Retries, back-off and error messages of the Label Studio client (no server needed)."""

from __future__ import annotations

import pickle
import socket

import httpx
import pytest

pytest.importorskip("label_studio_sdk")

from label_studio_sdk.core.api_error import ApiError

from tubelet.review.client import LabelStudioClient, RetryPolicy, ReviewServerError

TOKEN = "secret-token-0123456789abcdef"


def _client(**retry: float) -> tuple[LabelStudioClient, list[float]]:
    waits: list[float] = []
    policy = RetryPolicy(**{"attempts": 4, "backoff_s": 0.5, **retry})
    return LabelStudioClient("http://127.0.0.1:9", TOKEN, retry=policy, sleep=waits.append), waits


def _flaky(failures: list[BaseException], value: str = "ok"):
    calls = []

    def fn(*, request_options: dict) -> str:
        calls.append(request_options)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return value

    return fn, calls


def test_5xx_and_timeouts_are_retried_with_exponential_backoff() -> None:
    client, waits = _client()
    fn, calls = _flaky([ApiError(status_code=503, body="busy"), httpx.ReadTimeout("slow")])
    assert client.call("importing 3 tasks", fn) == "ok"
    assert len(calls) == 3 and waits == [0.5, 1.0]
    assert all(c["max_retries"] == 0 for c in calls)  # the SDK's own retries are off


def test_a_client_error_is_not_retried_and_names_the_action() -> None:
    client, waits = _client()
    fn, calls = _flaky([ApiError(status_code=400, body={"detail": "bad label config"})])
    with pytest.raises(ReviewServerError, match=r"creating project 'x' failed: HTTP 400: .*bad label config"):
        client.call("creating project 'x'", fn)
    assert len(calls) == 1 and waits == []


def test_giving_up_says_what_was_not_done_and_how_often_it_was_tried() -> None:
    client, waits = _client(attempts=3, backoff_s=1.0, max_wait_s=1.5)
    fn, _ = _flaky([ApiError(status_code=502, body="")] * 5)
    with pytest.raises(ReviewServerError, match=r"exporting annotations failed after 3 attempts: HTTP 502"):
        client.call("exporting annotations", fn)
    assert waits == [1.0, 1.5]  # capped


def test_an_unreachable_server_is_a_clear_error_without_the_token() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LabelStudioClient(f"http://127.0.0.1:{port}", TOKEN, retry=RetryPolicy(attempts=2, backoff_s=0.01))
    with pytest.raises(ReviewServerError) as error:
        client.check()
    message = str(error.value)
    assert "contacting Label Studio failed after 2 attempts: cannot reach the server" in message
    assert f"127.0.0.1:{port}" in message and TOKEN not in message


def test_the_token_is_never_shown_or_pickled(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = _client()
    assert TOKEN not in repr(client) and TOKEN not in str(vars(client).get("url"))
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(client)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ReviewServerError, match="LABEL_STUDIO_API_KEY"):
        LabelStudioClient("http://127.0.0.1:9")
