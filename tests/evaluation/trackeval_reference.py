"""The reference for ``--protocol motchallenge``: TrackEval itself, run on files.

``trackeval_mot17`` lays out a MOTChallenge benchmark the way TrackEval reads one — per
sequence ``gt/gt.txt`` (the annotation file as it is) and ``seqinfo.ini``, a seqmap,
and one tracker file per sequence written from a predicted ``tubelets`` table — and
runs ``trackeval.Evaluator`` with ``datasets.MotChallenge2DBox`` (benchmark MOT17) and
the HOTA, CLEAR and Identity metrics, all with their defaults.

The frames: ``seqinfo.ini``'s ``seqLength`` is set to the frames the video has in the
dataset tubelet scores (``videos.n_frames``). MOT17-mini's own seqinfo.ini keeps the
original sequence's length while its gt.txt and img1 are cut to the first 4-8 frames;
with the original length TrackEval would score hundreds of frames with no ground truth
(empty, so no count changes, but a sequence of another length than the one scored).
"""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

TRACKER = "tubelet"


#: TrackEval's evaluator settings for tests: no printing, no files, no worker processes.
QUIET = {
    "USE_PARALLEL": False,
    "PRINT_RESULTS": False,
    "PRINT_CONFIG": False,
    "TIME_PROGRESS": False,
    "OUTPUT_SUMMARY": False,
    "OUTPUT_DETAILED": False,
    "PLOT_CURVES": False,
    "DISPLAY_LESS_PROGRESS": True,
    "OUTPUT_EMPTY_CLASSES": False,
    "LOG_ON_ERROR": None,
}


def write_tracker_file(path: Path, tubelets: pa.Table, video_id: str) -> int:
    """MOTChallenge tracker rows ``frame, id, x, y, w, h, conf, -1, -1, -1`` for the visible
    frames of the video's tubelets (ids 1… in tubelet_id order; the unclipped box where a
    tubelet has one); returns the number of rows."""
    rows = sorted(
        (r for r in tubelets.to_pylist() if r["video_id"] == video_id),
        key=lambda r: r["tubelet_id"],
    )
    lines = []
    for k, row in enumerate(rows, start=1):
        for f in row["frames"]:
            if not f["visible"] or f["box_xyxy"] is None:
                continue
            x1, y1, x2, y2 = f["amodal_xyxy"] or f["box_xyxy"]
            conf = f["score"] if f["score"] is not None else 1.0
            lines.append((f["frame_idx"] + 1, k, f"{x1!r},{y1!r},{x2 - x1!r},{y2 - y1!r},{conf!r},-1,-1,-1"))
    lines.sort(key=lambda t: (t[0], t[1]))
    path.write_text("".join(f"{frame},{k},{rest}\n" for frame, k, rest in lines))
    return len(lines)


def write_seqinfo(path: Path, name: str, n_frames: int, source: Path | None = None) -> None:
    """A seqinfo.ini with ``seqLength = n_frames`` (the other keys from ``source`` when given)."""
    info = configparser.ConfigParser()
    info.optionxform = str  # keep MOT's camelCase keys
    if source is not None:
        info.read(source)
    if not info.has_section("Sequence"):
        info.add_section("Sequence")
    info["Sequence"]["name"] = name
    info["Sequence"]["seqLength"] = str(n_frames)
    with path.open("w") as handle:
        info.write(handle)


def trackeval_mot17(
    root: Path,
    sequences: dict[str, tuple[Path, int, Path | None]],
    pred: pa.Table,
) -> dict[str, dict[str, dict[str, Any]]]:
    """TrackEval's MOT17 results ``{sequence | "COMBINED_SEQ": {metric: {field: value}}}``.

    ``sequences`` maps a sequence name (the dataset's video_id) to its ``gt.txt``, the
    frames it has in the dataset, and its original ``seqinfo.ini`` (or None).
    """
    import trackeval

    shutil.rmtree(root, ignore_errors=True)
    gt_root, trackers = root / "gt", root / "trackers"
    data = trackers / TRACKER / "data"
    data.mkdir(parents=True)
    (gt_root / "seqmaps").mkdir(parents=True)
    (gt_root / "seqmaps" / "MOT17-train.txt").write_text("name\n" + "".join(f"{s}\n" for s in sequences))
    for seq, (gt_txt, n_frames, seqinfo) in sequences.items():
        (gt_root / seq / "gt").mkdir(parents=True)
        shutil.copyfile(gt_txt, gt_root / seq / "gt" / "gt.txt")
        write_seqinfo(gt_root / seq / "seqinfo.ini", seq, n_frames, seqinfo)
        write_tracker_file(data / f"{seq}.txt", pred, seq)

    evaluator = trackeval.Evaluator(dict(QUIET))
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(gt_root),
            "TRACKERS_FOLDER": str(trackers),
            "SKIP_SPLIT_FOL": True,
            "BENCHMARK": "MOT17",
            "SPLIT_TO_EVAL": "train",
            "TRACKERS_TO_EVAL": [TRACKER],
            "PRINT_CONFIG": False,
        }
    )
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    results, messages = evaluator.evaluate([dataset], metrics)
    assert messages["MotChallenge2DBox"][TRACKER] == "Success", messages
    by_seq = results["MotChallenge2DBox"][TRACKER]
    return {seq: {m: r["pedestrian"][m] for m in ("HOTA", "CLEAR", "Identity")} for seq, r in by_seq.items()}


def assert_same(ours: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]], where: str) -> None:
    """Every field TrackEval reports for HOTA, CLEAR and Identity: counts exactly, rates
    to 1e-9 (the tracker file's w = x2 - x1 can move a box by one ulp)."""
    import numpy as np

    for metric, fields in reference.items():
        for field, value in fields.items():
            mine = np.asarray(ours[metric][field], dtype=np.float64)
            ref = np.asarray(value, dtype=np.float64)
            if field in ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames") or field in (
                "IDTP",
                "IDFN",
                "IDFP",
                "HOTA_TP",
                "HOTA_FN",
                "HOTA_FP",
            ):
                assert np.array_equal(mine, ref), (where, metric, field, mine, ref)
            else:
                assert np.allclose(mine, ref, rtol=0, atol=1e-9), (where, metric, field, mine, ref)
