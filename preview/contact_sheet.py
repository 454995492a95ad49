"""A contact sheet: ``n`` frames sampled evenly over a video, overlays drawn, in a grid.

Layout (all integers, see ``SheetLayout``): ``cols`` columns, ``ceil(n / cols)`` rows;
each cell is the thumbnail (``thumb_width`` wide, the video's aspect) over a caption
band ``caption_px`` high ("frame 12 · 0.50 s"); ``gap`` pixels between cells and
around the grid, and a title band of ``title_px`` on top.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tubelet.preview.overlay import OverlayStyle, VideoRows, even_size, font, save_png
from tubelet.preview.video_preview import open_dataset, reader_for, rendered_frames

BACKGROUND = (24, 24, 24)


@dataclass(frozen=True)
class SheetLayout:
    n: int
    cols: int
    thumb_width: int
    thumb_height: int
    caption_px: int = 18
    gap: int = 6
    title_px: int = 24

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.n / self.cols))

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the sheet."""
        width = self.cols * self.thumb_width + (self.cols + 1) * self.gap
        height = self.title_px + self.rows * (self.thumb_height + self.caption_px) + (self.rows + 1) * self.gap
        return width, height

    def cell(self, i: int) -> tuple[int, int]:
        """Top-left ``(x, y)`` of the ``i``-th thumbnail."""
        r, c = divmod(i, self.cols)
        x = self.gap + c * (self.thumb_width + self.gap)
        y = self.title_px + self.gap + r * (self.thumb_height + self.caption_px + self.gap)
        return x, y


def sheet_layout(
    video_width: int, video_height: int, n: int, cols: int | None = None, thumb_width: int = 384
) -> SheetLayout:
    cols = cols or min(n, 4)
    tw, th = even_size(thumb_width, round(thumb_width * video_height / video_width))
    return SheetLayout(n=n, cols=max(1, min(cols, n)), thumb_width=tw, thumb_height=th)


def sheet_indices(n_frames: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly from the first to the last frame (distinct)."""
    if n_frames <= 0:
        return []
    return sorted({round(x) for x in np.linspace(0, n_frames - 1, max(1, min(n, n_frames)))})


def render_contact_sheet(
    root: str | os.PathLike[str] | None,
    video_id: str,
    to: str | os.PathLike[str] | None = None,
    *,
    n: int = 12,
    cols: int | None = None,
    thumb_width: int = 384,
    style: OverlayStyle | None = None,
    rows: VideoRows | None = None,
) -> Image.Image:
    """The contact sheet of ``video_id`` as a PIL image, also saved to ``to`` (PNG) when given."""
    rows = rows or VideoRows.load(open_dataset(root), video_id)
    style = style or OverlayStyle(header=False)  # the caption says the frame and time
    with reader_for(rows) as reader:
        n_frames = reader.n_frames
    indices = sheet_indices(n_frames, n)
    layout = sheet_layout(rows.video.width, rows.video.height, len(indices), cols, thumb_width)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font, caption_font = font(14), font(12)
    title = (
        f"{rows.video.video_id}  {rows.video.width}x{rows.video.height}  {rows.video.n_frames} frames  "
        f"{rows.video.duration_s:.2f} s  {len(rows.tubelets)} tubelets  {len(rows.events)} events"
    )
    draw.text((layout.gap, 5), title, fill=(235, 235, 235), font=title_font)
    size = (layout.thumb_width, layout.thumb_height)
    for i, (idx, t_s, image) in enumerate(rendered_frames(rows, indices, size, batch=16, style=style)):
        x, y = layout.cell(i)
        sheet.paste(Image.fromarray(image), (x, y))
        draw.text(
            (x + 2, y + layout.thumb_height + 2), f"frame {idx} · {t_s:.2f} s", fill=(220, 220, 220), font=caption_font
        )
    if to is not None:
        save_png(sheet, to)
    return sheet
