"""``tubelet run`` and ``tubelet sample``: make a dataset.

tubelet run MANIFEST [--out DIR] [--runner ray|inline] [--address ADDR]
                     [--video-backend auto|decord|pyav]
                     [--set key=value ...] [--no-progress] [--log-level LEVEL]
tubelet sample OUT_DIR
"""

from __future__ import annotations

import argparse
import os

from tubelet.cli.common import EXIT_FAILURES, EXIT_OK, EXIT_RUN_FAILED, AddCommand, CommandError, log_level
from tubelet.cli.sample import write_sample
from tubelet.engine.dataset import Dataset
from tubelet.engine.errors import one_line
from tubelet.engine.manifest import load_manifest
from tubelet.engine.process_identity import ProcessIdentity
from tubelet.engine.run import output_location
from tubelet.engine.runners.ray_instance import ClusterConnectionError
from tubelet.engine.storage import is_url
from tubelet.engine.video_backend import BACKENDS
from tubelet.pipelines import run_manifest
from tubelet.schemas.info import RunInfo


def add_commands(add: AddCommand) -> None:
    """Register ``run`` and ``sample``."""
    run = add("run", "run a manifest: every video through its pipeline, into its output dataset")
    run.add_argument("manifest", help="the manifest YAML file")
    run.add_argument("--out", help="output dataset folder (overrides the manifest's output)")
    run.add_argument(
        "--runner",
        choices=["auto", "process", "ray", "inline"],
        help="override the manifest's runner (auto: ray for a cluster or GPUs, else a process pool)",
    )
    run.add_argument("--address", help="join the Ray cluster at ADDR (host:port) instead of starting one")
    run.add_argument(
        "--video-backend",
        choices=list(BACKENDS),
        help="what decodes video files in every worker (overrides the manifest's video_backend; "
        "default: TUBELET_VIDEO_BACKEND, else auto: decord where it is installed, else PyAV)",
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a manifest key (dotted, e.g. params.decode_check=false, ray.num_cpus=2); repeatable",
    )
    run.add_argument(
        "--no-progress", action="store_true", help="no progress line (a terminal) or progress log records (otherwise)"
    )
    run.set_defaults(func=cmd_run)

    sample = add("sample", "write the embedded synthetic sample (video, frames, DAVIS masks, list)")
    sample.add_argument("out_dir", help="folder to write the sample to")
    sample.set_defaults(func=cmd_sample)


def cmd_run(args: argparse.Namespace) -> int:
    """Load the manifest, run it, print the summary. Exit 0 when every video of the
    manifest is done (item-level rejects are no failure), 1 when a video or a manifest
    row failed (in this run or an earlier one), 3 when the run started and failed."""
    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"output={args.out if is_url(args.out) else os.path.abspath(args.out)}")
    if args.video_backend:
        overrides.append(f"video_backend={args.video_backend}")
    config = load_manifest(args.manifest, overrides)
    try:
        summary = run_manifest(
            config,
            runner=args.runner,
            address=args.address,
            progress=not args.no_progress,
            log_level=log_level(args, "info"),  # the run's JSON log keeps info events
        )
    except Exception as error:
        failed = _failed_here(output_location(config))
        if failed is None or isinstance(error, ClusterConnectionError):
            raise  # refused before any work (exit 2), or an error no run recorded (exit 3)
        raise CommandError(
            f"run {failed.run_id} failed: {type(error).__name__}: {one_line(error)}; what it committed is kept: "
            "run the manifest again to resume",
            EXIT_RUN_FAILED,
        ) from error
    reject_rows = _run_reject_rows(str(summary.output), summary.run_id)
    print(
        f"run {summary.run_id}: {summary.planned} planned, {summary.skipped_already_done} already done, "
        f"{summary.done} done, {summary.failed} failed in {summary.elapsed_s:.1f} s -> {summary.output}"
    )
    if summary.removed_orphans:
        print(f"removed {len(summary.removed_orphans)} orphan files of an interrupted run")
    failed = summary.failed + summary.failed_before
    if failed or summary.rejected_rows:
        earlier = f" ({summary.failed_before} by an earlier run)" if summary.failed_before else ""
        print(
            f"failures: {failed} failed video{'s' if failed != 1 else ''}{earlier}, {summary.rejected_rows} manifest "
            f"rows rejected; see tubelet status {summary.output}"
        )
        return EXIT_FAILURES
    if reject_rows:
        print(
            f"{reject_rows} item rejects (items of finished videos left out, e.g. tracks too short to keep; "
            f"not failures); see tubelet status {summary.output}"
        )
    return EXIT_OK


def _failed_here(output: str) -> RunInfo | None:
    """The dataset's last run, if this process drove it and it recorded that it failed:
    the run started, so its failure is exit 3 whatever the error was."""
    try:
        runs = Dataset(output).info().runs
    except Exception:  # noqa: BLE001 - no dataset there (or not one tubelet can read): no run of ours failed
        return None
    last = runs[-1] if runs else None
    if last is None or last.status != "failed" or not last.driver:
        return None
    return last if ProcessIdentity.from_dict(last.driver) == ProcessIdentity.current() else None


def _run_reject_rows(output: str, run_id: str) -> int:
    """Reject rows committed by the run ``run_id`` (video failures and item rejects alike)."""
    try:
        entries = Dataset(output).ledger()
    except (OSError, ValueError):
        return 0
    return sum(int(e.files["rejects"]["rows"]) for e in entries if e.run_id == run_id and "rejects" in e.files)


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the embedded synthetic demo sample."""
    written = write_sample(args.out_dir)
    print(f"wrote the sample to {written.root}: {written.describe()}")
    return EXIT_OK
