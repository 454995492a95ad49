"""Validation of a pipeline's ``params`` from the manifest."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator

from engine.stage import Stage

P = TypeVar("P", bound=BaseModel)


def parse_params(model: type[P], params: dict[str, Any], pipeline: str) -> P:
    """``params`` validated by ``model``; ValueError naming each bad parameter otherwise."""
    try:
        return model.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<params>'}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"{pipeline}: bad params: {problems}") from None


class TubeletSourceParams(BaseModel):
    """Where a language pipeline's tubelets come from: the tracker (``source: track``,
    with the ``track`` pipeline's params under ``track``) or ground truth (``source:
    import``: every video needs ``annotations``)."""

    source: Literal["track", "import"] = "track"
    track: dict[str, Any] = Field(default_factory=dict)
    decode_check: bool = True  # source=import: decode first and last frame


class TaskTypesParams(BaseModel):
    """Which instruction task types to generate, checked against the generator's."""

    task_types: list[str] = Field(default_factory=list)

    @field_validator("task_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from annotators.instructions.generator import TASK_TYPES

        unknown = sorted(set(value) - set(TASK_TYPES))
        if unknown:
            raise ValueError(f"unknown task types {unknown}; known: {', '.join(TASK_TYPES)}")
        return value


def tubelet_stages(p: TubeletSourceParams) -> list[Stage]:
    """The stages that put tubelets on each task: ``track``'s or ``import``'s."""
    if p.source == "track":
        from pipelines import track

        return list(track.build(p.track).stages)
    from pipelines import import_gt

    return list(import_gt.build({"decode_check": p.decode_check}).stages)
