"""track: probe → detect on keyframes → track masklets → tubelets.

``profile: lite`` runs on a laptop CPU with no weights (motion detection + optical flow),
or with YOLO when ``weights`` is given; ``profile: full`` uses YOLO (``weights``) or an
open-vocabulary detector (``prompts``) and SAM 2 (``tracker_options.checkpoint``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from tubelet.annotators.detectors.keyframes import KeyframeDetector
from tubelet.annotators.detectors.motion import MotionDetector
from tubelet.annotators.detectors.open_vocab import OpenVocabDetector
from tubelet.annotators.detectors.yolo import YoloDetector
from tubelet.annotators.tracking.association import AssociationConfig
from tubelet.annotators.tracking.flow import FlowPropagator
from tubelet.annotators.tracking.sam2_propagator import Sam2Propagator
from tubelet.annotators.tracking.stage import TrackMasklets
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.probe import ProbeVideo
from tubelet.engine.resources import Resources
from tubelet.pipelines.params import (
    DECODE_CHECK,
    ParamsError,
    PathKeys,
    PathOrName,
    option_names,
    option_problems,
    parse_params,
    takes_params,
)

#: Keys of ``tracker_options`` that are paths or names (SAM 2's).
TRACKER_PATH_KEYS = {
    "checkpoint": "SAM 2 weights: a .pt file, or a hub id known to sam2 (facebook/sam2.1-hiera-tiny); "
    "unset: random weights (tests only).",
    "config": "SAM 2 model config: a config packaged with sam2 (default configs/sam2.1/sam2.1_hiera_t.yaml) "
    "or a YAML file of your own.",
}


class TrackParams(BaseModel):
    """Parameters of the track pipeline."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["lite", "full"] = Field(
        "lite",
        description="lite: motion detection (YOLO when `weights` is given) and optical-flow masks, on a CPU with no "
        "weights; full: YOLO or an open-vocabulary detector and SAM 2 masklets.",
    )
    decode_check: bool = Field(True, description=DECODE_CHECK)
    detector: Literal["motion", "yolo", "open_vocab"] | None = Field(
        None,
        description="Keyframe detector; null: open_vocab when `prompts` is given, else yolo when `weights` is given "
        "or the profile is full, else motion.",
    )
    weights: PathOrName | None = Field(
        None,
        description="YOLO weights: a file (.pt, .onnx, .tflite, an export folder) or an Ultralytics name "
        "(yolov8n.pt; yolov8n.yaml builds random weights). Null: yolov8n.pt when YOLO runs. With the lite "
        "profile, setting it turns YOLO on.",
    )
    classes: list[str] | None = Field(None, description="YOLO class names to keep (null: all).")
    prompts: str | None = Field(
        None,
        description='Open-vocabulary prompts, e.g. "person. dog. cup."; setting them turns the open-vocabulary '
        "detector on.",
    )
    open_vocab_model: PathOrName = Field(
        "IDEA-Research/grounding-dino-tiny",
        description="Zero-shot detector from transformers (GroundingDINO, OWLv2): a local model folder, or a Hugging "
        "Face id found in the local cache.",
    )
    conf: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Least detection score kept (YOLO conf, open-vocabulary box threshold). null: 0.1 for YOLO "
        "(detections below association.match_score only continue objects already tracked, ByteTrack's second "
        "pass), 0.25 for the open-vocabulary detector.",
    )
    keyframe_fps: PositiveFloat | None = Field(
        None,
        description="Detector keyframes per second of video; null: 8 for lite with YOLO (re-prompts curb flow "
        "drift), else 2.",
    )
    device: str | None = Field(
        None, description='Device of the detector and SAM 2, e.g. "cpu", "cuda", "cuda:1"; "cuda…" asks for a GPU.'
    )
    tracker: str | None = Field(
        None,
        description='Tracker: "flow", "sam2" or "module:Class" (your own Propagator); null: sam2 for full, flow for lite.',
    )
    tracker_options: Annotated[dict[str, Any], PathKeys(TRACKER_PATH_KEYS)] = Field(
        default_factory=dict,
        description=f"Keyword options of the tracker. sam2: {option_names(Sam2Propagator)}; "
        f"flow: {option_names(FlowPropagator)} (seed defaults to `seed`).",
    )
    track_fps: PositiveFloat | None = Field(
        None, description="Frames per second to track (keyframes are always tracked); null: every frame."
    )
    association: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Thresholds of the association between detections and tracks: {option_names(AssociationConfig)} "
        "(docs/architecture.md, Tracking).",
    )
    seed: int = Field(
        0,
        description="Seed of every random choice (GrabCut's start, OpenCV's and torch's generators), drawn per video "
        "from this and the video id: the same manifest gives the same rows on any runner, in any order.",
    )


#: YOLO keeps the weak detections association's second pass uses: DAVIS-2016 J&F 0.597 ->
#: 0.613 with them, libby's dog followed behind the tree (docs/benchmarks.md)
_YOLO_CONF = AssociationConfig.weak_score
_OPEN_VOCAB_CONF = 0.25


def _detector(p: TrackParams) -> KeyframeDetector:
    kind = p.detector or ("open_vocab" if p.prompts else "yolo" if p.weights or p.profile == "full" else "motion")
    gpu = Resources(gpus=1) if p.device and p.device.startswith("cuda") else Resources()
    if kind == "yolo":
        return YoloDetector(
            weights=p.weights or "yolov8n.pt",
            classes=p.classes,
            conf=_YOLO_CONF if p.conf is None else p.conf,
            keyframe_fps=p.keyframe_fps,
            device=p.device,
            resources=gpu,
            seed=p.seed,
        )
    if kind == "open_vocab":
        return OpenVocabDetector(
            model=p.open_vocab_model,
            prompts=p.prompts or "object.",
            box_threshold=_OPEN_VOCAB_CONF if p.conf is None else p.conf,
            keyframe_fps=p.keyframe_fps,
            device=p.device,
            resources=gpu,
            seed=p.seed,
        )
    return MotionDetector(keyframe_fps=p.keyframe_fps, seed=p.seed)


@takes_params(TrackParams)
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
    _check_stage_options(p, tracker)
    options = dict(p.tracker_options)
    if tracker == "flow":
        options.setdefault("seed", p.seed)
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
                seed=p.seed,
            ),
        ]
    except TypeError as error:  # a value of the wrong type for the association
        raise ValueError(f"track: bad params: {error}") from None
    return Pipeline(name="track", stages=stages, params=p.model_dump())


#: The tracker classes whose keyword options ``tracker_options`` may hold.
_TRACKER_CLASSES: dict[str, type] = {"flow": FlowPropagator, "sam2": Sam2Propagator}


def _check_stage_options(p: TrackParams, tracker: str) -> None:
    """Option keys the stages would refuse in ``setup()`` (on a worker, once the run has
    started) are refused now, each key named."""
    problems = option_problems("association", p.association, AssociationConfig, "the association")
    if tracker in _TRACKER_CLASSES:  # a "module:Class" tracker of your own takes what it takes
        problems = [
            *option_problems("tracker_options", p.tracker_options, _TRACKER_CLASSES[tracker], f"the {tracker} tracker"),
            *problems,
        ]
    if problems:
        raise ParamsError("track", problems)
