"""Captioning backends: one small interface over in-process and served VLMs.

``make_backend("transformers" | "openai", options)`` builds a backend; call
``setup()`` once per worker, ``generate(requests)`` per batch, ``close()`` at the end.
``generate_structured`` (in ``tubelet.annotators.language.backends.structured``) adds JSON
extraction, schema validation and re-asking on top of any backend.
"""

from tubelet.annotators.language.backends.base import (
    BACKENDS,
    VLMBackend,
    VLMRequest,
    VLMResponse,
    make_backend,
    schema_instruction,
)

__all__ = ["BACKENDS", "VLMBackend", "VLMRequest", "VLMResponse", "make_backend", "schema_instruction"]
