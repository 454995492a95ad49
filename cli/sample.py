"""The embedded demo sample: a synthetic scene, generated (never downloaded).

``write_sample(out_dir)`` writes, deterministically::

    scene.mp4             640x360, 72 frames at 24 fps (MPEG-4 part 2, 'mp4v')
    frames/00000.jpg ...  the same frames as JPEG (an image-folder video, needs fps)
    masks/00000.png ...   DAVIS-2017-style palette PNGs: pixel value = object id, 0 = background
    videos.jsonl          a video list: the mp4 and the frame folder, both with the masks
    ground_truth.json     per object: category, first/last frame, pixel-exact box per frame
    README.txt

The scene: a static textured background and three objects with striped texture.

1. ``red square`` enters from the left edge mid-video (first visible at frame 27);
2. ``green circle`` moves right through the whole clip;
3. ``blue triangle`` moves left, crosses in front of the circle (occluding part of
   it) around frame 25, leaves the frame on the left (out of view on frames 44–50) and
   re-enters lower down, moving right.

The masks are drawn from the same label map as the pixels, so they match the video
exactly up to compression. Writing the mp4 needs OpenCV (the ``lite`` extra).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 640, 360
FPS = 24.0
N_FRAMES = 72
SEED = 20250101

#: (object id = palette index, category, BGR colour, shape, size in pixels)
OBJECTS: list[tuple[int, str, tuple[int, int, int], str, int]] = [
    (1, "red square", (40, 40, 215), "square", 56),
    (2, "green circle", (60, 190, 50), "circle", 32),  # radius
    (3, "blue triangle", (205, 90, 30), "triangle", 90),  # side
]

#: Keyframes (frame, centre x, centre y) per object id; linear in between. Outside the
#: keyframes' range the object does not exist in the scene.
KEYFRAMES: dict[int, list[tuple[int, float, float]]] = {
    1: [(23, -60.0, 80.0), (71, 420.0, 80.0)],
    2: [(0, 80.0, 210.0), (71, 506.0, 210.0)],
    3: [(0, 600.0, 215.0), (44, -60.0, 215.0), (50, -60.0, 290.0), (71, 250.0, 290.0)],
}

#: Drawing order, back to front: the triangle passes in front of the circle.
Z_ORDER = (2, 1, 3)

#: Per object id, per frame: the object's pixel-exact box ``[x1, y1, x2, y2]``.
Boxes = dict[int, dict[int, list[int]]]


@dataclass
class SampleInfo:
    """What ``write_sample`` wrote."""

    root: Path
    video: Path
    frames_dir: Path
    masks_dir: Path
    video_list: Path
    ground_truth: Path
    n_frames: int = N_FRAMES
    fps: float = FPS
    size: tuple[int, int] = (WIDTH, HEIGHT)
    categories: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the CLI."""
        names = ", ".join(self.categories.values())
        return (
            f"{self.video.name} ({self.size[0]}x{self.size[1]}, {self.n_frames} frames at {self.fps:g} fps), "
            f"{self.frames_dir.name}/, {self.masks_dir.name}/ ({names}), {self.video_list.name}"
        )


def categories() -> dict[str, str]:
    """Palette index (as a string, as manifests key it) → category name."""
    return {str(oid): name for oid, name, *_ in OBJECTS}


def position(object_id: int, frame: int) -> tuple[float, float] | None:
    """Centre of an object at ``frame`` (None when it is not in the scene)."""
    keys = KEYFRAMES[object_id]
    if frame < keys[0][0] or frame > keys[-1][0]:
        return None
    for (f0, x0, y0), (f1, x1, y1) in zip(keys, keys[1:]):
        if f0 <= frame <= f1:
            a = (frame - f0) / (f1 - f0)
            return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
    return keys[-1][1], keys[-1][2]


def label_map(frame: int) -> np.ndarray:
    """Object id per pixel at ``frame`` (uint8, 0 = background), front objects winning."""
    import cv2

    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    shapes = {oid: (shape, size) for oid, _, _, shape, size in OBJECTS}
    for oid in Z_ORDER:
        centre = position(oid, frame)
        if centre is None:
            continue
        cx, cy = centre
        shape, size = shapes[oid]
        # Integer geometry and no anti-aliasing: the mask is exactly the drawn pixels.
        if shape == "square":
            half = size / 2
            pts = np.array(
                [[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]]
            )
            cv2.fillPoly(labels, [np.round(pts).astype(np.int32)], int(oid), lineType=cv2.LINE_8)
        elif shape == "circle":
            cv2.circle(labels, (round(cx), round(cy)), size, int(oid), thickness=-1, lineType=cv2.LINE_8)
        elif shape == "triangle":
            h = size * np.sqrt(3) / 2
            pts = np.array([[cx, cy - 2 * h / 3], [cx + size / 2, cy + h / 3], [cx - size / 2, cy + h / 3]])
            cv2.fillPoly(labels, [np.round(pts).astype(np.int32)], int(oid), lineType=cv2.LINE_8)
    return labels


def background(seed: int = SEED) -> np.ndarray:
    """The static textured background (BGR uint8): gradient, soft blotches, grain, tiles."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.empty((HEIGHT, WIDTH, 3), np.float32)
    base[..., 0] = 95 + 30 * xx / WIDTH  # muted tones, so the objects' colours stand out
    base[..., 1] = 120 + 25 * yy / HEIGHT
    base[..., 2] = 135 - 20 * xx / WIDTH
    # Blotches mostly in brightness, a little in hue: texture without object-like colours.
    small = rng.normal(0, 1, (HEIGHT // 24, WIDTH // 24, 4)).astype(np.float32)
    small = small[..., :1] * 14 + small[..., 1:] * 4
    blotches = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 5, (HEIGHT, WIDTH, 1)).astype(np.float32)
    tiles = ((xx // 40 + yy // 40) % 2)[..., None] * 8  # a faint checkerboard: texture for flow
    return np.clip(base + blotches + grain + tiles, 0, 255).astype(np.uint8)


def render(frame: int, bg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The BGR image and the label map of ``frame``."""
    labels = label_map(frame)
    image = (background() if bg is None else bg).copy()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    for oid, _, colour, _, _ in OBJECTS:
        inside = labels == oid
        if not inside.any():
            continue
        cx, cy = position(oid, frame)  # type: ignore[misc] - drawn, so in the scene
        # Stripes that move with the object, so motion and flow are visible inside it.
        stripes = (((xx - round(cx)) + (yy - round(cy))) // 8) % 2
        shade = np.where(stripes[inside] == 1, 0.78, 1.0)[:, None]
        image[inside] = np.clip(np.array(colour, np.float32)[None, :] * shade, 0, 255).astype(np.uint8)
    return image, labels


def davis_palette() -> list[int]:
    """The DAVIS-2017 / PASCAL VOC palette (768 values): index 1 red, 2 green, 3 yellow ..."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def write_sample(out_dir: str | Path) -> SampleInfo:
    """Write the sample to ``out_dir`` (created; existing sample files are overwritten)."""
    _require_opencv()
    root = Path(out_dir)
    frames_dir, masks_dir = root / "frames", root / "masks"
    frames_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    video_path = root / "scene.mp4"
    boxes = _write_frames(video_path, frames_dir, masks_dir)
    gt_path = root / "ground_truth.json"
    gt_path.write_text(json.dumps(_ground_truth(boxes), indent=1) + "\n")
    cats = categories()
    list_path = root / "videos.jsonl"
    list_path.write_text("".join(json.dumps(r) + "\n" for r in _video_list(cats)))
    (root / "README.txt").write_text(_README)
    return SampleInfo(
        root=root,
        video=video_path,
        frames_dir=frames_dir,
        masks_dir=masks_dir,
        video_list=list_path,
        ground_truth=gt_path,
        categories=cats,
    )


def _require_opencv() -> None:
    """Fail early, with the fix, where OpenCV is missing."""
    try:
        import cv2  # noqa: F401 - imported to see whether it is there
    except ImportError as error:  # pragma: no cover - the lite/dev extras install it
        raise RuntimeError("writing the sample needs OpenCV: pip install 'tubelet[lite]'") from error


def _write_frames(video_path: Path, frames_dir: Path, masks_dir: Path) -> Boxes:
    """Render every frame into the mp4, the JPEG folder and the masks; the objects' boxes."""
    import cv2

    tmp_video = video_path.with_name(".scene.tmp.mp4")  # complete file or none: a reader never sees half
    bg = background()
    palette = davis_palette()
    boxes: Boxes = {oid: {} for oid, *_ in OBJECTS}
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video to {tmp_video}")
    try:
        for f in range(N_FRAMES):
            image, labels = render(f, bg)
            writer.write(image)
            _write_jpeg(frames_dir / f"{f:05d}.jpg", image)
            _write_mask(masks_dir / f"{f:05d}.png", labels, palette)
            _add_boxes(boxes, f, labels)
    finally:
        writer.release()
    tmp_video.replace(video_path)
    return boxes


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f"cannot write {path}")


def _write_mask(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    """``labels`` as a palette PNG: pixel value = object id, as DAVIS stores them."""
    mask = Image.fromarray(labels, mode="P")
    mask.putpalette(palette)
    mask.save(path)


def _add_boxes(boxes: Boxes, frame: int, labels: np.ndarray) -> None:
    """Record the box of every object drawn on ``frame``."""
    for oid in np.unique(labels[labels > 0]):
        ys, xs = np.nonzero(labels == oid)
        # pixel-exact, as in the dataset: x2/y2 are the last column/row + 1
        boxes[int(oid)][frame] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _ground_truth(boxes: Boxes) -> dict[str, Any]:
    """``ground_truth.json``: the scene's format, and per object its frames and boxes."""
    return {
        "fps": FPS,
        "n_frames": N_FRAMES,
        "width": WIDTH,
        "height": HEIGHT,
        "seed": SEED,
        "objects": [
            {
                "id": oid,
                "category": name,
                "first_frame": min(boxes[oid]),
                "last_frame": max(boxes[oid]),
                "visible_frames": len(boxes[oid]),
                "boxes_xyxy": {str(f): b for f, b in sorted(boxes[oid].items())},
            }
            for oid, name, *_ in OBJECTS
        ],
    }


def _video_list(cats: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of ``videos.jsonl``: the mp4 and the frame folder (which needs its fps), both with the masks."""
    annotations = {"format": "davis", "path": "masks", "categories": cats}
    common = {"source": "tubelet-sample", "licence": "CC0-1.0", "annotations": annotations}
    return [
        {"uri": "scene.mp4", "video_id": "sample-scene", **common},
        {"uri": "frames", "video_id": "sample-scene-frames", "fps": FPS, **common},
    ]


_README = f"""tubelet demo sample (synthetic, generated by `tubelet sample`; CC0)

scene.mp4          {WIDTH}x{HEIGHT}, {N_FRAMES} frames at {FPS:g} fps, MPEG-4 part 2 ('mp4v')
frames/            the same frames as JPEG: an image-folder video (give fps: {FPS:g})
masks/             DAVIS-2017-style palette PNGs, one per frame: pixel = object id, 0 = background
videos.jsonl       a tubelet video list of both versions, with the masks as DAVIS annotations
ground_truth.json  per object: category, first/last visible frame, pixel-exact box per frame

objects (id = palette index):
  1 red square     enters from the left edge mid-video
  2 green circle   moves right; the triangle crosses in front of it
  3 blue triangle  moves left across the circle, leaves the frame, re-enters lower down
"""
