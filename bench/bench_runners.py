"""What a user waits for: ``tubelet run`` of the ingest pipeline, wall time including
start-up, per runner, against a plain ``multiprocessing.Pool(2)`` script.

The bundled sample's mp4 is copied N times (distinct files, so every probe opens its
own). Each measurement is a fresh process, started and timed from outside (interpreter
start, imports, Ray or pool start-up, the run, shut-down), and the sides are interleaved
(A B C D A B C D …) so a change of the machine's load hits every side alike.

- ``pool``: the baseline script — ``Pool(2).map`` of decord metadata (fps, frames,
  size), then one pyarrow Parquet file of the rows;
- ``auto``: ``tubelet run`` as a user types it (the default runner; on this machine a
  process pool, since no GPU stage and no cluster address);
- ``ray``: ``--runner ray`` (a private Ray instance, tasks on both CPUs);
- ``inline``: ``--runner inline`` (one process).

    .venv/bin/python bench/bench_runners.py [--videos 1,10,100,1000] [--repeats 2] [--sides pool,auto,ray,inline]
        [--no-decode-check]

By default ``tubelet run`` ingests as a user's manifest does, decoding the first and last
frame of every video to catch truncated files (about 7 ms a video here); the pool script
reads metadata only (about 2 ms). ``--no-decode-check`` compares like with like.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUBELET = Path(sys.executable).with_name("tubelet")

POOL_SCRIPT = """
import sys
from multiprocessing import Pool

import decord
import pyarrow as pa
import pyarrow.parquet as pq


def meta(path):
    reader = decord.VideoReader(path)
    height, width = reader[0].shape[:2] if len(reader) else (0, 0)
    return {"uri": path, "fps": reader.get_avg_fps(), "n_frames": len(reader), "width": width, "height": height}


if __name__ == "__main__":
    paths = open(sys.argv[1]).read().split()
    with Pool(2) as pool:
        rows = pool.map(meta, paths)
    pq.write_table(pa.Table.from_pylist(rows), sys.argv[2])
"""


def make_videos(tmp: Path, n: int) -> Path:
    """A JSONL list of ``n`` copies of the sample's mp4 (and the same paths as plain text)."""
    sample = tmp / "sample"
    if not sample.exists():
        subprocess.run([str(TUBELET), "sample", str(sample)], check=True, capture_output=True)
    folder = tmp / f"videos-{n}"
    if not folder.exists():
        folder.mkdir()
        for i in range(n):
            shutil.copyfile(sample / "scene.mp4", folder / f"v{i:05d}.mp4")
    listing = tmp / f"list-{n}.jsonl"
    paths = sorted(str(p) for p in folder.glob("*.mp4"))
    listing.write_text("".join(json.dumps({"uri": p}) + "\n" for p in paths))
    (tmp / f"paths-{n}.txt").write_text("\n".join(paths))
    return listing


def manifest(tmp: Path, n: int, decode_check: bool) -> Path:
    path = tmp / f"ingest-{n}.yaml"
    params = "" if decode_check else "params: {decode_check: false}\n"
    path.write_text(f"pipeline: ingest\noutput: out\nshard_size: 32\n{params}videos:\n  - path: list-{n}.jsonl\n")
    return path


def timed(side: str, tmp: Path, n: int, run: int, decode_check: bool = True) -> float:
    """Wall seconds of one fresh process doing the ingest of ``n`` videos."""
    out = tmp / f"out-{side}-{n}-{run}"
    if side == "pool":
        (tmp / "pool.py").write_text(POOL_SCRIPT)
        argv = [sys.executable, str(tmp / "pool.py"), str(tmp / f"paths-{n}.txt"), str(out) + ".parquet"]
    else:
        argv = [str(TUBELET), "run", str(manifest(tmp, n, decode_check)), "--out", str(out), "--no-progress"]
        if side != "auto":
            argv += ["--runner", side]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{side} n={n} failed: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", default="1,10,100,1000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sides", default="pool,auto,ray,inline")
    parser.add_argument(
        "--no-decode-check",
        action="store_true",
        help="ingest without decoding the first and last frame (metadata only, like the pool script)",
    )
    args = parser.parse_args()
    sides = args.sides.split(",")
    with tempfile.TemporaryDirectory(prefix="tubelet-bench-runners-") as folder:
        tmp = Path(folder)
        for n in (int(v) for v in args.videos.split(",")):
            make_videos(tmp, n)
            times: dict[str, list[float]] = {side: [] for side in sides}
            for run in range(args.repeats):
                for side in sides:
                    times[side].append(timed(side, tmp, n, run, not args.no_decode_check))
            line = "  ".join(f"{s} {statistics.median(t):6.2f} s" for s, t in times.items())
            print(f"N={n:>5}: {line}")
            if "pool" in times:
                ratios = "  ".join(
                    f"{s}/pool {statistics.median(t) / statistics.median(times['pool']):4.2f}x"
                    for s, t in times.items()
                    if s != "pool"
                )
                print(f"         {ratios}")
            if "inline" in times and "ray" in times:
                speedup = statistics.median(times["inline"]) / statistics.median(times["ray"])
                print(f"         ray is {speedup:4.2f}x faster than inline")
            for s, t in times.items():
                print(f"         {s:6s} runs: {', '.join(f'{x:.2f}' for x in t)}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
