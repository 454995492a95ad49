"""track: probe → detect on keyframes → track masklets → tubelets.

``profile: lite`` runs on a laptop CPU with no weights (motion detection + optical flow),
or with YOLO when ``weights`` is given; ``profile: full`` uses YOLO (``weights``) or an
open-vocabulary detector (``prompts``) and SAM 2 (``tracker_options.checkpoint``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.annotators.detectors.motion import MotionDetector
from tubelet.annotators.detectors.open_vocab import OpenVocabDetector
from tubelet.annotators.detectors.yolo import YoloDetector
from tubelet.annotators.tracking.stage import TrackMasklets
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.probe import ProbeVideo
from tubelet.engine.resources import Resources
from tubelet.pipelines.params import parse_params


class TrackParams(BaseModel):
    """Parameters of the track pipeline."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["lite", "full"] = "lite"
    decode_check: bool = True
    detector: Literal["motion", "yolo", "open_vocab"] | None = None  # default from the profile
    weights: str | None = None  # YOLO weights name or path (lite uses YOLO when given)
    classes: list[str] | None = None  # YOLO class names to keep
    prompts: str | None = None  # open-vocabulary prompts, e.g. "person. dog. cup."
    open_vocab_model: str = "IDEA-Research/grounding-dino-tiny"
    conf: float = Field(0.25, ge=0, le=1)
    keyframe_fps: PositiveFloat | None = None  # None: 8 for lite with YOLO (re-prompts curb flow drift), else 2
    device: str | None = None  # "cuda" puts detector and tracker on a GPU
    tracker: str | None = None  # "flow" | "sam2" | "module:Class"; default from the profile
    tracker_options: dict[str, Any] = Field(default_factory=dict)
    track_fps: PositiveFloat | None = None  # None: every frame
    association: dict[str, Any] = Field(default_factory=dict)


def _detector(p: TrackParams) -> KeyframeDetector:
    kind = p.detector or ("open_vocab" if p.prompts else "yolo" if p.weights or p.profile == "full" else "motion")
    gpu = Resources(gpus=1) if p.device and p.device.startswith("cuda") else Resources()
    if kind == "yolo":
        return YoloDetector(
            weights=p.weights or "yolov8n.pt",
            classes=p.classes,
            conf=p.conf,
            keyframe_fps=p.keyframe_fps,
            device=p.device,
            resources=gpu,
        )
    if kind == "open_vocab":
        return OpenVocabDetector(
            model=p.open_vocab_model,
            prompts=p.prompts or "object.",
            box_threshold=p.conf,
            keyframe_fps=p.keyframe_fps,
            device=p.device,
            resources=gpu,
        )
    return MotionDetector(keyframe_fps=p.keyframe_fps)


def build(params: dict[str, Any]) -> Pipeline:
    """The track pipeline. Raises ValueError naming a bad parameter."""
    p = parse_params(TrackParams, params, "track")
    if p.keyframe_fps is None:
        # lite + YOLO: box re-prompts are what hold the flow masks on; DAVIS-2016
        # J&F 0.476 at 4 fps, 0.525 at 8, 0.534 at 24 (bench/bench_track_davis.py)
        lite_yolo = (
            p.profile == "lite" and not p.prompts and (p.detector == "yolo" or (p.detector is None and p.weights))
        )
        p.keyframe_fps = 8.0 if lite_yolo else 2.0
    tracker = p.tracker or ("sam2" if p.profile == "full" else "flow")
    options = dict(p.tracker_options)
    if tracker == "flow":
        # GrabCut every 3rd frame: +0.25 mask IoU on the occluded sample object at half the speed
        options.setdefault("grabcut_every", 3)
    if tracker == "sam2" and p.device:
        options.setdefault("device", p.device)
    gpu = Resources(gpus=1) if tracker == "sam2" and p.device and p.device.startswith("cuda") else Resources()
    try:
        stages = [
            ProbeVideo(decode_check=p.decode_check),
            _detector(p),
            TrackMasklets(
                tracker=tracker,
                tracker_options=options,
                track_fps=p.track_fps,
                association=p.association,
                resources=gpu,
            ),
        ]
    except TypeError as error:  # an unknown association key
        raise ValueError(f"track: bad params: {error}") from None
    return Pipeline(name="track", stages=stages, params=p.model_dump())
