"""Benchmark: a release of ~100,000 instructions, streamed.

Builds a synthetic dataset with bench_instructions' generator (videos of ``--per-video``
tubelets, lite timeline, all instruction task types, committed by the real ShardWriter in
shards of ``--shard-size`` videos) until it holds ``--instructions`` instructions, then
runs ``tubelet.release.build.release`` (all three renderings) in a fresh subprocess and
prints its seconds, rows/s and peak RSS (``ru_maxrss``), next to the RSS of a process
that only imported the same modules, so the release's own memory shows.

    python bench/bench_release.py [--instructions 100000] [--per-video 10] [--shard-size 32] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(root: Path, n_instructions: int, per_video: int, shard_size: int, seed: int) -> tuple[int, int]:
    from bench_instructions import synthetic_task

    from tubelet.annotators.instructions.stage import GenerateInstructions
    from tubelet.annotators.language.timeline import ActionTimeline
    from tubelet.engine.writer import ShardWriter
    from tubelet.schemas.info import DatasetInfo, write_info

    rng = random.Random(seed)
    timeline, instruct = ActionTimeline(mode="lite"), GenerateInstructions(seed=seed)
    total, videos = 0, 0
    with ShardWriter(root, shard_size=shard_size) as writer:
        while total < n_instructions:
            batch = [synthetic_task(videos + i, per_video, rng) for i in range(shard_size)]
            for i, task in enumerate(batch):
                task.video.source = f"source{(videos + i) // 3}"  # clips of one source: 3 videos
                task.video.licence = "CC-BY-4.0" if (videos + i) % 2 else "CC0"
            timeline.process(batch)
            instruct.process(batch)
            for task in batch:
                writer.add(task)
                total += len(task.instructions)
            videos += len(batch)
    write_info(
        root / "meta" / "info.json",
        DatasetInfo(pipeline="bench", config_hash="bench", model_ids={"instructions": "templates"}),
    )
    return videos, total


def _child(src: str, dest: str, imports_only: bool) -> None:
    import tubelet.annotators.instructions.renderers
    import tubelet.release.card  # noqa: F401
    from tubelet.release.build import ReleaseOptions, release

    out: dict[str, object] = {}
    if not imports_only:
        started = time.perf_counter()
        report = release(src, dest, ReleaseOptions(version="bench"))
        out = {
            "seconds": time.perf_counter() - started,
            "counts": report.counts,
            "files": report.files,
            "rendered": report.rendered,
        }
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", type=int, default=100_000)
    parser.add_argument("--per-video", type=int, default=10)
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="build the dataset and release here (default: a temporary folder)")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(args._child[0], args._child[1], args._child[2] == "imports")
        return
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-release-"))
    src, dest = tmp / "dataset", tmp / "release"
    started = time.perf_counter()
    videos, total = build(src, args.instructions, args.per_video, args.shard_size, args.seed)
    print(
        f"built {videos} videos, {total} instructions in {time.perf_counter() - started:.1f} s "
        f"({sum(p.stat().st_size for p in src.rglob('*.parquet')) / 2**20:.1f} MiB of Parquet)"
    )

    def child(mode: str) -> dict:
        run = subprocess.run(
            [sys.executable, __file__, "--_child", str(src), str(dest), mode],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(run.stdout.strip().splitlines()[-1])

    base = child("imports")
    res = child("release")
    n = sum(res["counts"]["instructions"].values())
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) / 2**20
    print(
        f"release: {n} instructions ({', '.join(f'{s} {c}' for s, c in res['counts']['instructions'].items())}), "
        f"{res['files']} files, {size:.1f} MiB, in {res['seconds']:.1f} s ({n / res['seconds']:.0f} instructions/s)"
    )
    print("rows: " + ", ".join(f"{t} {sum(c.values())}" for t, c in res["counts"].items()))
    print(
        f"peak RSS: {res['maxrss_mib']:.0f} MiB (a process that only imports the modules: "
        f"{base['maxrss_mib']:.0f} MiB; the release's own: {res['maxrss_mib'] - base['maxrss_mib']:.0f} MiB)"
    )
    print(f"dataset and release in {tmp}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
