"""run_pipeline: one run of a pipeline over a manifest's videos, to committed shards and info.json.

The runtime takes a built ``Pipeline``; resolving the manifest's pipeline name is the job
of ``tubelet.pipelines`` (``tubelet.pipelines.run_manifest`` does both).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from tubelet.engine.config import RunConfig
from tubelet.engine.ledger import manifest_key, read_entries, row_counts
from tubelet.engine.logs import RunLogging
from tubelet.engine.manifest import expand_videos
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.progress import Progress
from tubelet.engine.runners import make_runner
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter, new_run_id, utc_now
from tubelet.schemas.info import DatasetInfo, RunInfo, read_info, write_info, write_json_atomic
from tubelet.schemas.version import SCHEMA_VERSION, parse_version

log = logging.getLogger(__name__)


class ConfigMismatchError(ValueError):
    """The output folder holds a dataset made by another pipeline or other parameters."""


@dataclass
class RunSummary:
    """What one run did."""

    run_id: str
    output: Path
    runner: str
    planned: int  # videos of the manifest (rows rejected by the manifest are not videos)
    skipped_already_done: int  # of those, committed by an earlier run (done or failed)
    done: int  # committed by this run
    failed: int  # committed by this run as failed (their rejects say why)
    rejected_rows: int  # manifest rows rejected before any stage (committed once)
    elapsed_s: float
    removed_orphans: list[str] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def processed(self) -> int:
        """Videos this run sent through the pipeline."""
        return self.done + self.failed


def output_dir(config: RunConfig) -> Path:
    """The run's output folder: ``config.output`` resolved against ``config.base_dir``."""
    return (Path(config.base_dir) / config.output).resolve()


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

    ``runner`` ("ray"/"inline") and ``address`` override the manifest. Safe to re-run
    after a crash or a kill: committed videos are skipped, orphans removed.
    """
    started = time.monotonic()
    out = output_dir(config)
    runner_name = runner or config.runner
    run_id = new_run_id()
    out.mkdir(parents=True, exist_ok=True)
    with RunLogging(out / "meta" / "logs", run_id, level=log_level, stderr=log_to_stderr) as run_log:
        info = _check_existing(out, pipeline)
        with ShardWriter(out, shard_size=config.shard_size, run_id=run_id) as writer:
            tasks, rejects = expand_videos(config)
            keyed_rejects = [(manifest_key(r.item), r) for r in rejects]
            _write_plan(out, run_id, [t.video_id for t in tasks] + [k for k, _ in keyed_rejects])
            _save_manifest(out, config)
            run = RunInfo(run_id=run_id, started_at=utc_now(), runner=runner_name, tubelet_version=tubelet_version())
            info = _record_run_start(out, info, pipeline, run)

            new_rejects = sum(writer.add_rejects(key, [r]) for key, r in keyed_rejects)
            writer.flush()
            pending, skipped = _pending(tasks, writer)
            run.planned, run.skipped, run.rejected_rows = len(tasks), skipped, len(rejects)
            log.info(
                "run %s: %d videos planned, %d already committed, %d to process, %d manifest rows rejected",
                run_id,
                len(tasks),
                skipped,
                len(pending),
                len(rejects),
                extra={
                    "event": "run_start",
                    "planned": len(tasks),
                    "skipped": skipped,
                    "pending": len(pending),
                    "rejected_rows": len(rejects),
                    "runner": runner_name,
                    "removed_orphans": len(writer.removed),
                },
            )
            try:
                with Progress(len(pending), enabled=progress) as bar:
                    make_runner(runner_name, config.ray, address=address).run(pipeline, pending, writer, bar)
                writer.close()
            except BaseException as error:
                writer.close()  # commit the finished videos before reporting the failure
                run.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
                run.error = f"{type(error).__name__}: {error}"
                _record_run_end(out, info, run, writer, new_rejects)
                log.error(
                    "run %s %s: %s", run_id, run.status, run.error, extra={"event": "run_end", "status": run.status}
                )
                raise
            run.status = "finished"
            _record_run_end(out, info, run, writer, new_rejects)

        summary = RunSummary(
            run_id=run_id,
            output=out,
            runner=runner_name,
            planned=len(tasks),
            skipped_already_done=skipped,
            done=run.done,
            failed=run.failed,
            rejected_rows=len(rejects),
            elapsed_s=time.monotonic() - started,
            removed_orphans=list(writer.removed),
            log_path=run_log.path,
        )
        log.info(
            "run %s finished in %.1f s: %d done, %d failed, %d skipped (already committed)",
            run_id,
            summary.elapsed_s,
            summary.done,
            summary.failed,
            skipped,
            extra={
                "event": "run_end",
                "status": "finished",
                "done": summary.done,
                "failed": summary.failed,
                "skipped": skipped,
                "elapsed_s": round(summary.elapsed_s, 3),
            },
        )
    return summary


def tubelet_version() -> str:
    """The installed tubelet version ("unknown" when run from a bare checkout)."""
    try:
        return metadata.version("tubelet")
    except metadata.PackageNotFoundError:
        return "unknown"


def _pending(tasks: list[VideoTask], writer: ShardWriter) -> tuple[list[VideoTask], int]:
    """Tasks not committed yet, once each, and how many were skipped as committed."""
    pending: list[VideoTask] = []
    seen: set[str] = set()
    skipped = 0
    for task in tasks:
        if writer.is_committed(task.video_id):
            skipped += 1
        elif task.video_id not in seen:
            seen.add(task.video_id)
            pending.append(task)
    return pending, skipped


def _check_existing(out: Path, pipeline: Pipeline) -> DatasetInfo | None:
    """The dataset's info, if any, after checking this run may add to it."""
    path = out / "meta" / "info.json"
    if not path.exists():
        return None
    info = read_info(path)  # refuses a newer major schema
    if info.pipeline != pipeline.name or info.config_hash != pipeline.config_hash:
        raise ConfigMismatchError(
            f"{out} holds a dataset of pipeline {info.pipeline!r} with config hash {info.config_hash}; "
            f"this run is {pipeline.name!r} with {pipeline.config_hash}. Mixing them would make a dataset "
            f"no single config explains: write to another output folder"
        )
    return info


def _record_run_start(out: Path, info: DatasetInfo | None, pipeline: Pipeline, run: RunInfo) -> DatasetInfo:
    now = utc_now()
    if info is None:
        info = DatasetInfo(
            pipeline=pipeline.name,
            config_hash=pipeline.config_hash,
            tubelet_version=tubelet_version(),
            params=dict(pipeline.params),
            model_ids=pipeline.model_ids(),
            counts=row_counts(read_entries(out)),
            created_at=now,
        )
    # An older minor version stays readable; the dataset is now (at least) ours.
    if parse_version(info.schema_version) < parse_version(SCHEMA_VERSION):
        info.schema_version = SCHEMA_VERSION
    info.tubelet_version = tubelet_version()
    info.model_ids = {**info.model_ids, **pipeline.model_ids()}
    info.updated_at = now
    info.runs.append(run)
    write_info(out / "meta" / "info.json", info)
    return info


def _record_run_end(out: Path, info: DatasetInfo, run: RunInfo, writer: ShardWriter, new_rejects: int) -> None:
    run.done = writer.committed_counts["done"]
    run.failed = writer.committed_counts["failed"] - new_rejects
    run.finished_at = utc_now()
    info.counts = row_counts(read_entries(out))
    info.updated_at = run.finished_at
    write_info(out / "meta" / "info.json", info)


def _write_plan(out: Path, run_id: str, keys: list[str]) -> None:
    write_json_atomic(out / "meta" / "plan.json", {"run_id": run_id, "created_at": utc_now(), "items": keys})


def _save_manifest(out: Path, config: RunConfig) -> None:
    """The manifest as this run resolved it (overrides applied, output absolute)."""
    data = config.model_dump(mode="json")
    data["output"] = str(out)
    path = out / "meta" / "manifest.yaml"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
