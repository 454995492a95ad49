"""Validation of a pipeline's ``params`` from the manifest."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

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
