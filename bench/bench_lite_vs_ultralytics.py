"""Benchmark: lite track end to end vs Ultralytics' own tracker, same weights, same frames.

A: `python -m tubelet run <manifest>` — the `track` pipeline, lite profile with the
   bundled YOLOv8n int8 TFLite weights (keyframes at the profile's default rate, optical
   flow masks on every frame), over the DAVIS-2016 sequences, in a fresh process;
B: a fresh process that loads the same weights with Ultralytics and runs
   `model.track(source=<frame folder>, tracker="bytetrack.yaml")` over every frame of
   the same sequences (boxes and ids, no masks).

Run interleaved, A B A B …, each timed from process start to exit (what a user waits
for: imports, model loading, Ray start-up with `--runner ray`, writing the dataset).
Prints each run, frames/s, the ratio lite/Ultralytics of frames/s per pair and its
median (target ≥ 0.8), and checks that the lite run gave a mask on every visible frame.

ByteTrack needs `lap`: `pip install 'tubelet[bench]'`.

    python bench/bench_lite_vs_ultralytics.py [--assets DIR] [--reps 3] [--runner inline]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from tracking_runs import ROOT, default_assets, lite_yolo, video_list, with_sets

from tubelet.engine.dataset import Dataset

ULTRALYTICS = """
import sys
from ultralytics import YOLO
model = YOLO(sys.argv[1], task="detect")
frames = 0
for folder in sys.argv[2:]:
    for result in model.track(source=folder, tracker="bytetrack.yaml", stream=True, verbose=False, persist=False):
        frames += 1
print(frames)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=default_assets())
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runner", default="inline", choices=["inline", "ray", "process"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a track param of the lite run")
    parser.add_argument("--only", nargs="*", help="these DAVIS sequences only")
    args = parser.parse_args()
    if importlib.util.find_spec("lap") is None:
        raise SystemExit("Ultralytics' ByteTrack needs `lap`: pip install 'tubelet[bench]' (or lap>=0.5)")
    assets = Path(args.assets)
    videos = [{**v, "fps": 24} for v in video_list("davis2016", assets, args.only)]
    n_frames = sum(len(list(Path(v["uri"]).glob("*.jpg"))) for v in videos)
    params = with_sets(lite_yolo(assets), args.set)
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0", RAY_USAGE_STATS_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH", "")] if p)
    print(
        f"{len(videos)} DAVIS-2016 sequences, {n_frames} frames; lite params {json.dumps(params)}; runner {args.runner}"
    )
    lite_s, ultra_s, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            out = f"{tmp}/lite-{rep}"
            manifest = Path(tmp) / f"track-{rep}.yaml"
            manifest.write_text(
                yaml.safe_dump(
                    {
                        "name": "bench-lite",
                        "pipeline": "track",
                        "output": out,
                        "runner": args.runner,
                        "params": params,
                        "videos": videos,
                    }
                )
            )
            a = _timed([sys.executable, "-m", "tubelet", "run", str(manifest), "--no-progress"], env)
            b = _timed(
                [
                    sys.executable,
                    "-c",
                    ULTRALYTICS,
                    str(assets / "models/yolov8n-int8-tflite/yolov8n_int8.tflite"),
                    *[v["uri"] for v in videos],
                ],
                env,
            )
            masks, visible = _mask_coverage(out)
            lite_s.append(a)
            ultra_s.append(b)
            ratios.append(b / a)  # (frames / a) / (frames / b)
            print(
                f"rep {rep + 1}: lite {a:6.1f} s ({n_frames / a:5.2f} frames/s, masks on {masks}/{visible} visible "
                f"frames)  ultralytics {b:6.1f} s ({n_frames / b:5.2f} frames/s)  ratio {b / a:.2f}"
            )
    print(
        f"median: lite {n_frames / statistics.median(lite_s):.2f} frames/s, ultralytics "
        f"{n_frames / statistics.median(ultra_s):.2f} frames/s; ratio lite/ultralytics per pair "
        f"{', '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f} (target >= 0.8)"
    )


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``cmd``; exit code 1 of `tubelet run` (some rows rejected, e.g. a
    track too short) is a finished run."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{cmd[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def _mask_coverage(dataset: str) -> tuple[int, int]:
    """Visible tubelet frames with a mask, and visible tubelet frames, in a lite output."""
    masks = visible = 0
    for row in Dataset(dataset).read_table("tubelets").to_pylist():
        for frame in row["frames"]:
            if frame["visible"]:
                visible += 1
                masks += frame["mask_rle"] is not None
    return masks, visible


if __name__ == "__main__":
    main()
