"""A scriptable OpenAI-compatible chat server on 127.0.0.1 for the backend tests.

The first word of a request's prompt picks the behaviour, and the server counts calls
per prompt, so "fail once, then answer" is scriptable:

- ``ok``: 200, echoes the prompt; ``json``: 200 with the text after the word as content
- ``flaky500`` / ``rate429``: a 500 / a 429 (Retry-After 0.05) on the first call, then ok
- ``slow``: first call sleeps ``slow_s`` before answering, then ok; ``stall``: every call does
- ``bad400``: always 400; ``echokey``: always 500 with the request's headers in the body
- ``hold``: sleeps ``hold_s`` then ok (to observe concurrency)

With ``reject_schema`` it answers 400 to any request carrying ``response_format``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeChatServer:
    """Start with ``with FakeChatServer() as server:``; ``server.base_url`` ends in /v1."""

    def __init__(self, reject_schema: bool = False, slow_s: float = 2.0, hold_s: float = 0.15) -> None:
        self.reject_schema, self.slow_s, self.hold_s = reject_schema, slow_s, hold_s
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
                with server._lock:
                    server.bodies.append(body)
                    server.auth_headers.append(self.headers.get("Authorization"))
                    server.calls[prompt] += 1
                    n = server.calls[prompt]
                case = prompt.split()[0]
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": f"no route {self.path}"})
                if server.reject_schema and "response_format" in body:
                    return self._send(400, {"error": "unknown field: response_format"})
                if case == "flaky500" and n == 1:
                    return self._send(500, {"error": "overloaded"})
                if case == "rate429" and n == 1:
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "0.05"})
                if case == "stall" or (case == "slow" and n == 1):
                    time.sleep(server.slow_s)
                if case == "hold":
                    time.sleep(server.hold_s)
                if case == "bad400":
                    return self._send(400, {"error": "image too large"})
                if case == "echokey":
                    return self._send(500, {"error": "internal", "headers": dict(self.headers)})
                content = prompt.split(None, 1)[1] if case == "json" else f"echo: {prompt} ({n})"
                self._send(
                    200,
                    {
                        "id": "cmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split())},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


class CallbackChatServer(FakeChatServer):
    """A FakeChatServer whose reply to every request is ``answer(prompt)`` (the text part
    of the last message): a string is the assistant's content, an int an error status.
    Calls are counted per ``key(prompt)`` (default: the whole prompt)."""

    def __init__(self, answer: Callable[[str], str | int], key: Callable[[str], str] = lambda p: p) -> None:
        self.answer, self.key = answer, key
        super().__init__()

    def _handler(self) -> type:
        server = self
        base = super()._handler()

        class Handler(base):  # type: ignore[misc,valid-type]
            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
                with server._lock:
                    server.bodies.append(body)
                    server.calls[server.key(prompt)] += 1
                content = server.answer(prompt)
                if isinstance(content, int):
                    return self._send(content, {"error": "scripted failure"})
                self._send(
                    200,
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
                    },
                )

        return Handler
