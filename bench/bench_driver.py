"""What the driver carries: bytes per video it receives, its peak memory by list size,
and whether the rows are the same as the previous runner's.

1. **Bytes per video.** Each video gets a tubelet of ``--frames`` frames whose masks
   weigh ``--mask-kb`` each; the run's ``StreamStats.bytes_to_driver`` (the pickled
   ``PartRecord``s the workers return) is divided by the videos. Beside it: the pickled
   size of one finished task, what a runner that ships tasks back would carry.
2. **Peak RSS of the driver** running a cheap pipeline over a JSONL list of 1,000 and
   of 100,000 rows, each in a fresh process, interleaved (A B A B), ``ru_maxrss`` of the
   driver process only (its workers are other processes).
3. **Rows identical to the previous runner** (``--baseline-src DIR``: a checkout of the
   commit before the change, importable as the old top-level packages): the demo's
   strefer run is made with both and every table's rows are compared as sorted JSON.

    .venv/bin/python bench/bench_driver.py [--videos 40] [--frames 100] [--mask-kb 20]
        [--rows 1000,100000] [--repeats 2] [--runners process,ray] [--baseline-src /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tubelet.engine.config import RunConfig  # noqa: E402 - after the path
from tubelet.engine.stage import run_stage  # noqa: E402
from tubelet.engine.task import VideoTask  # noqa: E402
from tubelet.pipelines import build_pipeline, run_manifest  # noqa: E402

PIPELINE = "tests.engine.pipelines_for_tests:build"

RSS_DRIVER = """
import json, resource, sys, time
from tubelet.engine.config import RunConfig
from tubelet.pipelines import run_manifest
if __name__ == "__main__":
    started = time.perf_counter()
    summary = run_manifest(RunConfig.model_validate(json.load(open(sys.argv[1]))), progress=False, log_to_stderr=False)
    end = next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]
    print("RESULT " + json.dumps({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                   "rss_end_mib": int(end) / 1024, "done": summary.done,
                                   "s": time.perf_counter() - started}))
"""


def bytes_per_video(runner: str, videos: int, frames: int, mask_kb: int, tmp: Path) -> dict[str, float]:
    stages = [{"kind": "make"}, {"kind": "masks", "frames": frames, "mask_bytes": mask_kb * 1024}]
    config = RunConfig.model_validate(
        {
            "pipeline": PIPELINE,
            "output": str(tmp / f"bytes-{runner}"),
            "runner": runner,
            "shard_size": 8,
            "params": {"stages": stages},
            "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:04d}"} for i in range(videos)],
            "ray": {"num_cpus": 2},
        }
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    task = VideoTask(video_id="v0000", uri="synthetic://v0")
    for stage in build_pipeline(PIPELINE, {"stages": stages}).stages:
        [task] = run_stage(stage, [task])
    return {
        "videos": summary.done,
        "driver_bytes_per_video": summary.stream.bytes_per_item,
        "task_bytes": len(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)),
    }


def driver_rss(rows: int, tmp: Path, run: int) -> dict[str, float]:
    listing = tmp / f"list-{rows}.jsonl"
    if not listing.exists():
        with listing.open("w") as f:
            for i in range(rows):
                f.write(json.dumps({"uri": f"synthetic://v{i}", "video_id": f"v{i:07d}", "source": "bench"}) + "\n")
    config = {
        "pipeline": PIPELINE,
        "output": str(tmp / f"rss-{rows}-{run}"),
        "shard_size": 512,
        "params": {"stages": [{"kind": "make", "frames": 1}]},
        "videos": [{"path": str(listing)}],
        "base_dir": str(tmp),
    }
    path = tmp / f"rss-{rows}-{run}.json"
    path.write_text(json.dumps(config))
    script = tmp / "rss_driver.py"
    script.write_text(RSS_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), str(path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def compare_with_baseline(baseline: Path, tmp: Path) -> dict[str, str]:
    """The demo strefer run with the old code (a subprocess on ``baseline``) and this one."""
    from tubelet.cli.sample import write_sample
    from tubelet.engine.dataset import Dataset
    from tubelet.schemas.arrow import TABLE_SCHEMAS

    sample = write_sample(tmp / "sample")
    videos = [{"uri": str(sample.video), "video_id": "scene"}]
    config = {"pipeline": "strefer", "output": str(tmp / "new"), "runner": "inline", "videos": videos}
    run_manifest(RunConfig.model_validate(config), progress=False, log_to_stderr=False)
    old_config = {**config, "output": str(tmp / "old")}
    code = (
        "import json,sys; from engine.config import RunConfig; from engine.run import run_manifest; "
        "run_manifest(RunConfig.model_validate(json.loads(sys.argv[1])), progress=False, log_to_stderr=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(baseline)}
    subprocess.run([sys.executable, "-c", code, json.dumps(old_config)], env=env, check=True, cwd=baseline)
    verdict = {}
    for table in TABLE_SCHEMAS:
        rows = [
            sorted(
                json.dumps(r, sort_keys=True, default=str) for r in Dataset(tmp / side).read_table(table).to_pylist()
            )
            for side in ("old", "new")
        ]
        verdict[table] = (
            f"identical ({len(rows[0])} rows)" if rows[0] == rows[1] else f"DIFFERENT {len(rows[0])} vs {len(rows[1])}"
        )
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--mask-kb", type=int, default=20)
    parser.add_argument("--rows", default="1000,100000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runners", default="process,ray")
    parser.add_argument("--baseline-src", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tubelet-bench-driver-") as folder:
        tmp = Path(folder)
        print(f"1. bytes reaching the driver ({args.frames} frames x {args.mask_kb} KiB of mask per video)")
        for runner in args.runners.split(","):
            print(f"   {runner:8s}", bytes_per_video(runner, args.videos, args.frames, args.mask_kb, tmp))
        sizes = [int(n) for n in args.rows.split(",")]
        print("2. driver peak RSS (interleaved, fresh process each)")
        for run in range(args.repeats):
            for rows in sizes:
                started = time.perf_counter()
                found = driver_rss(rows, tmp, run)
                print(
                    f"   rows {rows:>7}: {found['rss_mib']:7.1f} MiB  ({found['done']} done, {time.perf_counter() - started:.1f} s)"
                )
        if args.baseline_src:
            print("3. rows of the demo strefer run, previous runner vs this one")
            for table, verdict in compare_with_baseline(args.baseline_src, tmp).items():
                print(f"   {table:13s} {verdict}")


if __name__ == "__main__":
    main()
