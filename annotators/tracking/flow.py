"""The lite masklet tracker: OpenCV optical flow (+ optional GrabCut) as a ``Propagator``.

Each object is carried from one frame to the next at a working resolution:

1. motion: sparse Lucas–Kanade on corners found inside the object's mask (or box), with a
   forward–backward check that drops points which do not track back to where they came
   from; or dense Farnebäck flow over the object's neighbourhood (``method="farneback"``);
2. the box moves by the median displacement and scales by the median ratio of point
   distances (MedianFlow);
3. the mask (``mask_flow="dense"``, the default) is pulled along a dense optical flow
   (DIS, one per frame pair for all objects) and its outline settled by the object's
   colour model (``tracking.masks``); with ``"rigid"`` it is shifted/scaled with the box;
4. optionally, every ``grabcut_every`` frames, the mask is refined by GrabCut
   initialised from it — the expensive step, off by default.

Prompts: a mask is taken as given; a box alone is segmented with GrabCut (at most
``segment_side`` pixels a side; the box's inscribed ellipse where GrabCut finds nothing
plausible, so every object has a mask); a box *with* a mask (a detection re-anchoring a
tracked object, ``reanchor=True`` / ``refits_masks``) keeps the mask, cut to the box,
while it still fits the box (``masks.fits_box``), and only otherwise segments the box
again. Each prompt (re)learns the object's colour model from its mask.

An object is *lost* (left out of every later frame's dict in this window) when too few
points survive or its box leaves the frame; association handles re-entry. ``Region.score``
is the fraction of tracked points kept by the forward–backward check.

Deterministic: GrabCut starts its colour models with k-means drawn from OpenCV's
process-wide RNG, so every call seeds it first from ``seed`` and the frame index. A mask
depends on the frame and the object only, never on what the process segmented before
(another video, another window, another order).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tubelet.annotators.tracking.masks import (
    ColourModel,
    clip_to_box,
    fits_box,
    run_grabcut,
    segment_box,
    settle,
    warp_mask,
)
from tubelet.annotators.tracking.propagator import Region, frames_between, open_reader
from tubelet.engine.determinism import derived_seed
from tubelet.schemas.geometry import mask_to_box
from tubelet.schemas.rle import RLE, decode_rle

_LK = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))

# Settling a warped mask (``masks.settle``): weight of the warped value against the colour
# evidence, and the most one pixel's colour may say (log-ratio), so colour moves the
# outline but cannot empty a mask on its own.
_PRIOR, _COLOUR_LIMIT = 2.0, 3.0
# Re-anchoring on a detection's box: the carried mask is cut to the box grown by this
# share of its size, and kept while it overlaps the box this much (IoU of the mask's box)
# and fills this share of it; otherwise the box is segmented again.
_ANCHOR_MARGIN, _ANCHOR_FILL = 0.05, (0.25, 1.0)
# A mask carried along the flow stays within the object's moved box grown by this share.
_BOX_MARGIN = 0.1
# LK runs on the points' bounding box grown by half its size and this many pixels: more
# than its pyramid's reach (15-pixel windows over 4 levels).
_LK_REACH = 64
# Corners are found on the object's neighbourhood grown by this many pixels (more than the
# corner detector's window and derivative reach).
_CORNER_MARGIN = 8


@dataclass
class _Object:
    """One prompted object, in working-resolution pixels."""

    box: np.ndarray  # amodal [x1, y1, x2, y2]: may reach outside the frame while leaving
    mask: np.ndarray | None  # bool (h, w), clipped to the frame; None for a box-only prompt
    score: float = 1.0
    steps: int = 0  # frames propagated since the prompt (drives ``grabcut_every``)
    velocity: np.ndarray | None = None  # last per-frame shift, gates the next frame's points
    missed: int = 0  # frames in a row coasted on ``velocity`` (not reported)
    colour: ColourModel | None = None  # learned from the mask at the prompt (settles the outline)


class _Frames:
    """Lazy, chunked, bounded decoding of one video at the working size (RGB uint8)."""

    def __init__(self, video: Any, max_side: int | None, cache_frames: int, chunk: int) -> None:
        self._owned = None
        self._array: np.ndarray | Sequence[np.ndarray] | None = None
        self._reader: Any = None
        opened = open_reader(video)
        if opened is not None:
            self._reader, owned = opened
            self._owned = self._reader if owned else None
        elif isinstance(video, np.ndarray) or isinstance(video, Sequence):
            self._array = video
        else:
            raise TypeError(f"cannot read frames from {type(video).__name__}: give a uri, a VideoReader or an array")
        if self._reader is not None:
            self.width, self.height = int(self._reader.meta.width), int(self._reader.meta.height)
        else:
            self.height, self.width = np.asarray(self._array[0]).shape[:2]  # type: ignore[index]
        side = max(self.width, self.height)
        scale = 1.0 if not max_side or side <= max_side else max_side / side
        # even working sizes: some decoder scalers mishandle odd widths
        self.size = (max(2, int(round(self.width * scale / 2)) * 2), max(2, int(round(self.height * scale / 2)) * 2))
        self.sx, self.sy = self.size[0] / self.width, self.size[1] / self.height
        self.cache_frames = max(2, cache_frames)
        self.chunk = max(1, min(chunk, self.cache_frames - 1))
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, idx: int, ahead: Sequence[int]) -> np.ndarray:
        """Frame ``idx``; on a miss, decode it and the next uncached frames of ``ahead``."""
        if idx in self.cache:
            self.cache.move_to_end(idx)
            return self.cache[idx]
        want = [idx] + [f for f in ahead if f != idx and f not in self.cache][: self.chunk - 1]
        for f, image in zip(want, self._decode(want)):
            self.cache[f] = image
            self.cache.move_to_end(f)
        while len(self.cache) > self.cache_frames:
            self.cache.popitem(last=False)  # least recently used
        return self.cache[idx]

    def _decode(self, indices: list[int]) -> list[np.ndarray]:
        if self._reader is not None:
            batch = self._reader.frames(indices, size=self.size)  # decoded ascending, returned in this order
            # one array per frame: a view would keep its whole batch alive as long as any
            # frame of it is cached, so the cache would hold up to cache_frames batches
            return [frame.copy() for frame in batch] if len(batch) > 1 else list(batch)
        out = []
        for i in indices:
            image = np.ascontiguousarray(np.asarray(self._array[i])[..., :3], dtype=np.uint8)  # type: ignore[index]
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            out.append(image)
        return out

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()


class FlowPropagator:
    """Optical-flow masklet tracker (lite profile); implements ``Propagator``.

    ``max_side``: longest side of the working resolution (None: native); ``method``:
    ``"lk"`` (sparse Lucas–Kanade) or ``"farneback"`` (dense); ``grabcut_every``: refine
    the mask with GrabCut every so many frames (0: never); ``cache_frames``: decoded frames
    kept across windows; ``decode_chunk``: frames decoded per miss; ``max_points`` /
    ``min_points``: corners per object and the fewest that must survive;
    ``min_kept``: least fraction of points surviving the forward–backward check;
    ``fb_threshold``: forward–backward error (working pixels) above which a point is
    dropped; ``min_inside``: least fraction of the (amodal) box inside the frame;
    ``coast_frames``: frames an object whose points vanish (occluded) is carried on its
    last velocity, unreported, before it is lost; ``max_accel``: how far (working pixels,
    plus half the speed) a point's motion may differ from the object's last velocity and
    still count as the object's; ``box_grabcut``: segment box-only prompts with GrabCut;
    ``mask_flow``: ``"dense"`` (warp masks along DIS optical flow and settle their outline
    by colour) or ``"rigid"`` (shift and scale them with the box); ``segment_side``:
    longest side of the crop GrabCut segments a box on (None: working size);
    ``band``: width (working pixels) of the outline a colour model may move per frame;
    ``reanchor``: on a detection's re-prompt, keep the carried mask fitted to the box
    (``refits_masks``) rather than segmenting the box again — about 1.3× faster, J&F
    0.601–0.608 instead of 0.613–0.619 on DAVIS-2016 (docs/benchmarks.md); ``reanchor_iou``: least
    IoU between a carried mask's box and the detection's box for the mask to be kept;
    ``seed``: GrabCut's random start on frame ``f`` is seeded from ``(seed, f)``.
    ``stats`` counts tracked frames, GrabCut runs (and those that found nothing, whose
    box became its inscribed ellipse), lost objects and re-anchors (kept / re-segmented)
    since construction.
    """

    #: A box prompt on a frame always gives the same mask (GrabCut is seeded by the frame):
    #: association may hand that mask back instead of the box on a second walk.
    repeatable_masks: bool = True

    def __init__(
        self,
        max_side: int | None = 640,
        method: str = "lk",
        grabcut_every: int = 0,
        cache_frames: int = 64,
        decode_chunk: int = 16,
        max_points: int = 100,
        min_points: int = 6,
        min_kept: float = 0.1,
        fb_threshold: float = 1.0,
        min_inside: float = 0.1,
        coast_frames: int = 6,
        max_accel: float = 3.0,
        grabcut_iterations: int = 2,
        box_grabcut: bool = True,
        mask_flow: str = "dense",
        segment_side: int | None = 256,
        band: int = 4,
        reanchor_iou: float = 0.7,
        reanchor: bool = False,
        seed: int = 0,
    ) -> None:
        if method not in ("lk", "farneback"):
            raise ValueError(f"method must be 'lk' or 'farneback', got {method!r}")
        if mask_flow not in ("dense", "rigid"):
            raise ValueError(f"mask_flow must be 'dense' or 'rigid', got {mask_flow!r}")
        self.max_side = max_side
        self.method = method
        self.grabcut_every = int(grabcut_every or 0)
        self.cache_frames = cache_frames
        self.decode_chunk = decode_chunk
        self.max_points = max_points
        self.min_points = min_points
        self.min_kept = min_kept
        self.fb_threshold = fb_threshold
        self.min_inside = min_inside
        self.coast_frames = coast_frames
        self.max_accel = max_accel
        self.grabcut_iterations = grabcut_iterations
        self.box_grabcut = box_grabcut
        self.mask_flow = mask_flow
        self.segment_side = segment_side
        self.band = band
        self.reanchor_iou = reanchor_iou
        # association re-prompts an object a box-only detection confirmed with the box and
        # the object's propagated mask when this is true (``Propagator`` docs)
        self.refits_masks = reanchor
        self.seed = int(seed)
        self._video: _Frames | None = None
        self._rgb: np.ndarray = np.zeros((1, 1, 3), np.uint8)  # the frame being tracked into
        self._frame = 0  # its index (seeds GrabCut)
        self._flow: np.ndarray | None = None  # dense flow into it from the previous frame of the walk
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._dis: Any = None
        self._frames: list[int] = []
        self._prompts: dict[int, dict[int, tuple[list[float] | None, np.ndarray | None]]] = {}
        self.stats = {"frames": 0, "grabcuts": 0, "lost": 0, "anchored": 0, "resegmented": 0, "ellipses": 0}

    # -- Propagator ------------------------------------------------------------------
    def start(self, video: Any, frames: Sequence[int]) -> None:
        """Open ``video`` (uri, ``VideoReader`` or ``(N, H, W, 3)`` RGB frames) for ``frames``."""
        if self._video is not None:
            self._video.close()
        self._video = _Frames(video, self.max_side, self.cache_frames, self.decode_chunk)
        self._frames = sorted(set(int(f) for f in frames))
        self._prompts = {}

    def add_prompt(
        self,
        frame_idx: int,
        obj_id: int,
        box: Sequence[float] | None = None,
        mask: np.ndarray | RLE | None = None,
    ) -> None:
        """Object ``obj_id`` is at ``mask`` (preferred) or ``box`` on ``frame_idx``, in the
        video's pixel grid; a later prompt for the same object and frame replaces it."""
        if box is None and mask is None:
            raise ValueError("a prompt needs a box or a mask")
        arr = None
        if mask is not None:
            arr = decode_rle(mask) if isinstance(mask, dict) else np.asarray(mask) != 0
            video = self._video
            if video is not None and arr.shape != (video.height, video.width):
                raise ValueError(f"prompt mask is {arr.shape}, the video is {(video.height, video.width)}")
            if not arr.any():
                arr = None
        if arr is None and box is None:
            return  # an empty mask and no box: nothing to track
        self._prompts.setdefault(int(frame_idx), {})[int(obj_id)] = (
            None if box is None else [float(v) for v in box],
            arr,
        )

    def reset(self) -> None:
        """Forget prompts and objects; decoded frames stay cached (bounded)."""
        self._prompts = {}

    def propagate(
        self, start_frame: int, end_frame: int, reverse: bool = False
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        if self._video is None:
            raise RuntimeError("call start() before propagate()")
        if reverse != (end_frame < start_frame) and end_frame != start_frame:
            raise ValueError(f"frames {start_frame}->{end_frame} do not walk {'back' if reverse else 'forward'}")
        walk = frames_between(self._frames, start_frame, end_frame)
        return self._walk(walk)

    # -- the walk ----------------------------------------------------------------------
    def _walk(self, walk: list[int]) -> Iterator[tuple[int, dict[int, Region]]]:
        video = self._video
        assert video is not None
        objects: dict[int, _Object] = {}
        prev_gray: np.ndarray | None = None
        try:
            for i, f in enumerate(walk):
                rgb = video.get(f, walk[i + 1 :])
                self._rgb, self._frame = rgb, f
                gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                out: dict[int, Region] = {}
                self._flow = None
                if prev_gray is not None and self.mask_flow == "dense":
                    if any(ob.mask is not None for ob in objects.values()):
                        self._flow = self._dense_flow(gray, prev_gray)
                if prev_gray is not None:
                    for obj in list(objects):
                        state = self._step(objects[obj], prev_gray, gray, rgb)
                        if state == "seen":
                            out[obj] = self._region(objects[obj])
                        elif state == "lost":
                            del objects[obj]  # lost for the rest of this window
                            self.stats["lost"] += 1
                for obj, (box, mask) in self._prompts.get(f, {}).items():
                    ob, made_here = self._prompted(box, mask)
                    objects[obj] = ob
                    if made_here and ob.mask is not None:  # segmented or re-anchored here
                        region = self._region(ob)
                        out[obj] = Region(box_xyxy=box if mask is None else region.box, mask=region.mask, score=1.0)
                    else:  # the prompt itself, at full resolution
                        out[obj] = Region(box_xyxy=box if mask is None else mask_to_box(mask), mask=mask, score=1.0)
                self.stats["frames"] += 1
                prev_gray = gray
                yield f, out
        finally:
            objects.clear()  # closed early: release the window's state

    def _prompted(self, box: list[float] | None, mask: np.ndarray | None) -> tuple[_Object, bool]:
        """The object a prompt starts, and whether its mask was made here (a box segmented,
        a mask re-anchored) rather than given."""
        video = self._video
        assert video is not None
        scale = np.array([video.sx, video.sy, video.sx, video.sy])
        if mask is not None:
            small = cv2.resize(mask.astype(np.uint8), video.size, interpolation=cv2.INTER_NEAREST) > 0
            if not small.any():  # a speck that vanishes at the working size: keep one pixel
                y, x = np.argwhere(mask)[0]
                small[int(y * video.sy), int(x * video.sx)] = True
            tight = np.array(mask_to_box(mask))
            if box is not None and np.abs(np.array(box) - tight).max() > 1.0:
                # a box other than the mask's own: a detection re-anchoring the object
                return self._anchored(np.array(box, dtype=np.float64) * scale, small), True
            ob = _Object(box=tight * scale, mask=small)
        else:
            ob = _Object(box=np.array(box, dtype=np.float64) * scale, mask=None)
            if self.box_grabcut:
                # a box holds background too, and its corners would pin the object in place:
                # segment the box once so points (and the output) come from the object
                ob.mask = self._segment_box(self._rgb, ob.box)
        ob.colour = self._colour(ob.mask)
        return ob, mask is None

    def _anchored(self, box: np.ndarray, carried: np.ndarray) -> _Object:
        """An object re-anchored on a detection's ``box`` (working pixels): its carried
        mask cut to the box while it still fits it, else the box segmented again."""
        mask: np.ndarray | None = clip_to_box(carried, box, _ANCHOR_MARGIN)
        if fits_box(mask, box, self.reanchor_iou, _ANCHOR_FILL):  # type: ignore[arg-type]
            self.stats["anchored"] += 1
        else:
            self.stats["resegmented"] += 1
            segmented = self._segment_box(self._rgb, box) if self.box_grabcut else None
            mask = segmented if segmented is not None else (mask if mask.any() else None)  # type: ignore[union-attr]
        tight = mask_to_box(mask) if mask is not None else None
        ob = _Object(box=np.array(tight) if tight is not None else box, mask=mask)
        ob.colour = self._colour(mask)
        return ob

    def _colour(self, mask: np.ndarray | None) -> ColourModel | None:
        if mask is None or self.mask_flow != "dense":
            return None
        return ColourModel.learn(self._rgb, mask)

    def _segment_box(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The object in ``box`` (working pixels): GrabCut on a crop of at most
        ``segment_side`` pixels a side, or the ellipse inscribed in the box where GrabCut
        finds nothing plausible (``masks.segment_box``); None for a box off the frame."""
        h, w = rgb.shape[:2]
        clipped = np.clip(box, 0, [w, h, w, h])
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            return None
        mask, cut = segment_box(rgb, clipped, self.segment_side, self.grabcut_iterations, self._seed())
        self.stats["grabcuts"] += 1
        self.stats["ellipses"] += not cut
        return mask

    def _seed(self) -> int:
        """GrabCut's seed on the frame being tracked: from ``seed`` and the frame index only,
        so a mask never depends on what was segmented before it."""
        return derived_seed(self.seed, self._frame)

    def _dense_flow(self, cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """DIS optical flow from ``cur`` back to ``prev`` (what pulls a mask forward)."""
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        h, w = cur.shape
        if self._grid is None or self._grid[0].shape != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = (gx, gy)
        return self._dis.calc(cur, prev, None)

    def _step(self, ob: _Object, prev: np.ndarray, cur: np.ndarray, rgb: np.ndarray) -> str:
        """Move ``ob`` from ``prev`` to ``cur``: ``"seen"``, ``"hidden"`` (coasting on
        its velocity through a short occlusion, not reported) or ``"lost"``."""
        if self.method == "lk":
            moved = self._step_lk(ob, prev, cur)
        else:
            moved = self._step_dense(ob, prev, cur)
        state = "seen"
        if moved:
            ob.missed = 0
        elif ob.velocity is not None and ob.missed < self.coast_frames:
            ob.missed += 1
            self._move(ob, ob.velocity, 1.0, along_flow=False)  # the flow there is the occluder's
            state = "hidden"
        else:
            return "lost"
        h, w = cur.shape
        x1, y1, x2, y2 = ob.box
        inside = max(0.0, min(x2, w) - max(x1, 0)) * max(0.0, min(y2, h) - max(y1, 0))
        if inside < self.min_inside * max(1e-6, (x2 - x1) * (y2 - y1)):
            return "lost"  # leaving the frame: report nothing rather than a sliver box
        if ob.mask is not None:
            ob.steps += 1
            if state == "seen" and self.grabcut_every and ob.steps % self.grabcut_every == 0:
                ob.mask = self._grabcut(rgb, ob.mask)
            if not ob.mask.any():
                return "lost"
        return state

    def _points(self, ob: _Object, gray: np.ndarray) -> np.ndarray | None:
        """Corners inside the object's (slightly eroded) mask or box, ``(n, 1, 2)`` float32."""
        h, w = gray.shape
        if ob.mask is not None:
            rows, cols = np.flatnonzero(ob.mask.any(axis=1)), np.flatnonzero(ob.mask.any(axis=0))
            if rows.size == 0:
                return None
            y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        else:
            x1, y1, x2, y2 = np.clip(np.round(ob.box), 0, [w, h, w, h]).astype(int)
        # work on the object's neighbourhood only: the corner response is local (a margin
        # wider than its window gives the same corners as the whole frame, much faster)
        cx1, cy1, cx2, cy2 = (
            max(0, x1 - _CORNER_MARGIN),
            max(0, y1 - _CORNER_MARGIN),
            min(w, x2 + _CORNER_MARGIN),
            min(h, y2 + _CORNER_MARGIN),
        )
        if ob.mask is not None:
            region = ob.mask[cy1:cy2, cx1:cx2].astype(np.uint8)
            eroded = cv2.erode(region, np.ones((3, 3), np.uint8))
            region = eroded if eroded.sum() >= 16 else region  # keep tiny objects trackable
        else:
            region = np.zeros((cy2 - cy1, cx2 - cx1), np.uint8)
            region[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1] = 1
        if not region.any():
            return None
        offset = np.array([cx1, cy1], np.float32)
        crop = np.ascontiguousarray(gray[cy1:cy2, cx1:cx2])
        corners = cv2.goodFeaturesToTrack(crop, self.max_points, 0.01, 3, mask=region * 255, blockSize=5)
        if corners is not None:
            corners = corners.astype(np.float32) + offset
        if corners is not None and len(corners) >= 2 * self.min_points:
            return corners
        # small or weakly textured objects: add a grid of points (LK copes with edges and
        # the forward-backward check drops the ones it cannot follow)
        ys, xs = np.nonzero(region)
        step = max(1, int(np.sqrt(len(xs) / self.max_points)))
        on_grid = (ys % step == 0) & (xs % step == 0)
        grid = np.stack([xs[on_grid], ys[on_grid]], 1).astype(np.float32)
        grid = grid[np.linspace(0, len(grid) - 1, min(len(grid), self.max_points)).astype(int), None, :] + offset
        return grid if corners is None else np.concatenate([corners, grid])

    def _step_lk(self, ob: _Object, prev: np.ndarray, cur: np.ndarray) -> bool:
        p0 = self._points(ob, prev)
        if p0 is None or len(p0) < self.min_points:
            return False
        # on the points' neighbourhood only: LK builds image pyramids of what it is given,
        # and a window as wide as its reach gives the same motion as the whole frame
        h, w = prev.shape
        lo, hi = p0.reshape(-1, 2).min(axis=0), p0.reshape(-1, 2).max(axis=0)
        reach = _LK_REACH + 0.5 * (hi - lo)
        x1, y1 = (int(max(0, v)) for v in np.floor(lo - reach))
        x2, y2 = int(min(w, np.ceil(hi[0] + reach[0]))), int(min(h, np.ceil(hi[1] + reach[1])))
        a, b = np.ascontiguousarray(prev[y1:y2, x1:x2]), np.ascontiguousarray(cur[y1:y2, x1:x2])
        offset = np.array([x1, y1], np.float32)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, p0 - offset, None, **_LK)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **_LK)
        p1, back = p1 + offset, back + offset
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < self.fb_threshold)
        if ob.velocity is not None:
            # points far from the object's own motion belong to something else (an
            # occluder passing in front): they must not drag the object along
            d = (p1 - p0).reshape(-1, 2)
            gate = self.max_accel + 0.5 * float(np.linalg.norm(ob.velocity))
            good &= np.linalg.norm(d - ob.velocity, axis=1) <= gate
        kept = int(good.sum())
        ob.score = kept / len(p0)
        if kept < self.min_points or ob.score < self.min_kept:
            return False
        a, b = p0.reshape(-1, 2)[good], p1.reshape(-1, 2)[good]
        shift = np.median(b - a, axis=0)
        scale = _median_scale(a, b)
        self._move(ob, shift, scale)
        ob.velocity = shift
        return True

    def _step_dense(self, ob: _Object, prev: np.ndarray, cur: np.ndarray) -> bool:
        h, w = cur.shape
        x1, y1, x2, y2 = ob.box
        pad = 0.5 * max(x2 - x1, y2 - y1) + 8  # room for the object to move into
        rx1, ry1 = int(max(0, np.floor(x1 - pad))), int(max(0, np.floor(y1 - pad)))
        rx2, ry2 = int(min(w, np.ceil(x2 + pad))), int(min(h, np.ceil(y2 + pad)))
        if rx2 - rx1 < 8 or ry2 - ry1 < 8:
            return False
        a, b = prev[ry1:ry2, rx1:rx2], cur[ry1:ry2, rx1:rx2]
        args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
        fwd = cv2.calcOpticalFlowFarneback(a, b, *args)
        bwd = cv2.calcOpticalFlowFarneback(b, a, *args)
        if ob.mask is not None:
            eroded = cv2.erode(ob.mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            inside = (eroded if eroded.sum() >= 16 else ob.mask)[ry1:ry2, rx1:rx2]
        else:
            inside = np.zeros(a.shape, bool)
            inside[max(0, int(y1) - ry1) : int(y2) - ry1, max(0, int(x1) - rx1) : int(x2) - rx1] = True
        ys, xs = np.nonzero(inside)
        if len(xs) < self.min_points:
            return False
        # forward-backward consistency per pixel: follow fwd, then bwd at the landing point
        f = fwd[ys, xs]
        lx = np.clip(np.round(xs + f[:, 0]).astype(int), 0, a.shape[1] - 1)
        ly = np.clip(np.round(ys + f[:, 1]).astype(int), 0, a.shape[0] - 1)
        err = np.linalg.norm(f + bwd[ly, lx], axis=1)
        good = err < self.fb_threshold
        if ob.velocity is not None:  # as for LK: an occluder's motion is not ours
            good &= np.linalg.norm(f - ob.velocity, axis=1) <= self.max_accel + 0.5 * float(np.linalg.norm(ob.velocity))
        ob.score = float(good.mean())
        if good.sum() < self.min_points or ob.score < self.min_kept:
            return False
        shift = np.median(f[good], axis=0)
        ob.velocity = shift
        src = np.stack([xs[good], ys[good]], 1).astype(np.float32)
        scale = _median_scale(src, src + f[good])
        # the mask moves rigidly by the robust motion: warping it pixel by pixel with the
        # flow let it bleed into static background (Farnebäck smooths across edges)
        self._move(ob, shift, scale)
        return True

    def _move(self, ob: _Object, shift: np.ndarray, scale: float, along_flow: bool = True) -> None:
        """Shift and scale the box; carry the mask along the dense flow (settled by its
        colours), or shift and scale it with the box about the box centre."""
        cx, cy = (ob.box[0] + ob.box[2]) / 2, (ob.box[1] + ob.box[3]) / 2
        ob.box = _scaled_box(ob.box, shift, scale)
        if ob.mask is None:
            return
        if along_flow and self._flow is not None and self._grid is not None:
            soft = warp_mask(ob.mask, self._flow, self._grid)
            # the box follows the object's own points: what the flow smears beyond it (a
            # trail into the background it uncovers) is not the object
            soft = clip_to_box(soft, ob.box, _BOX_MARGIN)
            moved = settle(soft, self._rgb, ob.colour, self.band, _PRIOR, _COLOUR_LIMIT)
        else:
            h, w = ob.mask.shape
            m = np.array([[scale, 0, cx + shift[0] - scale * cx], [0, scale, cy + shift[1] - scale * cy]], np.float32)
            # linear + threshold keeps sub-pixel shifts from being rounded away frame after frame
            moved = cv2.warpAffine(ob.mask.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0) >= 0.5
        ob.mask = _extrude_edges(ob.mask, moved, shift, self._rgb)
        _reach_edges(ob)

    def _grabcut(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Refine ``mask`` with GrabCut on a crop around it; keep the input if GrabCut
        collapses or explodes (it can, on low-contrast objects)."""
        box = mask_to_box(mask)
        if box is None:
            return mask
        h, w = mask.shape
        x1, y1, x2, y2 = (int(v) for v in box)
        band = max(3, int(0.15 * max(x2 - x1, y2 - y1)))
        rx1, ry1, rx2, ry2 = max(0, x1 - 2 * band), max(0, y1 - 2 * band), min(w, x2 + 2 * band), min(h, y2 + 2 * band)
        m = mask[ry1:ry2, rx1:rx2].astype(np.uint8)
        kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
        inner, outer = cv2.erode(m, kernel), cv2.dilate(m, kernel)
        init = np.full(m.shape, cv2.GC_BGD, np.uint8)
        init[outer > 0] = cv2.GC_PR_BGD
        init[m > 0] = cv2.GC_PR_FGD
        init[inner > 0] = cv2.GC_FGD
        if not (init == cv2.GC_BGD).any() or not ((init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)).any():
            return mask
        crop = cv2.cvtColor(np.ascontiguousarray(rgb[ry1:ry2, rx1:rx2]), cv2.COLOR_RGB2BGR)
        if not run_grabcut(crop, init, None, self.grabcut_iterations, self._seed()):
            return mask
        self.stats["grabcuts"] += 1
        refined = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
        ratio = refined.sum() / max(1, m.sum())
        if not 0.5 <= ratio <= 2.0:
            return mask
        out = np.zeros_like(mask)
        out[ry1:ry2, rx1:rx2] = refined
        return out

    def _region(self, ob: _Object) -> Region:
        """The object in the video's pixel grid."""
        video = self._video
        assert video is not None
        if ob.mask is None:
            w, h = video.width, video.height
            x1, y1, x2, y2 = ob.box / np.array([video.sx, video.sy, video.sx, video.sy])
            box = [max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)]
            return Region(box_xyxy=[float(v) for v in box], score=ob.score)
        full = ob.mask
        if (video.width, video.height) != video.size:
            # linear + threshold: smoother outlines than nearest-neighbour blocks
            size = (video.width, video.height)
            soft = cv2.resize(ob.mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR)
            full = soft >= 128
        return Region(box_xyxy=mask_to_box(full), mask=full, score=ob.score)


def _median_scale(a: np.ndarray, b: np.ndarray, max_pairs: int = 2000) -> float:
    """Median ratio of pairwise point distances after/before (1 with too few points)."""
    n = len(a)
    if n < 2:
        return 1.0
    i, j = np.triu_indices(n, 1)
    if len(i) > max_pairs:  # deterministic thinning keeps this O(max_pairs)
        keep = np.linspace(0, len(i) - 1, max_pairs).astype(int)
        i, j = i[keep], j[keep]
    d0 = np.linalg.norm(a[i] - a[j], axis=1)
    d1 = np.linalg.norm(b[i] - b[j], axis=1)
    ok = d0 > 2.0
    if not ok.any():
        return 1.0
    return float(np.clip(np.median(d1[ok] / d0[ok]), 0.8, 1.25))  # one frame never rescales wildly


def _scaled_box(box: np.ndarray, shift: np.ndarray, scale: float) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2 + shift[0], (box[1] + box[3]) / 2 + shift[1]
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh])


def _extrude_edges(before: np.ndarray, after: np.ndarray, shift: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """An object cut by a frame edge and moving inward brings in parts nobody has seen:
    continue its edge row/column into the strip it uncovered, keeping the pixels whose
    colour is nearer the object's mean than its surroundings' (so an object that has
    fully entered stops growing) instead of tracking a sliver."""
    dx, dy = float(shift[0]), float(shift[1])
    kx, ky = int(np.ceil(abs(dx) - 0.25)), int(np.ceil(abs(dy) - 0.25))
    out = after.copy()
    if kx > 0:
        col = before[:, 0] if dx > 0 else before[:, -1]
        col = _shifted(col, int(round(dy)))
        if col.any():
            if dx > 0:
                out[:, :kx] |= col[:, None]
            else:
                out[:, -kx:] |= col[:, None]
    if ky > 0:
        row = before[0, :] if dy > 0 else before[-1, :]
        row = _shifted(row, int(round(dx)))
        if row.any():
            if dy > 0:
                out[:ky, :] |= row[None, :]
            else:
                out[-ky:, :] |= row[None, :]
    added = out & ~after
    if not added.any() or not after.any():
        return after
    ring = cv2.dilate(after.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~out
    if not ring.any():
        return out
    pixels = rgb.astype(np.float32)
    fg, bg = pixels[after].mean(axis=0), pixels[ring].mean(axis=0)
    candidates = pixels[added]
    like_fg = np.linalg.norm(candidates - fg, axis=1) < np.linalg.norm(candidates - bg, axis=1)
    keep = after.copy()
    keep[added] = like_fg
    return keep


def _reach_edges(ob: _Object) -> None:
    """Where the mask reaches a frame edge, the object goes on beyond it: the (amodal) box
    reaches that edge too, so an object coming in is not held to the sliver it showed
    first (the box bounds what the flow may carry)."""
    mask = ob.mask
    if mask is None or not mask.any():
        return
    h, w = mask.shape
    if mask[:, 0].any():
        ob.box[0] = min(ob.box[0], 0.0)
    if mask[0, :].any():
        ob.box[1] = min(ob.box[1], 0.0)
    if mask[:, -1].any():
        ob.box[2] = max(ob.box[2], float(w))
    if mask[-1, :].any():
        ob.box[3] = max(ob.box[3], float(h))


def _shifted(line: np.ndarray, k: int) -> np.ndarray:
    """``line`` moved by ``k`` cells (no wrap-around)."""
    if k == 0:
        return line
    out = np.zeros_like(line)
    if k > 0:
        out[k:] = line[:-k]
    else:
        out[:k] = line[-k:]
    return out
