"""Benchmark: the lite track profile with real YOLO weights on the 8 DAVIS-2016 sequences.

Imports the ground truth, tracks every sequence (YOLO TFLite keyframes + optical flow
with GrabCut), scores the tracks with `tubelet eval` and prints J&F per sequence, the
mean, and the tracking throughput in frames/s.

    python bench/bench_track_davis.py [--assets DIR] [--keyframe-fps 8] [--grabcut-every 3]

``--each-alone`` checks that a sequence's result does not depend on what ran before it:
every sequence is tracked again alone, each in a fresh process, and its J&F printed
beside the one it got among the others (the run above, in list order), with ``equal``
when the two agree to the bit. ``--reverse`` tracks the sequences in reverse order.

``--oracle-boxes`` measures the ceiling of the lite profile's box-to-mask step instead:
every frame's ground-truth box is given to the flow tracker as a box prompt and the
mask it segments from that box alone (GrabCut, as on every detection re-prompt) is
scored against the ground-truth mask. No detector or propagation is involved, so it is
what perfect boxes on every frame would give.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tubelet.annotators.importers.davis import davis_sequence_entries
from tubelet.engine.config import RunConfig
from tubelet.evaluation.report import evaluate_datasets
from tubelet.pipelines import run_manifest

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "models/yolov8n-int8-tflite/yolov8n_int8.tflite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_assets = os.environ.get("TUBELET_ASSETS", str(ROOT.parent / "shared" / "assets"))
    parser.add_argument("--assets", default=default_assets)
    parser.add_argument("--keyframe-fps", type=float, default=8.0)
    parser.add_argument("--grabcut-every", type=int, default=3)
    parser.add_argument("--oracle-boxes", action="store_true", help="score GrabCut on ground-truth boxes instead")
    parser.add_argument("--each-alone", action="store_true", help="also track each sequence alone in a fresh process")
    parser.add_argument("--reverse", action="store_true", help="track the sequences in reverse order")
    parser.add_argument("--sequences", nargs="+", help="only these sequences (default: all)")
    parser.add_argument("--json", action="store_true", help="print J&F per sequence as JSON only")
    args = parser.parse_args()
    assets = Path(args.assets)
    if args.oracle_boxes:
        oracle_boxes(assets)
        return
    videos = davis_sequence_entries(assets / "davis2016", fps=24.0, source="davis2016")
    if args.sequences:
        videos = [v for v in videos if v["video_id"] in args.sequences]
    if args.reverse:
        videos = videos[::-1]
    report, elapsed = track_and_score(videos, assets, args)
    if args.json:
        print(json.dumps({v["video_id"]: v["metrics"]["jf"] for v in report["videos"]}))
        return
    print(f"lite track (YOLO tflite keyframes at {args.keyframe_fps} fps + flow, GrabCut every {args.grabcut_every})")
    print(f"order: {', '.join(v['video_id'] for v in videos)}")
    alone = each_alone(videos, args) if args.each_alone else {}
    print(f"{'sequence':<16} {'J':>6} {'F':>6} {'J&F':>6}" + ("  alone  equal" if alone else ""))
    for video in report["videos"]:
        m = video["metrics"]
        line = f"{video['video_id']:<16} {m['j']:6.3f} {m['f']:6.3f} {m['jf']:6.3f}"
        if alone:
            own, among = alone[video["video_id"]], m["jf"]
            verdict = "equal" if own == among else f"DIFFERS by {own - among:+.2e}"
            line += f"  {own:5.3f}  {verdict}"
        print(line)
    o = report["overall"]
    print(f"{'mean':<16} {o['j']:6.3f} {o['f']:6.3f} {o['jf']:6.3f}   (target J&F >= 0.6)")
    frames = sum(len(list(Path(v["uri"]).iterdir())) for v in videos)  # one JPEG a frame
    print(
        f"pipeline time {elapsed:.1f} s for {frames} frames: {frames / elapsed:.1f} frames/s (probe + detect + track)"
    )


def track_and_score(videos: list[dict[str, Any]], assets: Path, args: argparse.Namespace) -> tuple[dict, float]:
    """Import the ground truth and track ``videos`` inline, in their order: the eval report
    and the tracking time in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        gt = RunConfig(pipeline="import", output=f"{tmp}/gt", runner="inline", videos=videos)
        run_manifest(gt, progress=False, log_to_stderr=False)
        params = {
            "profile": "lite",
            "weights": str(assets / WEIGHTS),
            "keyframe_fps": args.keyframe_fps,
            "tracker_options": {"grabcut_every": args.grabcut_every},
        }
        pred = RunConfig(pipeline="track", output=f"{tmp}/pred", runner="inline", videos=videos, params=params)
        started = time.perf_counter()
        run_manifest(pred, progress=False, log_to_stderr=False)
        elapsed = time.perf_counter() - started
        return evaluate_datasets(f"{tmp}/pred", f"{tmp}/gt").to_dict(), elapsed


def each_alone(videos: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, float]:
    """J&F of each sequence tracked alone, each in a fresh Python process (nothing ran before it)."""
    out: dict[str, float] = {}
    for video in videos:
        command = [sys.executable, __file__, "--json", "--assets", args.assets, "--sequences", video["video_id"]]
        command += ["--keyframe-fps", str(args.keyframe_fps), "--grabcut-every", str(args.grabcut_every)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        out.update(json.loads(done.stdout.strip().splitlines()[-1]))
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
