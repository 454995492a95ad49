"""run_pipeline: one run of a pipeline over a manifest's videos, to committed shards and info.json.

The runtime takes a built ``Pipeline``; resolving the manifest's pipeline name is the job
of ``tubelet.pipelines`` (``tubelet.pipelines.run_manifest`` does both).

The video list is read twice, streaming, never held: once for the plan (the keys, what
is already committed, how many are pending), once to feed the runner. The output may be
a local folder or object storage (``s3://…``, see ``engine.storage``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from tubelet.engine.config import DatasetVideos, RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import manifest_key, read_entries, row_counts
from tubelet.engine.logs import RunLogging
from tubelet.engine.manifest import Duplicates, iter_videos, resolve_location
from tubelet.engine.ownership import check_output
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.run_state import RunRecord, mark_crashed
from tubelet.engine.runners import Runner, WorkerSettings, choose_runner
from tubelet.engine.runners.ray_instance import cluster_address
from tubelet.engine.runners.streaming import StreamStats
from tubelet.engine.storage import Storage, open_storage
from tubelet.engine.task import VideoTask
from tubelet.engine.video_backend import describe, requested_backend, resolve_backend
from tubelet.engine.writer import ShardWriter, new_run_id, utc_now
from tubelet.schemas import Reject
from tubelet.schemas.info import DatasetInfo, RunInfo, info_from_json
from tubelet.schemas.version import SCHEMA_VERSION, parse_version

log = logging.getLogger(__name__)

INFO_FILE = "meta/info.json"
PLAN_FILE = "meta/plan.json"
MANIFEST_FILE = "meta/manifest.yaml"


class ConfigMismatchError(ValueError):
    """The output holds a dataset made by another pipeline or other parameters."""


@dataclass
class RunSummary:
    """What one run did."""

    run_id: str
    output: str  # the dataset's location: a local path or a URL
    runner: str
    planned: int  # videos of the manifest (rows rejected by the manifest are not videos)
    skipped_already_done: int  # of those, committed by an earlier run (done or failed)
    failed_before: int  # of those, committed as failed by an earlier run
    done: int  # committed by this run
    failed: int  # committed by this run as failed (their rejects say why)
    rejected_rows: int  # manifest rows rejected before any stage (committed once)
    elapsed_s: float
    removed_orphans: list[str] = field(default_factory=list)
    log_path: Path | None = None
    stream: StreamStats = field(default_factory=StreamStats)

    @property
    def processed(self) -> int:
        """Videos this run sent through the pipeline."""
        return self.done + self.failed


def output_location(config: RunConfig) -> str:
    """The run's output: ``config.output`` resolved against ``config.base_dir`` (URLs as they are)."""
    return resolve_location(config.base_dir, config.output)


@dataclass
class _Plan:
    """The first pass over the manifest: how many items, and what is left to do."""

    items: int
    pending: int
    skipped: int
    failed_before: int  # skipped videos an earlier run committed as failed
    rejected_rows: int
    duplicates: Duplicates  # what pass two needs to know, so it remembers no id


def run_pipeline(
    pipeline: Pipeline,
    config: RunConfig,
    *,
    runner: str | None = None,
    address: str | None = None,
    progress: bool = True,
    log_level: str | int = "INFO",
    log_to_stderr: bool = True,
) -> RunSummary:
    """Run ``pipeline`` over ``config``'s videos: plan, skip what is committed, run the
    rest, commit, update info.json.

    ``runner`` ("auto"/"process"/"ray"/"inline") and ``address`` override the manifest.
    Safe to re-run after a crash or a kill: committed videos are skipped, the files the
    killed run left are removed.
    """
    started = time.monotonic()
    settings = _worker_settings(config, address)  # before anything is written: a backend that cannot run here stops it
    storage = open_storage(output_location(config))
    check_output(storage)  # somebody else's folder is refused before the log or lock lands there
    inputs = _input_datasets(config)  # read (and checked) before anything is written
    info = _check_existing(storage, pipeline)  # a refused run leaves not even a log behind
    run_id = new_run_id()
    with _run_logging(storage, run_id, log_level, log_to_stderr) as run_log:
        owned = {r.run_id for r in info.runs} if info else set()
        with ShardWriter(storage, shard_size=config.shard_size, run_id=run_id, owned_runs=owned) as writer:
            plan = _plan(config, writer, storage, run_id)
            _save_manifest(storage, config)
            chosen = choose_runner(
                runner or config.runner, pipeline, config.ray, address=address, pending=plan.pending, settings=settings
            )
            _log_video_backend(config, settings, chosen)
            run = RunInfo(run_id=run_id, started_at=utc_now(), runner=chosen.name, tubelet_version=tubelet_version())
            run.planned, run.skipped, run.rejected_rows = (
                plan.items - plan.rejected_rows,
                plan.skipped,
                plan.rejected_rows,
            )
            record = _record_run_start(storage, info, pipeline, run, inputs)
            _log_start(run, plan, len(writer.removed))
            with record:  # the driver's heartbeat in info.json, until the run's end is written
                try:
                    with Progress(plan.pending, enabled=progress, desc=pipeline.name) as bar:
                        stats = chosen.run(pipeline, _pending(config, writer, plan.duplicates), writer, bar)
                    writer.close()
                except BaseException as error:
                    writer.close()  # commit the finished videos before reporting the failure
                    _record_failure(record, writer, error)
                    raise
                run.status = "finished"
                _record_run_end(record, writer)
        summary = RunSummary(
            run_id=run_id,
            output=storage.root,
            runner=chosen.name,
            planned=run.planned,
            skipped_already_done=plan.skipped,
            failed_before=plan.failed_before,
            done=run.done,
            failed=run.failed,
            rejected_rows=plan.rejected_rows,
            elapsed_s=time.monotonic() - started,
            removed_orphans=list(writer.removed),
            log_path=run_log.path if storage.local_path() is not None else None,
            stream=stats,
        )
        _log_end(summary)
    return summary


def _worker_settings(config: RunConfig, address: str | None) -> WorkerSettings:
    """What every worker applies: the manifest's video backend, else this process's
    (``TUBELET_VIDEO_BACKEND``), sent to workers so they need no environment of their own.
    Workers on this machine get the backend resolved here (``auto`` decided once, what
    the log says), so one that cannot be used fails now; a cluster's workers may be other
    machines: they get the name as asked and resolve it themselves."""
    backend = config.video_backend or requested_backend()
    if not cluster_address(address or config.ray.address):
        backend = resolve_backend(backend)  # VideoBackendError naming the option
    return WorkerSettings(video_backend=backend)


def _log_video_backend(config: RunConfig, settings: WorkerSettings, runner: Runner) -> None:
    if settings.video_backend == "auto":  # only when joining a cluster
        text = "auto (each node's workers take decord where it imports, else PyAV)"
    elif getattr(runner, "address", None):
        text = f"{settings.video_backend} (asked for)"
    else:
        text = describe(config.video_backend or requested_backend())
    log.info(
        "video backend: %s",
        text,
        extra={
            "event": "video_backend",
            "asked": config.video_backend or requested_backend(),
            "video_backend": text.split()[0],
        },
    )


def _log_start(run: RunInfo, plan: _Plan, removed_orphans: int) -> None:
    log.info(
        "run %s: %d videos planned, %d already committed, %d to process, %d manifest rows rejected",
        run.run_id,
        run.planned,
        plan.skipped,
        plan.pending,
        plan.rejected_rows,
        extra={
            "event": "run_start",
            "planned": run.planned,
            "skipped": plan.skipped,
            "pending": plan.pending,
            "rejected_rows": plan.rejected_rows,
            "runner": run.runner,
            "removed_orphans": removed_orphans,
        },
    )


def _log_end(summary: RunSummary) -> None:
    log.info(
        "run %s finished in %.1f s: %d done, %d failed, %d skipped (already committed); %.0f bytes per video "
        "reached the driver",
        summary.run_id,
        summary.elapsed_s,
        summary.done,
        summary.failed,
        summary.skipped_already_done,
        summary.stream.bytes_per_item,
        extra={
            "event": "run_end",
            "status": "finished",
            "done": summary.done,
            "failed": summary.failed,
            "skipped": summary.skipped_already_done,
            "elapsed_s": round(summary.elapsed_s, 3),
            "bytes_to_driver": summary.stream.bytes_to_driver,
        },
    )


def _record_failure(record: RunRecord, writer: ShardWriter, error: BaseException) -> None:
    """info.json says how the run ended (what it committed stays committed)."""
    run = record.run
    run.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    run.error = f"{type(error).__name__}: {error}"
    _record_run_end(record, writer)
    log.error("run %s %s: %s", run.run_id, run.status, run.error, extra={"event": "run_end", "status": run.status})


def tubelet_version() -> str:
    """The installed tubelet version ("unknown" when run from a bare checkout)."""
    try:
        return metadata.version("tubelet")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- the two passes over the manifest ----------------------------------------------------


def _plan(config: RunConfig, writer: ShardWriter, storage: Storage, run_id: str) -> _Plan:
    """Pass one: ``meta/plan.json`` (every key, in manifest order, written as it is read:
    nothing is kept in memory), and the pending and skipped counts."""
    items = pending = skipped = failed_before = rejected = 0
    duplicates = Duplicates()
    with tempfile.TemporaryFile("w+b") as spool:
        spool.write(json.dumps({"run_id": run_id, "created_at": utc_now()})[:-1].encode() + b', "items": [')
        for item in iter_videos(config, duplicates):
            if isinstance(item, Reject):
                key = manifest_key(item.item)
                rejected += 1
            else:
                key = item.video_id
                status = writer.committed.get(key)
                skipped += status is not None
                failed_before += status == "failed"
                pending += status is None
            spool.write((", " if items else "").encode() + json.dumps(key).encode())
            items += 1
        spool.write(b"]}")
        spool.seek(0)
        storage.write_bytes(PLAN_FILE, spool.read())
    return _Plan(items, pending, skipped, failed_before, rejected, duplicates)


def _pending(config: RunConfig, writer: ShardWriter, duplicates: Duplicates) -> Iterator[VideoTask]:
    """Pass two: the tasks not committed yet, streaming; manifest rejects are committed
    here, once (a re-run finds them committed)."""
    for item in iter_videos(config, duplicates):
        if isinstance(item, Reject):
            writer.add_rejects(manifest_key(item.item), [item])
        elif not writer.is_committed(item.video_id):
            yield item


# -- the output's meta files ---------------------------------------------------------------


def _run_logging(storage: Storage, run_id: str, level: str | int, stderr: bool) -> RunLogging:
    local = storage.local_path()
    if local is not None:
        return RunLogging(local / "meta" / "logs", run_id, level=level, stderr=stderr)
    # object storage cannot append: log locally, copy the file into the dataset at the end
    return RunLogging(
        Path(tempfile.mkdtemp(prefix="tubelet-log-")), run_id, level=level, stderr=stderr, publish_to=storage
    )


def _read_info(storage: Storage) -> DatasetInfo | None:
    try:
        text = storage.read_text(INFO_FILE)
    except FileNotFoundError:
        return None
    return info_from_json(text, where=storage.url(INFO_FILE))  # refuses a newer major schema


def _check_existing(storage: Storage, pipeline: Pipeline) -> DatasetInfo | None:
    """The dataset's info, if any, after checking this run may add to it."""
    info = _read_info(storage)
    if info is not None and (info.pipeline != pipeline.name or info.config_hash != pipeline.config_hash):
        raise ConfigMismatchError(
            f"{storage.root} holds a dataset of pipeline {info.pipeline!r} with config hash {info.config_hash}; "
            f"this run is {pipeline.name!r} with {pipeline.config_hash}. Mixing them would make a dataset "
            f"no single config explains: write to another output folder"
        )
    return info


def _input_datasets(config: RunConfig) -> list[dict[str, object]]:
    """The datasets the manifest lists videos from, as info.json records them: where, which
    version and condition, what made them, and how far their ledger was."""
    found: list[dict[str, object]] = []
    for entry in config.videos:
        if not isinstance(entry, DatasetVideos):
            continue
        dataset = Dataset(resolve_location(config.base_dir, entry.dataset), version=entry.version)
        info, ledger = dataset.info(), dataset.ledger()
        found.append(
            {
                "dataset": dataset.root,
                "version": entry.version,
                "where": entry.where,
                "pipeline": info.pipeline,
                "config_hash": info.config_hash,
                "ledger_entries": len(ledger),
                "last_entry": ledger[-1].name if ledger else None,
            }
        )
    return found


def _record_run_start(
    storage: Storage, info: DatasetInfo | None, pipeline: Pipeline, run: RunInfo, inputs: list[dict[str, object]]
) -> RunRecord:
    """info.json with this run "running" (its driver and a first heartbeat); runs still
    "running" there died without saying so (this run holds the write lock): "crashed"."""
    now = utc_now()
    if info is None:
        info = DatasetInfo(
            pipeline=pipeline.name,
            config_hash=pipeline.config_hash,
            tubelet_version=tubelet_version(),
            params=dict(pipeline.params),
            model_ids=pipeline.model_ids(),
            counts=row_counts(read_entries(storage)),
            created_at=now,
        )
    # An older minor version stays readable; the dataset is now (at least) ours.
    if parse_version(info.schema_version) < parse_version(SCHEMA_VERSION):
        info.schema_version = SCHEMA_VERSION
    info.tubelet_version = tubelet_version()
    info.model_ids = {**info.model_ids, **pipeline.model_ids()}
    info.inputs += [source for source in [*pipeline.inputs, *inputs] if source not in info.inputs]
    info.updated_at = now
    for crashed in mark_crashed(info, found_by=run.run_id):
        log.warning("run %s had crashed: %s", crashed.run_id, crashed.error, extra={"event": "crashed_run"})
    info.runs.append(run)
    record = RunRecord(storage, info, run)
    record.save()
    return record


def _record_run_end(record: RunRecord, writer: ShardWriter) -> None:
    """The run's outcome; manifest rows it rejected are not counted as failed videos."""
    record.stop()  # no heartbeat after the end is written
    info, run = record.info, record.run
    run.done = writer.committed_counts["done"]
    run.failed = writer.committed_counts["failed"] - writer.committed_manifest_rejects
    run.finished_at = utc_now()
    info.counts = row_counts(read_entries(record.storage))
    info.updated_at = run.finished_at
    record.save()


def _save_manifest(storage: Storage, config: RunConfig) -> None:
    """The manifest as this run resolved it (overrides applied, output absolute)."""
    data = config.model_dump(mode="json")
    data["output"] = storage.root
    storage.write_text(MANIFEST_FILE, yaml.safe_dump(data, sort_keys=False))
