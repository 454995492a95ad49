"""strefer: videos → tubelets → entities → action timelines → grounded instructions.

ingest → detect → track (the ``track`` pipeline, or ground truth with ``source:
import``) → ``DescribeEntities`` (who each tubelet is: a referring expression unique in
its video) → ``ActionTimeline`` (what it does and when) → ``GenerateInstructions``
(question–answer pairs whose answers are computed from those rows and re-checked).

``language: lite`` needs no model (measured attributes and motion states);
``language: vlm`` asks a VLM through ``backend`` (``transformers`` in-process, or
``openai`` for any OpenAI-compatible server) with ``backend_options``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, PositiveFloat

from tubelet.annotators.instructions.generator import TASK_TYPES
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.annotators.language.entities import DescribeEntities
from tubelet.annotators.language.timeline import ActionTimeline
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.resources import Resources
from tubelet.pipelines.params import parse_params
from tubelet.pipelines.sources import TaskTypesParams, TubeletSourceParams, tubelet_stages


class StreferParams(TubeletSourceParams, TaskTypesParams):
    """Parameters of the strefer pipeline."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["lite", "vlm"] = "lite"
    backend: Literal["transformers", "openai"] = "transformers"
    backend_options: dict[str, Any] = Field(default_factory=dict)
    gpus: float = Field(0.0, ge=0)  # per language-stage worker, for an in-process VLM on GPU
    timeline_window_s: PositiveFloat = 2.0
    task_types: list[str] = Field(default_factory=lambda: list(TASK_TYPES))
    seed: int = 0
    max_per_task: int = Field(6, ge=1)
    dedup: bool = False  # needs the `dedup` extra


def build(params: dict[str, Any]) -> Pipeline:
    """The strefer pipeline. Raises ValueError naming a bad parameter."""
    p = parse_params(StreferParams, params, "strefer")
    stages = tubelet_stages(p)
    resources = Resources(gpus=p.gpus) if p.language == "vlm" else Resources()
    model = dict(mode=p.language, backend=p.backend, backend_options=p.backend_options, resources=resources)
    try:
        # rows a `source: dataset` run keeps are not made again
        if "entities" not in p.keep:
            stages.append(DescribeEntities(**model))
        if "events" not in p.keep:
            stages.append(ActionTimeline(window_s=p.timeline_window_s, **model))
        stages.append(
            GenerateInstructions(
                task_types=tuple(p.task_types), seed=p.seed, max_per_task=p.max_per_task, dedup=p.dedup
            )
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"strefer: {error}") from None
    return Pipeline(name="strefer", stages=stages, params=p.model_dump())
