"""review pull: apply reviewers' corrections from Label Studio to the dataset.

Run by ``tubelet review pull``. ``pull`` exports the annotations (one request), applies
each task's latest annotation to its video (``tubelet.review.apply``: boxes, re-tracked
masks, deletions, spans, texts, rejected and regenerated instructions) and commits all
reviewed videos as one revision (``tubelet.engine.versions``): the version before it
stays readable and revertible. Annotations already applied are skipped, so an
interrupted pull is finished by running it again.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tubelet.annotators.instructions.checks import check_instructions
from tubelet.annotators.instructions.generator import TASK_TYPES, GeneratorConfig, generate_instructions
from tubelet.annotators.tracking.stage import make_propagator
from tubelet.engine.dataset import Dataset
from tubelet.engine.versions import commit_revision
from tubelet.engine.video import VideoReader
from tubelet.engine.writer import ShardWriter
from tubelet.review.apply import STAGE, Regenerate, Retrack, apply_review
from tubelet.review.client import LabelStudioClient, ReviewServerError
from tubelet.review.corrections import Retracked
from tubelet.review.results import latest_annotation, parse_task
from tubelet.review.retrack import retrack_frames
from tubelet.review.rows import load_rows, select_videos
from tubelet.review.tasks import DATA_TOLERANCE, DATA_VIDEO_ID, VideoRows
from tubelet.schemas.records import Reject, Review, Tubelet, VideoRecord


@dataclass
class PullReport:
    """What a pull did; ``versions`` is ``(before, after)`` when a revision was committed."""

    project_id: int
    tasks_exported: int = 0
    applied: int = 0
    already_applied: int = 0
    not_reviewed: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejects: list[Reject] = field(default_factory=list)
    versions: tuple[str, str] | None = None
    seconds: float = 0.0


def pull(
    out: str | Path,
    project: str,
    *,
    client: LabelStudioClient | None = None,
    tolerance_px: float = 2.0,
    tracker: str = "flow",
    tracker_options: dict[str, Any] | None = None,
) -> PullReport:
    """Apply the latest annotation of every reviewed task of ``project`` to dataset ``out``."""
    started = time.perf_counter()
    dataset = Dataset(out)
    client = client or LabelStudioClient()
    proj = client.find_project(project)
    if proj is None:
        raise ReviewServerError(f"no Label Studio project titled {project!r} on {client.url}; push first")
    report = PullReport(project_id=proj.id)
    exported = client.export(proj.id)
    report.tasks_exported = len(exported)  # the export holds only tasks with annotations
    report.not_reviewed = max(0, int(getattr(proj, "task_number", 0) or 0) - len(exported))
    reviewers = client.reviewers()
    known = set(select_videos(dataset, None))
    history = _History.of(dataset)
    todo: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    skipped: dict[str, list[Reject]] = {}  # ledger key -> rejects of a task not applied

    def skip(task: dict[str, Any], annotation: dict[str, Any], reason: str, video_id: str | None) -> None:
        reject = Reject(item=f"task {task.get('id')}", stage=STAGE, reason=reason, video_id=video_id)
        skipped.setdefault(f"review:{project}:task {task.get('id')}:{_stamp(annotation)}", []).append(reject)
        report.rejects.append(reject)

    for task in exported:
        annotation = latest_annotation(task)
        video_id = str((task.get("data") or {}).get(DATA_VIDEO_ID))
        if annotation is None:
            report.not_reviewed += 1
        elif video_id not in known:
            skip(task, annotation, f"task names video {video_id!r}, which is not in this dataset", None)
        elif _stamp(annotation) in history.stamps.get(video_id, set()):
            report.already_applied += 1
        else:
            todo[video_id] = (task, annotation)
    rows = load_rows(dataset, todo)
    regenerate = _regenerator(dataset)
    records: dict[str, list[Any]] = {}
    with _Retracker(tracker, tracker_options or {}) as retracker:
        for video_id, (task, annotation) in todo.items():
            video_rows = rows[video_id]
            mismatch = _task_mismatch(task, video_rows.video)
            if mismatch:
                skip(task, annotation, mismatch, video_id)
                continue
            v = video_rows.video
            reviewed = parse_task(
                task, width=v.width, height=v.height, fps=v.fps, n_frames=v.n_frames, reviewers=reviewers
            )
            assert reviewed is not None  # it has an annotation
            if reviewed.blocking:
                skip(task, annotation, "; ".join(reviewed.blocking + reviewed.problems), video_id)
                continue
            applied = apply_review(
                video_rows,
                reviewed,
                project=project,
                # the tolerance the task was pushed with, when it says (older tasks do not)
                tolerance_px=float((task.get("data") or {}).get(DATA_TOLERANCE, tolerance_px)),
                retrack=retracker.for_video(v),
                regenerate=regenerate,
                rejected_before=history.rejected.get(video_id, set()),
            )
            for review in applied.reviews:
                review.payload["annotation_updated_at"] = _stamp(annotation)
            report.rejects += applied.rejects
            report.counts.update(applied.counts)
            records[video_id] = [
                v,
                *applied.rows.tubelets,
                *applied.rows.entities,
                *applied.rows.events,
                *applied.rows.instructions,
                *history.rows.get(video_id, []),
                *applied.reviews,
                *applied.rejects,
            ]
            report.applied += 1
    if records:
        before, after = commit_revision(out, records, note=f"review pull from Label Studio project {project!r}")
        report.versions = (before.name, after.name)
    if skipped:  # kept in `rejects` (as failed items) so `tubelet status` shows them
        with ShardWriter(out) as writer:
            for key, rejects in skipped.items():
                writer.add_rejects(key, rejects)
    report.seconds = time.perf_counter() - started
    return report


def _stamp(annotation: dict[str, Any]) -> str:
    """Which state of an annotation was applied: its id and last update time."""
    return f"{annotation.get('id')}@{annotation.get('updated_at') or annotation.get('created_at')}"


@dataclass
class _History:
    """The dataset's earlier reviews, read once: per video, its rows (a revision rewrites
    every table of a video, history included), the annotation stamps already applied, and
    the instruction ids rejected so far."""

    rows: dict[str, list[Review]] = field(default_factory=dict)
    stamps: dict[str, set[str]] = field(default_factory=dict)
    rejected: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: Dataset) -> _History:
        history = cls()
        for review in dataset.records("reviews"):
            history.rows.setdefault(review.video_id, []).append(review)
            stamp = review.payload.get("annotation_updated_at")
            if stamp:
                history.stamps.setdefault(review.video_id, set()).add(str(stamp))
            if review.item_table == "instructions" and review.verdict == "reject":
                history.rejected.setdefault(review.video_id, set()).add(review.item_id)
        return history


def _task_mismatch(task: dict[str, Any], video: VideoRecord) -> str | None:
    """Why the task no longer matches the dataset's video (frame rate, frame count), or None."""
    data = task.get("data") or {}
    fps, frames = data.get("fps"), data.get("n_frames")
    if fps is not None and abs(float(fps) - video.fps) > 1e-3:
        return (
            f"task was pushed at {float(fps):g} fps but the dataset's video has {video.fps:g} fps; "
            "not applied (re-push the video)"
        )
    if frames is not None and int(frames) != video.n_frames:
        return (
            f"task was pushed with {frames} frames but the dataset's video has {video.n_frames}; "
            "not applied (re-push the video)"
        )
    return None


def _regenerator(dataset: Dataset) -> Regenerate:
    """Instructions for reviewed rows, made with the dataset's own generator settings and re-checked."""

    params: dict[str, Any] = {}
    try:
        params = (yaml.safe_load(dataset.storage.read_text("meta/manifest.yaml")) or {}).get("params") or {}
    except FileNotFoundError:
        pass
    config = GeneratorConfig(
        task_types=tuple(params.get("task_types") or TASK_TYPES),
        seed=int(params.get("seed", 0)),
        max_per_task=int(params.get("max_per_task", 6)),
    )

    def regenerate(rows: VideoRows) -> list[Any]:
        made = generate_instructions(rows.tubelets, rows.entities, rows.events, video=rows.video, config=config)
        bad = check_instructions(made, rows.tubelets, rows.entities, rows.events).bad_ids
        return [i for i in made if i.instruction_id not in bad]

    return regenerate


class _Retracker:
    """One propagator for the whole pull; one open reader per video, closed at the next."""

    def __init__(self, tracker: str, options: dict[str, Any]) -> None:
        self.tracker, self.options = tracker, options
        self._propagator: Any = None
        self._reader: Any = None

    def __enter__(self) -> _Retracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self._propagator = None

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def for_video(self, video: VideoRecord) -> Retrack:
        """The re-tracking function of ``video``'s tubelets (opens nothing until called)."""

        self._close()

        def retrack(tubelet: Tubelet, boxes: dict[int, list[float] | None], prompts: list[int]) -> Retracked:
            if self._propagator is None:
                self._propagator = make_propagator(self.tracker, self.options)
            if self._reader is None:
                self._reader = VideoReader(video.uri)
            return retrack_frames(tubelet, boxes, prompts, self._reader, self._propagator)

        return retrack
