"""Preview rendering speed: frames/s of `tubelet preview` to mp4 and GIF, and of a contact sheet.

Uses a DAVIS-2016 sequence (../shared/assets/davis2016, imported from its masks and run
through strefer lite) or, when the assets are absent, the synthetic sample.

    .venv/bin/python bench/bench_preview.py [--sequence blackswan] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(tmp: Path, sequence: str) -> tuple[Path, str, str]:
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    davis = ROOT.parent / "shared" / "assets" / "davis2016"
    if (davis / "JPEGImages" / "480p" / sequence).is_dir():
        videos = [
            {
                "uri": str(davis / "JPEGImages" / "480p" / sequence),
                "video_id": sequence,
                "fps": 24.0,
                "annotations": {"format": "davis", "path": str(davis / "Annotations" / "480p" / sequence)},
            }
        ]
        label = f"DAVIS-2016 {sequence}"
    else:
        from tubelet.cli.sample import write_sample

        sample = write_sample(tmp / "sample")
        sequence = "scene"
        videos = [
            {
                "uri": str(sample.video),
                "video_id": sequence,
                "annotations": {"format": "davis", "path": str(tmp / "sample" / "masks")},
            }
        ]
        label = "synthetic sample"
    config = RunConfig(
        pipeline="strefer", output=str(tmp / "out"), runner="inline", videos=videos, params={"source": "import"}
    )
    run_manifest(config, progress=False, log_to_stderr=False)
    return tmp / "out", sequence, label


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tubelet.preview.contact_sheet import render_contact_sheet
    from tubelet.preview.overlay import VideoRows
    from tubelet.preview.video_preview import open_dataset, render_preview

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root, video_id, label = build(tmp, args.sequence)
        rows = VideoRows.load(open_dataset(root), video_id)
        v = rows.video
        print(
            f"{label}: {v.width}x{v.height}, {v.n_frames} frames, {len(rows.tubelets)} tubelets, {len(rows.events)} events"
        )
        cases = [("mp4", 1.0), ("mp4", 0.5), ("gif", 1.0), ("gif", 0.5)]
        for fmt, scale in cases:
            best = None
            for _ in range(args.repeat):
                r = render_preview(root, video_id, tmp / f"p.{fmt}", scale=scale, rows=rows)
                best = r if best is None or r.seconds < best.seconds else best
            size = (tmp / f"p.{fmt}").stat().st_size
            print(
                f"  {fmt:4s} scale {scale:<4g} {best.width}x{best.height}: {best.frames} frames in "
                f"{best.seconds:.3f} s = {best.frames_per_s:6.1f} frames/s  ({size / 1024:.0f} KiB)"
            )
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            render_contact_sheet(None, video_id, tmp / "sheet.png", n=12, rows=rows)
            times.append(time.perf_counter() - t0)
        print(f"  contact sheet (12 frames): {min(times):.3f} s")


if __name__ == "__main__":
    main()
