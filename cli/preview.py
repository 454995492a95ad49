"""``tubelet preview`` and ``tubelet report``: look at a dataset.

Commands::

    tubelet preview OUT --video ID --to FILE.mp4|FILE.gif|FILE.png [--fps N] [--max-frames N]
                        [--scale S] [--contact-sheet FILE.png] [--sheet-frames N]
    tubelet preview OUT --instruction ID --to FILE.png
    tubelet report OUT --to DIR [--videos N]

A ``--to`` ending in ``.png`` with ``--video`` writes the contact sheet only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tubelet.cli.common import AddCommand
from tubelet.preview.contact_sheet import render_contact_sheet
from tubelet.preview.instruction_view import render_instruction
from tubelet.preview.overlay import VideoRows
from tubelet.preview.report import write_report
from tubelet.preview.video_preview import open_dataset, render_preview


def add_commands(add: AddCommand) -> None:
    """Register ``preview`` and ``report`` on the main parser."""
    preview = add(
        "preview",
        "draw a video's tubelets, expressions and events (mp4, GIF, contact sheet) "
        "or one instruction's grounding (PNG)",
    )
    preview.add_argument("out", help="the dataset folder")
    what = preview.add_mutually_exclusive_group(required=True)
    what.add_argument("--video", metavar="ID", help="a video id")
    what.add_argument("--instruction", metavar="ID", help="an instruction id")
    preview.add_argument(
        "--to", required=True, metavar="FILE", help=".mp4 or .gif (video), .png (contact sheet or instruction)"
    )
    preview.add_argument("--fps", type=float, help="sample the video at this rate (default: every frame)")
    preview.add_argument("--max-frames", type=int, help="at most this many frames, spread over the video")
    preview.add_argument("--scale", type=float, default=1.0, help="resize frames by this factor (default 1)")
    preview.add_argument("--contact-sheet", metavar="FILE.png", help="also write a contact sheet here")
    preview.add_argument("--sheet-frames", type=int, default=12, help="frames on the contact sheet (default 12)")
    preview.set_defaults(func=cmd_preview)

    report = add("report", "write a static HTML report (statistics, plots, contact sheets) viewable offline")
    report.add_argument("out", help="the dataset folder")
    report.add_argument("--to", required=True, metavar="DIR", help="folder for index.html and assets/")
    report.add_argument("--videos", type=int, default=6, help="videos with a contact sheet (default 6)")
    report.add_argument("--sheet-frames", type=int, default=8, help="frames per contact sheet (default 8)")
    report.set_defaults(func=cmd_report)


def cmd_preview(args: argparse.Namespace) -> int:
    to = Path(args.to)
    if args.instruction:
        if to.suffix.lower() != ".png":
            raise ValueError(f"--instruction writes a PNG; got --to {args.to}")
        _, layout = render_instruction(args.out, args.instruction, to)
        print(f"wrote {to} ({layout.width}x{layout.height}, frames {layout.frames})")
        return 0

    rows = VideoRows.load(open_dataset(args.out), args.video)
    sheet = Path(args.contact_sheet) if args.contact_sheet else None
    if to.suffix.lower() == ".png":
        sheet, to = to, None  # type: ignore[assignment]
    if to is not None:
        result = render_preview(
            args.out, args.video, to, fps=args.fps, max_frames=args.max_frames, scale=args.scale, rows=rows
        )
        print(
            f"wrote {result.path} ({result.format}, {result.frames} frames, {result.width}x{result.height} "
            f"at {result.fps:g} fps; {result.frames_per_s:.1f} frames/s)"
        )
    if sheet is not None:
        image = render_contact_sheet(None, args.video, sheet, n=args.sheet_frames, rows=rows)
        print(f"wrote {sheet} ({image.width}x{image.height})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    result = write_report(args.out, args.to, n_videos=args.videos, sheet_frames=args.sheet_frames)
    print(f"wrote {result.index} ({len(result.assets)} images; previews of {len(result.videos)} videos)")
    return 0
