"""Pipeline: an ordered list of stages, with what identifies it in meta/info.json."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tubelet.engine.stage import Stage


@dataclass
class Pipeline:
    """Stages applied in order to every video of a run."""

    name: str
    stages: list[Stage]
    params: dict[str, Any] = field(default_factory=dict)
    #: Datasets the stages read rows from, recorded in meta/info.json (``source: dataset``).
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {self.name}: stage names must be unique, got {names}")

    @property
    def config_hash(self) -> str:
        """A short hash of the pipeline name and parameters, for provenance."""
        blob = json.dumps({"pipeline": self.name, "params": self.params}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def model_ids(self) -> dict[str, str]:
        """Model identifiers by stage name, for stages that use a model."""
        return {s.name: s.model_id for s in self.stages if s.model_id}
