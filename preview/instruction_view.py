"""One instruction and its grounding, composed into one picture.

Top to bottom: a header (task type, id), the conversation (question and answer text,
wrapped), the structured answer (span, boxes, tubelets), a timeline strip (the video's
duration; the answer span highlighted, region frames and answer-box frames as ticks),
and the grounded frames: every frame named by ``answer.boxes`` or a region (at most
``max_frames``, evenly picked; for a span without boxes, its start, middle and end),
each with the regions' tubelets drawn (mask tint + box + ``<regionN>`` tag) and the
answer boxes outlined in ``ANSWER_COLOUR``.

``render_instruction(...)`` returns the image and an ``InstructionLayout`` (where the
timeline strip lies and how time maps to x) so tests can find what was drawn.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from tubelet.engine.dataset import Dataset
from tubelet.preview.overlay import (
    OverlayStyle,
    VideoRows,
    colour_for,
    draw_box,
    draw_frame,
    draw_label,
    even_size,
    font,
    font_px_for,
    save_png,
    scaled_box,
)
from tubelet.preview.video_preview import open_dataset, reader_for
from tubelet.schemas.records import Answer, BoxAt, Instruction, VideoRecord

WIDTH = 1280
MARGIN = 16
BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)
TIMELINE_BG = (215, 215, 215)
SPAN_COLOUR = (255, 160, 0)
ANSWER_COLOUR = (0, 200, 0)
REGION_TICK = (40, 90, 220)
TIMELINE_HEIGHT = 28

RGB = tuple[int, int, int]
Cell = tuple[int, int, int, int]  # x, y, w, h

_USER_COLOUR = (20, 60, 160)
_ASSISTANT_COLOUR = (0, 110, 0)  # any role but the user's
_MUTED = (90, 90, 90)  # the header's second line, the timeline legend
_FACTS = (60, 60, 60)  # the structured answer, regions, query
_HEAD_PX, _TEXT_PX, _SMALL_PX = 18, 15, 12
_ROLE_WIDTH = 11  # "     USER: ": the role right-aligned in 9, then ": "
_WRAP_LESS = 12  # a message wraps this many characters short of a line: room for the role
_LINE_GAP = 6  # between text lines
_TIMELINE_LABEL_H = 16  # the band under the strip: "0 s", legend, duration
_CAPTION_H = 20  # the band under each frame: its index, time and what it shows


@dataclass
class InstructionLayout:
    """Where ``render_instruction`` drew: the page size, the timeline strip, the frames' cells."""

    width: int
    height: int
    timeline: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the strip
    duration_s: float
    frames: list[int] = field(default_factory=list)  # the frames shown, in order
    cells: list[Cell] = field(default_factory=list)  # x, y, w, h of each frame's panel

    def x_of(self, t_s: float) -> float:
        x0, _, x1, _ = self.timeline
        return x0 + (x1 - x0) * (t_s / self.duration_s if self.duration_s > 0 else 0.0)


class _TextLine(NamedTuple):
    text: str
    colour: RGB
    font: Any


@dataclass(frozen=True)
class _Page:
    """Where things go, top to bottom: text lines, timeline strip, grid of frames."""

    width: int
    height: int
    line_heights: list[int]
    timeline_y: int
    grid_y: int
    cols: int
    thumb: tuple[int, int]  # a frame's drawn (width, height)

    @property
    def timeline(self) -> tuple[int, int, int, int]:
        """``x0, y0, x1, y1`` (exclusive) of the strip: the whole video."""
        return MARGIN, self.timeline_y, self.width - MARGIN, self.timeline_y + TIMELINE_HEIGHT

    def cell(self, i: int) -> Cell:
        """``x, y, w, h`` of the ``i``-th frame, row by row."""
        r, c = divmod(i, self.cols)
        tw, th = self.thumb
        return MARGIN + c * (tw + MARGIN), self.grid_y + r * (th + _CAPTION_H + MARGIN), tw, th


def shown_frames(inst: Instruction, rows: VideoRows, max_frames: int = 6) -> list[int]:
    """The frames to draw for ``inst``: its answer boxes' and regions' frames."""
    frames = sorted({b.frame_idx for b in inst.answer.boxes} | {f for r in inst.regions for f in r.frame_idx})
    if not frames and inst.answer.span_s and rows.video.fps:
        frames = _span_frames(inst.answer.span_s, rows.video)
    if not frames:  # nothing grounded in space or time: the tubelets it names, mid-life
        frames = _mid_life_frames(inst.answer.tubelet_ids, rows)
    if len(frames) > max_frames:
        pick = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(pick.tolist()))]
    return [f for f in frames if 0 <= f < max(rows.video.n_frames, 1)]


def _span_frames(span_s: list[float], video: VideoRecord) -> list[int]:
    """The start, middle and end frame of a span (clamped to the video)."""
    start, end = span_s
    last = max(video.n_frames - 1, 0)
    return sorted({min(last, max(0, round(t * video.fps))) for t in (start, (start + end) / 2, end)})


def _mid_life_frames(tubelet_ids: list[str], rows: VideoRows) -> list[int]:
    """The middle visible frame of each named tubelet that has one."""
    by_id = {t.tubelet_id: t for t in rows.tubelets}
    frames = []
    for tid in tubelet_ids:
        visible = by_id[tid].visible_frames if tid in by_id else []
        if visible:
            frames.append(visible[len(visible) // 2].frame_idx)
    return sorted(set(frames))


def _region_rows(inst: Instruction, rows: VideoRows) -> VideoRows:
    """``rows`` reduced to the tubelets the instruction points at, coloured by placeholder."""
    wanted = [r.tubelet_id for r in inst.regions] + [t for t in inst.answer.tubelet_ids]
    order = list(dict.fromkeys(wanted))
    tubes = [t for t in rows.tubelets if t.tubelet_id in order]
    tubes.sort(key=lambda t: order.index(t.tubelet_id))
    reduced = VideoRows(
        video=rows.video,
        tubelets=tubes,
        expressions={},
        events=[],
        colours={t.tubelet_id: colour_for(i) for i, t in enumerate(tubes)},
    )
    names = {r.tubelet_id: r.placeholder for r in inst.regions}
    for t in tubes:
        expr = rows.expressions.get(t.tubelet_id, t.category)
        reduced.expressions[t.tubelet_id] = f"{names[t.tubelet_id]} {expr}" if t.tubelet_id in names else expr
    return reduced


def render_instruction(
    root: str | os.PathLike[str] | None,
    instruction_id: str,
    to: str | os.PathLike[str] | None = None,
    *,
    width: int = WIDTH,
    cols: int = 3,
    max_frames: int = 6,
    instruction: Instruction | None = None,
    rows: VideoRows | None = None,
) -> tuple[Image.Image, InstructionLayout]:
    """The picture of one instruction (saved as PNG to ``to`` when given) and its layout.

    ``instruction`` and ``rows``, when given, are used instead of reading them from ``root``.
    """
    inst, rows = _instruction_and_rows(root, instruction_id, instruction, rows)
    frames = shown_frames(inst, rows, max_frames)
    lines = _text_lines(inst, rows.video, _chars_per_line(width))
    page = _plan_page(lines, len(frames), rows.video, width, cols)
    layout = InstructionLayout(width, page.height, page.timeline, float(rows.video.duration_s), frames)

    image = Image.new("RGB", (width, page.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _draw_text(draw, lines, page.line_heights)
    _draw_timeline(draw, layout, inst, rows)
    if frames:
        layout.cells += _draw_frames(image, draw, page, inst, rows, frames)
    if to is not None:
        save_png(image, to)
    return image, layout


def _instruction_and_rows(
    root: str | os.PathLike[str] | None,
    instruction_id: str,
    instruction: Instruction | None,
    rows: VideoRows | None,
) -> tuple[Instruction, VideoRows]:
    """The instruction and its video's rows: the ones given, the others read from ``root``."""
    if instruction is not None and rows is not None:
        return instruction, rows
    dataset = open_dataset(root)
    if instruction is None:
        instruction = _find_instruction(dataset, instruction_id, root)
    return instruction, rows if rows is not None else VideoRows.load(dataset, instruction.video_id)


def _find_instruction(dataset: Dataset, instruction_id: str, root: str | os.PathLike[str] | None) -> Instruction:
    for inst in dataset.records("instructions"):
        if inst.instruction_id == instruction_id:
            return inst
    raise KeyError(f"no instruction {instruction_id!r} in {root}")


def _measure() -> ImageDraw.ImageDraw:
    """A drawing context that is only used to measure text."""
    return ImageDraw.Draw(Image.new("RGB", (1, 1)))


def _chars_per_line(width: int) -> int:
    """How many characters of body text fit across the page (at least 20)."""
    char_width = _measure().textlength("abcdefghij", font=font(_TEXT_PX)) / 10
    return max(20, int((width - 2 * MARGIN) / max(char_width, 1)))


def _text_lines(inst: Instruction, video: VideoRecord, chars: int) -> list[_TextLine]:
    """Everything above the timeline, one entry per drawn line."""
    return _header_lines(inst, video) + _message_lines(inst, chars) + _answer_lines(inst, chars)


def _header_lines(inst: Instruction, video: VideoRecord) -> list[_TextLine]:
    about = f"video {video.video_id}  {video.duration_s:.2f} s  generator {inst.generator_id or '-'}"
    return [
        _TextLine(f"{inst.task_type}   {inst.instruction_id}", INK, font(_HEAD_PX)),
        _TextLine(about, _MUTED, font(_SMALL_PX)),
    ]


def _message_lines(inst: Instruction, chars: int) -> list[_TextLine]:
    """The conversation, wrapped; a message's role starts its first line, later lines are indented."""
    lines = []
    for message in inst.messages:
        colour = _USER_COLOUR if message.role == "user" else _ASSISTANT_COLOUR
        wrapped = textwrap.wrap(message.content, chars - _WRAP_LESS) or [""]
        for i, line in enumerate(wrapped):
            prefix = f"{message.role.upper():>9}: " if i == 0 else " " * _ROLE_WIDTH
            lines.append(_TextLine(prefix + line, colour, font(_TEXT_PX)))
    return lines


def _answer_facts(answer: Answer) -> list[str]:
    """The structured answer's parts that are set, each as a short phrase."""
    facts = []
    if answer.text:
        facts.append(f"text={answer.text!r}")
    if answer.span_s:
        facts.append(f"span=[{answer.span_s[0]:.2f}, {answer.span_s[1]:.2f}] s")
    if answer.boxes:
        facts.append(f"{len(answer.boxes)} boxes at frames {[b.frame_idx for b in answer.boxes]}")
    if answer.tubelet_ids:
        facts.append("tubelets " + ", ".join(answer.tubelet_ids))
    return facts


def _answer_lines(inst: Instruction, chars: int) -> list[_TextLine]:
    """The structured answer (wrapped), the regions and the query, in small print."""
    small = font(_SMALL_PX)
    summary = "answer: " + ("; ".join(_answer_facts(inst.answer)) or "-")
    lines = [_TextLine(line, _FACTS, small) for line in textwrap.wrap(summary, chars)]
    for r in inst.regions:
        lines.append(_TextLine(f"{r.placeholder} = {r.tubelet_id} on frames {r.frame_idx}", _FACTS, small))
    if inst.query:
        lines.append(_TextLine(f"query: {inst.query}", _FACTS, small))
    return lines


def _plan_page(lines: list[_TextLine], n_frames: int, video: VideoRecord, width: int, cols: int) -> _Page:
    """The page for ``lines`` and ``n_frames`` frames in at most ``cols`` columns."""
    measure = _measure()
    heights = [int(measure.textbbox((0, 0), "Ag", font=line.font)[3]) + _LINE_GAP for line in lines]
    cols = max(1, min(cols, n_frames))
    cell_w = (width - 2 * MARGIN - (cols - 1) * MARGIN) // cols
    thumb = even_size(cell_w, round(cell_w * video.height / video.width))
    grid_rows = (n_frames + cols - 1) // cols
    timeline_y = MARGIN + sum(heights) + MARGIN
    grid_y = timeline_y + TIMELINE_HEIGHT + _TIMELINE_LABEL_H + MARGIN
    height = grid_y + grid_rows * (thumb[1] + _CAPTION_H + MARGIN) + MARGIN
    return _Page(width, height, heights, timeline_y, grid_y, cols, thumb)


def _draw_text(draw: ImageDraw.ImageDraw, lines: list[_TextLine], heights: list[int]) -> None:
    y = MARGIN
    for line, h in zip(lines, heights):
        draw.text((MARGIN, y), line.text, fill=line.colour, font=line.font)
        y += h


def _draw_timeline(draw: ImageDraw.ImageDraw, layout: InstructionLayout, inst: Instruction, rows: VideoRows) -> None:
    """The strip, the answer span on it, the ticks and the labels under it."""
    x0, y0, x1, y1 = layout.timeline
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=TIMELINE_BG)
    if inst.answer.span_s:
        start, end = layout.x_of(inst.answer.span_s[0]), layout.x_of(inst.answer.span_s[1])
        draw.rectangle([round(start), y0, max(round(end) - 1, round(start)), y1 - 1], fill=SPAN_COLOUR)
    _draw_ticks(draw, layout, _region_times(inst, rows), inst.answer.boxes)
    _draw_timeline_labels(draw, layout, rows.video.duration_s, _legend(inst))


def _region_times(inst: Instruction, rows: VideoRows) -> list[float]:
    """The time of each frame a region names: its row's, else from the frame rate."""
    times = reader_times(rows)
    fps = rows.video.fps
    return [times.get(f, f / fps if fps else 0.0) for f in sorted({f for r in inst.regions for f in r.frame_idx})]


def _draw_ticks(
    draw: ImageDraw.ImageDraw, layout: InstructionLayout, region_times: list[float], boxes: list[BoxAt]
) -> None:
    """Region frames on the strip's top half, answer boxes on its bottom half: both show where they meet."""
    _, y0, _, y1 = layout.timeline
    middle = y0 + TIMELINE_HEIGHT // 2
    for t in region_times:
        x = round(layout.x_of(t))
        draw.line([x, y0, x, middle], fill=REGION_TICK, width=2)
    for b in boxes:
        x = round(layout.x_of(b.t_s))
        draw.line([x, middle, x, y1 - 1], fill=ANSWER_COLOUR, width=2)


def _legend(inst: Instruction) -> str:
    """What the strip's marks mean, naming only the kinds that are drawn."""
    legend = "span"
    if inst.regions:
        legend += "   | region frames (top)"
    if inst.answer.boxes:
        legend += "   | answer boxes (bottom)"
    return legend


def _draw_timeline_labels(draw: ImageDraw.ImageDraw, layout: InstructionLayout, duration_s: float, legend: str) -> None:
    """Under the strip: "0 s" at its start, the duration at its end, the legend in the middle."""
    x0, _, x1, y1 = layout.timeline
    small = font(_SMALL_PX)
    measure = _measure()
    end_label = f"{duration_s:.2f} s"
    draw.text((x0, y1 + 2), "0 s", fill=INK, font=small)
    draw.text((x1 - measure.textlength(end_label, font=small), y1 + 2), end_label, fill=INK, font=small)
    legend_x = (x0 + x1) // 2 - measure.textlength(legend, font=small) // 2
    draw.text((legend_x, y1 + 2), legend, fill=_MUTED, font=small)


def _draw_frames(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    page: _Page,
    inst: Instruction,
    rows: VideoRows,
    frames: list[int],
) -> list[Cell]:
    """Each shown frame with its overlays and caption, in its grid cell; the cells."""
    reduced = _region_rows(inst, rows)
    font_px = font_px_for(page.thumb[1])
    style = OverlayStyle(events=False, font_px=font_px)
    boxes_at = _answer_boxes_by_frame(inst.answer)
    with reader_for(rows) as reader:
        decoded = reader.frames(frames, size=page.thumb)
        times = reader.timestamps()
    cells = []
    for i, (f, frame) in enumerate(zip(frames, decoded)):
        drawn = draw_frame(frame, f, reduced, float(times[f]), style)
        if f in boxes_at:
            drawn = _mark_answer_boxes(drawn, boxes_at[f], rows.video, page.thumb, font_px)
        x, y, w, h = cell = page.cell(i)
        image.paste(Image.fromarray(drawn), (x, y))
        cells.append(cell)
        draw.text((x, y + h + 3), _caption(f, times[f], inst, f in boxes_at), fill=INK, font=font(_SMALL_PX))
    return cells


def _answer_boxes_by_frame(answer: Answer) -> dict[int, list[list[float]]]:
    boxes_at: dict[int, list[list[float]]] = {}
    for b in answer.boxes:
        boxes_at.setdefault(b.frame_idx, []).append(b.box_xyxy)
    return boxes_at


def _mark_answer_boxes(
    drawn: np.ndarray, boxes: list[list[float]], video: VideoRecord, size: tuple[int, int], font_px: int
) -> np.ndarray:
    """``drawn`` with the answer's boxes outlined and tagged "answer"."""
    tw, th = size
    scaled = [scaled_box(box, tw / video.width, th / video.height, tw, th) for box in boxes]
    pil = Image.fromarray(drawn)
    draw = ImageDraw.Draw(pil)
    for c1, _, _, r2 in scaled:
        # the tag goes under the box (the region's tag is above it)
        draw_label(draw, (c1, min(r2 + font_px + 6, th)), "answer", ANSWER_COLOUR, font(font_px), size)
    marked = np.asarray(pil).copy()
    for box in scaled:
        draw_box(marked, box, ANSWER_COLOUR, 3)
    return marked


def _caption(frame_idx: int, t_s: float, inst: Instruction, has_answer_box: bool) -> str:
    """ "frame 12 · 0.50 s" and what is grounded on it: the answer box, the regions' placeholders."""
    what = ["answer box"] if has_answer_box else []
    what += [r.placeholder for r in inst.regions if frame_idx in r.frame_idx]
    return f"frame {frame_idx} · {t_s:.2f} s  {' '.join(what)}"


def reader_times(rows: VideoRows) -> dict[int, float]:
    """Frame index → t_s from the tubelets' rows (no decoding)."""
    return {f.frame_idx: float(f.t_s) for t in rows.tubelets for f in t.frames}
