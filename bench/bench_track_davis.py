"""Benchmark: the lite track profile with real YOLO weights on the 8 DAVIS-2016 sequences.

Imports the ground truth, tracks every sequence (YOLO TFLite keyframes + optical flow
with GrabCut), scores the tracks with `tubelet eval` and prints J&F per sequence, the
mean, and the tracking throughput in frames/s.

    python bench/bench_track_davis.py [--assets DIR] [--keyframe-fps 8] [--grabcut-every 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from engine.config import RunConfig
from engine.evaluation.report import evaluate_datasets
from engine.run import run_manifest

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "models/yolov8n-int8-tflite/yolov8n_int8.tflite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_assets = os.environ.get("TUBELET_ASSETS", str(ROOT.parent / "shared" / "assets"))
    parser.add_argument("--assets", default=default_assets)
    parser.add_argument("--keyframe-fps", type=float, default=8.0)
    parser.add_argument("--grabcut-every", type=int, default=3)
    args = parser.parse_args()
    assets = Path(args.assets)
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
    print(f"pipeline time {elapsed:.1f} s for {frames} frames: {frames / elapsed:.1f} frames/s (probe + detect + track)")


if __name__ == "__main__":
    main()
