"""ingest: probe every video into the `videos` table (bad files become rejects)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tubelet.engine.pipeline import Pipeline
from tubelet.engine.probe import ProbeVideo
from tubelet.pipelines.params import DECODE_CHECK, parse_params, takes_params


class IngestParams(BaseModel):
    """Parameters of the ingest pipeline."""

    model_config = ConfigDict(extra="forbid")

    decode_check: bool = Field(True, description=DECODE_CHECK)


@takes_params(IngestParams)
def build(params: dict[str, Any]) -> Pipeline:
    """The ingest pipeline: ``ProbeVideo``. Raises ValueError naming a bad parameter."""
    p = parse_params(IngestParams, params, "ingest")
    return Pipeline(name="ingest", stages=[ProbeVideo(decode_check=p.decode_check)], params=p.model_dump())
