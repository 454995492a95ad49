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

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PositiveFloat

from tubelet.annotators.instructions.generator import TASK_TYPES
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.annotators.language.backends.openai_backend import OpenAICompatibleVLM
from tubelet.annotators.language.backends.transformers_backend import TransformersVLM
from tubelet.annotators.language.entities import DescribeEntities
from tubelet.annotators.language.timeline import ActionTimeline
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.resources import Resources
from tubelet.pipelines.params import ParamsError, PathKeys, option_names, option_problems, parse_params, takes_params
from tubelet.pipelines.sources import TaskTypesParams, TubeletSourceParams, task_types_field, tubelet_stages

#: Keys of ``backend_options`` that are paths or names (with ``backend: transformers``:
#: an OpenAI-compatible server's ``model`` is always the name it serves).
VLM_PATH_KEYS = {
    "model": "backend: transformers: the VLM, a local model folder or a Hugging Face id found in the local cache "
    "(default Qwen/Qwen2.5-VL-3B-Instruct). With backend: openai it is the name the server serves, never resolved.",
}


class StreferParams(TaskTypesParams, TubeletSourceParams):
    """Parameters of the strefer pipeline."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["lite", "vlm"] = Field(
        "lite",
        description="lite: referring expressions from measured colour, size, position and motion, timelines from "
        "motion states, no model; vlm: both asked of a VLM through `backend`.",
    )
    backend: Literal["transformers", "openai"] = Field(
        "transformers",
        description="language: vlm: transformers runs the VLM in-process; openai asks any OpenAI-compatible server "
        "(vLLM, SGLang, Ollama).",
    )
    backend_options: Annotated[dict[str, Any], PathKeys(VLM_PATH_KEYS, when=("backend", "transformers"))] = Field(
        default_factory=dict,
        description=f"Options of the backend. transformers: {option_names(TransformersVLM)}; "
        f"openai: {option_names(OpenAICompatibleVLM)}.",
    )
    gpus: float = Field(0.0, ge=0, description="GPUs per language-stage worker, for an in-process VLM on a GPU.")
    timeline_window_s: PositiveFloat = Field(2.0, description="language: vlm: seconds of video per timeline question.")
    task_types: list[str] = task_types_field(TASK_TYPES)


@takes_params(StreferParams)
def build(params: dict[str, Any]) -> Pipeline:
    """The strefer pipeline. Raises ValueError naming a bad parameter."""
    p = parse_params(StreferParams, params, "strefer")
    if p.language == "vlm":  # refused now, not by make_backend in a worker's setup()
        backend = {"transformers": TransformersVLM, "openai": OpenAICompatibleVLM}[p.backend]
        problems = option_problems("backend_options", p.backend_options, backend, f"the {p.backend} backend")
        if problems:
            raise ParamsError("strefer", problems)
    stages = tubelet_stages(p, p.seed)
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
