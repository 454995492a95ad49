"""review: push a dataset's pseudo-labels to Label Studio, pull the corrections back.

Run by ``tubelet review push`` and ``tubelet review pull`` (not by a manifest: both are
conversations with a server, one video per task, not a pass over videos on workers).

* ``push`` makes (or updates) the project: a labeling config from the dataset's
  categories and event labels, a local-files storage for the videos (browser-playable
  proxies where needed), and one task per video with its predictions, imported in bulk.
  A task's ``tubelet_fingerprint`` makes re-pushing idempotent: unchanged tasks are left
  alone, changed ones get new data and predictions, no video gets a second task, and an
  interrupted push is finished by running it again.
* ``pull`` exports the annotations (one request), applies each task's latest annotation
  to its video (``tubelet.review.apply``: boxes, re-tracked masks, deletions, spans,
  texts, rejected and regenerated instructions) and commits all reviewed videos as one
  revision (``tubelet.engine.versions``): the version before it stays readable and revertible.
  Annotations already applied are skipped, so an interrupted pull is finished by running
  it again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from tubelet.annotators.instructions.checks import check_instructions
from tubelet.annotators.instructions.generator import TASK_TYPES, GeneratorConfig, generate_instructions
from tubelet.annotators.tracking.stage import make_propagator
from tubelet.engine.dataset import Dataset
from tubelet.engine.versions import commit_revision
from tubelet.engine.video import VideoReader
from tubelet.engine.writer import ShardWriter
from tubelet.review.apply import STAGE, Retrack, apply_review
from tubelet.review.client import LabelStudioClient, ReviewServerError
from tubelet.review.label_config import labeling_config
from tubelet.review.media import (
    MediaError,
    ensure_proxy,
    local_files_url,
    needs_proxy,
)
from tubelet.review.results import latest_annotation, parse_task
from tubelet.review.retrack import retrack_tubelet
from tubelet.review.tasks import (
    DATA_FINGERPRINT,
    DATA_VIDEO_ID,
    VideoRows,
    build_task,
)
from tubelet.schemas.arrow import table_to_records
from tubelet.schemas.records import Reject, Review, Tubelet, VideoRecord

log = logging.getLogger(__name__)

PUSH_STAGE = "review-push"
MEDIA_MODES = ("local-files", "url")


@dataclass
class PushReport:
    """What a push did."""

    project_id: int
    project_url: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_removed: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0


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


# ------------------------------------------------------------------------------ push


def push(
    out: str | Path,
    project: str,
    *,
    where: str | None = None,
    client: LabelStudioClient | None = None,
    tolerance_px: float = 2.0,
    media: str = "local-files",
    document_root: str = "/",
    batch_size: int = 500,
) -> PushReport:
    """Push the videos of dataset ``out`` (those matching ``where``, a DuckDB condition
    on the ``videos`` table) to the Label Studio project titled ``project``."""
    if media not in MEDIA_MODES:
        raise ValueError(f"media must be one of {MEDIA_MODES}, not {media!r}")
    started = time.perf_counter()
    dataset = Dataset(out)
    client = client or LabelStudioClient()
    client.check()
    config = labeling_config(*_label_sets(dataset))
    proj = _ensure_project(client, project, config)
    report = PushReport(project_id=proj.id, project_url=f"{client.url}/projects/{proj.id}/data")
    rows = load_rows(dataset, select_videos(dataset, where))
    tasks: dict[str, dict[str, Any]] = {}
    media_dirs: set[str] = set()
    for video_id, video_rows in rows.items():
        try:
            path = _playable(video_rows.video, Path(out) / "review" / "media", media)
            url = video_rows.video.uri if media == "url" else local_files_url(path, document_root)
        except MediaError as error:
            report.rejects.append(Reject(item=video_id, stage=PUSH_STAGE, reason=str(error), video_id=video_id))
            continue
        media_dirs.add(str(Path(path).parent))
        tasks[video_id] = build_task(video_rows, url, tolerance_px=tolerance_px, model_version=_model_version(dataset))
    if media == "local-files":
        _ensure_storages(client, proj.id, sorted(media_dirs), report)
    existing = _existing_tasks(client, proj.id)
    report.requests["list tasks"] += 1
    new = [task for vid, task in tasks.items() if vid not in existing]
    changed = [
        (existing[vid][0], task)
        for vid, task in tasks.items()
        if vid in existing and existing[vid][0]["data"].get(DATA_FINGERPRINT) != task["data"][DATA_FINGERPRINT]
    ]
    report.unchanged = len(tasks) - len(new) - len(changed)
    # A changed task nobody annotated yet is cheaper to replace than to edit (one delete
    # action and the bulk import, instead of one update request per task).
    unannotated = [old for old, _ in changed if not old["annotated"]]
    if unannotated:
        ids = [old["id"] for old in unannotated]
        client.call(
            f"deleting {len(ids)} unannotated changed tasks",
            client.sdk.actions.create,
            id="delete_tasks",
            project=proj.id,
            selected_items={"all": False, "included": ids},
        )
        report.requests["delete tasks"] += 1
        new += [task for old, task in changed if not old["annotated"]]
        changed = [(old, task) for old, task in changed if old["annotated"]]
        report.updated += len(unannotated)
    for start in range(0, len(new), batch_size):
        chunk = new[start : start + batch_size]
        client.call(
            f"importing {len(chunk)} tasks into {project!r}",
            client.sdk.projects.import_tasks,
            proj.id,
            request=chunk,
            return_task_ids=True,
        )
        report.requests["bulk import"] += 1
    report.created = len(new) - report.updated
    if changed:
        _replace_predictions(client, proj.id, changed, report)
    report.duplicates_removed = _remove_duplicates(client, proj.id, report)
    report.seconds = time.perf_counter() - started
    return report


def select_videos(dataset: Dataset, where: str | None) -> list[str]:
    """Ids of the dataset's videos matching ``where`` (all of them when None)."""
    sql = "SELECT video_id FROM videos" + (f" WHERE {where}" if where else "") + " ORDER BY video_id"
    con = dataset.connect()
    try:
        return [r[0] for r in con.execute(sql).fetchall()]
    except Exception as error:  # noqa: BLE001 - duckdb raises several kinds; all mean a bad --where
        raise ValueError(f"--where {where!r}: {error}") from None
    finally:
        con.close()


def load_rows(dataset: Dataset, video_ids: Iterable[str]) -> dict[str, VideoRows]:
    """The rows of each video, from every table a review task shows or a pull rewrites."""
    wanted = list(dict.fromkeys(video_ids))
    rows = {v.video_id: VideoRows(video=v) for v in _records(dataset, "videos", wanted)}
    for table, attr in (
        ("tubelets", "tubelets"),
        ("entities", "entities"),
        ("events", "events"),
        ("instructions", "instructions"),
    ):
        for record in _records(dataset, table, wanted):
            if record.video_id in rows:
                getattr(rows[record.video_id], attr).append(record)
    return rows


def _records(dataset: Dataset, table: str, video_ids: Sequence[str]) -> list[Any]:
    data = dataset.read_table(table)
    data = data.filter(pc.is_in(data.column("video_id"), value_set=pa.array(video_ids, pa.string())))
    return table_to_records(table, data)


def _label_sets(dataset: Dataset) -> tuple[list[str], list[str]]:
    con = dataset.connect()
    try:
        cats = [
            r[0] for r in con.execute("SELECT DISTINCT category FROM tubelets WHERE category IS NOT NULL").fetchall()
        ]
        labels = [r[0] for r in con.execute("SELECT DISTINCT coalesce(label, text) FROM events").fetchall() if r[0]]
    finally:
        con.close()
    return cats, labels


def _model_version(dataset: Dataset) -> str:
    info = dataset.info()
    return f"tubelet:{info.pipeline or 'dataset'}:{(info.config_hash or '')[:8]}"


def _playable(video: VideoRecord, media_dir: Path, media: str) -> str:
    if media == "url":
        return video.uri
    if not needs_proxy(video):
        return video.uri
    return str(ensure_proxy(video, media_dir))


def _ensure_project(client: LabelStudioClient, title: str, config: str) -> Any:
    proj = client.find_project(title)
    if proj is None:
        return client.call(
            f"creating project {title!r}",
            client.sdk.projects.create,
            title=title,
            label_config=config,
            description="Pseudo-labels pushed by tubelet for review.",
        )
    if (proj.label_config or "").strip() != config.strip():
        client.call(
            f"updating the labeling config of {title!r}", client.sdk.projects.update, proj.id, label_config=config
        )
    return proj


def _ensure_storages(client: LabelStudioClient, project_id: int, dirs: Sequence[str], report: PushReport) -> None:
    storages = client.call("listing local storages", client.sdk.import_storage.local.list, project=project_id)
    have = {s.path for s in storages}
    for directory in dirs:
        if directory not in have:
            client.call(
                f"adding local storage {directory}",
                client.sdk.import_storage.local.create,
                project=project_id,
                path=directory,
                title=f"tubelet media {Path(directory).name}",
                use_blob_urls=False,
            )
            report.requests["add storage"] += 1


def _existing_tasks(client: LabelStudioClient, project_id: int) -> dict[str, list[dict[str, Any]]]:
    by_video: dict[str, list[dict[str, Any]]] = {}
    for task in client.tasks(project_id):
        video_id = (task["data"] or {}).get(DATA_VIDEO_ID)
        if video_id is not None:
            by_video.setdefault(str(video_id), []).append(task)
    for tasks in by_video.values():
        tasks.sort(key=lambda t: t["id"])
    return by_video


def _replace_predictions(
    client: LabelStudioClient, project_id: int, changed: list[tuple[dict[str, Any], dict[str, Any]]], report: PushReport
) -> None:
    ids = [old["id"] for old, _ in changed]
    client.call(
        f"deleting the old predictions of {len(ids)} tasks",
        client.sdk.actions.create,
        id="delete_tasks_predictions",
        project=project_id,
        selected_items={"all": False, "included": ids},
    )
    report.requests["delete predictions"] += 1
    for old, task in changed:
        client.call(f"updating task {old['id']}", client.sdk.tasks.update, str(old["id"]), data=task["data"])
        report.requests["update task"] += 1
    predictions = [{"task": old["id"], **task["predictions"][0]} for old, task in changed]
    client.call(
        f"importing {len(predictions)} predictions",
        client.sdk.projects.import_predictions,
        project_id,
        request=predictions,
    )
    report.requests["bulk predictions"] += 1
    report.updated += len(changed)


def _remove_duplicates(client: LabelStudioClient, project_id: int, report: PushReport) -> int:
    """Delete extra tasks of one video (left by an import retried after a lost answer)."""
    extra = [t["id"] for tasks in _existing_tasks(client, project_id).values() for t in tasks[1:]]
    report.requests["list tasks"] += 1
    if extra:
        client.call(
            f"deleting {len(extra)} duplicate tasks",
            client.sdk.actions.create,
            id="delete_tasks",
            project=project_id,
            selected_items={"all": False, "included": extra},
        )
        report.requests["delete duplicates"] += 1
    return len(extra)


# ------------------------------------------------------------------------------ pull


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
                tolerance_px=tolerance_px,
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


def _regenerator(dataset: Dataset):  # noqa: ANN202 - a Regenerate callable
    """Instructions for reviewed rows, made with the dataset's own generator settings and re-checked."""

    params: dict[str, Any] = {}
    manifest = Path(dataset.root) / "meta" / "manifest.yaml"
    if manifest.is_file():
        params = (yaml.safe_load(manifest.read_text()) or {}).get("params") or {}
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

        def retrack(tubelet: Tubelet, boxes: dict[int, list[float] | None], prompts: list[int]) -> Tubelet:
            if self._propagator is None:
                self._propagator = make_propagator(self.tracker, self.options)
            if self._reader is None:
                self._reader = VideoReader(video.uri)
            return retrack_tubelet(tubelet, boxes, prompts, self._reader, self._propagator)

        return retrack
