"""The backend interface: requests in, responses out, in order, never raising per request."""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class VLMRequest:
    """One prompt for a VLM: text plus zero or more RGB images.

    ``images`` are ``(H, W, 3)`` uint8 arrays — frames or crops, with regions already
    highlighted by the caller. ``json_schema`` asks for structured output: a server
    backend enforces it (``response_format``) where it can, otherwise the schema is
    written into the prompt (see ``schema_instruction``); either way the caller still
    validates (``generate_structured``).
    """

    request_id: str
    prompt: str
    system: str | None = None
    images: list[np.ndarray] = field(default_factory=list)
    max_new_tokens: int = 128
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"request {self.request_id}: max_new_tokens must be >= 1, got {self.max_new_tokens}")
        for i, image in enumerate(self.images):
            if not (
                isinstance(image, np.ndarray)
                and image.dtype == np.uint8
                and image.ndim == 3
                and image.shape[2] == 3
                and image.shape[0] > 0
                and image.shape[1] > 0
            ):
                got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
                raise ValueError(
                    f"request {self.request_id}: image {i} must be an (H, W, 3) uint8 RGB array, got {got}"
                )


@dataclass
class VLMResponse:
    """What came back for one request. ``error`` is set (and ``text`` empty) when it failed.

    ``latency_s`` is the wall time of the call that produced it (for a batched backend,
    the whole batch's); ``attempts`` counts tries including retries.
    """

    request_id: str
    text: str
    model_id: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class VLMBackend(Protocol):
    """A VLM client. ``generate`` returns one response per request, in input order, and
    reports per-request failures in ``VLMResponse.error`` instead of raising."""

    model_id: str

    def setup(self) -> None:
        """Load the model or open the connection pool; once per worker."""

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer ``requests`` (same length, same order)."""

    def close(self) -> None:
        """Release what ``setup`` acquired."""


def schema_instruction(schema: dict[str, Any]) -> str:
    """The text appended to a prompt when the backend cannot enforce ``schema`` itself."""
    return "\n\nAnswer with only a JSON object that conforms to this JSON Schema, no other text:\n" + json.dumps(
        schema, separators=(",", ":"), sort_keys=True
    )


#: Backend name -> "module:class". Modules are imported only when their backend is made.
BACKENDS: dict[str, str] = {
    "transformers": "tubelet.annotators.language.backends.transformers_backend:TransformersVLM",
    "openai": "tubelet.annotators.language.backends.openai_backend:OpenAICompatibleVLM",
}


def make_backend(kind: str, options: dict[str, Any] | None = None) -> VLMBackend:
    """Build a backend by name (``"transformers"`` or ``"openai"``) from its options.

    Unknown names and unknown options fail here, at configuration time, with the
    accepted ones listed — not later on a worker.
    """
    if kind not in BACKENDS:
        raise ValueError(f"unknown VLM backend {kind!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = BACKENDS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    options = dict(options or {})
    accepted = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for the {kind} backend; accepted: {sorted(accepted)}")
    return cls(**options)
