"""ScriptedBackend: a VLMBackend test double answering each request id from a script."""

from __future__ import annotations

from tubelet.annotators.language.backends import VLMRequest, VLMResponse


class ScriptedBackend:
    """Answers by request id, one script entry per ask (None: a failed request, as a
    server error would give), and records every request it saw."""

    def __init__(self, script: dict[str, list[str | None]], model_id: str = "scripted") -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.model_id = model_id
        self.seen: list[VLMRequest] = []

    def setup(self) -> None: ...

    def close(self) -> None: ...

    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        self.seen.extend(requests)
        out = []
        for r in requests:
            text = self.script[r.request_id].pop(0)
            out.append(
                VLMResponse(
                    request_id=r.request_id,
                    text=text or "",
                    model_id=self.model_id,
                    error="server at http://x: HTTP 503" if text is None else None,
                )
            )
        return out
