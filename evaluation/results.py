"""What an evaluation returns: per object, per video and overall, as plain dataclasses."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

#: The protocols of ``tubelet eval --protocol``.
PROTOCOLS = ("tubelet", "motchallenge")


@dataclass
class ObjectResult:
    """One ground-truth tubelet against its matched prediction (None: a miss)."""

    gt_tubelet_id: str
    pred_tubelet_id: str | None
    similarity: float
    j: float | None
    f: float | None
    jf: float | None
    box_iou: float | None
    tiou: float | None
    viou: float | None


@dataclass
class VideoResult:
    """One video: ``n_gt`` counts the scored ground-truth tubelets (``metrics["ignored_gt"]``
    the others), ``objects`` holds one result per scored tubelet; ``trackeval`` is
    TrackEval's own result for the video (``{metric: {field: value}}``, its field names).
    Under the MOTChallenge protocol ``n_gt``/``n_pred`` count the ids left after its
    preprocessing, and tubelets are not matched one to one (``n_matched`` None)."""

    video_id: str
    n_gt: int
    n_pred: int
    n_matched: int | None
    metrics: dict[str, Any]
    objects: list[ObjectResult] = field(default_factory=list)
    trackeval: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class EvalReport:
    iou: float
    bound_th: float
    videos: list[VideoResult]
    overall: dict[str, Any]
    #: videos that only the prediction has (not scored: nothing to compare with)
    pred_only_videos: list[str] = field(default_factory=list)
    protocol: str = "tubelet"
    #: TrackEval's combined result over the videos (its COMBINED_SEQ)
    trackeval: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN and infinities become None)."""
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
