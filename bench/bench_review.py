"""Benchmark: the Label Studio review loop at 200 videos, and keyframe compression.

Starts a real Label Studio on a free loopback port (a copy of the migrated template
``.cache/label-studio-template`` when there is one, as the review tests do; else a fresh
data dir, ~50 s of migrations) and stops it, by its pid, at the end. Then:

1. A synthetic dataset of ``--videos`` videos written through ``ShardWriter``: ONE real
   H.264 clip (640x360, 240 frames at 24 fps, moving textured squares) that every video
   row points at (distinct video ids), ``--per-video`` random-walk tubelets each (those
   of ``bench_instructions.synthetic_task``: a fifth leave the view and come back; boxes
   only), the lite action timeline cut to 5 events per video, and instructions from
   ``GenerateInstructions`` (all task types, at most 2 each: ~20 per video).
2. ``push`` timed: 200 new tasks (must be ONE bulk import), a re-push with nothing
   changed, a re-push where every task changed (``tolerance_px=4``), and back to 2 px.
3. Setup, not measured as the loop: one annotation per task through the API, made from
   the pushed prediction (rebuilt locally; its fingerprint is checked against the
   task's) with an edit: half the tasks move a middle keyframe of their first track by
   3 % of the width, a quarter delete their first track, the rest accept as pushed.
4. ``pull`` timed (export, parse, apply, lite re-tracking of the moved tubelets with the
   flow tracker on the real clip, regenerated instructions, one revision), split into
   export / re-tracking / commit / the rest by timing wrappers; then a second pull
   (nothing new).
5. Keyframes per tubelet vs frames per tubelet at 1, 2 and 4 px
   (``bench_keyframes.report``) over the synthetic tubelets and over real lite-tracked
   ones: ``--real`` (default ``out/demo-strefer``, the lite strefer run of the sample;
   when absent the sample is written and tracked here, as the review tests do).

    python bench/bench_review.py [--videos 200] [--per-video 5] [--seed 0] [--real DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

import tubelet.review.pull as review_pull
from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.annotators.language.timeline import ActionTimeline
from tubelet.cli.sample import write_sample
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.validate import validate_dataset
from tubelet.engine.writer import ShardWriter
from tubelet.pipelines import run_manifest
from tubelet.review.client import LabelStudioClient
from tubelet.review.push import _model_version, push
from tubelet.review.rows import load_rows, select_videos
from tubelet.review.server import start_server
from tubelet.review.tasks import DATA_FINGERPRINT, DATA_VIDEO_ID, build_task, track_of
from tubelet.schemas.info import DatasetInfo, write_info

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_instructions import FPS, N_FRAMES, H, W, synthetic_task
from bench_keyframes import report as keyframe_report

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(os.environ.get("TUBELET_LS_TEMPLATE", ROOT / ".cache" / "label-studio-template"))
PROJECT = "bench"
EVENTS_PER_VIDEO = 5


# ------------------------------------------------------------------------------ data


def write_clip(path: Path, seed: int) -> Path:
    """A real H.264 clip of W x H, N_FRAMES at FPS: a textured background and moving textured squares."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    squares = [
        (
            rng.uniform(0, W - 80),
            rng.uniform(0, H - 80),
            rng.uniform(-3, 3),
            rng.uniform(-2, 2),
            int(rng.integers(40, 80)),
            rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
        )
        for _ in range(6)
    ]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for f in range(N_FRAMES):
            frame = np.roll(background, f, axis=1).copy()
            for x, y, vx, vy, s, tex in squares:
                cx, cy = int(np.clip(x + vx * f, 0, W - s)), int(np.clip(y + vy * f, 0, H - s))
                frame[cy : cy + s, cx : cx + s] = np.kron(tex, np.ones((s // 4 + 1, s // 4 + 1, 1), np.uint8))[:s, :s]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def build_dataset(root: Path, clip: Path, n_videos: int, per_video: int, seed: int) -> dict[str, float]:
    """The synthetic dataset (see the module docstring); returns its row counts per video."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n_videos):
        task = synthetic_task(i, per_video, rng)
        task.uri = str(clip)
        task.video = replace(task.video, uri=str(clip), codec="h264", source="bench")
        tasks.append(task)
    ActionTimeline(mode="lite").process(tasks)
    for task in tasks:
        task.events = sorted(rng.sample(task.events, min(EVENTS_PER_VIDEO, len(task.events))), key=lambda e: e.event_id)
    GenerateInstructions(seed=seed, max_per_task=2).process(tasks)
    with ShardWriter(root, shard_size=50) as writer:
        for task in tasks:
            writer.add(task)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="bench-review", config_hash="0" * 16))
    return {k: sum(len(getattr(t, k)) for t in tasks) / n_videos for k in ("tubelets", "events", "instructions")}


# ------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_label_studio(tmp: Path):
    os.environ.update(
        LABEL_STUDIO_API_KEY=secrets.token_hex(20),
        LABEL_STUDIO_PASSWORD=secrets.token_hex(12),
        LABEL_STUDIO_USERNAME="bench@tubelet.test",
    )
    data_dir = tmp / "label-studio"
    if (TEMPLATE / "label_studio.sqlite3").is_file():
        shutil.copytree(TEMPLATE, data_dir, ignore=shutil.ignore_patterns("*.pid", "*.log", "media"))
    return start_server(data_dir, port=_free_port(), wait_s=600)


# ------------------------------------------------------------------------------ review


class Timer:
    """Accumulated seconds and calls of wrapped functions."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


def annotate(client, dataset: Path) -> tuple[Counter[str], float]:
    """One annotation per task with an edit (see the module docstring); (edits made, seconds)."""
    data = Dataset(dataset)
    rows = load_rows(data, select_videos(data, None))
    proj = client.find_project(PROJECT)
    edits: Counter[str] = Counter()
    started = time.perf_counter()
    for n, task in enumerate(sorted(client.tasks(proj.id), key=lambda t: t["data"][DATA_VIDEO_ID])):
        pushed = build_task(
            rows[task["data"][DATA_VIDEO_ID]],
            task["data"]["video"],
            tolerance_px=2.0,
            model_version=_model_version(data),
        )
        assert pushed["data"][DATA_FINGERPRINT] == task["data"][DATA_FINGERPRINT], "rebuilt prediction differs"
        result = copy.deepcopy(pushed["predictions"][0]["result"])
        first = next(r for r in result if r["type"] == "videorectangle")
        if n % 4 in (0, 1):
            seq = first["value"]["sequence"]
            key = seq[len(seq) // 2]
            key["x"] = min(key["x"] + 3.0, 100.0 - key["width"])
            edits["moved a keyframe"] += 1
        elif n % 4 == 2:
            result = [r for r in result if r["id"] != first["id"]]
            edits["deleted a track"] += 1
        else:
            edits["accepted as pushed"] += 1
        client.call(
            f"annotating task {task['id']}", client.sdk.annotations.create, id=task["id"], result=result, lead_time=30.0
        )
    return edits, time.perf_counter() - started


def timed_pull(dataset: Path, client) -> tuple[object, Timer]:
    timer = Timer()
    saved = review_pull.retrack_tubelet, review_pull.commit_revision, client.export
    review_pull.retrack_tubelet = timer.wrap("re-tracking", saved[0])
    review_pull.commit_revision = timer.wrap("commit revision", saved[1])
    client.export = timer.wrap("export", saved[2])
    try:
        return review_pull.pull(dataset, PROJECT, client=client), timer
    finally:
        review_pull.retrack_tubelet, review_pull.commit_revision = saved[0], saved[1]
        del client.export


def _requests(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counter.items())) or "-"


def review_loop(tmp: Path, args: argparse.Namespace) -> list[tuple[list, int]]:
    """Build, push, review, pull; returns the dataset's tubelets as pushed (for compression)."""
    clip = write_clip(tmp / "clip.mp4", args.seed)
    dataset = tmp / "dataset"
    started = time.perf_counter()
    per_video = build_dataset(dataset, clip, args.videos, args.per_video, args.seed)
    print(
        f"dataset: {args.videos} videos (one real {W}x{H} H.264 clip, {N_FRAMES} frames at {FPS:g} fps), per video "
        + ", ".join(f"{v:.1f} {k}" for k, v in per_video.items())
        + f"; built in {time.perf_counter() - started:.1f} s"
    )
    pushed_tracks = tracks_of(dataset)

    started = time.perf_counter()
    server = start_label_studio(tmp)
    try:
        print(f"Label Studio up in {time.perf_counter() - started:.1f} s on {server.url}")
        client = LabelStudioClient(server.url, os.environ["LABEL_STUDIO_API_KEY"])
        rows = []
        for name, kwargs in (
            ("push, 200 new tasks", {}),
            ("re-push, nothing changed", {}),
            ("re-push, every task changed (4 px)", {"tolerance_px": 4.0}),
            ("re-push, every task changed (back to 2 px)", {}),
        ):
            r = push(dataset, PROJECT, client=client, **kwargs)
            rows.append(
                (
                    name.replace("200", str(args.videos)),
                    r.seconds,
                    f"{r.created} created, {r.updated} updated, {r.unchanged} unchanged",
                    _requests(r.requests),
                )
            )
            assert not r.rejects, r.rejects
        assert rows[0][3].count("1 bulk import") == 1, rows[0][3]

        edits, seconds = annotate(client, dataset)
        print(
            f"setup: {sum(edits.values())} annotations created one by one in {seconds:.1f} s "
            f"({', '.join(f'{n} {k}' for k, n in edits.items())})"
        )

        pulled, timer = timed_pull(dataset, client)
        counts = pulled.counts
        what = (
            f"{pulled.applied} applied, {counts['masks_regenerated']} tubelets re-tracked, "
            f"{counts['tubelets_correct']} corrected, {counts['tubelets_reject']} deleted, "
            f"{counts['tubelets_accept']} accepted, {len(pulled.rejects)} rejects"
        )
        split = ", ".join(
            f"{k} {timer.seconds[k]:.1f} s" + (f" ({timer.calls[k]}×)" if k == "re-tracking" else "")
            for k in ("export", "re-tracking", "commit revision")
        )
        rest = pulled.seconds - sum(timer.seconds.values())
        rows.append(
            (
                f"pull/apply {pulled.tasks_exported} annotations",
                pulled.seconds,
                what,
                f"{split}, the rest (parse, apply, regenerate instructions, load) {rest:.1f} s",
            )
        )
        again, timer2 = timed_pull(dataset, client)
        rows.append(
            (
                "pull again, nothing new",
                again.seconds,
                f"{again.applied} applied, {again.already_applied} already applied",
                f"export {timer2.seconds['export']:.1f} s",
            )
        )
        ok = validate_dataset(dataset).ok
    finally:
        server.stop()
    print(f"\n{'step':<44} {'seconds':>8}  result / requests")
    for name, secs, result, detail in rows:
        print(f"{name:<44} {secs:8.2f}  {result}\n{'':<54}{detail}")
    print(f"dataset valid after the pull: {ok}")
    return pushed_tracks


# ------------------------------------------------------------------------------ compression


def tracks_of(dataset: Path) -> list[tuple[list, int]]:
    data = Dataset(dataset)
    frames = {v.video_id: v.n_frames for v in data.records("videos")}
    return [(track_of(t), frames[t.video_id]) for t in data.records("tubelets")]


def real_dataset(path: Path, tmp: Path) -> Path:
    """``path`` when it is a dataset, else the sample tracked here by strefer (lite)."""
    if (path / "meta" / "info.json").is_file():
        return path
    sample = write_sample(tmp / "sample")
    config = RunConfig(
        pipeline="strefer",
        output=str(tmp / "real"),
        runner="inline",
        videos=[{"uri": str(sample.video), "video_id": "scene"}],
        params={"track": {"profile": "lite", "keyframe_fps": 4}},
    )
    run_manifest(config, progress=False, log_to_stderr=False)
    return tmp / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--per-video", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=ROOT / "out" / "demo-strefer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-review-") as name:
        tmp = Path(name)
        pushed = review_loop(tmp, args)
        keyframe_report("synthetic tubelets of this bench (as pushed)", pushed)
        real = real_dataset(args.real, tmp)
        keyframe_report(f"real lite-tracked tubelets ({real})", tracks_of(real))


if __name__ == "__main__":
    main()
