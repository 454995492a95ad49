"""Benchmark: the lite track profile with real YOLO weights on the 8 DAVIS-2016 sequences.

Imports the ground truth, tracks every sequence (YOLO TFLite keyframes + optical flow
with GrabCut), scores the tracks with `tubelet eval` and prints J&F per sequence, the
mean, and the tracking throughput in frames/s.

    python bench/bench_track_davis.py [--assets DIR] [--keyframe-fps 8] [--grabcut-every 3]

``--oracle-boxes`` measures the ceiling of the lite profile's box-to-mask step instead:
every frame's ground-truth box is given to the flow tracker as a box prompt and the
mask it segments from that box alone (GrabCut, as on every detection re-prompt) is
scored against the ground-truth mask. No detector or propagation is involved, so it is
what perfect boxes on every frame would give.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

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
    args = parser.parse_args()
    assets = Path(args.assets)
    if args.oracle_boxes:
        oracle_boxes(assets)
        return
    videos = [{"path": str(ROOT / "manifests" / "lists" / "davis2016.jsonl"), "defaults": {"fps": 24}}]
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
        report = evaluate_datasets(f"{tmp}/pred", f"{tmp}/gt").to_dict()
    print(f"lite track (YOLO tflite keyframes at {args.keyframe_fps} fps + flow, GrabCut every {args.grabcut_every})")
    print(f"{'sequence':<16} {'J':>6} {'F':>6} {'J&F':>6}")
    for video in report["videos"]:
        m = video["metrics"]
        print(f"{video['video_id']:<16} {m['j']:6.3f} {m['f']:6.3f} {m['jf']:6.3f}")
    o = report["overall"]
    print(f"{'mean':<16} {o['j']:6.3f} {o['f']:6.3f} {o['jf']:6.3f}   (target J&F >= 0.6)")
    frames = 391  # the 8 sequences: 50+40+60+52+50+50+49+40
    print(
        f"pipeline time {elapsed:.1f} s for {frames} frames: {frames / elapsed:.1f} frames/s (probe + detect + track)"
    )


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
