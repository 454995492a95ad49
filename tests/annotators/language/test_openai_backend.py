"""OpenAICompatibleVLM against a scripted local server (127.0.0.1, port 0)."""

from __future__ import annotations

import base64
import io
import logging
import pickle
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")

from tests.annotators.language.fake_server import FakeChatServer
from tubelet.annotators.language.backends import VLMRequest, make_backend
from tubelet.annotators.language.backends.openai_backend import OpenAICompatibleVLM

KEY = "sk-test-5f2c9d1e-never-log-me"


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    with FakeChatServer() as s:
        yield s


def _client(base_url: str, **options: object) -> OpenAICompatibleVLM:
    defaults = {
        "model": "tiny-vlm",
        "base_url": base_url,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_s": 0.01,
        "backoff_max_s": 0.1,
        "api_key_env": "TUBELET_TEST_VLM_KEY",
    }
    backend = make_backend("openai", {**defaults, **options})
    backend.setup()
    return backend


def _req(rid: str, prompt: str, **kw: object) -> VLMRequest:
    return VLMRequest(request_id=rid, prompt=prompt, **kw)


def test_answers_in_order_with_images_and_usage(server: FakeChatServer) -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    backend = _client(server.base_url)
    try:
        responses = backend.generate(
            [
                _req(str(i), f"ok request {i}", images=[image] * (i % 3), system="be brief", max_new_tokens=7)
                for i in range(6)
            ]
        )
    finally:
        backend.close()
    assert [r.request_id for r in responses] == [str(i) for i in range(6)]
    for i, r in enumerate(responses):
        assert r.ok and r.text == f"echo: ok request {i} (1)" and r.attempts == 1 and r.model_id == "tiny-vlm"
        assert (r.prompt_tokens, r.output_tokens) == (3, 5) and r.latency_s > 0
    body = next(b for b in server.bodies if b["messages"][-1]["content"][-1]["text"] == "ok request 2")
    assert body["model"] == "tiny-vlm" and body["max_tokens"] == 7 and "response_format" not in body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert np.array_equal(decoded, image)  # PNG: lossless, regions drawn on the crop survive


def test_retries_transient_failures_but_not_400(server: FakeChatServer) -> None:
    backend = _client(server.base_url, timeout_s=0.5)
    try:
        flaky, rate, slow, bad = backend.generate(
            [_req("a", "flaky500 x"), _req("b", "rate429 x"), _req("c", "slow x"), _req("d", "bad400 x")]
        )
    finally:
        backend.close()
    assert flaky.ok and flaky.attempts == 2 and flaky.text == "echo: flaky500 x (2)"
    assert rate.ok and rate.attempts == 2
    assert slow.ok and slow.attempts == 2 and slow.text == "echo: slow x (2)"  # first try timed out
    assert not bad.ok and bad.attempts == 1 and server.calls["bad400 x"] == 1
    assert "HTTP 400" in bad.error and "image too large" in bad.error and server.base_url in bad.error


def test_gives_up_after_max_retries_with_a_reason(server: FakeChatServer) -> None:
    backend = _client(server.base_url, timeout_s=0.5, max_retries=1)
    try:
        [timeout] = backend.generate([_req("t", "stall y")])
        [ok] = backend.generate([_req("t2", "ok y")])  # the client is still usable
    finally:
        backend.close()
    assert timeout.error is not None and "timed out after 0.5 s" in timeout.error and timeout.attempts == 2
    assert server.calls["stall y"] == 2 and ok.ok


def test_unreachable_server_names_the_url() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = _client(f"http://127.0.0.1:{port}/v1", max_retries=1)
    try:
        start = time.perf_counter()
        [r] = backend.generate([_req("x", "ok hello")])
    finally:
        backend.close()
    assert r.error is not None and r.text == "" and r.attempts == 2
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in r.error and "connection failed" in r.error
    assert time.perf_counter() - start < 5


def test_concurrency_limit_is_observed_by_the_server(server: FakeChatServer) -> None:
    # each request held long enough that a loaded machine still starts the next ones
    # while it is in flight (0.15 s saw one at a time once, with the suite's load around)
    server.hold_s = 0.6
    backend = _client(server.base_url, max_concurrency=3)
    try:
        responses = backend.generate([_req(str(i), f"hold {i}") for i in range(12)])
    finally:
        backend.close()
    assert all(r.ok for r in responses)
    assert [r.text for r in responses] == [f"echo: hold {i} (1)" for i in range(12)]
    assert 2 <= server.max_in_flight <= 3


def test_api_key_is_sent_but_never_logged_or_reported(
    server: FakeChatServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TUBELET_TEST_VLM_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    backend = _client(server.base_url)
    try:
        responses = backend.generate([_req("1", "ok a"), _req("2", "echokey b"), _req("3", "bad400 c")])
        shipped = pickle.dumps(backend)
        text = repr(backend) + str(vars(pickle.loads(shipped)))
    finally:
        backend.close()
    assert set(server.auth_headers) == {f"Bearer {KEY}"}
    assert responses[0].ok and not responses[1].ok and not responses[2].ok
    assert "[redacted]" in responses[1].error  # the server echoed the header back: scrubbed
    assert "HTTP 500" in caplog.text  # the retries were logged...
    everything = caplog.text + text + " ".join(str(r) for r in responses)
    assert KEY not in everything and KEY.encode() not in shipped  # ...without the key


def test_no_key_configured_sends_no_header(server: FakeChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUBELET_TEST_VLM_KEY", raising=False)
    backend = _client(server.base_url)
    try:
        [r] = backend.generate([_req("1", "ok")])
    finally:
        backend.close()
    assert r.ok and server.auth_headers == [None]


def test_response_format_and_fallback_when_rejected() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with FakeChatServer() as accepting:
        backend = _client(accepting.base_url)
        try:
            [r] = backend.generate([_req("s", 'json {"n": 1}', json_schema=schema)])
        finally:
            backend.close()
        assert r.ok and r.text == '{"n": 1}'
        [body] = accepting.bodies
        assert body["response_format"]["json_schema"]["schema"] == schema
        assert body["messages"][-1]["content"][-1]["text"] == 'json {"n": 1}'
    with FakeChatServer(reject_schema=True) as rejecting:
        backend = _client(rejecting.base_url)
        try:
            [first] = backend.generate([_req("s", 'json {"n": 2}', json_schema=schema)])
            [second] = backend.generate([_req("t", 'json {"n": 3}', json_schema=schema)])
        finally:
            backend.close()
        assert first.ok and first.attempts == 2 and second.ok and second.attempts == 1
        with_format, fallback, remembered = rejecting.bodies
        assert "response_format" in with_format and "response_format" not in fallback
        assert '"required":["n"]' in fallback["messages"][-1]["content"][-1]["text"]
        assert "response_format" not in remembered  # the server said no once: not asked again


def test_generate_before_setup_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        OpenAICompatibleVLM().generate([_req("x", "ok")])
