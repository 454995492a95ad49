"""Benchmark: peak memory of lite tracking on a 5-minute 360p video vs a 30-second one.

Writes two synthetic videos (640x360, 24 fps, mp4v) into a temporary folder: the
sample scene's 72 frames played forwards then backwards (ping-pong, a 6 s period), so
the three objects keep moving, crossing, leaving and entering for the whole video and
the detector and tracker always have work. Each video is tracked by the ``track``
pipeline (profile lite: motion detection on keyframes + optical flow with GrabCut),
inline runner, in its own subprocess; the child's peak RSS comes from ``os.wait4``
(the child's own ``ru_maxrss``, so each run is measured alone).

``--track-fps`` subsamples the tracked frames, the same in both runs (default 6, so
that the 5-minute run fits in a few minutes on a 2-core machine); 0 tracks every frame.

    python bench/bench_track_memory.py [--track-fps 6] [--keyframe-fps 2]
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

ROOT = Path(__file__).resolve().parents[1]


def write_video(path: Path, seconds: float) -> int:
    """The sample scene ping-ponged for ``seconds``; returns the number of frames."""
    import cv2

    from tubelet.cli import sample

    bg = sample.background()
    period = 2 * sample.N_FRAMES
    scenes = [sample.render(f, bg)[0] for f in range(sample.N_FRAMES)]  # render each once
    n = int(round(seconds * sample.FPS))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), sample.FPS, (sample.WIDTH, sample.HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for i in range(n):
        k = i % period
        writer.write(scenes[k if k < sample.N_FRAMES else period - 1 - k])
    writer.release()
    return n


def child(uri: str, out: str, track_fps: float, keyframe_fps: float) -> None:
    """One tracking run (in a subprocess): print a JSON line with its figures."""
    import resource

    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    params: dict = {"profile": "lite", "keyframe_fps": keyframe_fps}
    if track_fps > 0:
        params["track_fps"] = track_fps
    config = RunConfig(
        pipeline="track", output=out, runner="inline", params=params, videos=[{"uri": uri, "video_id": Path(uri).stem}]
    )
    started = time.perf_counter()
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    elapsed = time.perf_counter() - started
    import duckdb

    shards = str(Path(out) / "data" / "tubelets" / "*.parquet")
    try:
        n_tubelets, n_rows = duckdb.sql(f"select count(*), sum(len(frames)) from read_parquet('{shards}')").fetchall()[
            0
        ]
    except Exception:  # noqa: BLE001 - a figure for the table only
        n_tubelets, n_rows = -1, -1
    print(
        json.dumps(
            {
                "elapsed_s": elapsed,
                "done": summary.done,
                "failed": summary.failed,
                "tubelets": n_tubelets,
                "tubelet_frames": n_rows,
                "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        ),
        flush=True,
    )


def run_child(uri: Path, out: Path, track_fps: float, keyframe_fps: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(uri), str(out), str(track_fps), str(keyframe_fps)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    stdout = proc.stdout.read()  # type: ignore[union-attr]
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(peak_rss_mib=usage.ru_maxrss / 1024, wall_s=wall)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track-fps", type=float, default=6.0, help="0: track every frame")
    parser.add_argument("--keyframe-fps", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        videos = {}
        for name, seconds in (("30s", 30.0), ("5min", 300.0)):
            path = Path(tmp) / f"synthetic_{name}.mp4"
            videos[name] = (path, write_video(path, seconds))
        print(
            f"wrote 2 videos (640x360, 24 fps, mp4v) in {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k} {n} frames {p.stat().st_size / 2**20:.1f} MiB" for k, (p, n) in videos.items())
        )
        fps_note = "every frame" if args.track_fps <= 0 else f"{args.track_fps:g} fps (both runs)"
        print(
            f"track pipeline, profile lite, inline runner, keyframes at {args.keyframe_fps:g} fps, "
            f"tracked frames at {fps_note}; one subprocess per run"
        )
        results = {}
        for name, (path, n) in videos.items():
            results[name] = r = run_child(path, Path(tmp) / f"out_{name}", args.track_fps, args.keyframe_fps)
            tracked = n if args.track_fps <= 0 else int(round(n / 24.0 * args.track_fps))
            r.update(frames=n, tracked=tracked)
        print(
            f"{'video':<6} {'frames':>7} {'tracked~':>8} {'tubelets':>8} {'run s':>7} {'video f/s':>10} "
            f"{'tracked f/s':>11} {'tubelet frames':>14} {'peak RSS MiB':>13}"
        )
        for name, r in results.items():
            print(
                f"{name:<6} {r['frames']:>7} {r['tracked']:>8} {r['tubelets']:>8} {r['elapsed_s']:7.1f} "
                f"{r['frames'] / r['elapsed_s']:10.1f} {r['tracked'] / r['elapsed_s']:11.1f} {r['tubelet_frames']:>14} {r['peak_rss_mib']:13.1f}"
            )
            if r["failed"] or not r["done"]:
                print(f"  !! {name}: done={r['done']} failed={r['failed']}")
        ratio = results["5min"]["peak_rss_mib"] / results["30s"]["peak_rss_mib"]
        print(f"peak RSS 5 min / 30 s: {ratio:.2f}x  (target <= 1.3x)")


if __name__ == "__main__":
    main()
