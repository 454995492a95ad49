"""ingest: probe every video into the `videos` table (bad files become rejects)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.pipeline import Pipeline
from engine.probe import ProbeVideo


class IngestParams(BaseModel):
    """Parameters of the ingest pipeline."""

    model_config = ConfigDict(extra="forbid")

    decode_check: bool = True  # decode first and last frame to catch truncated files


def build(params: dict[str, Any]) -> Pipeline:
    """The ingest pipeline: ``ProbeVideo``. Raises ValueError naming a bad parameter."""
    try:
        p = IngestParams.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<params>'}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"ingest: bad params: {problems}") from None
    return Pipeline(name="ingest", stages=[ProbeVideo(decode_check=p.decode_check)], params=p.model_dump())
