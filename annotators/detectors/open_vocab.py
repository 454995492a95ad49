"""OpenVocabDetector: boxes for free-text prompts (GroundingDINO, OWLv2) via transformers."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotators.detectors.boxes import FrameBoxes
from annotators.detectors.keyframes import KeyframeDetector
from engine.resources import Resources


def parse_prompts(prompts: str | list[str]) -> list[str]:
    """``"person. dog. cup."`` (GroundingDINO's style) or a list -> category names."""
    items = prompts.split(".") if isinstance(prompts, str) else list(prompts)
    names = [" ".join(str(p).split()).lower() for p in items]
    names = list(dict.fromkeys(n for n in names if n))  # drop blanks and repeats, keep order
    if not names:
        raise ValueError(f"no prompts in {prompts!r}: give e.g. 'person. dog. cup.'")
    return names


def match_prompt(label: str, prompts: list[str]) -> str:
    """The prompt a model's text label stands for.

    OWLv2 returns the prompt itself; GroundingDINO returns the tokens above its text
    threshold, which can be part of a prompt or span two. Pick the prompt sharing the
    most words (ties: the earlier prompt); a label sharing none is kept as it is.
    """
    label = " ".join(label.split()).lower()
    if label in prompts:
        return label
    words = set(label.split())
    best = max(prompts, key=lambda p: len(words & set(p.split())))
    return best if words & set(best.split()) else label


@dataclass
class OpenVocabDetector(KeyframeDetector):
    """Detect the objects named by ``prompts`` with a zero-shot detector from transformers.

    ``model``: a Hub name found in the local cache (e.g. ``IDEA-Research/grounding-dino-tiny``,
    ``google/owlv2-base-patch16-ensemble``) or a local folder; loaded with
    ``AutoModelForZeroShotObjectDetection`` + ``AutoProcessor``, offline unless
    ``allow_download``. ``box_threshold`` keeps boxes; ``text_threshold`` is
    GroundingDINO's token threshold (ignored by models without one).
    """

    model: str = "IDEA-Research/grounding-dino-tiny"
    prompts: str | list[str] = "person. dog. cup."
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    revision: str | None = None
    device: str | None = None
    allow_download: bool = False
    max_side: int | None = 800
    frame_batch: int = 4
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.categories = parse_prompts(self.prompts)
        if self.device and self.device.startswith("cuda") and self.resources.gpus == 0:
            self.resources = dataclasses.replace(self.resources, gpus=1.0)
        name = Path(self.model).name if Path(self.model).exists() else self.model
        self.model_id = f"{name}@{self.revision}" if self.revision else name
        self._model: Any = None
        self._processor: Any = None

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        offline = {"local_files_only": not self.allow_download, "revision": self.revision}
        self._processor = AutoProcessor.from_pretrained(self.model, **offline)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(self.model, **offline)
        device = self.device or ("cuda" if torch.cuda.is_available() and self.resources.gpus > 0 else "cpu")
        self._model = model.to(device).eval()

    def teardown(self) -> None:
        self._model = self._processor = None

    def detect(self, frames: np.ndarray) -> list[FrameBoxes]:
        import torch

        if self._model is None:
            raise RuntimeError(f"{self.name}: call setup() before process()")
        n, h, w = frames.shape[:3]
        labels = [list(self.categories) for _ in range(n)]
        inputs = self._processor(images=list(frames), text=labels, return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        # OWLv2 pads images to a square before resizing: its boxes are relative to the
        # padded square, so scale by the longer side (then clip to the frame).
        side = max(h, w) if "owlv2" in type(self._model).__name__.lower() else None
        target = [(side, side) if side else (h, w)] * n
        post = self._processor.post_process_grounded_object_detection
        kwargs: dict[str, Any] = {"threshold": self.box_threshold, "target_sizes": target, "text_labels": labels}
        if "text_threshold" in inspect.signature(post).parameters:
            kwargs["text_threshold"] = self.text_threshold
        results = post(outputs, **kwargs)
        return [
            FrameBoxes(
                xyxy=r["boxes"].float().cpu().numpy(),
                scores=r["scores"].float().cpu().numpy(),
                categories=[match_prompt(str(t), self.categories) for t in r["text_labels"]],
            )
            for r in results
        ]
