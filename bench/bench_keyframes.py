"""Benchmark: how many Label Studio keyframes a tubelet needs, and how well they fit.

For tolerances 1, 2 and 4 px, prints keyframes per tubelet against frames per tubelet
(mean, median, compression ratio = listed frames / keyframes) and the max reconstruction
error in px (what LS would show, via ``interpolate_keyframes``, against every listed
visible box), over

(a) the DAVIS-2016 ground-truth tubelets (boxes of the masks in ``<assets>/davis2016``;
    skipped with a message when the folder is absent), and
(b) 1000 synthetic tubelets: seeded random walks with per-frame jitter, some with gaps,
    some sampled every 2nd frame, some ending before the video does.

Also times ``select_keyframes`` (tubelets/s and listed frames/s).

    python bench/bench_keyframes.py [--assets DIR] [--synthetic 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from tubelet.review.keyframes import interpolate_keyframes, select_keyframes

ROOT = Path(__file__).resolve().parents[1]
TOLERANCES = (1.0, 2.0, 4.0)
Track = list[tuple[int, list[float] | None]]


def davis_tracks(root: Path) -> list[tuple[Track, int]]:
    """``(track, n_frames)`` of each DAVIS-2016 sequence's object (every frame listed)."""
    from PIL import Image

    from tubelet.schemas.geometry import mask_to_box

    out = []
    for seq in sorted(p for p in (root / "Annotations" / "480p").iterdir() if p.is_dir()):
        pngs = sorted(seq.glob("*.png"))
        track: Track = [(i, mask_to_box(np.asarray(Image.open(p)) > 0)) for i, p in enumerate(pngs)]
        out.append((track, len(pngs)))
    return out


def synthetic_tracks(n: int, seed: int) -> list[tuple[Track, int]]:
    """Random walks (drift + velocity noise + size wobble + jitter) in a 1280x720 frame."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        n_frames = int(rng.integers(60, 1500))
        velocity = rng.normal(0, 1.0, 2) + np.cumsum(rng.normal(0, 0.05, (n_frames, 2)), axis=0)
        centre = rng.uniform([200, 150], [1080, 570]) + np.cumsum(velocity, axis=0)
        size = rng.uniform(30, 200, 2) * (1 + 0.2 * np.sin(np.arange(n_frames)[:, None] / rng.uniform(15, 80)))
        boxes = np.hstack([centre - size / 2, centre + size / 2]) + rng.normal(0, rng.uniform(0, 1.5), (n_frames, 4))
        boxes = np.clip(boxes, 0, [1280, 720, 1280, 720])
        start = int(rng.integers(0, n_frames // 4))
        end = n_frames if rng.random() < 0.5 else int(rng.integers(n_frames // 2, n_frames))
        stride = 2 if rng.random() < 0.3 else 1
        hidden: set[int] = set()
        for _ in range(int(rng.integers(0, 3))):
            g = int(rng.integers(start, end))
            hidden |= set(range(g, g + int(rng.integers(1, 40))))
        track: Track = [(f, None if f in hidden else boxes[f].tolist()) for f in range(start, end, stride)]
        out.append((track, n_frames))
    return out


def report(name: str, tracks: list[tuple[Track, int]]) -> None:
    frames = np.array([len(t) for t, _ in tracks])
    print(
        f"\n{name}: {len(tracks)} tubelets, listed frames per tubelet mean {frames.mean():.1f}, "
        f"median {np.median(frames):.0f}, total {frames.sum()}"
    )
    print(
        f"{'tol px':>6} {'kf mean':>8} {'kf median':>9} {'ratio':>7} {'max err px':>10} {'tubelets/s':>11} {'frames/s':>10}"
    )
    for tol in TOLERANCES:
        started = time.perf_counter()
        selected = [select_keyframes(t, tolerance_px=tol, n_frames=n) for t, n in tracks]
        elapsed = time.perf_counter() - started
        counts = np.array([len(k) for k in selected])
        worst = 0.0
        for (track, n), keys in zip(tracks, selected, strict=True):
            shown = interpolate_keyframes(keys, n)
            for f, box in track:
                if box is None:
                    assert f not in shown, f"frame {f} hidden in the track but shown"
                else:
                    worst = max(worst, float(np.abs(np.subtract(shown[f], box)).max()))
        print(
            f"{tol:6.1f} {counts.mean():8.1f} {np.median(counts):9.0f} {frames.sum() / counts.sum():7.1f} "
            f"{worst:10.3f} {len(tracks) / elapsed:11.0f} {frames.sum() / elapsed:10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_assets = os.environ.get("TUBELET_ASSETS", str(ROOT.parent / "shared" / "assets"))
    parser.add_argument("--assets", default=default_assets)
    parser.add_argument("--synthetic", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    davis = Path(args.assets) / "davis2016"
    if (davis / "Annotations" / "480p").is_dir():
        report("DAVIS-2016 ground truth (mask boxes, 854x480)", davis_tracks(davis))
    else:
        print(f"DAVIS-2016 skipped: no {davis / 'Annotations' / '480p'}")
    report(f"synthetic random walks (seed {args.seed})", synthetic_tracks(args.synthetic, args.seed))


if __name__ == "__main__":
    main()
