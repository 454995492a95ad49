"""FrameBoxes: what a detector found on one frame, before it becomes ``Detection`` rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameBoxes:
    """Boxes found on one frame, in the pixels of the frame the detector was given.

    ``xyxy`` is ``(n, 4)`` float, ``scores`` ``(n,)``, ``categories`` n names and
    ``masks`` (optional) ``(n, h, w)`` bool at that same frame size. Kept as arrays
    (like ``supervision.Detections``) so a detector fills it with one call per frame.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    categories: list[str]
    masks: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.categories = [str(c) for c in self.categories]
        n = len(self.xyxy)
        if len(self.scores) != n or len(self.categories) != n:
            raise ValueError(
                f"FrameBoxes needs one score and category per box: {n} boxes, "
                f"{len(self.scores)} scores, {len(self.categories)} categories"
            )
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(f"masks must be (n, h, w) with n = {n}, got {self.masks.shape}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> FrameBoxes:
        """No boxes."""
        return cls(np.zeros((0, 4)), np.zeros(0), [])
