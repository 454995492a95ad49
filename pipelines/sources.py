"""Where a language pipeline's tubelets come from, and which task types it writes.

``strefer`` and ``unistg`` share these parameter blocks: tubelets from the tracker
(the ``track`` pipeline's stages), from ground truth (the ``import`` pipeline's), or from
an existing tubelet dataset (``source: dataset``, with ``videos: [{dataset: …}]`` in the
manifest): captions and instructions made again without tracking again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from tubelet.annotators.importers.dataset import LoadFromDataset
from tubelet.annotators.instructions.generator import TASK_TYPES
from tubelet.engine.stage import Stage
from tubelet.pipelines import import_gt, track


class TubeletSourceParams(BaseModel):
    """Where a language pipeline's tubelets come from: the tracker (``source: track``,
    with the ``track`` pipeline's params under ``track``), ground truth (``source:
    import``: every video needs ``annotations``) or the dataset each video was listed
    from (``source: dataset``; ``keep`` also carries its entities and/or events over)."""

    source: Literal["track", "import", "dataset"] = "track"
    track: dict[str, Any] = Field(default_factory=dict)
    decode_check: bool = True  # source=import: decode first and last frame
    keep: list[Literal["entities", "events"]] = Field(default_factory=list)  # source=dataset


class TaskTypesParams(BaseModel):
    """Which instruction task types to generate, checked against the generator's."""

    task_types: list[str] = Field(default_factory=list)

    @field_validator("task_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TASK_TYPES))
        if unknown:
            raise ValueError(f"unknown task types {unknown}; known: {', '.join(TASK_TYPES)}")
        return value


def tubelet_stages(p: TubeletSourceParams) -> list[Stage]:
    """The stages that put tubelets on each task: ``track``'s, ``import``'s, or a load from a dataset."""
    if p.source == "dataset":
        return [LoadFromDataset(keep=tuple(p.keep))]
    if p.source == "track":
        return list(track.build(p.track).stages)
    return list(import_gt.build({"decode_check": p.decode_check}).stages)
