"""Where a language pipeline's tubelets come from, and which task types it writes.

``strefer`` and ``unistg`` share these parameter blocks: tubelets from the tracker
(the ``track`` pipeline's stages), from ground truth (the ``import`` pipeline's), or from
an existing tubelet dataset (``source: dataset``, with ``videos: [{dataset: …}]`` in the
manifest): captions and instructions made again without tracking again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from tubelet.annotators.importers.dataset import LoadFromDataset
from tubelet.annotators.instructions.generator import TASK_TYPES
from tubelet.engine.stage import Stage
from tubelet.pipelines import import_gt, track
from tubelet.pipelines.params import DECODE_CHECK, NestedParams, ParamsError
from tubelet.pipelines.track import TrackParams


class TubeletSourceParams(BaseModel):
    """Where a language pipeline's tubelets come from: the tracker (``source: track``,
    with the ``track`` pipeline's params under ``track``), ground truth (``source:
    import``: every video needs ``annotations``) or the dataset each video was listed
    from (``source: dataset``; ``keep`` also carries its entities and/or events over)."""

    source: Literal["track", "import", "dataset"] = Field(
        "track",
        description="Where the tubelets come from: track (the track pipeline's stages), import (each video's "
        "`annotations`) or dataset (the dataset each video was listed from with `videos: [{dataset: ...}]`).",
    )
    track: Annotated[dict[str, Any], NestedParams(TrackParams, "track")] = Field(
        default_factory=dict,
        description="source: track: the track pipeline's params (`tubelet pipelines track`), e.g. "
        "{profile: lite, keyframe_fps: 4}.",
    )
    decode_check: bool = Field(True, description=f"source: import: {DECODE_CHECK}")
    keep: list[Literal["entities", "events"]] = Field(
        default_factory=list,
        description="source: dataset: rows of the dataset kept as they are instead of made again.",
    )


def task_types_field(default: Sequence[str]) -> Any:
    """The ``task_types`` field with ``default`` (its allowed values listed for the docs)."""
    return Field(
        default_factory=lambda: list(default),
        description="Instruction task types to generate.",
        json_schema_extra={"allowed": list(TASK_TYPES)},
    )


class TaskTypesParams(BaseModel):
    """Which instruction task types to generate, checked against the generator's."""

    task_types: list[str] = task_types_field(())
    seed: int = Field(
        0,
        description="Seed of the choices the generator makes (which regions, which negatives), and of tracking "
        "unless `track.seed` is given.",
    )
    max_per_task: int = Field(6, ge=1, description="Most instructions of each task type per video.")
    dedup: bool = Field(
        False,
        description="Drop near-duplicate questions with a sentence-embedding model (the `dedup` extra; "
        "skipped with a warning without it).",
    )

    @field_validator("task_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TASK_TYPES))
        if unknown:
            raise ValueError(f"unknown task types {unknown}; known: {', '.join(TASK_TYPES)}")
        return value


def tubelet_stages(p: TubeletSourceParams, seed: int = 0) -> list[Stage]:
    """The stages that put tubelets on each task: ``track``'s, ``import``'s, or a load from a dataset.
    ``seed`` (the language pipeline's) is the tracker's too unless ``track`` sets its own."""
    if p.source == "dataset":
        return [LoadFromDataset(keep=tuple(p.keep))]
    if p.source == "track":
        try:
            return list(track.build({"seed": seed, **p.track}).stages)
        except ParamsError as error:  # its keys are under `track` in these params
            raise error.under("track") from None
    return list(import_gt.build({"decode_check": p.decode_check}).stages)
