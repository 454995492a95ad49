"""Benchmark: one track per object? Lite + YOLO identities on MOT17-mini and on 01_dog.

MOT17-mini (7 sequences, their first 4–8 frames, pedestrians): the ground truth is
imported, the lite profile tracks persons with a keyframe on every frame (the sequences
are too short for anything else), and both protocols of `tubelet eval` score it; per
sequence: tracks per ground-truth object (fragmentation), ID switches, MOTA, IDF1, HOTA.

01_dog (sam2-demo, one dog and one person, no ground truth): the tracks the lite
profile makes with its defaults, each with its category, the frames it covers and, when
the tracker records them, the category's confidence and votes. One dog and one person
should be two tracks.

    python bench/bench_track_identity.py [--assets DIR] [--set KEY=JSON ...] [--skip-mot] [--skip-dog]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tracking_runs import default_assets, fmt, import_gt, lite_yolo, scores, track, tracks, video_list, with_sets

MOT_PARAMS = {"classes": ["person"], "keyframe_fps": 30, "association": {"min_length": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", default=default_assets())
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="a track param for both runs")
    parser.add_argument("--skip-mot", action="store_true")
    parser.add_argument("--skip-dog", action="store_true")
    args = parser.parse_args()
    if not args.skip_mot:
        mot(Path(args.assets), args.set)
    if not args.skip_dog:
        dog(Path(args.assets), args.set)


def mot(assets: Path, sets: list[str]) -> None:
    videos = video_list("mot17-mini", assets)
    params = with_sets(lite_yolo(assets, **MOT_PARAMS), sets)
    with tempfile.TemporaryDirectory() as tmp:
        import_gt(videos, f"{tmp}/gt")
        elapsed = track(videos, f"{tmp}/pred", params)
        reports = {p: scores(f"{tmp}/pred", f"{tmp}/gt", protocol=p) for p in ("tubelet", "motchallenge")}
    print(f"MOT17-mini, lite track {json.dumps(params)} ({elapsed:.1f} s)")
    print(f"{'sequence':<16} {'tracks/obj':>10} {'IDSW':>5} {'MOTA':>6} {'IDF1':>6} {'HOTA':>6}  (tubelet protocol)")
    for video in reports["tubelet"]["videos"]:
        m = video["metrics"]
        print(
            f"{video['video_id']:<16} {fmt(m['tracks_per_object'], 2):>10} {fmt(m['id_switches']):>5} "
            f"{fmt(m['mota']):>6} {fmt(m['idf1']):>6} {fmt(m['hota']):>6}"
        )
    for protocol, report in reports.items():
        o = report["overall"]
        print(
            f"{'overall ' + protocol:<16} {fmt(o['tracks_per_object'], 2):>10} {fmt(o['id_switches']):>5} "
            f"{fmt(o['mota']):>6} {fmt(o['idf1']):>6} {fmt(o['hota']):>6}   "
            f"(GT objects {o['n_gt']}, tracks {o['n_pred']}, recall {fmt(o.get('recall'))})"
        )


def dog(assets: Path, sets: list[str]) -> None:
    videos = video_list("assets", assets, ["sam2-01-dog"])
    params = with_sets(lite_yolo(assets), sets)
    with tempfile.TemporaryDirectory() as tmp:
        elapsed = track(videos, f"{tmp}/pred", params)
        listed = tracks(f"{tmp}/pred").get("sam2-01-dog", [])
    print(f"\n01_dog.mp4 (289 frames: one dog, one person), lite track {json.dumps(params)} ({elapsed:.1f} s)")
    print(f"{'tubelet':<24} {'category':<10} {'frames':>9} {'visible':>7} {'confidence':>10}  votes")
    for t in listed:
        votes = json.dumps(t["category_votes"]) if t["category_votes"] else "-"
        print(
            f"{t['tubelet_id']:<24} {t['category']:<10} {t['first']:>4}-{t['last']:<4} {t['visible']:>7} "
            f"{fmt(t['category_confidence']):>10}  {votes}"
        )
    by_category: dict[str, int] = {}
    for t in listed:
        by_category[t["category"]] = by_category.get(t["category"], 0) + 1
    print(f"tracks: {len(listed)} ({', '.join(f'{n} {c}' for c, n in sorted(by_category.items()))})")


if __name__ == "__main__":
    main()
