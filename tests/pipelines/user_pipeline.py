"""A user's own pipelines, outside the registry (``tests.pipelines.user_pipeline:build``).

``build`` declares its params model with ``takes_params``: its ``weights`` is a path
parameter, and its stage reads that file on the worker, so a run fails unless the path
the worker receives is the resolved one. ``build_untyped`` declares none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tests.engine.pipelines_for_tests import MakeVideo
from tubelet.engine import Pipeline, Stage, VideoTask
from tubelet.pipelines.params import PathOrName, parse_params, takes_params


class UserParams(BaseModel):
    """Parameters of the user's pipeline."""

    model_config = ConfigDict(extra="forbid")

    weights: PathOrName = Field(description="A weights file the stage reads on the worker.")
    label: str = Field("thing", description="A plain string, never resolved.")


@dataclass
class ReadWeights(Stage):
    """Records the digest of the weights file, read where the stage runs."""

    weights: str = ""

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        digest = hashlib.sha256(Path(self.weights).read_bytes()).hexdigest()
        for task in batch:
            assert task.video is not None
            task.video.extra["weights_sha256"] = digest
        return batch


@takes_params(UserParams)
def build(params: dict[str, Any]) -> Pipeline:
    """reads a weights file on every worker (a test pipeline).

    Its params model is declared with ``takes_params``.
    """
    p = parse_params(UserParams, params, "user")
    return Pipeline(name="user", stages=[MakeVideo(frames=2), ReadWeights(weights=p.weights)], params=p.model_dump())


def build_untyped(params: dict[str, Any]) -> Pipeline:
    """a pipeline that declares no params model."""
    return Pipeline(name="untyped", stages=[MakeVideo(frames=2)], params=dict(params))
