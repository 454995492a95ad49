"""``tubelet export``: a dataset in a standard format (MOT, DAVIS, YouTube-VIS, WebDataset).

    tubelet export OUT --format mot|davis|youtube-vis|webdataset --to DIR
                   [--videos ID ...] [--split NAME] [--categories NAME ...] [--dataset-version V]
                   [--no-frames] [--jpeg-quality Q]
                   [--role gt|tracker] [--benchmark MOT17] [--tracker NAME]     (mot)
                   [--resolution 480p]                                          (davis)
                   [--shard-size N]                                             (webdataset)

Exit code 1 when the export was written but some items could not be (box-only tubelets
in a mask format, objects past a format's limit): each is listed in
``DIR/tubelet_export.json`` and warned about.
"""

from __future__ import annotations

import argparse

from tubelet.cli.common import EXIT_OK, EXIT_REJECTS, AddCommand, CommandError, reading
from tubelet.release.exports import FORMATS, ExportError, ExportExistsError, ExportOptions, export

#: How many left-out items the command prints (all of them are in tubelet_export.json).
SHOWN_LEFT_OUT = 10


def add_commands(add: AddCommand) -> None:
    """Register ``export`` on the main parser."""
    cmd = add("export", "write a dataset in a standard format: MOT txt, DAVIS PNGs, YouTube-VIS JSON, WebDataset tars")
    cmd.add_argument("out", help="the dataset (a folder or a URL such as s3://bucket/prefix)")
    cmd.add_argument("--format", required=True, choices=sorted(FORMATS), help="the format to write")
    cmd.add_argument(
        "--to", required=True, dest="dest", metavar="DIR", help="the export folder (must not exist, or be empty)"
    )
    cmd.add_argument("--videos", nargs="+", default=[], metavar="ID", help="only these videos (default: all)")
    cmd.add_argument("--split", metavar="NAME", help="only the videos of this split (videos.split)")
    cmd.add_argument("--categories", nargs="+", default=[], metavar="NAME", help="only tubelets of these categories")
    cmd.add_argument("--dataset-version", metavar="V", help="export this named version (`tubelet versions OUT`)")
    cmd.add_argument(
        "--no-frames",
        dest="frames",
        action="store_false",
        help="mot (gt), davis, youtube-vis: write the annotations only, not the frames as JPEG",
    )
    cmd.add_argument("--jpeg-quality", type=int, default=95, help="frames not stored as JPEG are encoded at this (95)")
    mot = cmd.add_argument_group("mot")
    mot.add_argument(
        "--role",
        choices=["gt", "tracker"],
        default="gt",
        help="gt: gt.txt + seqinfo.ini + seqmaps (DIR is TrackEval's GT_FOLDER); tracker: result files "
        "(DIR is TRACKERS_FOLDER). Default gt",
    )
    mot.add_argument("--benchmark", default="MOT17", help="the <benchmark>-<split> folder name (default MOT17)")
    mot.add_argument("--tracker", default="tubelet", help="the tracker's folder name, --role tracker (default tubelet)")
    davis = cmd.add_argument_group("davis")
    davis.add_argument("--resolution", default="480p", help="the resolution folder name; frames keep their size (480p)")
    wds = cmd.add_argument_group("webdataset")
    wds.add_argument("--shard-size", type=int, default=100, metavar="N", help="samples (videos) per tar shard (100)")
    cmd.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    options = ExportOptions(
        format=args.format,
        videos=tuple(args.videos),
        split=args.split,
        categories=tuple(args.categories),
        dataset_version=args.dataset_version,
        frames=args.frames,
        jpeg_quality=args.jpeg_quality,
        role=args.role,
        benchmark=args.benchmark,
        tracker=args.tracker,
        resolution=args.resolution,
        shard_size=args.shard_size,
    )
    try:
        with reading(args.out):  # a dataset that cannot be read: one line naming it
            try:
                report = export(args.out, args.dest, options)
            except (ExportError, ExportExistsError) as error:  # before `reading` takes them for read errors
                raise CommandError(str(error)) from None
    except KeyError as error:  # an unknown --dataset-version: the message lists the known ones
        raise CommandError(str(error.args[0] if error.args else error)) from None
    counts = report.counts
    print(
        f"{report.format} export written to {report.path}: {counts.get('videos', 0)} videos, "
        f"{counts.get('tubelets', 0)} tubelets ({report.seconds:.2f}s)"
    )
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("videos", "tubelets")))
    if not report.left_out:
        return EXIT_OK
    print(f"  left out {len(report.left_out)} item(s) (all listed in tubelet_export.json):")
    for entry in report.left_out[:SHOWN_LEFT_OUT]:
        print(f"    {entry['item']}: {entry['reason']}")
    if len(report.left_out) > SHOWN_LEFT_OUT:
        print(f"    … and {len(report.left_out) - SHOWN_LEFT_OUT} more")
    return EXIT_REJECTS
