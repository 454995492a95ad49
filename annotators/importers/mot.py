"""MOTChallenge-style ground truth (MOT16/17/20 ``gt.txt``).

A row is ``frame, id, x, y, w, h, conf, class, visibility``: 1-based frame number,
track id, the box's top-left corner and size in pixels, the "consider" flag (1: the
row counts in evaluation, 0: ignore it), the class id and the visible fraction of the
object. Extra columns are ignored.

Representation: one tubelet per track id, every row of the track one frame, so that
every value of ``gt.txt`` can be read back (``tubelet eval --protocol motchallenge`` scores
the rows exactly as TrackEval reads the file):

- ``frame_idx = frame - 1``; ``t_s`` from the video's timestamps (``frame_idx / fps``
  for an image folder);
- ``box_xyxy`` is ``[x, y, x + w, y + h]`` clipped to the frame; ``amodal_xyxy`` is the
  exact unclipped box when it reaches outside the frame, else None. Coordinates are
  taken as written (MOT's 1-based pixel convention is not shifted), so both boxes
  reproduce ``gt.txt`` exactly;
- ``visible`` is ``visibility > 0``; a fully occluded row keeps its annotated box;
- ``score`` is None: ground truth has no confidence, and an evaluation that ranks by
  score must not mistake visibility for one;
- the per-row values that have no frame column go in the tubelet's ``extra``, as lists
  aligned with ``frames``: ``mot_classes`` (the class id of each row), ``visibility``
  (the visible fraction) and ``consider`` (the conf flag as a bool); ``mot_class`` is
  the track's class (the class of most of its rows, the earliest on a tie), which also
  names the ``category``;
- a row whose box lies wholly outside the frame has no box in the picture, so it is no
  frame; it is kept in ``extra.outside``, one ``{frame_idx, xyxy, mot_class, visibility,
  consider}`` object per row, ascending by frame (a track with no row inside the frame
  is rejected).

Categories are the MOT17 class names, overridable per class id with the annotation's
``categories``. Rows that do not fit the video are rejected, never dropped silently:
malformed rows (``item = <gt.txt>:<line>``), repeated ``(frame, id)`` rows, rows of a
track that lies wholly outside the frame, and — one reject per track, listing the
frames — rows for frames the video does not have.
"""

from __future__ import annotations

import configparser
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tubelet.annotators.importers.common import FrameIndex, ImportResult, RejectedItem, imported_tubelet, tubelet_id
from tubelet.schemas import Tubelet, TubeletFrame

FORMAT = "mot"

#: MOT17 class ids (the ``class`` column of ``gt.txt``).
MOT17_CLASSES: dict[int, str] = {
    1: "pedestrian",
    2: "person_on_vehicle",
    3: "car",
    4: "bicycle",
    5: "motorbike",
    6: "non_motorized_vehicle",
    7: "static_person",
    8: "distractor",
    9: "occluder",
    10: "occluder_on_ground",
    11: "occluder_full",
    12: "reflection",
}


@dataclass(frozen=True)
class MotRow:
    """One parsed row of ``gt.txt``."""

    line: int
    frame: int
    track_id: int
    x: float
    y: float
    w: float
    h: float
    consider: bool
    cls: int
    visibility: float

    @property
    def xyxy(self) -> list[float]:
        return [self.x, self.y, self.x + self.w, self.y + self.h]


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _integer(text: str) -> int:
    value = _number(text)
    if value != int(value):
        raise ValueError(f"{text!r} is not an integer")
    return int(value)


def read_mot_gt(path: str | Path) -> tuple[list[MotRow], list[RejectedItem]]:
    """Parse a ``gt.txt``: its rows, and a reject for every malformed line.

    Raises ``FileNotFoundError`` when the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MOT annotation file not found: {path}")
    rows: list[MotRow] = []
    rejects: list[RejectedItem] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            fields = [f.strip() for f in text.split(",")]
            item = f"{path}:{line_no}"
            if len(fields) < 9:
                reason = f"expected 9 fields (frame,id,x,y,w,h,conf,class,visibility), got {len(fields)}"
                rejects.append(RejectedItem(item, reason))
                continue
            try:
                row = MotRow(
                    line=line_no,
                    frame=_integer(fields[0]),
                    track_id=_integer(fields[1]),
                    x=_number(fields[2]),
                    y=_number(fields[3]),
                    w=_number(fields[4]),
                    h=_number(fields[5]),
                    consider=_number(fields[6]) != 0,
                    cls=_integer(fields[7]),
                    visibility=_number(fields[8]),
                )
            except ValueError as error:
                rejects.append(RejectedItem(item, f"not a MOT row: {error}"))
                continue
            if row.w <= 0 or row.h <= 0:
                rejects.append(RejectedItem(item, f"box size {row.w:g}x{row.h:g} is not positive"))
                continue
            if not 0.0 <= row.visibility <= 1.0:
                rejects.append(RejectedItem(item, f"visibility {row.visibility:g} is not in [0, 1]"))
                continue
            rows.append(row)
    return rows, rejects


def _check_frame_names(index: FrameIndex) -> None:
    """MOT frame numbers name the files ``000001.jpg``…: require the folder to agree."""
    if index.names is None or not all(n.isdigit() for n in index.names):
        return
    numbers = [int(n) for n in index.names]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(
            f"frame files of {index.video.uri} are not numbered 1..{len(numbers)} "
            f"(first {index.names[0]}, last {index.names[-1]}): MOT frame numbers cannot be mapped to them"
        )


def _ranges(values: list[int]) -> str:
    """``[9, 10, 11, 15]`` → ``"9-11, 15"``."""
    values = sorted(set(values))
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def _clip(box: list[float], width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box
    return [float(min(max(v, 0.0), limit)) for v, limit in ((x1, width), (y1, height), (x2, width), (y2, height))]


def import_mot(gt_path: str | Path, index: FrameIndex, categories: Mapping[str, str] | None = None) -> ImportResult:
    """Tubelets of every track of a MOT ``gt.txt`` over the video of ``index``."""
    rows, rejects = read_mot_gt(gt_path)
    _check_frame_names(index)
    video = index.video
    names = {str(k): v for k, v in MOT17_CLASSES.items()}
    names.update({str(k): v for k, v in (categories or {}).items()})  # the manifest's names win
    result = ImportResult(rejects=rejects)

    tracks: dict[int, list[MotRow]] = {}
    outside: dict[int, list[MotRow]] = {}  # rows for frames the video does not have
    for row in rows:
        if not 0 <= row.frame - 1 < index.n_frames:
            outside.setdefault(row.track_id, []).append(row)
        else:
            tracks.setdefault(row.track_id, []).append(row)

    for tid in sorted(set(tracks) | set(outside)):
        tube_id = tubelet_id(video.video_id, FORMAT, tid)
        if tid in outside:
            missing = outside[tid]
            result.rejects.append(
                RejectedItem(
                    tube_id,
                    f"{len(missing)} gt rows (lines {_ranges([r.line for r in missing])}) for frames the "
                    f"video does not have (it has frames 1-{index.n_frames}): frames "
                    f"{_ranges([r.frame for r in missing])}",
                )
            )
        if tid not in tracks:
            continue
        tubelet = _track(tid, tracks[tid], index, names, gt_path, result)
        if tubelet is not None:
            result.tubelets.append(tubelet)
    return result


def _track(
    tid: int,
    rows: list[MotRow],
    index: FrameIndex,
    names: Mapping[str, str],
    gt_path: str | Path,
    result: ImportResult,
) -> Tubelet | None:
    video = index.video
    frames: list[TubeletFrame] = []
    per_frame: dict[str, list[Any]] = {"mot_classes": [], "visibility": [], "consider": []}
    outside: list[MotRow] = []
    by_frame: dict[int, MotRow] = {}
    for row in sorted(rows, key=lambda r: (r.frame, r.line)):
        if row.frame in by_frame:
            reason = f"track {tid} already has a box on frame {row.frame} (line {by_frame[row.frame].line})"
            result.rejects.append(RejectedItem(f"{gt_path}:{row.line}", reason))
            continue
        by_frame[row.frame] = row
        exact = row.xyxy
        box = _clip(exact, video.width, video.height)
        if not (box[0] < box[2] and box[1] < box[3]):
            outside.append(row)  # nothing of it is in the picture: no frame, kept in extra
            continue
        frame_idx = row.frame - 1
        frames.append(
            TubeletFrame(
                frame_idx=frame_idx,
                t_s=index.t_s(frame_idx),
                box_xyxy=box,
                visible=row.visibility > 0,
                amodal_xyxy=exact if box != exact else None,
            )
        )
        per_frame["mot_classes"].append(row.cls)
        per_frame["visibility"].append(row.visibility)
        per_frame["consider"].append(row.consider)
    if not frames:
        for row in outside:
            reason = f"box {row.xyxy} lies entirely outside the {video.width}x{video.height} frame, as does every row of track {tid}"
            result.rejects.append(RejectedItem(f"{gt_path}:{row.line}", reason))
        return None
    # by_frame is in frame order and Counter keeps first-seen order on ties: the earliest wins
    cls = Counter(r.cls for r in by_frame.values()).most_common(1)[0][0]
    extra: dict[str, Any] = {"mot_class": cls, **per_frame}
    if outside:
        extra["outside"] = [
            {
                "frame_idx": r.frame - 1,
                "xyxy": r.xyxy,
                "mot_class": r.cls,
                "visibility": r.visibility,
                "consider": r.consider,
            }
            for r in outside
        ]
    return imported_tubelet(video, FORMAT, tid, names.get(str(cls), f"class_{cls}"), frames, extra)


def mot_sequence_entries(root: str | Path, source: str = "mot17") -> list[dict[str, Any]]:
    """VideoEntry-shaped dicts for every ``<seq>/seqinfo.ini`` under ``root``.

    ``uri`` is the image folder, ``fps`` the ``frameRate``, ``split`` the name of
    ``root`` when it is ``train`` or ``test``; ``extra.seq_length`` keeps ``seqLength``,
    the length of the original sequence (a cut folder holds fewer frames). Sequences
    without ``gt/gt.txt`` (test splits) get no ``annotations``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MOT folder not found: {root}")
    entries = []
    for info_path in sorted(root.glob("*/seqinfo.ini")):
        seq = info_path.parent
        parser = configparser.ConfigParser()
        parser.read(info_path, encoding="utf-8")
        if not parser.has_section("Sequence"):
            raise ValueError(f"{info_path}: no [Sequence] section")
        info = parser["Sequence"]
        entry: dict[str, Any] = {
            "uri": str(seq / info.get("imDir", "img1")),
            "video_id": info.get("name", seq.name),
            "fps": float(info["frameRate"]),
            "source": source,
        }
        if root.name in ("train", "test"):
            entry["split"] = root.name
        if "seqLength" in info:
            entry["extra"] = {"seq_length": int(info["seqLength"])}
        gt = seq / "gt" / "gt.txt"
        if gt.is_file():
            entry["annotations"] = {"format": FORMAT, "path": str(gt)}
        entries.append(entry)
    return entries
