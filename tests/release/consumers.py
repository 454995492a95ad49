"""Readers of the release renderings that do what each consumer's training loader does with an item.

Written for these tests from the loaders' documentation and code (not copied from them):
- VideoRefer v1 (DAMO-NLP-SG/VideoRefer ``videorefer/train.py``, ``mm_utils.process_video``);
- VideoRefer-VideoLLaMA3 (same repository, ``videorefer_videollama3/train.py``), whose ``video``
  and ``conversations`` handling is VideoLLaMA3's own (DAMO-NLP-SG/VideoLLaMA3 ``videollama3/train.py``);
- LLaVA-NeXT (LLaVA-VL/LLaVA-NeXT ``llava/train/train.py``, ``llava/utils.process_video_with_decord``);
- Video-LLaVA (PKU-YuanGroup/Video-LLaVA ``videollava/train/train.py``, LanguageBind's video processor).

Each ``load_<format>(item, data_folder, media)`` raises ``LoadError`` where the loader would raise,
or would go on with the item silently damaged (no video features, an empty or a full-frame mask, a
``<region>`` token without a mask); it returns what the loader would feed the model. Media are
opened the way the loaders open them: ``os.path.join(folder, path)``, a video file through decord
(PyAV where decord is not installed), a folder as its sorted file names.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

#: Called for every decoded region mask: (item id, region index, frame index, mask) -> a problem or None.
MaskCheck = Callable[[str, int, int, np.ndarray], "str | None"]
#: Video-LLaVA samples this many frames (LanguageBind's ``num_frames``).
VIDEO_LLAVA_FRAMES = 8


class LoadError(Exception):
    """What the loader would do wrong with an item."""


@dataclass
class Loaded:
    """What a loader would hand the model for one item."""

    id: str
    video: Path
    masks: list[list[tuple[int, tuple[int, int]]]] = field(default_factory=list)  # per <region>: (frame, mask shape)
    frames: list[int] = field(default_factory=list)  # frame indices decoded for the item


# ---------------------------------------------------------------- media


@dataclass
class Video:
    """A decoded video: the (height, width) of every frame, in the loader's frame numbering."""

    path: Path
    is_folder: bool
    shapes: list[tuple[int, int]]

    def frame(self, idx: int) -> tuple[int, int]:
        if not 0 <= idx < len(self.shapes):
            raise LoadError(f"{self.path}: frame {idx} asked for, the video has {len(self.shapes)}")
        return self.shapes[idx]


class Media:
    """Videos opened once per test run, as the loaders open them."""

    def __init__(self) -> None:
        self.videos: dict[Path, Video] = {}

    def open(self, folder: Path, name: Any, files_only: bool = False) -> Video:
        if not isinstance(name, str):
            raise LoadError(f"video path {name!r} is not a string")
        path = Path(os.path.join(folder, name))  # what every loader does with its folder argument
        if not path.exists():
            raise LoadError(f"{path} does not exist")
        if files_only and path.is_dir():
            raise LoadError(f"{path} is a frame folder; this loader decodes video files only")
        if path not in self.videos:
            self.videos[path] = _open_folder(path) if path.is_dir() else _open_file(path)
        if not self.videos[path].shapes:
            raise LoadError(f"{path}: no frame decodes")
        return self.videos[path]


def _open_folder(path: Path) -> Video:
    from PIL import Image

    shapes = []
    for name in sorted(os.listdir(path)):  # the loaders' frame numbering: sorted file names
        with Image.open(path / name) as image:
            image.load()
            shapes.append((image.height, image.width))
    return Video(path, True, shapes)


def _open_file(path: Path) -> Video:
    try:
        import decord
    except ImportError:  # decord has wheels for x86-64 Linux only
        return Video(path, False, _pyav_shapes(path))
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    shapes = []
    for start in range(0, len(reader), 32):
        batch = reader.get_batch(list(range(start, min(start + 32, len(reader))))).asnumpy()
        shapes += [(int(f.shape[0]), int(f.shape[1])) for f in batch]
    return Video(path, False, shapes)


def _pyav_shapes(path: Path) -> list[tuple[int, int]]:
    import av

    with av.open(str(path)) as container:
        return [(f.height, f.width) for f in container.decode(video=0)]


# ---------------------------------------------------------------- shared checks


def _conversation(item: dict[str, Any]) -> list[dict[str, str]]:
    """The turns, checked the way the LLaVA-family preprocessors use them: human first, alternating, even."""
    conv = item.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise LoadError("no conversations")
    for turn in conv:
        if (
            not isinstance(turn, dict)
            or turn.get("from") not in ("human", "gpt")
            or not isinstance(turn.get("value"), str)
        ):
            raise LoadError(f"turn {turn!r} is not {{'from': human|gpt, 'value': str}}")
    if [t["from"] for t in conv] != ["human", "gpt"] * (len(conv) // 2) or len(conv) % 2:
        raise LoadError(f"turns {[t['from'] for t in conv]} do not alternate human, gpt")
    return conv


def _count(conv: list[dict[str, str]], token: str) -> int:
    return sum(t["value"].count(token) for t in conv)


def _one_token_first(conv: list[dict[str, str]], token: str) -> None:
    """Exactly one ``token`` in the conversation, in the first human turn."""
    if _count(conv, token) != 1 or token not in conv[0]["value"]:
        raise LoadError(f"{token} appears {_count(conv, token)} times, not once in the first human turn")


def _decode(ann: Any, height: int | None, width: int | None) -> np.ndarray:
    """A mask as the VideoRefer loaders decode it: polygon list, uncompressed or compressed RLE."""
    if isinstance(ann, list):
        if height is None or width is None:
            raise LoadError("a polygon mask needs the item's height and width")
        rle = coco_mask.merge(coco_mask.frPyObjects(ann, height, width))
    elif isinstance(ann, dict) and isinstance(ann.get("counts"), list):
        rle = coco_mask.frPyObjects(ann, height, width)
    elif isinstance(ann, dict) and isinstance(ann.get("counts"), str | bytes):
        rle = ann
    else:
        raise LoadError(f"mask {str(ann)[:80]} is no polygon or RLE")
    with warnings.catch_warnings():  # pycocotools' wrapper predates numpy 2's __array__(copy=)
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle)


def _region_masks(
    item_id: str,
    objects: list[dict[str, Any]],
    video: Video,
    size: tuple[int | None, int | None],
    unwrap: Callable[[Any], Any],
    check: MaskCheck | None,
) -> list[list[tuple[int, tuple[int, int]]]]:
    """Each object's masks decoded on its frames: keys are frame indices of the video, every mask
    non-empty and the size of the frame it is on."""
    out = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or not obj:
            raise LoadError(f"region {i}: {str(obj)[:80]} is no {{frame index: mask}} dict")
        decoded = []
        for key, value in obj.items():
            frame_idx = int(key)  # the loaders call int() on the key
            mask = _decode(unwrap(value), *size)
            if mask.shape != video.frame(frame_idx):
                raise LoadError(f"region {i} frame {frame_idx}: mask {mask.shape} on a frame {video.frame(frame_idx)}")
            if not mask.any():
                raise LoadError(f"region {i} frame {frame_idx}: empty mask (no region features)")
            problem = check(item_id, i, frame_idx, mask) if check else None
            if problem:
                raise LoadError(f"region {i} frame {frame_idx}: {problem}")
            decoded.append((frame_idx, mask.shape))
        out.append(decoded)
    return out


# ---------------------------------------------------------------- the loaders


def load_videorefer(item: dict[str, Any], data_folder: Path, media: Media, check: MaskCheck | None = None) -> Loaded:
    """VideoRefer v1: ``video`` str; ``<video>`` once; ``<region>`` i takes ``annotation[i]``, whose
    ``segmentation`` (never null) decodes on original frame index ``int(key)``."""
    if "image" in item or not isinstance(item.get("video"), str):
        raise LoadError("not a video item (video must be one path string)")
    conv = _conversation(item)
    _one_token_first(conv, "<video>")
    video = media.open(data_folder, item["video"])
    annotation = item.get("annotation")
    regions = _count(conv, "<region>")
    loaded = Loaded(str(item.get("id")), video.path)
    if annotation is None:
        if regions:
            raise LoadError(f"{regions} <region> tokens but no annotation")
        loaded.frames = [0]
        video.frame(0)
        return loaded
    if not isinstance(annotation, list) or len(annotation) != regions:
        raise LoadError(f"{regions} <region> tokens, annotation {str(annotation)[:60]}")
    for i, obj in enumerate(annotation):
        for key, value in obj.items():
            if not isinstance(value, dict) or value.get("segmentation") is None:
                raise LoadError(f"region {i} frame {key}: null segmentation (the loader uses an all-zero mask)")
    size = (item.get("height"), item.get("width"))
    loaded.masks = _region_masks(loaded.id, annotation, video, size, lambda v: v["segmentation"], check)
    shapes = {s for region in loaded.masks for _, s in region}
    if len(shapes) > 1:
        raise LoadError(f"masks of different sizes {sorted(shapes)} do not stack")
    loaded.frames = sorted({f for region in loaded.masks for f, _ in region})
    return loaded


def load_videollama3(item: dict[str, Any], data_folder: Path, media: Media, check: MaskCheck | None = None) -> Loaded:
    """VideoRefer-VideoLLaMA3: ``video`` a one-element list; ``<video>`` in a human turn; each mask
    of ``masks`` (object by object, frame by frame) takes the next ``<region>``; masks stack."""
    video_field = item.get("video")
    if not isinstance(video_field, list) or len(video_field) != 1:
        raise LoadError(f"Unsupported video format: {video_field!r}")
    conv = _conversation(item)
    _one_token_first(conv, "<video>")
    video = media.open(data_folder, video_field[0])
    loaded = Loaded(str(item.get("id")), video.path)
    masks = item.get("masks")
    regions = _count(conv, "<region>")
    if masks is None:
        if regions:
            raise LoadError(f"{regions} <region> tokens but no masks (they would stay plain text)")
        return loaded
    if not isinstance(masks, list) or not masks:
        raise LoadError("masks is not a non-empty list (an empty one does not stack)")
    size = (item.get("height"), item.get("width"))
    loaded.masks = _region_masks(loaded.id, masks, video, size, lambda v: v, check)
    n_masks = sum(len(region) for region in loaded.masks)
    if n_masks != regions:
        raise LoadError(f"{n_masks} masks for {regions} <region> tokens")
    shapes = {s for region in loaded.masks for _, s in region}
    if len(shapes) > 1:
        raise LoadError(f"masks of different sizes {sorted(shapes)} do not stack")
    loaded.frames = sorted({f for region in loaded.masks for f, _ in region})
    return loaded


def load_llava_video(item: dict[str, Any], data_folder: Path, media: Media, fps: float = 1.0) -> Loaded:
    """LLaVA-NeXT (LLaVA-Video, LLaVA-OneVision): ``video`` str decoded with decord at ``fps`` frames a
    second; the video's features replace the one ``<image>`` of the text."""
    if "image" in item or not isinstance(item.get("video"), str):
        raise LoadError("not a video item (video must be one path string)")
    conv = _conversation(item)
    _one_token_first(conv, "<image>")
    _no_region_text(conv)
    video = media.open(data_folder, item["video"], files_only=True)
    step = round(_fps_of(video) / fps)
    if step < 1:
        raise LoadError(f"{video.path}: {_fps_of(video):g} fps sampled at {fps:g} gives a frame step of 0")
    loaded = Loaded(str(item.get("id")), video.path, frames=list(range(0, len(video.shapes), step)))
    for idx in loaded.frames:
        video.frame(idx)
    return loaded


def load_video_llava(item: dict[str, Any], data_folder: Path, media: Media) -> Loaded:
    """Video-LLaVA: ``video`` str (or a list of one); the first human turn starts with ``<video>``, which
    becomes one ``<image>`` per sampled frame; no other ``<image>`` may stand in the text."""
    name = item.get("video")
    if isinstance(name, list):
        if len(name) != 1:
            raise LoadError(f"{len(name)} videos; the loader keeps at most one")
        name = name[0]
    if "image" in item or not isinstance(name, str):
        raise LoadError("not a video item")
    conv = _conversation(item)
    if not conv[0]["value"].startswith("<video>"):
        raise LoadError("the first human turn does not start with <video>")
    _one_token_first(conv, "<video>")
    if _count(conv, "<image>"):
        raise LoadError("<image> in the text: one image tensor per token, and there is none")
    _no_region_text(conv)
    video = media.open(data_folder, name, files_only=True)
    frames = np.linspace(0, len(video.shapes) - 1, VIDEO_LLAVA_FRAMES, dtype=int).tolist()
    for idx in frames:
        video.frame(idx)
    return Loaded(str(item.get("id")), video.path, frames=frames)


def _no_region_text(conv: list[dict[str, str]]) -> None:
    """No region input in the LLaVAs: a placeholder left in the text is a token the model never learnt."""
    for turn in conv:
        if re.search(r"<region\d*>", turn["value"]):
            raise LoadError(f"region placeholder left in: {turn['value'][:80]}")


def _fps_of(video: Video) -> float:
    """The frame rate decord reports (folders never get here)."""
    try:
        import decord

        return float(decord.VideoReader(str(video.path), ctx=decord.cpu(0)).get_avg_fps())
    except ImportError:
        import av

        with av.open(str(video.path)) as container:
            return float(container.streams.video[0].average_rate or 1)


LOADERS: dict[str, Callable[..., Loaded]] = {
    "videorefer": load_videorefer,
    "strefer": load_videorefer,
    "videollama3": load_videollama3,
    "llava-video": load_llava_video,
    "video-llava": load_video_llava,
}
#: The loaders that decode masks (and take a MaskCheck).
MASK_FORMATS = ("videorefer", "strefer", "videollama3")


# ---------------------------------------------------------------- a whole rendering


@dataclass
class Result:
    """Items of one rendering file set: what loaded, and why the rest did not."""

    loaded: list[Loaded] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)

    @property
    def total(self) -> int:
        return len(self.loaded) + len(self.failed)


def read_items(files: Iterable[Path]) -> list[dict[str, Any]]:
    """Items of ``.json`` (one array, what every loader here reads) or ``.jsonl`` files."""
    items: list[dict[str, Any]] = []
    for path in files:
        if path.suffix == ".jsonl":
            items += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        else:
            items += json.loads(path.read_text(encoding="utf-8"))
    return items


def load_release(release: Path, fmt: str, media: Media, check: MaskCheck | None = None) -> Result:
    """Every item of ``release/instructions/<fmt>/*`` through its loader, the release root as the folder."""
    loader = LOADERS[fmt]
    result = Result()
    for item in read_items(sorted((release / "instructions" / fmt).glob("*.json"))):
        try:
            extra = {"check": check} if fmt in MASK_FORMATS else {}
            result.loaded.append(loader(item, release, media, **extra))
        except (LoadError, ValueError, TypeError, KeyError) as error:
            result.failed.append((str(item.get("id")), f"{type(error).__name__}: {error}"))
    return result


#: The formats whose loaders read video files only (a frame folder's items are left out).
FILE_ONLY_FORMATS = ("llava-video", "video-llava")


def assert_release_loads(released: Any, fmt: str, media: Media) -> Result:
    """Every item of ``fmt`` in a ``conftest.Released`` loads, each mask is its region's on its frame,
    and what the release left out or box-masked is what it should have, by count."""
    result = load_release(released.path, fmt, media, released.check if fmt in MASK_FORMATS else None)
    info = released.info
    total = sum(info["counts"]["instructions"].values())
    rendered = sum(info["rendered"][fmt].values())
    skipped, notes = info["render_skipped"][fmt], info["render_notes"][fmt]
    assert result.failed == [], result.failed[:5]
    assert len(result.loaded) == rendered and rendered + skipped == total
    folders = released.folder_videos()
    in_folders = sum(row["video_id"] in folders for row in released.instructions.values())
    expected_skips = {"skipped:video_folder": in_folders} if fmt in FILE_ONLY_FORMATS and in_folders else {}
    assert {n: c for n, c in notes.items() if n.startswith("skipped:")} == expected_skips
    assert skipped == sum(expected_skips.values())
    if fmt in MASK_FORMATS:
        boxed = released.box_masked_regions(first_frame_only=fmt == "videollama3")
        assert notes.get("box_masked_regions", 0) == boxed
    print(f"\n[formats] {released.name:<9} {fmt:<12} {len(result.loaded)}/{total} load; notes {notes or '-'}")
    return result
