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
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

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
    scaled_box,
)
from tubelet.preview.video_preview import open_dataset, reader_for
from tubelet.schemas.records import Instruction

WIDTH = 1280
MARGIN = 16
BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)
TIMELINE_BG = (215, 215, 215)
SPAN_COLOUR = (255, 160, 0)
ANSWER_COLOUR = (0, 200, 0)
REGION_TICK = (40, 90, 220)
TIMELINE_HEIGHT = 28


@dataclass
class InstructionLayout:
    width: int
    height: int
    timeline: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the strip
    duration_s: float
    frames: list[int] = field(default_factory=list)  # the frames shown, in order
    cells: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h of each frame's panel

    def x_of(self, t_s: float) -> float:
        x0, _, x1, _ = self.timeline
        return x0 + (x1 - x0) * (t_s / self.duration_s if self.duration_s > 0 else 0.0)


def shown_frames(inst: Instruction, rows: VideoRows, max_frames: int = 6) -> list[int]:
    """The frames to draw for ``inst``: its answer boxes' and regions' frames."""
    frames = sorted({b.frame_idx for b in inst.answer.boxes} | {f for r in inst.regions for f in r.frame_idx})
    if not frames and inst.answer.span_s and rows.video.fps:
        start, end = inst.answer.span_s
        last = max(rows.video.n_frames - 1, 0)
        frames = sorted({min(last, max(0, round(t * rows.video.fps))) for t in (start, (start + end) / 2, end)})
    if not frames:  # nothing grounded in space or time: the tubelets it names, mid-life
        by_id = {t.tubelet_id: t for t in rows.tubelets}
        for tid in inst.answer.tubelet_ids:
            visible = by_id[tid].visible_frames if tid in by_id else []
            if visible:
                frames.append(visible[len(visible) // 2].frame_idx)
        frames = sorted(set(frames))
    if len(frames) > max_frames:
        pick = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(pick.tolist()))]
    return [f for f in frames if 0 <= f < max(rows.video.n_frames, 1)]


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
    """The picture of one instruction (saved as PNG to ``to`` when given) and its layout."""
    dataset = open_dataset(root) if instruction is None or rows is None else None
    if instruction is None:
        matches = [i for i in dataset.records("instructions") if i.instruction_id == instruction_id]
        if not matches:
            raise KeyError(f"no instruction {instruction_id!r} in {root}")
        instruction = matches[0]
    inst = instruction
    rows = rows or VideoRows.load(dataset, inst.video_id)
    video = rows.video
    frames = shown_frames(inst, rows, max_frames)

    text_font, small_font, head_font = font(15), font(12), font(18)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    chars = max(20, int((width - 2 * MARGIN) / max(probe.textlength("abcdefghij", font=text_font) / 10, 1)))
    lines: list[tuple[str, tuple[int, int, int], object]] = [
        (f"{inst.task_type}   {inst.instruction_id}", INK, head_font),
        (
            f"video {video.video_id}  {video.duration_s:.2f} s  generator {inst.generator_id or '-'}",
            (90, 90, 90),
            small_font,
        ),
    ]
    for message in inst.messages:
        colour = (20, 60, 160) if message.role == "user" else (0, 110, 0)
        for i, line in enumerate(textwrap.wrap(message.content, chars - 12) or [""]):
            lines.append(((f"{message.role.upper():>9}: " if i == 0 else " " * 11) + line, colour, text_font))
    answer = inst.answer
    facts = []
    if answer.text:
        facts.append(f"text={answer.text!r}")
    if answer.span_s:
        facts.append(f"span=[{answer.span_s[0]:.2f}, {answer.span_s[1]:.2f}] s")
    if answer.boxes:
        facts.append(f"{len(answer.boxes)} boxes at frames {[b.frame_idx for b in answer.boxes]}")
    if answer.tubelet_ids:
        facts.append("tubelets " + ", ".join(answer.tubelet_ids))
    for line in textwrap.wrap("answer: " + ("; ".join(facts) or "-"), chars):
        lines.append((line, (60, 60, 60), small_font))
    for r in inst.regions:
        lines.append((f"{r.placeholder} = {r.tubelet_id} on frames {r.frame_idx}", (60, 60, 60), small_font))
    if inst.query:
        lines.append((f"query: {inst.query}", (60, 60, 60), small_font))

    heights = [int(probe.textbbox((0, 0), "Ag", font=f)[3]) + 6 for _, _, f in lines]
    text_h = sum(heights)
    cols = max(1, min(cols, len(frames))) if frames else 1
    cell_w = (width - 2 * MARGIN - (cols - 1) * MARGIN) // cols
    tw, th = even_size(cell_w, round(cell_w * video.height / video.width))
    caption_h = 20
    grid_rows = (len(frames) + cols - 1) // cols if frames else 0
    tl_label_h = 16
    timeline_y = MARGIN + text_h + MARGIN
    grid_y = timeline_y + TIMELINE_HEIGHT + tl_label_h + MARGIN
    height = grid_y + grid_rows * (th + caption_h + MARGIN) + MARGIN

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for (text, colour, fnt), h in zip(lines, heights):
        draw.text((MARGIN, y), text, fill=colour, font=fnt)
        y += h

    # timeline: [x0, x1) is the whole video
    x0, x1 = MARGIN, width - MARGIN
    y0, y1 = timeline_y, timeline_y + TIMELINE_HEIGHT
    layout = InstructionLayout(width, height, (x0, y0, x1, y1), float(video.duration_s), frames)
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=TIMELINE_BG)
    if answer.span_s:
        sx0, sx1 = layout.x_of(answer.span_s[0]), layout.x_of(answer.span_s[1])
        draw.rectangle([round(sx0), y0, max(round(sx1) - 1, round(sx0)), y1 - 1], fill=SPAN_COLOUR)
    times = reader_times(rows)
    for f in sorted({f for r in inst.regions for f in r.frame_idx}):
        x = round(layout.x_of(times.get(f, f / video.fps if video.fps else 0.0)))
        draw.line([x, y0, x, y0 + TIMELINE_HEIGHT // 2], fill=REGION_TICK, width=2)
    for b in answer.boxes:
        x = round(layout.x_of(b.t_s))
        draw.line([x, y0 + TIMELINE_HEIGHT // 2, x, y1 - 1], fill=ANSWER_COLOUR, width=2)
    draw.text((x0, y1 + 2), "0 s", fill=INK, font=small_font)
    end_label = f"{video.duration_s:.2f} s"
    draw.text((x1 - probe.textlength(end_label, font=small_font), y1 + 2), end_label, fill=INK, font=small_font)
    legend = (
        "span"
        + ("   | region frames (top)" if inst.regions else "")
        + ("   | answer boxes (bottom)" if answer.boxes else "")
    )
    draw.text(
        ((x0 + x1) // 2 - probe.textlength(legend, font=small_font) // 2, y1 + 2),
        legend,
        fill=(90, 90, 90),
        font=small_font,
    )

    if frames:
        reduced = _region_rows(inst, rows)
        style = OverlayStyle(events=False, font_px=font_px_for(th))
        boxes_at: dict[int, list[list[float]]] = {}
        for b in answer.boxes:
            boxes_at.setdefault(b.frame_idx, []).append(b.box_xyxy)
        with reader_for(rows) as reader:
            decoded = reader.frames(frames, size=(tw, th))
            ts = reader.timestamps()
        for i, (f, frame) in enumerate(zip(frames, decoded)):
            drawn = draw_frame(frame, f, reduced, float(ts[f]), style)
            sx, sy = tw / video.width, th / video.height
            if f in boxes_at:
                pil = Image.fromarray(drawn)
                d = ImageDraw.Draw(pil)
                fnt = font(style.font_px or 12)
                for box in boxes_at[f]:
                    c1, _, _, r2 = scaled_box(box, sx, sy, tw, th)
                    # the tag goes under the box (the region's tag is above it)
                    draw_label(d, (c1, min(r2 + (style.font_px or 12) + 6, th)), "answer", ANSWER_COLOUR, fnt, (tw, th))
                drawn = np.asarray(pil).copy()
                for box in boxes_at[f]:
                    draw_box(drawn, scaled_box(box, sx, sy, tw, th), ANSWER_COLOUR, 3)
            r, c = divmod(i, cols)
            cx = MARGIN + c * (tw + MARGIN)
            cy = grid_y + r * (th + caption_h + MARGIN)
            image.paste(Image.fromarray(drawn), (cx, cy))
            layout.cells.append((cx, cy, tw, th))
            what = []
            if f in boxes_at:
                what.append("answer box")
            what += [r_.placeholder for r_ in inst.regions if f in r_.frame_idx]
            draw.text((cx, cy + th + 3), f"frame {f} · {ts[f]:.2f} s  {' '.join(what)}", fill=INK, font=small_font)
    if to is not None:
        path = Path(to)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
    return image, layout


def reader_times(rows: VideoRows) -> dict[int, float]:
    """Frame index → t_s from the tubelets' rows (no decoding)."""
    return {f.frame_idx: float(f.t_s) for t in rows.tubelets for f in t.frames}
