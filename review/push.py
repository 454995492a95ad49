"""review push: send a dataset's pseudo-labels to Label Studio as predictions.

Run by ``tubelet review push`` (not by a manifest: it is a conversation with a server,
one video per task, not a pass over videos on workers).

``push`` makes (or updates) the project: a labeling config from the dataset's categories
and event labels, a local-files storage for the videos (browser-playable proxies where
needed), and one task per video with its predictions, imported in bulk. A task's
``tubelet_fingerprint`` makes re-pushing idempotent: unchanged tasks are left alone,
changed ones get new data and predictions, no video gets a second task, and an
interrupted push is finished by running it again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.engine.dataset import Dataset
from tubelet.review.client import LabelStudioClient
from tubelet.review.label_config import labeling_config
from tubelet.review.media import MediaError, ensure_proxy, local_file, needs_proxy
from tubelet.review.rows import load_rows, select_videos
from tubelet.review.tasks import DATA_FINGERPRINT, DATA_VIDEO_ID, build_task
from tubelet.schemas.records import Reject, VideoRecord

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
            if media == "url":
                url = video_rows.video.uri
            else:  # the URL and the storage that allows it, from one path (see local_file)
                served = local_file(_playable(video_rows.video, Path(out) / "review" / "media"), document_root)
                url = served.url
                media_dirs.add(served.folder)
        except MediaError as error:
            report.rejects.append(Reject(item=video_id, stage=PUSH_STAGE, reason=str(error), video_id=video_id))
            continue
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


def _playable(video: VideoRecord, media_dir: Path) -> str:
    """The file a browser can play: the video itself, or its H.264 proxy under ``media_dir``."""
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
