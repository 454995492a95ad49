"""MOTChallenge text files, laid out where TrackEval's ``MotChallenge2DBox`` looks for them.

Ground truth (``role="gt"``; ``DIR`` is TrackEval's ``GT_FOLDER``)::

    DIR/seqmaps/<benchmark>-<split>.txt          "name", then one sequence per line
    DIR/<benchmark>-<split>/<seq>/seqinfo.ini    name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    DIR/<benchmark>-<split>/<seq>/gt/gt.txt      frame,id,x,y,w,h,consider,class,visibility
    DIR/<benchmark>-<split>/<seq>/img1/000001.jpg…   the frames (unless frames=False)

A tracker's results (``role="tracker"``; ``DIR`` is TrackEval's ``TRACKERS_FOLDER``)::

    DIR/<benchmark>-<split>/<tracker>/data/<seq>.txt   frame,id,x,y,w,h,conf,-1,-1,-1

Rows, one per tubelet frame, sorted by frame then id:

- ``frame`` is ``frame_idx + 1`` (1-based); ``id`` is the tubelet's own numeric track id
  when every tubelet of the video has a distinct positive one (a MOT import keeps its
  ids), else 1..N in order of first appearance (``common.numbered``); the map is in
  ``tubelet_export.json``;
- ``x, y, w, h`` come from the stored pixel box: ``amodal_xyxy`` (the unclipped box a MOT
  import keeps) or else ``box_xyxy``, written as the shortest decimal that reads back as
  the stored value;
- a frame is written when the object is visible, and also when it is not but the tubelet's
  source annotates occluded boxes (its ``extra.visibility`` lists a ratio per frame, as a
  MOT import does); other invisible frames only repeat a last box and are not written;
- ground truth: ``consider`` is ``extra.consider`` (else 1), ``class`` is the row's
  ``extra.mot_classes`` entry, else ``extra.mot_class``, else the MOT17 class of the
  category name (``person`` counts as ``pedestrian``), else -1 (TrackEval's MOT17
  preprocessing refuses it: evaluate such classes with ``DO_PREPROC: False``);
  ``visibility`` is ``extra.visibility`` (else 1 for visible, 0 for invisible);
- rows a MOT import keeps in ``extra.outside`` (boxes wholly outside the frame, which are
  no tubelet frame) are written back too, so the file holds every row of the original;
- a tracker: ``conf`` is the frame's score, else the tubelet's, else 1; the class and
  3-D columns are -1 as MOTChallenge results write them (TrackEval reads -1 as "not a
  non-pedestrian class").

``seqLength`` is the video's frame count (the frames the dataset has).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tubelet.annotators.importers.mot import MOT17_CLASSES
from tubelet.release.exports.common import (
    Exporter,
    VideoItem,
    number,
    numbered,
    write_text,
    xywh,
)
from tubelet.release.exports.media import write_frames
from tubelet.schemas import Tubelet

#: MOT17 class ids by name, plus the COCO name of a pedestrian.
CLASS_IDS: dict[str, int] = {name: cid for cid, name in MOT17_CLASSES.items()} | {"person": 1}
UNKNOWN_CLASS = -1
IMAGE_DIR = "img1"

Row = tuple[int, int, list[float], list[str]]  # frame, id, xywh, the columns after h


class MotExporter(Exporter):
    """Writes ground truth or a tracker's results (see the module docstring)."""

    def add(self, item: VideoItem) -> None:
        ids = numbered(item.tubelets, keep="any")
        self.objects[item.video.video_id] = {str(ids[t.tubelet_id]): t.tubelet_id for t in item.tubelets}
        gt = self.options.role == "gt"
        rows: list[Row] = []
        for tubelet in item.tubelets:
            rows += self._rows(tubelet, ids[tubelet.tubelet_id], gt)
        rows.sort(key=lambda r: (r[0], r[1]))
        text = "".join(",".join([str(f), str(i), *(number(v) for v in box), *rest]) + "\n" for f, i, box, rest in rows)
        split_dir = self.out / f"{self.options.benchmark}-{item.split}"
        if gt:
            seq = split_dir / item.name
            write_text(seq / "gt" / "gt.txt", text)
            write_text(seq / "seqinfo.ini", _seqinfo(item))
            if self.options.frames:
                n = write_frames(item.video, seq / IMAGE_DIR, _image_name, self.options.jpeg_quality)
                self.tally.counts["frames_written"] += n
        else:
            write_text(split_dir / self.options.tracker / "data" / f"{item.name}.txt", text)
        self.place(item)
        self.tally.counts["boxes"] += len(rows)

    def _rows(self, tubelet: Tubelet, mot_id: int, gt: bool) -> list[Row]:
        visibility = _aligned(tubelet, "visibility")
        consider = _aligned(tubelet, "consider")
        classes = _aligned(tubelet, "mot_classes")
        track_class = self._class_id(tubelet) if gt else UNKNOWN_CLASS
        conf = tubelet.score if tubelet.score is not None else 1.0
        rows: list[Row] = []
        for k, f in enumerate(tubelet.frames):
            if not f.visible and visibility is None:
                self.tally.counts["invisible_frames_not_written"] += 1
                continue
            box = xywh(f.amodal_xyxy or f.box_xyxy)
            if gt:
                flag = bool(consider[k]) if consider is not None else True
                vis = float(visibility[k]) if visibility is not None else float(f.visible)
                cls = int(classes[k]) if classes is not None else track_class
                rest = _gt_columns(flag, cls, vis)
            else:
                rest = [number(f.score if f.score is not None else conf), "-1", "-1", "-1"]
            rows.append((f.frame_idx + 1, mot_id, box, rest))
        for row in _outside(tubelet):
            # a MOT import keeps rows wholly outside the picture aside (they are no frame): written back as they were
            box = xywh(row["xyxy"])
            if gt:
                rest = _gt_columns(bool(row["consider"]), int(row["mot_class"]), float(row["visibility"]))
            else:
                rest = [number(conf), "-1", "-1", "-1"]
            rows.append((int(row["frame_idx"]) + 1, mot_id, box, rest))
            self.tally.counts["rows_outside_the_frame"] += 1
        return rows

    def _class_id(self, tubelet: Tubelet) -> int:
        cls = tubelet.extra.get("mot_class")
        if isinstance(cls, int) and not isinstance(cls, bool):
            return cls
        if tubelet.category.lower() in CLASS_IDS:
            return CLASS_IDS[tubelet.category.lower()]
        self.tally.counts["gt_tubelets_of_unknown_class"] += 1
        return UNKNOWN_CLASS

    def finish(self) -> None:
        if self.options.role != "gt":
            return
        for split, names in sorted(self.videos.items()):
            seqmap = self.out / "seqmaps" / f"{self.options.benchmark}-{split}.txt"
            write_text(seqmap, "name\n" + "".join(f"{n}\n" for n in sorted(names)))


def _aligned(tubelet: Tubelet, key: str) -> Sequence[Any] | None:
    """``extra[key]`` when it is a list with one value per frame (a MOT import's), else None."""
    values = tubelet.extra.get(key)
    return values if isinstance(values, list) and len(values) == len(tubelet.frames) else None


def _outside(tubelet: Tubelet) -> list[dict[str, Any]]:
    """The rows of a MOT import that lie wholly outside the frame (``extra.outside``), if any."""
    rows = tubelet.extra.get("outside")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _gt_columns(consider: bool, cls: int, visibility: float) -> list[str]:
    """The gt columns after the box: consider flag, class, visibility."""
    return [str(int(consider)), str(cls), number(visibility)]


def _image_name(frame_idx: int) -> str:
    return f"{frame_idx + 1:06d}.jpg"


def _seqinfo(item: VideoItem) -> str:
    video = item.video
    fields = {
        "name": item.name,
        "imDir": IMAGE_DIR,
        "frameRate": number(video.fps),
        "seqLength": str(video.n_frames),
        "imWidth": str(video.width),
        "imHeight": str(video.height),
        "imExt": ".jpg",
    }
    return "[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in fields.items())
