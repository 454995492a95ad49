"""OpenAICompatibleVLM: chat completions against any OpenAI-compatible server.

vLLM, SGLang, Ollama, TGI and hosted APIs all speak ``POST {base_url}/chat/completions``
with images as data URLs in ``content`` parts. Requests run on a bounded thread pool;
transient failures are retried with exponential back-off and jitter, and a request
that still fails comes back with ``error`` set — one bad request never raises.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from tubelet.annotators.language.backends.base import VLMRequest, VLMResponse, schema_instruction

log = logging.getLogger(__name__)

#: Status codes worth another try: rate limiting and server-side failures.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Status codes a server may answer when it does not understand ``response_format``.
SCHEMA_REJECTED_STATUS = frozenset({400, 422})


@dataclass
class OpenAICompatibleVLM:
    """A client for ``{base_url}/chat/completions`` (``base_url`` usually ends in ``/v1``).

    ``model``: the name the server serves. The API key is read in ``setup()`` from the
    environment variable *named* by ``api_key_env`` (no header when it is unset, as
    local servers need none); it is never stored in the config, logged, or put in an
    error. ``max_concurrency`` bounds requests in flight. ``timeout_s`` bounds each
    attempt's connect and its wait for the (non-streamed) answer. ``max_retries``
    extra attempts follow connection errors, timeouts, 408, 429 and 5xx
    (``Retry-After`` is honoured up to ``backoff_max_s``), never other 4xx.
    ``structured_output``: ``"json_schema"`` sends ``response_format`` for requests
    with a schema and falls back to a prompt instruction if the server rejects it;
    ``"prompt"`` only writes the schema into the prompt.
    """

    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    image_format: str = "png"
    jpeg_quality: int = 90
    temperature: float = 0.0
    structured_output: str = "json_schema"
    extra_body: dict[str, Any] = field(default_factory=dict)
    model_id: str = field(init=False)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_concurrency must be >= 1, max_retries >= 0 and timeout_s > 0")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {self.image_format!r}")
        if self.structured_output not in ("json_schema", "prompt"):
            raise ValueError(f"structured_output must be 'json_schema' or 'prompt', got {self.structured_output!r}")
        self.model_id = self.model
        self.url = self.base_url.rstrip("/") + "/chat/completions"
        self._api_key: str | None = None
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._schema_supported = self.structured_output == "json_schema"

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to workers before setup(): never carry the key, a client or a pool.
        state = self.__dict__.copy()
        state.update(_api_key=None, _client=None, _pool=None)
        return state

    # -- lifecycle -------------------------------------------------------------------
    def setup(self) -> None:
        """Read the API key from the environment and open the connection pool."""
        import httpx

        self._api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s), limits=limits, headers=headers)
        # The pool's size is the concurrency bound: at most max_concurrency requests in flight.
        self._pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="vlm-http")
        log.info("VLM client for %s at %s (concurrency %d)", self.model_id, self.url, self.max_concurrency)

    def close(self) -> None:
        """Wait for requests in flight, then close the pool and the connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        self._pool = self._client = self._api_key = None

    # -- generation ------------------------------------------------------------------
    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Send ``requests`` concurrently; responses come back in input order."""
        if self._pool is None:
            raise RuntimeError(f"OpenAICompatibleVLM({self.model_id}): call setup() before generate()")
        futures = [self._pool.submit(self._answer, r) for r in requests]
        return [f.result() for f in futures]

    def _answer(self, request: VLMRequest) -> VLMResponse:
        start = time.perf_counter()
        try:
            images = [self._data_url(image) for image in request.images]  # encoded once for all tries
            use_schema = bool(request.json_schema) and self._schema_supported
            answer, schema_rejected = self._try(request, images, use_schema, start)
            if not schema_rejected:
                return answer
            # The server may not do response_format: ask again with the schema in the
            # prompt, and stop sending response_format if that works.
            log.warning(
                "%s at %s rejected response_format (%s); retrying with the schema in the prompt",
                self.model_id,
                self.url,
                answer.error,
            )
            fallback, _ = self._try(request, images, False, start)
            fallback.attempts += answer.attempts
            if fallback.ok:
                self._schema_supported = False
            return fallback
        except Exception as error:  # noqa: BLE001 - one bad request must not fail the batch
            return self._failed(request, f"{type(error).__name__}: {error}", 1, start)

    def _try(self, request: VLMRequest, images: list[str], use_schema: bool, start: float) -> tuple[VLMResponse, bool]:
        """Post until success, a final failure or a rejected ``response_format``.

        Returns the response and whether it failed because the server rejected the
        ``response_format`` it was sent (a 400/422 while ``use_schema``).
        """
        import httpx

        payload = self._payload(request, images, use_schema)
        attempts = 0
        while True:
            attempts += 1
            retry_after: float | None = None
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TimeoutException as error:
                reason, retryable = f"timed out after {self.timeout_s:g} s ({type(error).__name__})", True
            except httpx.TransportError as error:
                reason, retryable = f"connection failed ({type(error).__name__}: {error})", True
            else:
                if response.is_success:
                    return self._parsed(request, response, attempts, start), False
                reason = f"HTTP {response.status_code}: {_snippet(response.text)}"
                retryable = response.status_code in RETRY_STATUS
                retry_after = _retry_after(response.headers.get("retry-after"))
                if use_schema and response.status_code in SCHEMA_REJECTED_STATUS:
                    return self._failed(request, reason, attempts, start), True
            if not retryable or attempts > self.max_retries:
                return self._failed(request, reason, attempts, start), False
            delay = self._backoff(attempts, retry_after)
            log.warning(
                "%s at %s: %s; retry %d/%d in %.2f s",
                self.model_id,
                self.url,
                self._redact(reason),
                attempts,
                self.max_retries,
                delay,
            )
            time.sleep(delay)

    def _payload(self, request: VLMRequest, images: list[str], use_schema: bool) -> dict[str, Any]:
        text = request.prompt
        if request.json_schema and not use_schema:
            text += schema_instruction(request.json_schema)
        content = [{"type": "image_url", "image_url": {"url": url}} for url in images]
        content.append({"type": "text", "text": text})
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": content})
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": self.temperature,
        }
        if use_schema:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": request.json_schema, "strict": True},
            }
        payload.update(self.extra_body)
        return payload

    def _parsed(self, request: VLMRequest, response: Any, attempts: int, start: float) -> VLMResponse:
        try:
            body = response.json()
            message = body["choices"][0]["message"]
            content = message.get("content")
            if isinstance(content, list):  # some servers return content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if not isinstance(content, str):
                raise ValueError(f"no text content in the answer (got {type(content).__name__})")
            usage = body.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            return self._failed(
                request,
                f"malformed response ({type(error).__name__}: {error}): {_snippet(response.text)}",
                attempts,
                start,
            )
        return VLMResponse(
            request_id=request.request_id,
            text=content.strip(),
            model_id=self.model_id,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - start,
            attempts=attempts,
        )

    def _failed(self, request: VLMRequest, reason: str, attempts: int, start: float) -> VLMResponse:
        error = f"{self.model_id} at {self.url}: {reason} (after {attempts} attempt{'s' if attempts > 1 else ''})"
        return VLMResponse(
            request_id=request.request_id,
            text="",
            model_id=self.model_id,
            latency_s=time.perf_counter() - start,
            attempts=attempts,
            error=self._redact(error),
        )

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        # Exponential with "equal jitter": half fixed, half random, so that many clients
        # failing together do not come back together.
        delay = min(self.backoff_max_s, self.backoff_s * 2 ** (retry - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _redact(self, text: str) -> str:
        # A server may echo request headers into an error body: never pass the key on.
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    def _data_url(self, image: np.ndarray) -> str:
        buffer = io.BytesIO()
        if self.image_format == "jpeg":
            Image.fromarray(image).save(buffer, format="JPEG", quality=self.jpeg_quality)
        else:
            Image.fromarray(image).save(buffer, format="PNG")
        return f"data:image/{self.image_format};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from inference servers; use our own back-off
        return None
