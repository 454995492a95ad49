"""Drawing the dataset's rows on decoded frames: masks, boxes, ids, expressions, events.

``VideoRows.load(dataset, video_id)`` gathers one video's tubelets, entities and events
(read once); ``draw_frame(image, frame_idx, rows)`` returns a copy of an RGB frame with

- each tubelet's mask on that frame tinted in the tubelet's colour (``highlight`` from
  ``tubelet.annotators.language.visual_prompt``, no outline), or its box filled faintly when the
  row has no mask;
- its box outlined (``box_px`` thick, drawn inside the box) in the same colour;
- a label above the box: the short track id and the entity's referring expression;
- a corner strip (bottom left) listing the events active on the frame, and a header
  with the frame index and time.

Pixels away from every mask, box, label and the two strips are left as decoded. Frames
may be decoded at another size than the tubelet's: boxes scale, masks are resized
(nearest) by ``frame_region``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tubelet.annotators.language.visual_prompt import frame_region, highlight
from tubelet.schemas.records import Entity, Event, Tubelet, TubeletFrame, VideoRecord

#: Distinct, saturated colours (RGB), one per tubelet in tubelet order.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
    (0, 128, 128),
    (170, 110, 40),
    (255, 225, 25),
    (128, 0, 0),
    (0, 0, 128),
    (128, 128, 0),
)


WHITE = (255, 255, 255)

#: A box in integer pixels: ``(x1, y1, x2, y2)``, x2 and y2 exclusive.
Box = tuple[int, int, int, int]


def colour_for(index: int) -> tuple[int, int, int]:
    """The colour of the ``index``-th tubelet of a video."""
    return PALETTE[index % len(PALETTE)]


def short_id(tubelet: Tubelet) -> str:
    """A short label for a tubelet: its track id (``#3``)."""
    return f"#{tubelet.track_id}" if tubelet.track_id else tubelet.tubelet_id.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class OverlayStyle:
    """How overlays look. ``alpha``: mask tint strength; ``box_px``: box line width
    (at the drawn size); ``font_px``: text height, None = scaled to the frame."""

    alpha: float = 0.45
    box_px: int = 2
    font_px: int | None = None
    labels: bool = True
    events: bool = True
    header: bool = True


@dataclass
class VideoRows:
    """One video's rows, indexed for drawing frame by frame."""

    video: VideoRecord
    tubelets: list[Tubelet]
    expressions: dict[str, str] = field(default_factory=dict)  # tubelet_id → referring expression
    events: list[Event] = field(default_factory=list)
    colours: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    by_frame: dict[str, dict[int, TubeletFrame]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, tube in enumerate(self.tubelets):
            self.colours.setdefault(tube.tubelet_id, colour_for(i))
            self.by_frame[tube.tubelet_id] = {f.frame_idx: f for f in tube.frames}

    @classmethod
    def load(cls, dataset: Any, video_id: str) -> VideoRows:
        """The rows of ``video_id`` from an ``tubelet.engine.dataset.Dataset`` (KeyError if absent)."""
        videos = [v for v in dataset.records("videos") if v.video_id == video_id]
        if not videos:
            known = sorted(v.video_id for v in dataset.records("videos"))
            raise KeyError(f"no video {video_id!r} in {dataset.root}; videos: {', '.join(known[:20])}")
        tubelets = [t for t in dataset.records("tubelets") if t.video_id == video_id]
        entities: list[Entity] = [e for e in dataset.records("entities") if e.video_id == video_id]
        events = [e for e in dataset.records("events") if e.video_id == video_id]
        return cls.of(videos[0], tubelets, entities, events)

    @classmethod
    def of(
        cls,
        video: VideoRecord,
        tubelets: Sequence[Tubelet],
        entities: Sequence[Entity] = (),
        events: Sequence[Event] = (),
    ) -> VideoRows:
        tubes = sorted(tubelets, key=lambda t: t.tubelet_id)
        expressions = {e.tubelet_id: e.referring_expression for e in entities if e.referring_expression}
        return cls(
            video=video,
            tubelets=tubes,
            expressions=expressions,
            events=sorted(events, key=lambda e: (e.start_frame, e.event_id)),
        )

    def active_events(self, frame_idx: int) -> list[Event]:
        """Events whose span (inclusive) holds ``frame_idx``."""
        return [e for e in self.events if e.start_frame <= frame_idx <= e.end_frame]

    def label(self, tube: Tubelet) -> str:
        expr = self.expressions.get(tube.tubelet_id)
        return f"{short_id(tube)} {expr}" if expr else f"{short_id(tube)} {tube.category}"


@functools.lru_cache(maxsize=16)
def font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``px`` pixels (no system font needed)."""
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def font_px_for(height: int) -> int:
    return int(max(10, min(28, round(height / 28))))


def scaled_box(box: Sequence[float], sx: float, sy: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``[x1, y1, x2, y2]`` scaled and rounded to integer pixel bounds (x2 exclusive), inside the image."""
    x1, y1, x2, y2 = box
    c1 = min(max(round(x1 * sx), 0), width - 1)
    r1 = min(max(round(y1 * sy), 0), height - 1)
    c2 = min(max(round(x2 * sx), c1 + 1), width)
    r2 = min(max(round(y2 * sy), r1 + 1), height)
    return c1, r1, c2, r2


def draw_box(image: np.ndarray, box: tuple[int, int, int, int], colour: Sequence[int], px: int = 2) -> None:
    """Outline integer ``box`` (x2, y2 exclusive) in place, ``px`` thick, inside the box."""
    c1, r1, c2, r2 = box
    col = np.asarray(colour, dtype=np.uint8)
    px = max(1, px)
    image[r1 : min(r1 + px, r2), c1:c2] = col
    image[max(r2 - px, r1) : r2, c1:c2] = col
    image[r1:r2, c1 : min(c1 + px, c2)] = col
    image[r1:r2, max(c2 - px, c1) : c2] = col


def _text_size(draw: ImageDraw.ImageDraw, text: str, fnt: Any) -> tuple[int, int]:
    x1, y1, x2, y2 = draw.textbbox((0, 0), text, font=fnt)
    return int(x2 - x1), int(y2 - min(y1, 0))


def draw_label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    text: str,
    colour: Sequence[int],
    fnt: Any,
    image_size: tuple[int, int],
) -> None:
    """A filled tag with ``text`` whose bottom-left corner is at ``xy`` (moved inside the image)."""
    width, height = image_size
    tw, th = _text_size(draw, text, fnt)
    pad = 2
    x = min(max(xy[0], 0), max(width - tw - 2 * pad, 0))
    y = xy[1] - th - 2 * pad
    if y < 0:
        y = min(xy[1] + 1, max(height - th - 2 * pad, 0))  # no room above: put it below
    fill = tuple(int(c) for c in colour)
    ink = (0, 0, 0) if sum(fill) > 382 else (255, 255, 255)
    draw.rectangle([x, y, x + tw + 2 * pad - 1, y + th + 2 * pad - 1], fill=fill)
    draw.text((x + pad, y + pad), text, fill=ink, font=fnt)


def draw_strip(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[tuple[str, Sequence[int]]],
    fnt: Any,
    image_size: tuple[int, int],
    corner: str = "bottom-left",
) -> None:
    """A dark box in a corner with one coloured line of text per entry."""
    if not lines:
        return
    width, height = image_size
    pad, gap = 3, 2
    sizes = [_text_size(draw, text, fnt) for text, _ in lines]
    bw = min(max(w for w, _ in sizes) + 2 * pad, width)
    bh = min(sum(h for _, h in sizes) + gap * (len(lines) - 1) + 2 * pad, height)
    x = 0 if corner.endswith("left") else width - bw
    y = 0 if corner.startswith("top") else height - bh
    draw.rectangle([x, y, x + bw - 1, y + bh - 1], fill=(0, 0, 0))
    ty = y + pad
    for (text, colour), (_, h) in zip(lines, sizes):
        draw.text((x + pad, ty), text, fill=tuple(int(c) for c in colour), font=fnt)
        ty += h + gap


def draw_frame(
    image: np.ndarray, frame_idx: int, rows: VideoRows, t_s: float | None = None, style: OverlayStyle | None = None
) -> np.ndarray:
    """A copy of ``image`` (RGB uint8, any size) with ``rows``' overlays for ``frame_idx``."""
    style = style or OverlayStyle()
    out, present = _tint_tubelets(np.ascontiguousarray(image).copy(), frame_idx, rows, style.alpha)
    for tube, box in present:
        draw_box(out, box, rows.colours[tube.tubelet_id], style.box_px)
    wants_text = (style.labels and present) or (style.events and rows.events) or style.header
    if not wants_text:
        return out
    return _draw_text_overlays(out, frame_idx, rows, t_s, style, present)


def _tint_tubelets(
    out: np.ndarray, frame_idx: int, rows: VideoRows, alpha: float
) -> tuple[np.ndarray, list[tuple[Tubelet, Box]]]:
    """``out`` with every tubelet visible on ``frame_idx`` tinted; those tubelets with their boxes."""
    height, width = out.shape[:2]
    sx, sy = width / rows.video.width, height / rows.video.height
    present: list[tuple[Tubelet, Box]] = []
    for tube in rows.tubelets:
        row = rows.by_frame[tube.tubelet_id].get(frame_idx)
        if row is None or not row.visible:
            continue
        box = scaled_box(row.box_xyxy, sx, sy, width, height)
        out = _tint(out, tube, row, box, rows.colours[tube.tubelet_id], alpha)
        present.append((tube, box))
    return out, present


def _tint(
    out: np.ndarray, tube: Tubelet, row: TubeletFrame, box: Box, colour: tuple[int, int, int], alpha: float
) -> np.ndarray:
    """The row's mask tinted, or for a box-only row a faint fill of its box."""
    if row.mask_rle is not None:
        mask = frame_region(row, out.shape, (tube.width, tube.height))
        return highlight(out, mask, colour, alpha, outline_px=0)
    c1, r1, c2, r2 = box
    roi = out[r1:r2, c1:c2].astype(np.float32)
    out[r1:r2, c1:c2] = (roi * (1 - alpha / 2) + np.asarray(colour) * alpha / 2).astype(np.uint8)
    return out


def _draw_text_overlays(
    out: np.ndarray,
    frame_idx: int,
    rows: VideoRows,
    t_s: float | None,
    style: OverlayStyle,
    present: list[tuple[Tubelet, Box]],
) -> np.ndarray:
    """``out`` with the tubelets' labels, the header and the events strip, as ``style`` asks."""
    height, width = out.shape[:2]
    fnt = font(style.font_px or font_px_for(height))
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    if style.labels:
        for tube, box in present:
            draw_label(draw, (box[0], box[1]), rows.label(tube), rows.colours[tube.tubelet_id], fnt, (width, height))
    if style.header:
        t = t_s if t_s is not None else frame_idx / rows.video.fps if rows.video.fps else 0.0
        draw_strip(draw, [(f"frame {frame_idx}  {t:.2f} s", WHITE)], fnt, (width, height), "top-right")
    if style.events:
        draw_strip(draw, _event_lines(rows, frame_idx), fnt, (width, height), "bottom-left")
    return np.asarray(pil)


def _event_lines(rows: VideoRows, frame_idx: int) -> list[tuple[str, tuple[int, int, int]]]:
    """A line per event active on ``frame_idx``, tagged and coloured by its first tubelet (if any)."""
    lines = []
    for event in rows.active_events(frame_idx):
        tube_id = event.tubelet_ids[0] if event.tubelet_ids else None
        colour = rows.colours.get(tube_id, WHITE) if tube_id else WHITE
        tag = short_id(next(t for t in rows.tubelets if t.tubelet_id == tube_id)) if tube_id in rows.by_frame else "-"
        lines.append((f"{tag} {event.text} [{event.start_s:.2f}-{event.end_s:.2f}s]", colour))
    return lines


def even_size(width: int, height: int, scale: float = 1.0) -> tuple[int, int]:
    """``(width, height)`` scaled by ``scale`` and rounded down to even numbers (>= 2),
    as yuv420p needs."""
    w = max(2, round(width * scale) // 2 * 2)
    h = max(2, round(height * scale) // 2 * 2)
    return w, h


def save_png(image: Image.Image, to: str | os.PathLike[str]) -> None:
    """Save ``image`` as a PNG at ``to``, making its folder."""
    path = Path(to)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
