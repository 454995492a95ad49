"""Benchmark: the SAM 2 tracker stage inside the pipeline vs a bare sam2 loop.

SAM 2.1-tiny with random weights from sam2's packaged config at image_size 256 (CPU),
on a 16-frame clip of the synthetic sample (frames 30..45, written as its own mp4 so
that sam2's ``init_state`` decodes exactly those frames), two box prompts (the circle
and the triangle) on the clip's first frame.

- stage: ``TrackMasklets(tracker="sam2")`` processing a probed ``VideoTask`` whose
  scripted ``Detection``s are the two boxes on frame 0 (association, the per-window
  state adapter, masks -> RLE, tubelet building: everything the pipeline does);
- bare:  ``init_state(clip.mp4)`` + ``add_new_points_or_box`` x2 + a full
  ``propagate_in_video`` loop, masks moved to numpy.

Both share one predictor (same weights). Repetitions alternate; per-frame times are
reported as medians and best; the target is stage/bare <= 1.1.

    python bench/bench_tracker_overhead.py [--reps 4] [--frames 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

START = 30  # the circle (2) and the triangle (3) are both in view here
SIZE = 256


def write_clip(path: Path, first: int, n: int) -> dict[int, list[float]]:
    """Frames first..first+n-1 of the sample scene as an mp4; the objects' boxes on the first."""
    import cv2
    import numpy as np

    from tubelet.cli import sample

    bg = sample.background()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), sample.FPS, (sample.WIDTH, sample.HEIGHT))
    boxes: dict[int, list[float]] = {}
    for i in range(n):
        image, labels = sample.render(first + i, bg)
        writer.write(image)
        if i == 0:
            for oid in (2, 3):
                ys, xs = np.nonzero(labels == oid)
                boxes[oid] = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    writer.release()
    return boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()

    os.environ.setdefault("TQDM_DISABLE", "1")  # sam2's per-call progress bars
    import decord
    import torch

    from tubelet.annotators.tracking.stage import TrackMasklets
    from tubelet.engine.probe import ProbeVideo
    from tubelet.engine.task import VideoTask
    from tubelet.schemas.records import Detection

    torch.manual_seed(0)
    n = args.frames
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        boxes = write_clip(clip, START, n)

        stage = TrackMasklets(
            tracker="sam2",
            tracker_options={"image_size": SIZE, "device": "cpu", "max_window": 64},
            association={"min_length": 1},
        )
        stage.setup()
        prop = stage._propagator
        predictor = prop.load()  # type: ignore[union-attr]

        # count what the stage actually propagates (frames yielded by the propagator)
        propagated = {"frames": 0}
        original = prop.propagate  # type: ignore[union-attr]

        def counting(*a, **k):
            for item in original(*a, **k):
                propagated["frames"] += 1
                yield item

        prop.propagate = counting  # type: ignore[union-attr,method-assign]

        def make_task() -> VideoTask:
            task = VideoTask(video_id="clip", uri=str(clip))
            ProbeVideo(decode_check=False).process([task])
            task.keyframes = [0]
            task.detections = [
                Detection(frame_idx=0, t_s=0.0, box_xyxy=boxes[oid], score=0.9, category=name, detector="scripted")
                for oid, name in ((2, "green circle"), (3, "blue triangle"))
            ]
            return task

        def run_stage() -> tuple[float, int, int]:
            task = make_task()  # probing is not the tracker's time
            propagated["frames"] = 0
            t0 = time.perf_counter()
            stage.process([task])
            elapsed = time.perf_counter() - t0
            if task.failed:
                raise RuntimeError(f"stage failed: {task.rejects[-1].reason}")
            return elapsed, len(task.tubelets), propagated["frames"]

        def run_bare() -> tuple[float, int]:
            t0 = time.perf_counter()
            try:
                state = predictor.init_state(str(clip))
            finally:
                decord.bridge.set_bridge("native")  # sam2's mp4 loader switches decord to torch
            for oid in (2, 3):
                predictor.add_new_points_or_box(state, 0, oid, box=boxes[oid])
            count = 0
            for _i, _ids, masks in predictor.propagate_in_video(state, 0, n - 1):
                (masks[:, 0] > 0.0).cpu().numpy()
                count += 1
            predictor.reset_state(state)
            return time.perf_counter() - t0, count

        # warm-up (first backbone calls, allocator, decoder) - not reported
        run_bare()
        run_stage()

        stage_ms: list[float] = []
        bare_ms: list[float] = []
        ratios: list[float] = []
        info = ""
        print(
            f"SAM 2.1-tiny random weights, image_size {SIZE}, CPU threads {torch.get_num_threads()}, "
            f"{n} frames of the sample (frames {START}..{START + n - 1}), 2 box prompts on the first"
        )
        print(f"{'rep':>3} {'stage ms/frame':>15} {'bare ms/frame':>14} {'ratio':>6}   stage detail")
        for rep in range(args.reps):
            order = ("stage", "bare") if rep % 2 == 0 else ("bare", "stage")
            got: dict[str, float] = {}
            for which in order:
                if which == "stage":
                    t, n_tub, n_prop = run_stage()
                    got["stage"] = t / n * 1000
                    info = f"{n_tub} tubelets, {n_prop} frames yielded by the propagator"
                else:
                    t, count = run_bare()
                    if count != n:
                        raise RuntimeError(f"bare loop yielded {count} frames, expected {n}")
                    got["bare"] = t / n * 1000
            stage_ms.append(got["stage"])
            bare_ms.append(got["bare"])
            ratios.append(got["stage"] / got["bare"])
            print(f"{rep:>3} {got['stage']:15.1f} {got['bare']:14.1f} {ratios[-1]:6.2f}   {info}")
        med_s, med_b = statistics.median(stage_ms), statistics.median(bare_ms)
        best_s, best_b = min(stage_ms), min(bare_ms)
        print(f"median {med_s:12.1f} {med_b:14.1f} {med_s / med_b:6.2f}")
        print(f"best   {best_s:12.1f} {best_b:14.1f} {best_s / best_b:6.2f}")
        print(
            f"stage/bare per frame: median of medians {med_s / med_b:.2f}x, best-of {best_s / best_b:.2f}x, "
            f"median of paired ratios {statistics.median(ratios):.2f}x  (target <= 1.1x)"
        )
        stage.teardown()


if __name__ == "__main__":
    main()
