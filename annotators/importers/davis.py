"""DAVIS-style ground truth: a folder of per-frame PNG masks beside the frames.

How a PNG is read (decided once per sequence, on the first mask with any nonzero
pixel, then required of every mask):

- a palette PNG (mode ``P``, DAVIS-2017 style) is an index map: 0 is background,
  255 is void (ignored: belongs to no object), every other index is one object whose
  id is that index;
- a grayscale PNG (mode ``L``/``1``/``I``) whose values are only 0 and 255 is a
  DAVIS-2016 binary mask: one object, id 1, where the value is 255;
- a grayscale PNG with any other value is an index map like a palette PNG.

Frames: a mask file ``00012.png`` belongs to the frame whose file stem is ``00012``
(image folders; a mask that names no frame is rejected), or, for a video file, to
frame index 12. Its absolute frame index is that frame's position in the video.

Representation: one tubelet per object id. Every annotated frame from the object's
first to its last appearance is listed: ``visible=True`` with the mask RLE and its tight
box where the object has pixels, ``visible=False`` with no mask and the last visible
box where it has none (it left the view or is fully occluded). Frames before its
first or after its last appearance, and frames with no mask file, are not listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tubelet.annotators.importers.common import FrameIndex, ImportResult, RejectedItem, imported_tubelet
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_masks, rle_to_box_xyxy

FORMAT = "davis"
BACKGROUND, VOID = 0, 255
DEFAULT_CATEGORY = "object"


def read_mask_png(path: Path) -> tuple[np.ndarray, str]:
    """A mask PNG as an array and how its values read: ``"palette"`` or ``"gray"``."""
    with Image.open(path) as image:
        mode = image.mode
        if mode == "P":
            return np.asarray(image), "palette"
        if mode == "1":
            return np.asarray(image).astype(np.uint8) * 255, "gray"
        if mode in ("L", "I", "I;16"):
            return np.asarray(image).astype(np.int64 if mode.startswith("I") else np.uint8), "gray"
    raise ValueError(f"{path}: unsupported PNG mode {mode!r} (expected a palette or grayscale mask)")


def _label_map(values: np.ndarray, binary: bool) -> np.ndarray:
    """Object ids per pixel (0 = no object) under the sequence's reading."""
    if binary:
        return (values == 255).astype(np.uint8)
    labels = values.astype(np.int64, copy=False)
    return np.where(labels == VOID, BACKGROUND, labels)


def _is_binary(values: np.ndarray, kind: str) -> bool:
    return kind == "gray" and bool(np.isin(np.unique(values), (0, 255)).all())


def _frame_of(stem: str, index: FrameIndex, positions: dict[str, int] | None) -> int | None:
    if positions is not None:
        return positions.get(stem)
    if re.fullmatch(r"\d+", stem) and int(stem) < index.n_frames:
        return int(stem)
    return None


def import_davis(mask_dir: str | Path, index: FrameIndex, categories: Mapping[str, str] | None = None) -> ImportResult:
    """Tubelets of every object in a folder of DAVIS-style PNG masks.

    Raises ``FileNotFoundError`` for a missing folder or one without PNGs, and
    ``ValueError`` when no mask names a frame of the video or a mask's size is not the
    video's. A mask file that names no frame, or cannot be read, is rejected.
    """
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise FileNotFoundError(f"DAVIS annotation folder not found: {mask_dir}")
    files = sorted(p for p in mask_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no PNG masks in DAVIS annotation folder {mask_dir}")
    video = index.video
    categories = {str(k): v for k, v in (categories or {}).items()}
    positions = {name: i for i, name in enumerate(index.names)} if index.names is not None else None
    result = ImportResult()

    annotated: list[int] = []  # frame indices that have a mask file, in order
    seen: dict[int, list[tuple[int, dict[str, Any], list[float]]]] = {}  # id -> (frame, rle, box)
    binary: bool | None = None  # decided on the first mask with any nonzero pixel
    placed: dict[int, Path] = {}
    for path in files:
        frame_idx = _frame_of(path.stem, index, positions)
        if frame_idx is None:
            where = "frame file" if positions is not None else f"frame index below {index.n_frames}"
            result.rejects.append(RejectedItem(str(path), f"mask {path.name} names no {where} of the video"))
        elif frame_idx in placed:
            reason = f"a second mask for frame {frame_idx} (first: {placed[frame_idx].name})"
            result.rejects.append(RejectedItem(str(path), reason))
        else:
            placed[frame_idx] = path
    for frame_idx, path in sorted(placed.items()):
        try:
            values, kind = read_mask_png(path)
        except (OSError, ValueError) as error:
            result.rejects.append(RejectedItem(str(path), f"unreadable mask: {error}"))
            continue
        if values.shape != (video.height, video.width):
            raise ValueError(
                f"{path}: mask is {values.shape[1]}x{values.shape[0]} but the video is {video.width}x{video.height}"
            )
        if values.any():
            looks_binary = _is_binary(values, kind)
            if binary is None:
                binary = looks_binary
            elif binary and not looks_binary:
                raise ValueError(
                    f"{path}: an index map in a sequence read as binary 0/255 masks "
                    f"(its first nonzero mask had only 0 and 255)"
                )
        annotated.append(frame_idx)
        labels = _label_map(values, bool(binary))
        ids = [int(i) for i in np.unique(labels) if i != BACKGROUND]
        if not ids:
            continue
        stack = labels[None, :, :] == np.asarray(ids)[:, None, None]
        for oid, rle in zip(ids, encode_masks(stack), strict=True):
            box = rle_to_box_xyxy(rle)
            assert box is not None  # the id is present in this frame
            seen.setdefault(oid, []).append((frame_idx, rle, box))

    if not annotated:
        raise ValueError(f"no readable mask in {mask_dir} names a frame of {video.uri}")
    mask_format = "binary" if binary else "indexed"
    for oid in sorted(seen):
        result.tubelets.append(_tubelet(oid, seen[oid], annotated, index, categories, mask_format))
    return result


def _tubelet(
    oid: int,
    visible: list[tuple[int, dict[str, Any], list[float]]],
    annotated: list[int],
    index: FrameIndex,
    categories: Mapping[str, str],
    mask_format: str,
) -> Tubelet:
    by_frame = {f: (rle, box) for f, rle, box in visible}
    first, last = visible[0][0], visible[-1][0]
    frames: list[TubeletFrame] = []
    last_box = visible[0][2]
    for f in annotated:
        if f < first or f > last:
            continue
        if f in by_frame:
            rle, last_box = by_frame[f]
            frames.append(TubeletFrame(f, index.t_s(f), list(last_box), mask_rle=rle))
        else:
            frames.append(TubeletFrame(f, index.t_s(f), list(last_box), visible=False))
    video = index.video
    return imported_tubelet(
        video, FORMAT, oid, categories.get(str(oid), DEFAULT_CATEGORY), frames, {"mask_format": mask_format}
    )


def davis_sequence_entries(
    root: str | Path, resolution: str = "480p", fps: float = 24.0, source: str = "davis"
) -> list[dict[str, Any]]:
    """VideoEntry-shaped dicts for every sequence of a DAVIS folder.

    ``root`` holds ``JPEGImages/<resolution>/<seq>/`` and ``Annotations/<resolution>/<seq>/``;
    a sequence without an annotation folder gets no ``annotations``. Paths are
    ``root``-based, as given (make them relative to a list file when writing one).
    """
    root = Path(root)
    frames_root = root / "JPEGImages" / resolution
    if not frames_root.is_dir():
        raise FileNotFoundError(f"not a DAVIS folder (no JPEGImages/{resolution}): {root}")
    entries = []
    for seq in sorted(p for p in frames_root.iterdir() if p.is_dir()):
        entry: dict[str, Any] = {"uri": str(seq), "video_id": seq.name, "fps": float(fps), "source": source}
        masks = root / "Annotations" / resolution / seq.name
        if masks.is_dir():
            entry["annotations"] = {"format": FORMAT, "path": str(masks)}
        entries.append(entry)
    return entries
