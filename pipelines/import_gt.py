"""import: probe each video, then turn its existing ground truth (DAVIS, MOT) into tubelets.

Every video of the manifest needs ``annotations: {format, path, categories}``; a video
without them, or whose annotation cannot be read, becomes a reject.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tubelet.annotators.importers.stage import ImportAnnotations
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.probe import ProbeVideo
from tubelet.pipelines.params import DECODE_CHECK, parse_params, takes_params


class ImportParams(BaseModel):
    """Parameters of the import pipeline."""

    model_config = ConfigDict(extra="forbid")

    decode_check: bool = Field(True, description=DECODE_CHECK)


@takes_params(ImportParams)
def build(params: dict[str, Any]) -> Pipeline:
    """The import pipeline: ``ProbeVideo`` → ``ImportAnnotations``.

    Raises ValueError naming a bad parameter.
    """
    p = parse_params(ImportParams, params, "import")
    return Pipeline(
        name="import",
        stages=[ProbeVideo(decode_check=p.decode_check), ImportAnnotations()],
        params=p.model_dump(),
    )
