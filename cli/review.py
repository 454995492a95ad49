"""``tubelet review …`` and ``tubelet versions``: the review loop's commands.

Commands::

    tubelet review serve [--data-dir DIR] [--port 8080] [--document-root /]
    tubelet review stop [--data-dir DIR]
    tubelet review push OUT --project NAME [--where SQL] [--tolerance-px 2] [--media local-files|url]
    tubelet review pull OUT --project NAME [--tracker flow|sam2] [--tracker-option KEY=VALUE ...]
    tubelet review revert OUT --to VERSION
    tubelet versions OUT

The server's address and token come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``
(``serve`` also needs ``LABEL_STUDIO_PASSWORD``); no command prints the token.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tubelet.cli.common import open_dataset
from tubelet.engine.versions import list_versions, revert
from tubelet.review.pull import pull
from tubelet.review.push import push
from tubelet.review.server import PID_FILE, running_server, start_server, stop_pid

DEFAULT_DATA_DIR = "~/.local/share/tubelet/label-studio"


def add_commands(add: Callable[[str, str], argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``review`` (with its sub-commands) and ``versions`` on the main parser."""
    review = add("review", "the Label Studio review loop: serve, push, pull, revert")
    actions = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, parents=[common])

    serve = action("serve", "start a local Label Studio on 127.0.0.1 (admin and token from the environment)")
    serve.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"its database and uploads (default {DEFAULT_DATA_DIR})"
    )
    serve.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    serve.add_argument("--document-root", default="/", help="folder local-files storage may serve from (default /)")
    serve.set_defaults(func=cmd_serve)

    stop = action("stop", "stop the Label Studio that `review serve` started")
    stop.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    stop.set_defaults(func=cmd_stop)

    push = action("push", "create or update a project with one task per video and its pseudo-labels as predictions")
    push.add_argument("out", help="the dataset folder")
    push.add_argument("--project", required=True, help="the Label Studio project title")
    push.add_argument("--where", help="DuckDB condition on the videos table, e.g. \"split = 'val'\"")
    push.add_argument(
        "--tolerance-px",
        type=float,
        default=2.0,
        help="largest box error of keyframe interpolation, in pixels (default 2)",
    )
    push.add_argument(
        "--media",
        choices=["local-files", "url"],
        default="local-files",
        help="serve videos from the server's local files (default) or use their uris as given",
    )
    push.add_argument("--document-root", default="/", help="the server's LOCAL_FILES_DOCUMENT_ROOT (default /)")
    push.add_argument("--batch-size", type=int, default=500, help="tasks per bulk import request (default 500)")
    push.set_defaults(func=cmd_push)

    pull = action("pull", "apply reviewers' annotations to the dataset as a new version")
    pull.add_argument("out", help="the dataset folder")
    pull.add_argument("--project", required=True, help="the Label Studio project title")
    pull.add_argument(
        "--tolerance-px",
        type=float,
        default=2.0,
        help="the push's tolerance, for tasks pushed before it was recorded in them (default 2)",
    )
    pull.add_argument("--tracker", default="flow", help="tracker that regenerates masks: flow (lite) or sam2")
    pull.add_argument(
        "--tracker-option",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="tracker option, e.g. checkpoint=/path/sam2.1_hiera_small.pt; repeatable",
    )
    pull.set_defaults(func=cmd_pull)

    revert = action("revert", "make the dataset equal to an earlier version again (nothing is deleted)")
    revert.add_argument("out", help="the dataset folder")
    revert.add_argument("--to", required=True, metavar="VERSION", help="a name from `tubelet versions OUT`")
    revert.set_defaults(func=cmd_revert)

    versions = add("versions", "list the dataset's named versions (snapshots before and after each review)")
    versions.add_argument("out", help="the dataset folder")
    versions.set_defaults(func=cmd_versions)


def cmd_serve(args: argparse.Namespace) -> int:
    server = start_server(
        Path(args.data_dir).expanduser(),
        port=args.port,
        document_root=args.document_root,
        report=lambda message: print(message, file=sys.stderr, flush=True),  # what it waits for, as it waits
    )
    print(f"Label Studio is running at {server.url} (pid {server.pid}, data in {server.data_dir})")
    print(f"  log:  {server.log_path}")
    print(f"  use:  export LABEL_STUDIO_URL={server.url}   (LABEL_STUDIO_API_KEY as set for serve)")
    print(f"  stop: tubelet review stop --data-dir {server.data_dir}   (or: kill -- -{server.pid})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser()
    pid = running_server(data_dir)
    if pid is None:
        print(f"no Label Studio from {data_dir} is running")
        return 0
    stop_pid(pid)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    print(f"stopped Label Studio (pid {pid})")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    report = push(
        args.out,
        args.project,
        where=args.where,
        tolerance_px=args.tolerance_px,
        media=args.media,
        document_root=args.document_root,
        batch_size=args.batch_size,
    )
    print(f"project {args.project!r}: {report.project_url}")
    print(
        f"  tasks: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
        + (f", {report.duplicates_removed} duplicates removed" if report.duplicates_removed else "")
    )
    print(f"  requests: {dict(report.requests)}; {report.seconds:.2f}s")
    for reject in report.rejects:
        print(f"  not pushed: {reject.item}: {reject.reason}")
    return 1 if report.rejects else 0


def cmd_pull(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    for item in args.tracker_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--tracker-option {item!r}: expected KEY=VALUE")
        options[key] = _value(value)
    report = pull(args.out, args.project, tolerance_px=args.tolerance_px, tracker=args.tracker, tracker_options=options)
    print(
        f"project {args.project!r}: {report.tasks_exported} tasks exported, {report.applied} applied, "
        f"{report.already_applied} already applied, {report.not_reviewed} not reviewed yet"
    )
    if report.counts:
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())))
    if report.versions:
        before, after = report.versions
        print(
            f"  dataset version {after} (before the review: {before}; `tubelet review revert {args.out} --to {before}`)"
        )
    for reject in report.rejects:
        print(f"  reject: {reject.item}: {reject.reason}")  # also in the rejects table
    print(f"  {report.seconds:.2f}s")
    return 1 if report.rejects else 0


def cmd_revert(args: argparse.Namespace) -> int:
    version = revert(args.out, args.to)
    print(f"{args.out} now equals version {args.to} (recorded as {version.name})")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    open_dataset(args.out)  # no dataset there: exit 2, not "no versions yet"
    versions = list_versions(args.out)
    if not versions:
        print("no versions yet (a review pull records one before and one after it)")
    for v in versions:
        print(f"{v.name}\t{v.created_at}\t{len(v.shards)} shards\t{v.note}")
    return 0


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
