"""The formats' reference readers, for the export round trips: written here from the readers'
own code (read, not copied), or the installed library itself.

- DAVIS: davis2017-evaluation (davisvideochallenge/davis2017-evaluation, ``davis2017/davis.py``,
  ``DAVIS.__init__`` and ``get_all_masks``): sequences from ``ImageSets/2017/<subset>.txt``,
  frames and masks by sorted glob under ``JPEGImages|Annotations/<resolution>/<seq>/``,
  void 255 read as background, the object count from the highest id of the FIRST mask,
  object ``k`` = pixels equal to ``k``.
- YouTube-VIS: the API's ``YTVOS.annToRLE``/``annToMask`` (youtubevos/cocoapi,
  ``PythonAPI/pycocotools/ytvos.py``): a segmentation is a polygon list (merged), an
  uncompressed RLE (``frPyObjects``) or a compressed RLE used as it is; pycocotools
  decodes it. ``loadRes`` computes areas with ``mask.area`` and boxes with ``mask.toBbox``.
- MOTChallenge: TrackEval's ``MotChallenge2DBox`` and metrics, installed (``import trackeval``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tests.evaluation.trackeval_reference import QUIET
from tubelet.engine.dataset import Dataset
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.pipelines import build_pipeline
from tubelet.schemas import Tubelet
from tubelet.schemas.rle import decode_rle

# --------------------------------------------------------------------------- DAVIS


def davis2017_sequences(root: Path, subset: str, year: str = "2017") -> list[str]:
    return [line.strip() for line in (root / "ImageSets" / year / f"{subset}.txt").read_text().splitlines()]


def davis2017_masks(root: Path, seq: str, resolution: str = "480p") -> tuple[np.ndarray, list[str], int]:
    """``(masks[objects, frames, H, W] bool, mask ids (file stems), number of images)``."""
    images = sorted((root / "JPEGImages" / resolution / seq).glob("*.jpg"))
    pngs = sorted((root / "Annotations" / resolution / seq).glob("*.png"))
    assert len(pngs) == len(images) or not images, "the reader pads missing masks with -1 and then fails to open them"
    stack = np.stack([np.array(Image.open(p)) for p in pngs]).astype(np.float64)
    stack[stack == 255] = 0
    num_objects = int(np.max(stack[0]))
    ids = np.arange(1, num_objects + 1)[:, None, None, None]
    return (ids == stack[None]) > 0, [p.stem for p in pngs], len(images)


# --------------------------------------------------------------------------- YouTube-VIS


def ytvos_rle(dataset: Mapping[str, Any], ann: Mapping[str, Any], frame: int) -> Any:
    """``YTVOS.annToRLE``: the RLE pycocotools decodes, or None for a null segmentation."""
    video = {v["id"]: v for v in dataset["videos"]}[ann["video_id"]]
    h, w = video["height"], video["width"]
    segm = ann["segmentations"][frame]
    if segm is None:
        return None
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, h, w)
    return segm


def ytvos_mask(dataset: Mapping[str, Any], ann: Mapping[str, Any], frame: int) -> np.ndarray | None:
    """``YTVOS.annToMask``."""
    rle = ytvos_rle(dataset, ann, frame)
    if rle is None:
        return None
    with warnings.catch_warnings():  # pycocotools predates numpy 2's __array__(copy=)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


# --------------------------------------------------------------------------- TrackEval


def trackeval_dataset(gt: Path, trackers: Path, split: str, tracker: str = "tubelet", benchmark: str = "MOT17") -> Any:
    trackeval = pytest.importorskip("trackeval")  # the `eval` extra

    config = {
        "GT_FOLDER": str(gt),
        "TRACKERS_FOLDER": str(trackers),
        "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": split,
        "TRACKERS_TO_EVAL": [tracker],
        "PRINT_CONFIG": False,
    }
    return trackeval.datasets.MotChallenge2DBox(config)


def trackeval_scores(dataset: Any, tracker: str = "tubelet") -> dict[str, float]:
    """TrackEval's combined pedestrian scores: HOTA, DetA, AssA, LocA (mean over its alphas), CLEAR, IDF1."""
    trackeval = pytest.importorskip("trackeval")

    evaluator = trackeval.Evaluator(dict(QUIET))
    quiet = {"PRINT_CONFIG": False}
    metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    results, messages = evaluator.evaluate([dataset], metrics)
    assert messages["MotChallenge2DBox"][tracker] == "Success", messages
    combined = results["MotChallenge2DBox"][tracker]["COMBINED_SEQ"]["pedestrian"]
    scores = {k: float(np.mean(combined["HOTA"][k])) for k in ("HOTA", "DetA", "AssA", "LocA")}
    scores |= {k: float(combined["CLEAR"][k]) for k in ("MOTA", "CLR_TP", "CLR_FN", "CLR_FP", "IDSW")}
    scores["IDF1"] = float(combined["Identity"]["IDF1"])
    return scores


# --------------------------------------------------------------------------- tubelet side


def visible_masks(tubelets: list[Tubelet]) -> dict[tuple[str, int], np.ndarray]:
    """``{(tubelet_id, frame_idx): mask}`` over the visible frames that have a mask."""
    return {
        (t.tubelet_id, f.frame_idx): decode_rle(f.mask_rle)
        for t in tubelets
        for f in t.frames
        if f.visible and f.mask_rle is not None
    }


# --------------------------------------------------------------------------- importing


def imported(uri: str | Path, video_id: str, annotations: dict, fps: float | None = None, split: str | None = None):
    """A video with its annotations imported through the `import` pipeline's stages."""
    task = VideoTask(video_id=video_id, uri=str(uri), fps=fps, split=split, annotations=annotations)
    for stage in build_pipeline("import", {"decode_check": False}).stages:
        [task] = run_stage(stage, [task])
    assert not task.failed, task.rejects
    return task


# --------------------------------------------------------------------------- round trips
# Each returns what it compared and how many disagreed, so a test asserts both and a
# figure can be quoted from it.


@dataclass
class Compared:
    masks: int = 0
    boxes: int = 0
    mismatches: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.mismatches.append(what)


def export_objects(out: Path) -> dict[str, dict[int, str]]:
    """``{video_id: {exported object id: tubelet_id}}`` from ``tubelet_export.json``."""
    info = json.loads((out / "tubelet_export.json").read_text())
    return {v["video_id"]: {int(k): tid for k, tid in v["objects"].items()} for v in info["videos"]}


def export_names(out: Path) -> dict[str, str]:
    """``{exported name: video_id}``."""
    info = json.loads((out / "tubelet_export.json").read_text())
    return {v["name"]: v["video_id"] for v in info["videos"]}


def davis2017_round_trip(out: Path, split: str, tubelets: list[Tubelet]) -> Compared:
    """Every mask of ``tubelets`` against the davis2017-evaluation reader's, frame by frame
    (objects it cannot count, i.e. absent from the first frame, are mismatches too)."""
    result = Compared()
    want = visible_masks(tubelets)
    objects = export_objects(out)
    names = export_names(out)
    for seq in davis2017_sequences(out, split):
        video_id = names[seq]
        masks, ids, n_images = davis2017_masks(out, seq)
        result.check(n_images == len(ids), f"{seq}: {n_images} images, {len(ids)} masks")
        for oid, tid in objects[video_id].items():
            if oid > masks.shape[0]:
                result.mismatches.append(f"{tid}: object {oid} is not on the first frame of {seq}")
                continue
            for f in range(len(ids)):
                expected = want.get((tid, f))
                got = masks[oid - 1, f]
                result.check(np.array_equal(got, expected) if expected is not None else not got.any(), f"{tid}@{f}")
                result.masks += expected is not None
    return result


def youtube_vis_round_trip(out: Path, split: str, tubelets: list[Tubelet]) -> Compared:
    """Every annotation of ``<split>.json`` decoded as the API does, against the tubelets."""
    result = Compared()
    data = json.loads((out / f"{split}.json").read_text())
    by_id = {t.tubelet_id: t for t in tubelets}
    video_names = {v["id"]: v["file_names"][0].split("/")[0] if v["file_names"] else "" for v in data["videos"]}
    names = export_names(out)
    objects = export_objects(out)
    for ann in data["annotations"]:
        video_id = names[video_names[ann["video_id"]]]
        tube = by_id[objects[video_id][ann["id"]]]
        visible = {f.frame_idx: f for f in tube.frames if f.visible}
        for i in range(len(ann["segmentations"])):
            frame = visible.get(i)
            mask = ytvos_mask(data, ann, i)
            if frame is None:
                result.check(
                    mask is None and ann["bboxes"][i] is None and ann["areas"][i] is None, f"{tube.tubelet_id}@{i}"
                )
                continue
            x1, y1, x2, y2 = frame.box_xyxy
            result.check(ann["bboxes"][i] == [x1, y1, x2 - x1, y2 - y1], f"{tube.tubelet_id}@{i} box")
            result.boxes += 1
            if frame.mask_rle is None:
                result.check(mask is None, f"{tube.tubelet_id}@{i} mask")
                continue
            rle = ytvos_rle(data, ann, i)
            same = mask is not None and np.array_equal(mask, decode_rle(frame.mask_rle))
            result.check(same and ann["areas"][i] == int(mask_utils.area(rle)), f"{tube.tubelet_id}@{i} mask")
            result.masks += 1
    return result


def webdataset_round_trip(out: Path, dataset: Dataset) -> Compared:
    """Every sample read with ``webdataset.WebDataset``: its json equal to the dataset's rows
    (boxes and masks as stored), its mp4 decoding to the video's frame count."""
    webdataset = pytest.importorskip("webdataset")  # the `release` extra
    result = Compared()
    rows = {table: dataset.records(table) for table in ("videos", "tubelets", "entities", "events", "instructions")}
    videos = {v.video_id: v for v in rows["videos"]}
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    for sample in webdataset.WebDataset(urls, shardshuffle=False).decode():
        data = sample["json"]
        vid = data["video"]["video_id"]
        for table in ("tubelets", "entities", "events", "instructions"):
            mine = [dataclasses.asdict(r) for r in rows[table] if r.video_id == vid]
            result.check(data[table] == mine, f"{vid}: {table}")
        tubes = [t for t in rows["tubelets"] if t.video_id == vid]
        result.boxes += sum(1 for t in tubes for f in t.frames if f.visible)
        result.masks += sum(1 for t in tubes for f in t.frames if f.mask_rle is not None)
        with av.open(io.BytesIO(sample["mp4"])) as container:
            frames = sum(1 for _ in container.decode(video=0))
        result.check(frames == videos[vid].n_frames, f"{vid}: mp4 has {frames} frames")
        if data["video"]["media"]["copied"]:
            result.check(sample["mp4"] == Path(videos[vid].uri).read_bytes(), f"{vid}: mp4 bytes")
    return result
