"""Decode throughput: the two video backends (decord, PyAV) against each other, and
tubelet.engine.video.VideoReader against raw decord on the same frames.

First, decord vs PyAV through VideoReader, interleaved (decord, PyAV, decord, PyAV, ...)
on every sam2-demo video, end to end (open + sample + decode: what a user waits for):
full decode, 8 frames spread over the video, 2 fps sampling, and 2 fps scaled to
448x252 in the decoder; frames/s of each, their speed ratio (PyAV/decord: above 1, PyAV
is faster), and how many frames PyAV's decoder decoded to reach the sampled ones.

Then (decord only), for every sam2-demo video and rate, the reader's time-based sampling picks the frame
indices once; then, interleaved and repeated, we time
  reader: VideoReader(path) + sample_indices(fps) + frames(indices)   (end to end)
  decord: decord.VideoReader(path) + get_batch(indices)             (same indices)
and print frames/s (median of the repeats), the reader/decord speed ratio (median
over alternating pairs, and of the best runs), and how many frames were asked
for, decoded by the reader, and (a model of decord's seeks: key frame -> target)
decoded inside FFmpeg. A DAVIS folder is compared with a plain Pillow loop; then the
reader's own overhead (open, timestamps, sampling) is timed alone, and the last table
compares scaling inside the decoder with decoding at full size and resizing after.

    .venv/bin/python bench/bench_decode.py [--assets DIR] [--repeats N] [--backends-only]

Without decord (its wheels are x86-64 Linux and Windows only) only PyAV is timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tubelet.engine.video import VideoReader  # noqa: E402
from tubelet.engine.video_backend import decord_import_error  # noqa: E402

#: (case, sampling, size): what the backend comparison times on each video
CASES: list[tuple[str, Callable[[VideoReader], list[int]], tuple[int, int] | None]] = [
    ("full", lambda v: list(range(v.n_frames)), None),
    ("8 spread", lambda v: v.sample_indices(max_frames=8), None),
    ("2 fps", lambda v: v.sample_indices(fps=2), None),
    ("2 fps 448x252", lambda v: v.sample_indices(fps=2), (448, 252)),
]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired(
    reader: Callable[[], object], raw: Callable[[], object], n: int, repeats: int
) -> tuple[float, float, float, float]:
    """Frames/s of each (median), the median of per-pair speed ratios, the best-of ratio.

    Runs alternate reader/raw so that load from other processes hits both alike; the
    ratio of the fastest runs is the least disturbed by such load.
    """
    t_reader, t_raw = [], []
    for _ in range(repeats):
        t_reader.append(median_time(reader, 1))
        t_raw.append(median_time(raw, 1))
    ratio = statistics.median(o / r for r, o in zip(t_reader, t_raw, strict=True))
    return n / statistics.median(t_reader), n / statistics.median(t_raw), ratio, min(t_raw) / min(t_reader)


def decoder_work(indices: list[int], key_frames: list[int]) -> int:
    """Frames FFmpeg decodes for sorted ``indices``, following decord's SeekAccurate."""
    keys = np.asarray(key_frames)

    def key_of(i: int) -> int:
        return int(keys[np.searchsorted(keys, i, side="right") - 1])

    work, current = 0, 0  # current: the frame the decoder would emit next
    for pos in indices:
        if pos >= current and key_of(pos) == key_of(current):
            work += pos - current + 1  # skip forward inside the same GOP
        else:
            work += pos - key_of(pos) + 1  # seek to the key frame, decode up to pos
        current = pos + 1
    return work


def bench_backends(videos: list[Path], repeats: int) -> dict[str, list[float]]:
    """decord vs PyAV through VideoReader, interleaved, per video and case; the ratios per case."""
    backends = ["decord", "pyav"] if decord_import_error() is None else ["pyav"]
    print(
        f"{'video':<24}{'case':<15}{'frames':>7}{'pyav work':>10}" + "".join(f"{b + ' f/s':>12}" for b in backends),
        end="",
    )
    print(f"{'ratio':>7}{'best':>6}" if len(backends) == 2 else "")
    ratios: dict[str, list[float]] = {case: [] for case, _, _ in CASES}
    for path in videos:
        for case, pick, size in CASES:
            work: dict[str, int] = {}

            def run(backend: str) -> None:
                with VideoReader(str(path), backend=backend, size=size) as video:
                    indices = pick(video)
                    video.frames(indices)
                    work.update(frames=len(indices))
                    if backend == "pyav":
                        work.update(decoded=video._source.decoded)  # frames PyAV's decoder gave

            for backend in backends:  # warm the page cache and the libraries
                run(backend)
            times: dict[str, list[float]] = {b: [] for b in backends}
            for _ in range(repeats):
                for backend in backends:
                    times[backend].append(median_time(lambda: run(backend), 1))
            n = work["frames"]
            cells = "".join(f"{n / statistics.median(times[b]):>12.1f}" for b in backends)
            line = f"{path.name:<24}{case:<15}{n:>7}{work['decoded']:>10}{cells}"
            if len(backends) == 2:
                ratio = statistics.median(d / p for d, p in zip(times["decord"], times["pyav"], strict=True))
                best = min(times["decord"]) / min(times["pyav"])
                ratios[case].append(ratio)
                line += f"{ratio:>7.2f}{best:>6.2f}"
            print(line)
    if len(backends) == 2:
        print("ratio: PyAV speed / decord speed, median of interleaved pairs (best: of the fastest runs)")
        for case, values in ratios.items():
            print(f"  {case:<15} median {statistics.median(values):.2f}  min {min(values):.2f}  max {max(values):.2f}")
    return ratios


def bench_files(videos: list[Path], rates: list[float], repeats: int) -> list[tuple[float, float]]:
    import decord

    print(
        f"{'video':<24}{'fps':>5}{'asked':>7}{'decoded':>9}{'in ffmpeg*':>12}{'of':>6}"
        f"{'reader f/s':>12}{'decord f/s':>12}{'ratio':>7}{'best':>6}"
    )
    ratios = []
    for path in videos:
        for rate in rates:
            with VideoReader(str(path)) as video:
                indices = video.sample_indices(fps=rate)
                n_frames = video.n_frames
            keys = list(decord.VideoReader(str(path)).get_key_indices())
            stats: dict[str, int] = {}

            def reader() -> None:
                with VideoReader(str(path), backend="decord") as video:
                    video.frames(video.sample_indices(fps=rate))
                    stats.update(asked=video.frames_requested, decoded=video.frames_decoded)

            def raw() -> None:
                decord.VideoReader(str(path), ctx=decord.cpu(0)).get_batch(indices).asnumpy()

            reader()  # warm the page cache and the libraries
            raw()
            fps_reader, fps_raw, ratio, best = paired(reader, raw, len(indices), repeats)
            ratios.append((ratio, best))
            print(
                f"{path.name:<24}{rate:>5g}{stats['asked']:>7}{stats['decoded']:>9}"
                f"{decoder_work(indices, keys):>12}{n_frames:>6}"
                f"{fps_reader:>12.1f}{fps_raw:>12.1f}{ratio:>7.2f}{best:>6.2f}"
            )
    print("* frames FFmpeg decodes to reach them (from key frame to target, decord's seek rule)")
    return ratios


def bench_folder(folder: Path, fps: float, rates: list[float], repeats: int) -> list[tuple[float, float]]:
    print(
        f"\n{'folder':<24}{'fps':>5}{'asked':>7}{'decoded':>9}"
        f"{'reader f/s':>12}{'Pillow f/s':>12}{'ratio':>7}{'best':>6}"
    )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ratios = []
    for rate in rates:
        with VideoReader(str(folder), fps=fps) as video:
            indices = video.sample_indices(fps=rate)
        stats: dict[str, int] = {}

        def reader() -> None:
            with VideoReader(str(folder), fps=fps) as video:
                video.frames(video.sample_indices(fps=rate))
                stats.update(asked=video.frames_requested, decoded=video.frames_decoded)

        def raw() -> None:
            np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in indices])

        reader()
        raw()
        fps_reader, fps_raw, ratio, best = paired(reader, raw, len(indices), repeats)
        ratios.append((ratio, best))
        print(
            f"{folder.name + f' @{fps:g}':<24}{rate:>5g}{stats['asked']:>7}{stats['decoded']:>9}"
            f"{fps_reader:>12.1f}{fps_raw:>12.1f}{ratio:>7.2f}{best:>6.2f}"
        )
    return ratios


def bench_overhead(videos: list[Path], repeats: int) -> None:
    """What the reader adds before decoding: open + timestamps + sampling vs decord's open."""
    import decord

    print(f"\nreader overhead before decoding (ms, median of {repeats} runs)")
    print(f"{'video':<24}{'decord open':>12}{'reader open+sample':>20}{'added':>8}")
    for path in videos:

        def raw() -> None:
            decord.VideoReader(str(path), ctx=decord.cpu(0))

        def reader() -> None:
            VideoReader(str(path)).sample_indices(fps=2)

        t_raw, t_reader = median_time(raw, repeats) * 1e3, median_time(reader, repeats) * 1e3
        print(f"{path.name:<24}{t_raw:>12.1f}{t_reader:>20.1f}{t_reader - t_raw:>8.1f}")


def bench_resize(videos: list[Path], rate: float, size: tuple[int, int], repeats: int) -> None:
    print(f"\nresize to {size[0]}x{size[1]} at {rate:g} fps (frames/s, median of {repeats} runs)")
    print(f"{'video':<24}{'in decoder':>12}{'full+Pillow':>13}{'full+cv2':>10}")
    try:
        import cv2
    except ImportError:  # optional: the reader does not need it
        cv2 = None
    for path in videos:
        with VideoReader(str(path)) as video:
            indices = video.sample_indices(fps=rate)

        def in_decoder() -> None:
            with VideoReader(str(path), size=size, backend="decord") as video:
                video.frames(indices)

        def full_then(resize: Callable[[np.ndarray], np.ndarray]) -> Callable[[], None]:
            def run() -> None:
                with VideoReader(str(path), backend="decord") as video:
                    [resize(f) for f in video.frames(indices)]

            return run

        pil = full_then(lambda f: np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)))
        row = [len(indices) / median_time(in_decoder, repeats), len(indices) / median_time(pil, repeats)]
        if cv2 is not None:
            area = full_then(lambda f: cv2.resize(f, size, interpolation=cv2.INTER_AREA))
            row.append(len(indices) / median_time(area, repeats))
        cells = "".join(f"{v:>{w}.1f}" for v, w in zip(row, (12, 13, 10), strict=False))
        print(f"{path.name:<24}{cells}")


def main() -> None:
    default_assets = os.environ.get("TUBELET_ASSETS") or str(ROOT.parent / "shared" / "assets")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=default_assets, help="the shared assets folder")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--backends-only", action="store_true", help="only the decord vs PyAV comparison")
    args = parser.parse_args()
    assets = Path(args.assets)
    videos = sorted((assets / "videos" / "sam2-demo").glob("*.mp4"))
    if not videos:
        print(f"no sam2-demo videos under {assets}: nothing to time")
        return
    import av

    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    has_decord = decord_import_error() is None
    versions = f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})"
    if has_decord:
        import decord

        versions = f"decord {decord.__version__}, " + versions
    print(f"{versions}, {os.cpu_count()} CPUs{load}, median of {args.repeats} runs\n")
    bench_backends(videos, args.repeats)
    if args.backends_only or not has_decord:
        return
    print()
    ratios = bench_files(videos, [2.0, 8.0], args.repeats)
    davis = assets / "davis2016" / "JPEGImages" / "480p" / "dog"
    if davis.is_dir():
        ratios += bench_folder(davis, 24.0, [2.0, 8.0, 24.0], args.repeats)
    bench_overhead(videos, 4 * args.repeats)
    bench_resize([videos[-1], videos[0]], 8.0, (448, 252), max(1, args.repeats - 2))
    paired_ratios, best_ratios = [r for r, _ in ratios], [b for _, b in ratios]
    print(
        f"\nreader/raw speed, median of pairs: min {min(paired_ratios):.2f}, "
        f"median {statistics.median(paired_ratios):.2f}; best-of runs: min {min(best_ratios):.2f}, "
        f"median {statistics.median(best_ratios):.2f} (target >= 0.90)"
    )


if __name__ == "__main__":
    main()
