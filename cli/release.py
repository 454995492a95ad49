"""``tubelet release`` and ``tubelet diff``: immutable, versioned dataset releases.

Commands::

    tubelet release OUT --version X --to DIR [--dataset-version V] [--splits train=0.8,val=0.1,test=0.1]
                    [--keep-splits] [--min-score S] [--reviewed-only] [--exclude-rejected]
                    [--format videorefer,videollama3,llava-video,video-llava,unistg]
                    [--boxes pixel|normalised|thousand] [--times seconds|tokens] [--time-bins N]
                    [--with-media] [--rows-per-file N]
                    [--license ID] [--push-to-hub REPO [--private]]
    tubelet diff RELEASE_A RELEASE_B [--json]
    tubelet push RELEASE REPO [--private]

The upload (``--push-to-hub``, ``push``) goes through huggingface_hub: its token
(``HF_TOKEN`` or ``hf auth login``) and endpoint (``HF_ENDPOINT``). A release that fails
to upload stays written; ``tubelet push`` uploads it later.
"""

from __future__ import annotations

import argparse
import json

from tubelet.cli.common import AddCommand, CommandError
from tubelet.engine.errors import one_line
from tubelet.release.build import ReleaseOptions, release
from tubelet.release.diff import diff_releases, format_diff
from tubelet.release.formats import DEFAULT_FORMATS
from tubelet.release.formats.common import BOX_FORMATS, TIME_FORMATS
from tubelet.release.hub import push_release
from tubelet.release.splits import parse_splits


def add_commands(add: AddCommand) -> None:
    """Register ``release``, ``diff`` and ``push`` on the main parser."""
    rel = add("release", "write an immutable, versioned, split, checksummed release of a dataset")
    rel.add_argument("out", help="the dataset folder")
    rel.add_argument("--version", required=True, dest="release_version", metavar="X", help="the release's version name")
    rel.add_argument(
        "--to", required=True, dest="dest", metavar="DIR", help="the release folder (must not exist, or be empty)"
    )
    rel.add_argument(
        "--dataset-version",
        metavar="V",
        help="release this named dataset version (`tubelet versions OUT`); default: the current state",
    )
    rel.add_argument(
        "--splits", default="train=0.8,val=0.1,test=0.1", help="split ratios (default train=0.8,val=0.1,test=0.1)"
    )
    rel.add_argument("--keep-splits", action="store_true", help="keep a video's videos.split where it has one")
    rel.add_argument(
        "--min-score", type=float, help="drop tubelets whose mean_score is below this (and what points at them)"
    )
    rel.add_argument("--reviewed-only", action="store_true", help="only videos with at least one review")
    rel.add_argument("--exclude-rejected", action="store_true", help="drop items whose latest review verdict is reject")
    rel.add_argument(
        "--format",
        default=",".join(DEFAULT_FORMATS),
        help=f"instruction renderings (default {','.join(DEFAULT_FORMATS)}; strefer = videorefer; '' for none)",
    )
    rel.add_argument(
        "--boxes",
        choices=list(BOX_FORMATS),
        default="pixel",
        help="boxes in the renderings' text: pixels, normalised to [0, 1], or 0-1000 (default pixel)",
    )
    rel.add_argument(
        "--times",
        choices=list(TIME_FORMATS),
        default="seconds",
        help="times in the renderings' text: seconds, or relative time tokens <t_k> (default seconds)",
    )
    rel.add_argument(
        "--time-bins", type=int, default=100, help="relative time tokens per video with --times tokens (default 100)"
    )
    rel.add_argument(
        "--with-media",
        action="store_true",
        help="write the videos into media/ (files copied, image folders as H.264 mp4); without it the release "
        "names the same files and meta/media.jsonl lists what goes where",
    )
    rel.add_argument(
        "--license",
        metavar="ID",
        help="the card's Hub licence id (e.g. cc-by-4.0, other); default: from the videos' licence values",
    )
    rel.add_argument(
        "--push-to-hub", metavar="REPO", help="then upload the release to this Hugging Face dataset repo (user/name)"
    )
    rel.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    rel.add_argument("--rows-per-file", type=int, default=1_000_000, help="rows per Parquet file (default 1,000,000)")
    rel.set_defaults(func=cmd_release)

    diff = add("diff", "what was added, removed and changed between two releases, per table and task type")
    diff.add_argument("a", metavar="RELEASE_A")
    diff.add_argument("b", metavar="RELEASE_B")
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.set_defaults(func=cmd_diff)

    push = add("push", "upload a written release to a Hugging Face Hub dataset repository")
    push.add_argument("release_dir", metavar="RELEASE")
    push.add_argument("repo", metavar="REPO", help="the dataset repo, user/name (created when missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.set_defaults(func=cmd_push)


def cmd_release(args: argparse.Namespace) -> int:
    if args.private and not args.push_to_hub:
        raise CommandError("--private needs --push-to-hub REPO")

    options = ReleaseOptions(
        version=args.release_version,
        splits=parse_splits(args.splits),
        keep_splits=args.keep_splits,
        min_score=args.min_score,
        reviewed_only=args.reviewed_only,
        exclude_rejected=args.exclude_rejected,
        formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        boxes=args.boxes,
        times=args.times,
        time_bins=args.time_bins,
        with_media=args.with_media,
        license=args.license,
        dataset_version=args.dataset_version,
        rows_per_file=args.rows_per_file,
    )
    report = release(args.out, args.dest, options)
    print(f"release {report.version} written to {report.path} ({report.files} files, {report.seconds:.2f}s)")
    for table, counts in report.counts.items():
        print(f"  {table:<13} " + (", ".join(f"{s} {n}" for s, n in counts.items()) or "0"))
    if report.dropped:
        print("  dropped: " + ", ".join(f"{k} {v}" for k, v in report.dropped.items() if v))
    # report.warnings were logged (stderr) as they were found: not repeated here
    if args.push_to_hub:
        _push(str(report.path), args.push_to_hub, args.private)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    _push(args.release_dir, args.repo, args.private)
    return 0


def _push(folder: str, repo: str, private: bool) -> None:
    """Upload; any failure is one line that says the release stays where it is."""
    try:
        url = push_release(folder, repo, private=private)
    except Exception as error:  # the Hub's errors are many: each becomes one line
        raise CommandError(
            f"{folder} was not uploaded to {repo} (the release stays; retry with `tubelet push {folder} {repo}`): "
            f"{one_line(str(error))}"
        ) from error
    print(f"uploaded {folder} to {repo}: {url}")


def cmd_diff(args: argparse.Namespace) -> int:
    diff = diff_releases(args.a, args.b)
    print(json.dumps(diff.to_dict(), indent=2, sort_keys=True) if args.json else format_diff(diff))
    return 0
