"""OpenVocabDetector: boxes for free-text prompts (GroundingDINO, OWLv2) via transformers.

OWLv2 scores each box against each prompt: transformers' post-processing gives the
prompt itself. GroundingDINO scores each box against each *token* of one text
(``"person. dog."``); transformers' post-processing returns the tokens above
``text_threshold`` decoded as text (``"person. dog. [SEP]"``, ``""``), which is not a
category. So for GroundingDINO-family models the boxes are labelled here, from the
logits: each box takes the prompt whose tokens score highest (:func:`grounded_boxes`).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.annotators.detectors.boxes import FrameBoxes
from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.engine.resources import Resources


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

    OWLv2 returns the prompt itself; a grounding model's decoded tokens can be part of a
    prompt or span two. Pick the prompt sharing the most words (ties: the earlier
    prompt); a label sharing none is kept as it is.
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
    GroundingDINO's token threshold: a box is kept only when a token of its best prompt
    scores above both (ignored by models without one).
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
        self._model: Any = None
        self._processor: Any = None

    @property
    def model_id(self) -> str:
        name = Path(self.model).name if Path(self.model).exists() else self.model
        return f"{name}@{self.revision}" if self.revision else name

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
        grounded = "grounding-dino" in str(getattr(self._model.config, "model_type", ""))
        # a grounding model reads one text; OWL-style models one query per prompt
        text: list[Any] = [grounding_text(self.categories)] * n if grounded else [list(self.categories)] * n
        inputs = self._processor(images=list(frames), text=text, return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        if grounded:
            tokens = self._token_prompts(inputs["input_ids"][0].tolist())
            logits = outputs.logits.float().cpu().numpy()
            boxes = outputs.pred_boxes.float().cpu().numpy()
            return [
                grounded_boxes(
                    logits[i], boxes[i], tokens, self.categories, self.box_threshold, self.text_threshold, (h, w)
                )
                for i in range(n)
            ]
        # OWLv2 pads images to a square before resizing: its boxes are relative to the
        # padded square, so scale by the longer side (then clip to the frame).
        side = max(h, w) if "owlv2" in type(self._model).__name__.lower() else None
        target = [(side, side) if side else (h, w)] * n
        post = self._processor.post_process_grounded_object_detection
        kwargs: dict[str, Any] = {"threshold": self.box_threshold, "target_sizes": target, "text_labels": text}
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

    def _token_prompts(self, input_ids: list[int]) -> np.ndarray:
        """Which prompt each token of the grounding text belongs to (-1: none)."""
        text = grounding_text(self.categories)
        encoded = self._processor.tokenizer(text, return_offsets_mapping=True)
        if list(encoded["input_ids"]) != list(input_ids)[: len(encoded["input_ids"])]:
            raise RuntimeError(f"{self.name}: the processor tokenised {text!r} unlike its tokenizer")
        return token_prompts(encoded["offset_mapping"], self.categories)


def grounding_text(categories: list[str]) -> str:
    """The one text a grounding model reads: ``"person. dog."``."""
    return ". ".join(categories) + "."


def token_prompts(offsets: list[tuple[int, int]], categories: list[str]) -> np.ndarray:
    """For tokens with character ``offsets`` into ``grounding_text(categories)``: the
    index of the prompt each one is part of, -1 for special tokens and separators."""
    spans, start = [], 0
    for name in categories:
        spans.append((start, start + len(name)))
        start += len(name) + 2  # ". "
    out = np.full(len(offsets), -1, dtype=np.int64)
    for t, (a, b) in enumerate(offsets):
        if b > a:
            out[t] = next((p for p, (s, e) in enumerate(spans) if s <= a and b <= e), -1)
    return out


def grounded_boxes(
    logits: np.ndarray,
    pred_boxes: np.ndarray,
    token_prompt: np.ndarray,
    categories: list[str],
    box_threshold: float,
    text_threshold: float,
    size: tuple[int, int],
) -> FrameBoxes:
    """One frame's boxes from a grounding model's raw outputs.

    ``logits`` ``(queries, tokens)`` score each box against each text token,
    ``pred_boxes`` ``(queries, 4)`` are ``cx, cy, w, h`` relative to the frame of
    ``size`` ``(h, w)``, ``token_prompt`` maps tokens to prompts (:func:`token_prompts`).
    A box's score for a prompt is its best token's probability; it takes its best prompt
    and is kept when that score is above ``box_threshold`` and ``text_threshold``.
    Separators and special tokens never label a box.
    """
    n_tok = min(logits.shape[-1], len(token_prompt))
    probs = 1.0 / (1.0 + np.exp(-logits[:, :n_tok].astype(np.float64)))
    per_prompt = np.zeros((len(probs), len(categories)))
    for p in range(len(categories)):
        cols = np.flatnonzero(token_prompt[:n_tok] == p)
        if cols.size:  # a prompt cut off by the model's text length never scores
            per_prompt[:, p] = probs[:, cols].max(axis=1)
    best = per_prompt.argmax(axis=1) if categories else np.zeros(len(probs), dtype=np.int64)
    score = per_prompt.max(axis=1) if categories else np.zeros(len(probs))
    keep = np.flatnonzero((score > box_threshold) & (score > text_threshold))
    h, w = size
    cx, cy, bw, bh = (pred_boxes[keep, i].astype(np.float64) for i in range(4))
    xyxy = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], axis=1)
    return FrameBoxes(xyxy=xyxy, scores=score[keep], categories=[categories[p] for p in best[keep]])
