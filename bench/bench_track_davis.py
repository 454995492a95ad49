"""Benchmark: the lite track profile with real YOLO weights on the 8 DAVIS-2016 sequences.

Imports the ground truth, tracks every sequence (YOLO TFLite keyframes + optical flow
masks), scores the tracks with `tubelet eval` and prints per sequence J, F, J&F, the
tracks per ground-truth object (fragmentation: how many predicted tracks the one object
was matched to, frame by frame at box IoU 0.5), ID switches and the tracks made, then
the means and the pipeline's throughput in frames/s.

    python bench/bench_track_davis.py [--assets DIR] [--keyframe-fps 8] [--set KEY=JSON ...]

``--set tracker_options.grabcut_every=3`` (any key of the track pipeline's params, value
as JSON) measures another configuration. ``--oracle-boxes`` measures the ceiling of the
lite profile's box-to-mask step instead: every frame's ground-truth box is given to the
flow tracker as a box prompt and the mask it segments from that box alone (GrabCut, as
on a new object) is scored against the ground-truth mask. No detector or propagation is
involved, so it is what perfect boxes on every frame would give.

``--each-alone`` checks that a sequence's result does not depend on what ran before it:
every sequence is tracked again alone, each in a fresh process, and its J&F printed
beside the one it got among the others (the run above, in list order), with ``equal``
when the two agree to the bit. ``--reverse`` tracks the sequences in reverse order.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tracking_runs import default_assets, fmt, import_gt, lite_yolo, scores, track, video_list, with_sets

DAVIS_DEFAULTS = {"fps": 24}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=default_assets())
    parser.add_argument("--keyframe-fps", type=float, default=8.0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="a track param, e.g. tracker_options.grabcut_every=3 (dots reach into mappings)",
    )
    parser.add_argument("--only", nargs="*", help="these sequences only")
    parser.add_argument("--json", help="also write the per-sequence figures here")
    parser.add_argument("--oracle-boxes", action="store_true", help="score GrabCut on ground-truth boxes instead")
    parser.add_argument("--each-alone", action="store_true", help="also track each sequence alone in a fresh process")
    parser.add_argument("--reverse", action="store_true", help="track the sequences in reverse order")
    args = parser.parse_args()
    assets = Path(args.assets)
    if args.oracle_boxes:
        oracle_boxes(assets)
        return
    params = with_sets(lite_yolo(assets, keyframe_fps=args.keyframe_fps), args.set)
    videos = video_list("davis2016", assets, args.only)
    if args.reverse:
        videos = videos[::-1]
    with tempfile.TemporaryDirectory() as tmp:
        import_gt(videos, f"{tmp}/gt", DAVIS_DEFAULTS)
        elapsed = track(videos, f"{tmp}/pred", params, DAVIS_DEFAULTS)
        report = scores(f"{tmp}/pred", f"{tmp}/gt")
    print(f"lite track, YOLO tflite keyframes at {args.keyframe_fps} fps + flow; params {json.dumps(params)}")
    print(f"order: {', '.join(v['video_id'] for v in videos)}")
    alone = each_alone(videos, args) if args.each_alone else {}
    print(
        f"{'sequence':<16} {'J':>6} {'F':>6} {'J&F':>6} {'tracks/obj':>10} {'IDSW':>5} {'tracks':>6}"
        + ("  alone  equal" if alone else "")
    )
    rows = {}
    for video in report["videos"]:
        m = video["metrics"]
        rows[video["video_id"]] = {k: m.get(k) for k in ("j", "f", "jf", "tracks_per_object", "id_switches")}
        line = (
            f"{video['video_id']:<16} {fmt(m['j']):>6} {fmt(m['f']):>6} {fmt(m['jf']):>6} "
            f"{fmt(m['tracks_per_object'], 2):>10} {fmt(m['id_switches']):>5} {video['n_pred']:>6}"
        )
        if alone:
            own, among = alone[video["video_id"]], m["jf"]
            line += f"  {fmt(own):>5}  " + ("equal" if own == among else f"DIFFERS by {own - among:+.2e}")
        print(line)
    o = report["overall"]
    print(
        f"{'mean':<16} {fmt(o['j']):>6} {fmt(o['f']):>6} {fmt(o['jf']):>6} {fmt(o['tracks_per_object'], 2):>10} "
        f"{fmt(o['id_switches']):>5} {o['n_pred']:>6}   (target J&F >= 0.6)"
    )
    frames = sum(len(list((Path(v["uri"])).glob("*.jpg"))) for v in videos)
    print(
        f"pipeline time {elapsed:.1f} s for {frames} frames: {frames / elapsed:.1f} frames/s (probe + detect + track)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"params": params, "sequences": rows, "overall": o, "seconds": elapsed}))


def each_alone(videos: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, float]:
    """J&F of each sequence tracked alone, each in a fresh Python process (nothing ran before it)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for video in videos:
            figures = Path(tmp) / f"{video['video_id']}.json"
            command = [sys.executable, __file__, "--assets", args.assets, "--keyframe-fps", str(args.keyframe_fps)]
            command += [arg for item in args.set for arg in ("--set", item)]
            command += ["--only", video["video_id"], "--json", str(figures)]
            subprocess.run(command, check=True, capture_output=True, text=True)
            out[video["video_id"]] = json.loads(figures.read_text())["sequences"][video["video_id"]]["jf"]
    return out


def oracle_boxes(assets: Path) -> None:
    """J, F and J&F of the flow tracker's box segmentation given each frame's true box."""
    import numpy as np
    from PIL import Image

    from tubelet.annotators.tracking.flow import FlowPropagator
    from tubelet.engine.video import VideoReader
    from tubelet.evaluation.davis import contour_accuracy, region_similarity
    from tubelet.schemas.geometry import mask_to_box

    print("box-to-mask ceiling: FlowPropagator box prompt (GrabCut) on every frame's ground-truth box")
    print(f"{'sequence':<16} {'J':>6} {'F':>6} {'J&F':>6}")
    rows = []
    for seq in sorted(p.name for p in (assets / "davis2016" / "Annotations" / "480p").iterdir()):
        gts = sorted((assets / "davis2016" / "Annotations" / "480p" / seq).glob("*.png"))
        masks = [np.asarray(Image.open(p)) > 0 for p in gts]
        tracker = FlowPropagator()
        tracker.start(VideoReader(str(assets / "davis2016" / "JPEGImages" / "480p" / seq), fps=24), range(len(gts)))
        j, f = [], []
        for idx, gt in enumerate(masks):
            tracker.reset()
            tracker.add_prompt(idx, 1, box=mask_to_box(gt))
            ((_, regions),) = list(tracker.propagate(idx, idx))
            pred = regions[1].mask_array if regions[1].mask is not None else np.zeros_like(gt)
            j.append(region_similarity(pred, gt))
            f.append(contour_accuracy(pred, gt))
        row = (float(np.mean(j)), float(np.mean(f)))
        rows.append(row)
        print(f"{seq:<16} {row[0]:6.3f} {row[1]:6.3f} {sum(row) / 2:6.3f}")
    mj, mf = (float(np.mean(v)) for v in zip(*rows))
    print(f"{'mean':<16} {mj:6.3f} {mf:6.3f} {(mj + mf) / 2:6.3f}")


if __name__ == "__main__":
    main()
