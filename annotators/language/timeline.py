"""ActionTimeline: what each tubelet does and when, as rows of the `events` table.

Two modes. ``lite`` (no model) segments each tubelet's box trajectory into motion
states (``tubelet.annotators.language.motion_states``). ``vlm`` asks a VLM about windows of
the tubelet's life (``tubelet.annotators.language.timeline_vlm``). In both modes the presence
events (``appear``, ``leave``, ``reenter``) come from the tubelet rows, with
``source="lite"``.

Event ids follow docs/architecture.md: ``<video_id>:event:<tubelet index>:<n>``, the
tubelet index being its position in ``task.tubelets`` and ``n`` counting that
tubelet's events ordered by start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from tubelet.annotators.language.backends import VLMBackend, VLMRequest, make_backend
from tubelet.annotators.language.backends.lifecycle import ModelLifecycle
from tubelet.annotators.language.backends.structured import generate_structured
from tubelet.annotators.language.motion_states import MotionConfig
from tubelet.annotators.language.timeline_lite import TimelineItem, lite_items, presence_items
from tubelet.annotators.language.timeline_vlm import (
    ANSWER_SCHEMA,
    Window,
    highlight,
    make_windows,
    merge_answers,
    render_prompt,
    scaled_size,
    window_item,
    window_template,
)
from tubelet.engine.resources import Resources
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Event, Tubelet

LITE_SOURCE = "lite"


def event_id(video_id: str, tubelet_index: int, n: int) -> str:
    """``<video_id>:event:<tubelet index>:<n>`` (see docs/architecture.md)."""
    return f"{video_id}:event:{tubelet_index}:{n}"


def to_events(
    video_id: str,
    tubelet_index: int,
    tubelet: Tubelet,
    items: list[tuple[TimelineItem, str, str | None]],
    prompt_version: str | None = None,
) -> list[Event]:
    """Events of one tubelet from ``(item, source, model_id)``, ordered by start, with ids;
    rows a model wrote (a ``model_id``) record ``prompt_version``."""
    ordered = sorted(items, key=lambda x: x[0].sort_key())
    return [
        Event(
            event_id=event_id(video_id, tubelet_index, n),
            video_id=video_id,
            tubelet_ids=[tubelet.tubelet_id],
            start_s=item.start_s,
            end_s=item.end_s,
            start_frame=item.start_frame,
            end_frame=item.end_frame,
            text=item.text,
            label=item.label,
            source=source,
            model_id=model_id,
            prompt_version=prompt_version if model_id else None,
        )
        for n, (item, source, model_id) in enumerate(ordered)
    ]


@dataclass
class ActionTimeline(ModelLifecycle, Stage):
    """Append one timeline of ``Event`` rows per tubelet of each video.

    ``mode``: ``"lite"`` (motion states, no model) or ``"vlm"``. ``motion``: fields of
    ``MotionConfig`` (lite thresholds and the edge margin used by presence events).
    VLM mode: ``backend``/``backend_options`` as ``make_backend`` takes them;
    ``window_s`` seconds per question, a new window every ``stride_s`` (None: back to
    back; smaller than ``window_s``: overlapping); ``frames_per_window`` frames shown,
    the longer side at most ``image_max_side`` pixels; ``retries`` re-asks of a
    malformed answer; ``prompt`` replaces the text of the released template
    ``timeline_vlm.ACTION_WINDOW`` (same answer schema; placeholders from
    ``timeline_vlm.TEMPLATE_FIELDS``); ``chunk_windows`` bounds the windows (and so
    the decoded images) held at once. A window whose answer stays malformed becomes a
    reject ``<tubelet_id>@<start_s>-<end_s>``; the rest of the timeline is kept.
    Needs ``task.video`` (run ``ProbeVideo`` first).
    """

    name: ClassVar[str] = "action_timeline"
    mode: str = "lite"
    motion: dict[str, Any] = field(default_factory=dict)
    backend: str = "openai"
    backend_options: dict[str, Any] = field(default_factory=dict)
    window_s: float = 2.0
    stride_s: float | None = None
    frames_per_window: int = 4
    image_max_side: int = 448
    max_new_tokens: int = 64
    retries: int = 2
    prompt: str | None = None
    chunk_windows: int = 32
    resources: Resources = Resources()

    def __post_init__(self) -> None:
        if self.mode not in ("lite", "vlm"):
            raise ValueError(f"ActionTimeline mode must be 'lite' or 'vlm', got {self.mode!r}")
        self._motion = MotionConfig(**self.motion)  # fail at build time on a bad key
        self._backend: VLMBackend | None = None
        self._ready = False
        if self.mode == "vlm":
            if self.window_s <= 0 or (self.stride_s is not None and self.stride_s <= 0):
                raise ValueError("window_s and stride_s must be > 0")
            if self.frames_per_window < 1 or self.chunk_windows < 1 or self.retries < 0:
                raise ValueError("frames_per_window and chunk_windows must be >= 1, retries >= 0")
        self._template = window_template(self.prompt)  # a bad placeholder fails here
        if self.mode == "vlm":
            # Built (not loaded) now so a bad backend name or option fails at configuration.
            self._backend = make_backend(self.backend, self.backend_options)

    @property
    def model_id(self) -> str | None:
        return self._backend.model_id if self.mode == "vlm" and self._backend is not None else None

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        self.check_ready()
        for task in batch:
            self.timeline(task)
        return batch

    def timeline(self, task: VideoTask) -> None:
        """Append the events (and window rejects) of one task."""
        if task.video is None:
            raise ValueError("timelines need the probed video: put probe_video before action_timeline")
        n_frames = task.video.n_frames
        per_tubelet: list[list[tuple[TimelineItem, str, str | None]]] = []
        for tubelet in task.tubelets:
            if self.mode == "lite":
                items = lite_items(tubelet, n_frames, self._motion)
            else:
                items = presence_items(tubelet, n_frames, self._motion)
            per_tubelet.append([(item, LITE_SOURCE, None) for item in items])
        if self.mode == "vlm":
            for index, items in self._vlm_items(task).items():
                per_tubelet[index].extend(items)
        for index, (tubelet, items) in enumerate(zip(task.tubelets, per_tubelet)):
            prompt = self._template.id if self.mode == "vlm" else None
            task.events.extend(to_events(task.video_id, index, tubelet, items, prompt))

    # -- VLM mode --------------------------------------------------------------------
    def _vlm_items(self, task: VideoTask) -> dict[int, list[tuple[TimelineItem, str, str | None]]]:
        backend = self._backend
        assert backend is not None
        jobs = [
            (i, w)
            for i, t in enumerate(task.tubelets)
            for w in make_windows(t, self.window_s, self.stride_s, self.frames_per_window)
        ]
        answers: dict[int, dict[int, dict]] = {i: {} for i in range(len(task.tubelets))}
        with VideoReader(task.uri, fps=task.fps) as reader:
            for start in range(0, len(jobs), self.chunk_windows):
                chunk = jobs[start : start + self.chunk_windows]
                requests = self._requests(task, reader, chunk)
                results = generate_structured(backend, requests, ANSWER_SCHEMA, retries=self.retries)
                for (i, window), request in zip(chunk, requests):
                    value = results.values.get(request.request_id)
                    if value is not None:
                        answers[i][window.index] = value
                for failure in results.failures:
                    i, window = chunk[int(failure.request_id)]
                    task.reject(
                        self.name,
                        window_item(task.tubelets[i].tubelet_id, window),
                        f"{failure.reason} (after {failure.asks} asks; prompt {self._template.id})",
                    )
        out: dict[int, list[tuple[TimelineItem, str, str | None]]] = {}
        for i in range(len(task.tubelets)):
            windows = [w for j, w in jobs if j == i]
            out[i] = [(item, backend.model_id, backend.model_id) for item in merge_answers(windows, answers[i])]
        return out

    def _requests(self, task: VideoTask, reader: VideoReader, chunk: list[tuple[int, Window]]) -> list[VLMRequest]:
        video = task.video
        assert video is not None
        size = scaled_size(video.width, video.height, self.image_max_side)
        indices = sorted({f.frame_idx for _, w in chunk for f in w.sampled})
        decoded = dict(zip(indices, reader.frames(indices, size=size))) if indices else {}
        requests = []
        for k, (i, window) in enumerate(chunk):
            tubelet = task.tubelets[i]
            images = [highlight(decoded[f.frame_idx], f, (tubelet.width, tubelet.height)) for f in window.sampled]
            # Request ids are positions in the chunk: unique even if two windows share times.
            requests.append(
                VLMRequest(
                    request_id=str(k),
                    prompt=render_prompt(self._template, tubelet, window),
                    system=self._template.system,
                    images=images,
                    max_new_tokens=self.max_new_tokens,
                )
            )
        return requests
