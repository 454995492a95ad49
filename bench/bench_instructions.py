"""Benchmark: lite timelines and instructions generated from 10,000 tubelets.

Builds synthetic tables in memory: ``--videos`` videos of ``--per-video`` tubelets each
(default 1,000 × 10 = 10,000), 640×360 at 24 fps, 10 s long; each tubelet is visible
for a random stretch with a random-walk box (some leave and come back), and has an
entity row with a referring expression and a colour attribute, as the lite describer
writes. Then, per video and timed separately: the lite action timeline
(``ActionTimeline(mode="lite")``, a function of the rows alone) and
``GenerateInstructions`` (all task types; every answer re-checked, as in the pipeline).
Prints instructions/s, tubelets/s and the distribution of task types.

    python bench/bench_instructions.py [--videos 1000] [--per-video 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from tubelet.annotators.instructions.stage import GenerateInstructions
from tubelet.annotators.language.timeline import ActionTimeline
from tubelet.engine.task import VideoTask
from tubelet.schemas.records import Entity, Tubelet, TubeletFrame, VideoRecord

W, H, FPS, N_FRAMES = 640, 360, 24.0, 240
CATEGORIES = ["person", "dog", "car", "bicycle", "cup"]
COLOURS = ["red", "blue", "green", "white", "black", "yellow"]


def synthetic_task(video_index: int, per_video: int, rng: random.Random) -> VideoTask:
    """One video's task with ``per_video`` tubelets and their entity rows."""
    video_id = f"v{video_index:05d}"
    video = VideoRecord(
        video_id=video_id,
        uri=f"synthetic://{video_id}",
        width=W,
        height=H,
        fps=FPS,
        n_frames=N_FRAMES,
        duration_s=N_FRAMES / FPS,
        codec="none",
    )
    task = VideoTask(video_id=video_id, uri=video.uri, video=video)
    for k in range(per_video):
        start = rng.randrange(0, N_FRAMES // 2)
        end = rng.randrange(start + 12, N_FRAMES)
        gap = (rng.randrange(start + 4, end - 4), 6) if rng.random() < 0.2 else None  # leaves and comes back
        x, y, s = rng.uniform(40, W - 120), rng.uniform(40, H - 120), rng.uniform(30, 80)
        vx, vy = rng.choice([0.0, rng.uniform(-3, 3)]), rng.choice([0.0, rng.uniform(-2, 2)])
        frames = []
        for f in range(start, end + 1):
            x = min(max(x + vx + rng.gauss(0, 0.3), 0), W - s)
            y = min(max(y + vy + rng.gauss(0, 0.3), 0), H - s)
            visible = not (gap and gap[0] <= f < gap[0] + gap[1])
            frames.append(
                TubeletFrame(frame_idx=f, t_s=f / FPS, box_xyxy=[x, y, x + s, y + s], score=0.9, visible=visible)
            )
        category = CATEGORIES[k % len(CATEGORIES)]
        tubelet_id = f"{video_id}:track:{k + 1}"
        task.tubelets.append(
            Tubelet(
                tubelet_id=tubelet_id,
                video_id=video_id,
                category=category,
                source="bench",
                track_id=str(k + 1),
                fps=FPS,
                width=W,
                height=H,
                frames=frames,
            )
        )
        colour = rng.choice(COLOURS)
        task.entities.append(
            Entity(
                entity_id=f"{tubelet_id}:entity",
                video_id=video_id,
                tubelet_id=tubelet_id,
                category=category,
                referring_expression=f"the {colour} {category} #{k + 1}",
                attributes={"colour": colour},
            )
        )
    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--per-video", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tasks = [synthetic_task(i, args.per_video, rng) for i in range(args.videos)]
    n_tubelets = sum(len(t.tubelets) for t in tasks)
    timeline, instruct = ActionTimeline(mode="lite"), GenerateInstructions(seed=args.seed)

    started = time.perf_counter()
    timeline.process(tasks)
    t_timeline = time.perf_counter() - started
    started = time.perf_counter()
    instruct.process(tasks)
    t_instruct = time.perf_counter() - started

    n_events = sum(len(t.events) for t in tasks)
    counts = Counter(i.task_type for t in tasks for i in t.instructions)
    rejects = sum(len(t.rejects) for t in tasks)
    n = sum(counts.values())
    print(f"{n_tubelets} tubelets in {args.videos} videos")
    print(f"lite timeline: {n_events} events in {t_timeline:.1f} s ({n_tubelets / t_timeline:.0f} tubelets/s)")
    print(
        f"instructions:  {n} in {t_instruct:.1f} s ({n / t_instruct:.0f} instructions/s, "
        f"{n_tubelets / t_instruct:.0f} tubelets/s), generated + checked; {rejects} rejected by the checker"
    )
    yes = sum(
        1 for t in tasks for i in t.instructions if i.task_type == "timestamp_verification" and i.answer.text == "yes"
    )
    print(f"{'task type':<24} {'count':>7} {'share':>6}")
    for task_type, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{task_type:<24} {count:7d} {count / n:6.1%}")
    if counts["timestamp_verification"]:
        print(f"timestamp_verification yes share: {yes / counts['timestamp_verification']:.1%}")


if __name__ == "__main__":
    main()
