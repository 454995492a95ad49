"""What the exporters share: options, errors, the tally, one video's rows, names, ids and numbers.

An exporter is a class with ``add(item)`` (called once per exported video, in ledger order)
and ``finish()`` (writes what covers several videos: seqmaps, image sets, the JSON of a
split, tar shards), and an ``objects`` map that says which tubelet each exported object id
is (``{video_id: {object id: tubelet_id}}``), written to ``tubelet_export.json``.
Everything an exporter writes depends only on the rows and the options, never on the
order videos arrive in or the time, so the same dataset and options give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.schemas import Entity, Event, Instruction, Tubelet, VideoRecord

log = logging.getLogger("tubelet.release.exports")

#: The file every export writes at its root: options, counts, what was left out, the id maps.
SIDECAR = "tubelet_export.json"
#: Version of the sidecar's layout.
SIDECAR_FORMAT = 1
#: The split name of videos that have none (TrackEval's MOTChallenge reader accepts ``all``).
NO_SPLIT = "all"
MOT_ROLES = ("gt", "tracker")


class ExportError(ValueError):
    """The export cannot be written as asked; the message names the item and the reason."""


class ExportExistsError(FileExistsError):
    """The destination exists and is not empty: an export never writes over anything."""


@dataclass
class ExportOptions:
    """What is exported and how. Format-specific fields are ignored by the other formats."""

    format: str
    videos: Sequence[str] = ()  # video ids; empty: every video
    split: str | None = None  # only videos whose ``videos.split`` is this
    categories: Sequence[str] = ()  # only tubelets of these categories; empty: all
    dataset_version: str | None = None  # a named version (``tubelet versions``); None: the current state
    frames: bool = True  # mot (gt role), davis, youtube-vis: write the frames as JPEG images
    jpeg_quality: int = 95  # frames that are not JPEG files already are encoded at this quality
    role: str = "gt"  # mot: ``gt`` (gt.txt + seqinfo.ini) or ``tracker`` (a tracker's result files)
    benchmark: str = "MOT17"  # mot: the ``<benchmark>-<split>`` folder name TrackEval's BENCHMARK reads
    tracker: str = "tubelet"  # mot, tracker role: the tracker's folder name
    resolution: str = "480p"  # davis: the resolution folder name (frames are never resized)
    shard_size: int = 100  # webdataset: samples (videos) per tar shard

    def check(self, formats: Iterable[str]) -> None:
        """Raise ExportError for an option no exporter could honour."""
        known = sorted(formats)
        if self.format not in known:
            raise ExportError(f"unknown export format {self.format!r}; formats: {', '.join(known)}")
        if self.role not in MOT_ROLES:
            raise ExportError(f"unknown MOT role {self.role!r}; roles: {', '.join(MOT_ROLES)}")
        if self.shard_size < 1:
            raise ExportError(f"shard size must be at least 1 sample, got {self.shard_size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ExportError(f"JPEG quality must be in 1..100, got {self.jpeg_quality}")
        for name, value in (("benchmark", self.benchmark), ("tracker", self.tracker), ("resolution", self.resolution)):
            if not SAFE_NAME.fullmatch(value):
                raise ExportError(f"{name} {value!r} is not a plain folder name (letters, digits, '_', '-')")

    def to_dict(self) -> dict[str, Any]:
        """The options that shaped the output (for the sidecar)."""
        common = {
            "videos": sorted(self.videos),
            "split": self.split,
            "categories": sorted(self.categories),
            "dataset_version": self.dataset_version,
        }
        specific: dict[str, dict[str, Any]] = {
            "mot": {"role": self.role, "benchmark": self.benchmark, "frames": self.frames and self.role == "gt"}
            | ({"tracker": self.tracker} if self.role == "tracker" else {}),
            "davis": {"resolution": self.resolution, "frames": self.frames},
            "youtube-vis": {"frames": self.frames},
            "webdataset": {"shard_size": self.shard_size},
        }
        extra = specific.get(self.format, {})
        if extra.get("frames"):
            extra["jpeg_quality"] = self.jpeg_quality
        return common | extra


@dataclass
class VideoItem:
    """One video and its rows, as an exporter receives it; ``name`` is its file-safe name."""

    video: VideoRecord
    name: str
    split: str
    tubelets: list[Tubelet]  # every list in the order the dataset's shard holds the rows
    entities: list[Entity] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Tally:
    """What an export counted, and every item it left out with the reason (nothing goes silently)."""

    counts: Counter[str] = field(default_factory=Counter)
    left_out: list[dict[str, str]] = field(default_factory=list)

    def leave_out(self, item: str, reason: str, kind: str) -> None:
        """Record that ``item`` is not in the export (counted under ``left_out:<kind>``)."""
        self.counts[f"left_out:{kind}"] += 1
        self.left_out.append({"item": item, "reason": reason})
        log.debug("left out %s: %s", item, reason)


class Exporter:
    """What every format's exporter keeps (see the module docstring): where it writes, the
    options, the tally, the object ids, and the videos it was given by split and name.

    Formats that assemble their files at the end (a split's JSON, tar shards) stage one
    small JSON per video under ``stage_name`` and read them back in name order."""

    stage_name = ".stage"

    def __init__(self, out: Path, options: ExportOptions, tally: Tally) -> None:
        self.out, self.options, self.tally = out, options, tally
        self.objects: dict[str, dict[str, str]] = {}
        self.videos: dict[str, dict[str, VideoRecord]] = defaultdict(dict)  # split -> name -> video

    def add(self, item: VideoItem) -> None:
        """Write what belongs to one video (and note it with ``place``)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Write what covers several videos."""
        raise NotImplementedError

    def place(self, item: VideoItem) -> None:
        """Note that ``item`` was exported (its split and name)."""
        self.videos[item.split][item.name] = item.video

    def staged(self, split: str, name: str) -> Path:
        """Where a video's staged JSON is."""
        return self.out / self.stage_name / split / f"{name}.json"

    def stage_json(self, item: VideoItem, value: Any) -> None:
        """Stage one video's JSON until ``finish``."""
        path = self.staged(item.split, item.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(json_bytes(value))

    def drop_stage(self) -> None:
        """Remove the staging folder (``finish`` has read it)."""
        shutil.rmtree(self.out / self.stage_name, ignore_errors=True)


# ------------------------------------------------------------------ names

#: A name every consumer takes as it is: a folder, a file stem, a WebDataset key (no dot).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def safe_name(video_id: str) -> str:
    """``video_id`` itself when it is a safe name, else a safe form of it plus 8 hex of its sha1.

    WebDataset splits a file name at its first dot into key and extension and skips keys
    like ``__x__``; folders must not hold ``/``. The hash keeps two ids that differ only in
    such characters apart (``a.b`` → ``a_b-<hash>``, never the id ``a_b``).
    """
    if SAFE_NAME.fullmatch(video_id):
        return video_id
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", video_id)
    if not cleaned[:1].isalnum():
        cleaned = "v" + cleaned
    return f"{cleaned}-{hashlib.sha1(video_id.encode('utf-8')).hexdigest()[:8]}"


def split_of(video: VideoRecord) -> str:
    """The split a video is exported under: its ``videos.split``, or ``all``."""
    split = video.split or NO_SPLIT
    if not SAFE_NAME.fullmatch(split):
        raise ExportError(f"video {video.video_id}: split {split!r} cannot name a file (letters, digits, '_', '-')")
    return split


# ------------------------------------------------------------------ numbers and ids


def number(value: float) -> str:
    """The shortest text that reads back as ``value``: ``912`` for 912.0, ``0.86486``, ``-4``."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _int_track(tubelet: Tubelet) -> int | None:
    text = tubelet.track_id.strip()
    return int(text) if text.isdigit() else None


def first_frame(tubelet: Tubelet) -> int:
    """The first frame the object is visible on (else the first listed)."""
    visible = [f.frame_idx for f in tubelet.frames if f.visible]
    return min(visible or [f.frame_idx for f in tubelet.frames] or [0])


def object_order(tubelets: Sequence[Tubelet]) -> list[Tubelet]:
    """Tubelets in the order exports number them: by first visible frame, then numeric track id
    (an importer's object id), then tubelet id."""

    def key(t: Tubelet) -> tuple[int, float, str]:
        track = _int_track(t)
        return first_frame(t), float("inf") if track is None else float(track), t.tubelet_id

    return sorted(tubelets, key=key)


def numbered(tubelets: Sequence[Tubelet], keep: str) -> dict[str, int]:
    """Integer object ids, by tubelet id: the tubelets' own numeric track ids when they qualify,
    else 1..N in ``object_order``.

    ``keep="any"``: any set of distinct positive integers qualifies (MOT keeps its ids);
    ``keep="contiguous"``: only exactly 1..N does (a DAVIS reader counts objects by the
    highest id).
    """
    tracks = [_int_track(t) for t in tubelets]
    ints = [t for t in tracks if t is not None and t > 0]
    distinct = len(ints) == len(tubelets) and len(set(ints)) == len(ints)
    if distinct and (keep == "any" or set(ints) == set(range(1, len(ints) + 1))):
        return {t.tubelet_id: int(t.track_id) for t in tubelets}
    return {t.tubelet_id: k for k, t in enumerate(object_order(tubelets), start=1)}


def xywh(box: Sequence[float]) -> list[float]:
    """``[x1, y1, x2, y2]`` → ``[x, y, w, h]``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def frame_name(frame_idx: int, n_frames: int, suffix: str) -> str:
    """``00012.png``: the 0-based frame index, zero-padded to 5 digits (more for longer videos)."""
    return f"{frame_idx:0{max(5, len(str(max(n_frames - 1, 0))))}d}{suffix}"


def json_bytes(value: Any, *, indent: int | None = None) -> bytes:
    """Deterministic JSON: sorted keys, UTF-8, one trailing newline."""
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=indent, separators=separators)
    return (text + "\n").encode("utf-8")


def write_text(path: Path, text: str) -> None:
    """Write a text file with ``\\n`` line ends, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
