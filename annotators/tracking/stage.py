"""TrackMasklets: keyframe detections -> tubelets, through association and a tracker."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tubelet.annotators.tracking.association import AssociationConfig, associate
from tubelet.annotators.tracking.propagator import Propagator
from tubelet.engine.determinism import start_video
from tubelet.engine.resources import Resources
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader

#: tracker name -> "module:class" implementing Propagator (imported in setup only)
TRACKERS: dict[str, str] = {
    "flow": "tubelet.annotators.tracking.flow:FlowPropagator",
    "sam2": "tubelet.annotators.tracking.sam2_propagator:Sam2Propagator",
}


def make_propagator(tracker: str, options: dict[str, Any]) -> Propagator:
    """The propagator called ``tracker`` (a name of TRACKERS or "module:Class")."""
    target = TRACKERS.get(tracker, tracker)
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise ValueError(f"unknown tracker {tracker!r}; known: {', '.join(sorted(TRACKERS))} or module:Class")
    return getattr(importlib.import_module(module_name), attr)(**options)


@dataclass
class TrackMasklets(Stage):
    """Turn ``task.detections`` into tubelets with one propagator per worker.

    ``track_fps``: frames per second to track (None: every frame; keyframes are always
    tracked); ``association``: fields of ``AssociationConfig``; ``tracker_options``:
    keyword arguments of the propagator. Tubelets failing the quality filters become
    rejects of this stage, with the reason. ``seed``: the run's seed; each video starts
    every process-wide generator a tracker may draw from at the video's own seed, and
    torch on ``resources.cpus`` threads (``tubelet.engine.determinism``), so its tubelets
    never depend on the videos before it nor on the runner.
    """

    name: ClassVar[str] = "track_masklets"
    tracker: str = "flow"
    tracker_options: dict[str, Any] = field(default_factory=dict)
    track_fps: float | None = None
    association: dict[str, Any] = field(default_factory=dict)
    resources: Resources = Resources()
    seed: int = 0

    def __post_init__(self) -> None:
        self._config = AssociationConfig(**self.association)  # fail at build time on a bad key
        self._propagator: Propagator | None = None

    @property
    def model_id(self) -> str | None:
        return self.tracker_options.get("checkpoint") or self.tracker_options.get("config") or self.tracker

    def setup(self) -> None:
        self._propagator = make_propagator(self.tracker, self.tracker_options)

    def teardown(self) -> None:
        self._propagator = None

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        if self._propagator is None:
            raise RuntimeError(f"stage {self.name}: setup() was not called (a runner calls it once per worker)")
        for task in batch:
            self._track(task)
        return batch

    def _track(self, task: VideoTask) -> None:
        if task.video is None:
            raise ValueError("tracking needs the probed video: put probe_video before track_masklets")
        detectors = sorted({d.detector or "detector" for d in task.detections}) or ["detector"]
        source = f"{'+'.join(detectors)}+{self.tracker}"
        start_video(self.seed, task.video_id, self.resources.cpus)
        with VideoReader(task.uri, fps=task.fps) as reader:
            frames = (
                set(range(reader.n_frames))
                if self.track_fps is None
                else set(int(i) for i in reader.sample_indices(fps=self.track_fps))
            )
            keyframes = sorted(set(task.keyframes) | {d.frame_idx for d in task.detections})
            frames |= set(keyframes)
            result = associate(
                self._propagator,  # type: ignore[arg-type]
                reader,
                task.video,
                sorted(frames),
                reader.timestamps(),
                task.detections,
                source,
                keyframes=keyframes or None,
                config=self._config,
            )
        task.tubelets.extend(result.tubelets)
        for item, reason in result.rejects:
            task.reject(self.name, item, reason)
