"""unistg: tubelets → temporal, spatial and spatio-temporal grounding instructions.

Tubelets come from ground truth (``source: import``: probe → import, every video needs
``annotations``) or from the tracker (``source: track``, with the ``track`` pipeline's
params under ``track``). ``GenerateInstructions`` then writes the grounding task types,
every answer computed from the tubelets and re-checked.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from tubelet.annotators.instructions.generator import GROUNDING_TASK_TYPES
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.engine.pipeline import Pipeline
from tubelet.pipelines.params import parse_params, takes_params
from tubelet.pipelines.sources import TaskTypesParams, TubeletSourceParams, task_types_field, tubelet_stages


class UniSTGParams(TaskTypesParams, TubeletSourceParams):
    """Parameters of the unistg pipeline (tubelets from ground truth by default)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["import", "track"] = Field(
        "import",
        description="Where the tubelets come from: import (each video's `annotations`) or track (the track "
        "pipeline's stages, with its params under `track`).",
    )
    task_types: list[str] = task_types_field(GROUNDING_TASK_TYPES)
    st_boxes: int = Field(4, ge=1, description="Boxes sampled along the tubelet in a spatio-temporal grounding answer.")


@takes_params(UniSTGParams)
def build(params: dict[str, Any]) -> Pipeline:
    """The unistg pipeline. Raises ValueError naming a bad parameter."""
    p = parse_params(UniSTGParams, params, "unistg")
    stages = tubelet_stages(p, p.seed)
    stages.append(
        GenerateInstructions(
            task_types=tuple(p.task_types), seed=p.seed, max_per_task=p.max_per_task, st_boxes=p.st_boxes, dedup=p.dedup
        )
    )
    return Pipeline(name="unistg", stages=stages, params=p.model_dump())
