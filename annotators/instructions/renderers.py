"""Export formats for instruction rows: pure functions of the rows, with parsers back.

- ``to_unistg``: Uni-STG style text, "From <t>s to <t>s." (an instant: "At <t>s.") and
  "At <t>s: [x1, y1, x2, y2].", boxes in pixels (one decimal), normalised to [0, 1]
  (``"unit"``) or to 0–1000 (``"thousand"``).
- ``to_open_o3``: Open-o3 style evidence tags ``<obj>…</obj>``, ``<t>…</t>``, ``<box>…</box>``.

Any format can print times as relative tokens ``<t_k>`` (``time_bins`` bins over the
video's duration, ``k = round(t / duration * (bins - 1))``). The ``parse_*`` functions
read the numbers back; tests check the round trip. The conversation formats of trainers
(VideoRefer, VideoLLaMA3, the LLaVAs) are written by releases (``tubelet.release.formats``),
which use these for their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tubelet.annotators.instructions.derive import answer_box, fmt_box
from tubelet.schemas.records import Answer, Instruction

BoxFormat = Literal["pixel", "unit", "thousand"]


@dataclass(frozen=True)
class TimeFormat:
    """How times print: seconds with ``decimals``, or ``<t_k>`` tokens when ``bins`` is set."""

    decimals: int = 2
    bins: int | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.bins is not None and (self.bins < 2 or not self.duration_s or self.duration_s <= 0):
            raise ValueError("relative time tokens need bins >= 2 and a positive duration_s")

    def show(self, t: float) -> str:
        """A time as text: "3.21s" or "<t_42>"."""
        if self.bins is not None:
            return f"<t_{time_to_bin(t, self.duration_s or 0.0, self.bins)}>"
        return _num(t, self.decimals) + "s"

    def read(self, text: str) -> float:
        """The inverse of ``show`` (a bin reads as its centre time)."""
        m = re.fullmatch(r"<t_(\d+)>", text.strip())
        if m:
            return bin_to_time(int(m.group(1)), self.duration_s or 0.0, self.bins or 2)
        return float(text.strip().rstrip("s"))

    @property
    def pattern(self) -> str:
        return r"<t_\d+>" if self.bins is not None else r"\d+(?:\.\d+)?s"

    def tolerance(self) -> float:
        """Largest round-trip error of a time."""
        if self.bins is not None:
            return (self.duration_s or 0.0) / (2 * (self.bins - 1)) + 1e-9
        return 0.5 * 10**-self.decimals + 1e-9


def time_to_bin(t: float, duration_s: float, bins: int) -> int:
    """Index of the relative time token for ``t`` (clamped to the video)."""
    return min(bins - 1, max(0, round(t / duration_s * (bins - 1))))


def bin_to_time(k: int, duration_s: float, bins: int) -> float:
    """Time of relative token ``k``."""
    return k / (bins - 1) * duration_s


def _num(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if decimals > 0 else str(round(v))
    return text if text not in ("", "-0") else "0"


# ---------------------------------------------------------------- boxes


def box_to(box: Sequence[float], width: int, height: int, fmt: BoxFormat = "pixel") -> list[float]:
    """A pixel box in ``fmt``: pixels (one decimal), [0, 1] (4 decimals) or 0–1000 (integers)."""
    if fmt == "pixel":
        return answer_box(box)
    scale = [width, height, width, height]
    if fmt == "unit":
        return [round(v / s, 4) for v, s in zip(box, scale)]
    if fmt == "thousand":
        return [float(round(v / s * 1000)) for v, s in zip(box, scale)]
    raise ValueError(f"unknown box format {fmt!r}")


def box_from(box: Sequence[float], width: int, height: int, fmt: BoxFormat = "pixel") -> list[float]:
    """The inverse of ``box_to`` (back to pixels)."""
    scale = [width, height, width, height]
    if fmt == "pixel":
        return [float(v) for v in box]
    div = 1.0 if fmt == "unit" else 1000.0
    return [v / div * s for v, s in zip(box, scale)]


def box_tolerance(width: int, height: int, fmt: BoxFormat) -> float:
    """Largest round-trip error of a coordinate in pixels."""
    if fmt == "pixel":
        return 0.05 + 1e-9  # one decimal
    return {"unit": 0.5e-4, "thousand": 0.5e-3}[fmt] * max(width, height) + 1e-9


_BOX_RE = r"\[\s*-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?){3}\s*\]"


def _parse_box(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]


def _question(inst: Instruction) -> str:
    return next((m.content for m in inst.messages if m.role == "user"), "")


# ---------------------------------------------------------------- Uni-STG


def unistg_answer(
    answer: Answer, width: int, height: int, box_format: BoxFormat = "pixel", time: TimeFormat = TimeFormat()
) -> str:
    """The answer as Uni-STG text: span first ("At <t>." for an instant), then one box per
    sampled frame; text otherwise."""
    parts = []
    if answer.span_s:
        start, end = (time.show(t) for t in answer.span_s)
        parts.append(f"At {start}." if start == end else f"From {start} to {end}.")
    for b in answer.boxes:
        parts.append(f"At {time.show(b.t_s)}: {fmt_box(box_to(b.box_xyxy, width, height, box_format))}.")
    return " ".join(parts) if parts else (answer.text or "")


def to_unistg(
    inst: Instruction, width: int, height: int, box_format: BoxFormat = "pixel", time: TimeFormat = TimeFormat()
) -> dict[str, Any]:
    """``{"id", "video", "task_type", "question", "answer"}`` with the answer as Uni-STG text."""
    return {
        "id": inst.instruction_id,
        "video": inst.video_id,
        "task_type": inst.task_type,
        "question": _question(inst),
        "answer": unistg_answer(inst.answer, width, height, box_format, time),
    }


def parse_unistg(
    text: str, width: int, height: int, box_format: BoxFormat = "pixel", time: TimeFormat = TimeFormat()
) -> tuple[list[float] | None, list[tuple[float, list[float]]]]:
    """``(span_s or None, [(t_s, pixel box), ...])`` read back from Uni-STG text."""
    tp = time.pattern
    span = None
    m = re.search(rf"From ({tp}) to ({tp})", text)
    instant = re.match(rf"\s*At ({tp})\.", text)  # "At <t>." with no box: an instant's span
    if m:
        span = [time.read(m.group(1)), time.read(m.group(2))]
    elif instant:
        span = [time.read(instant.group(1))] * 2
    boxes = [
        (time.read(t), box_from(_parse_box(b), width, height, box_format))
        for t, b in re.findall(rf"At ({tp}): ({_BOX_RE})", text)
    ]
    return span, boxes


# ---------------------------------------------------------------- Open-o3


def to_open_o3(
    inst: Instruction,
    names: Mapping[str, str],
    width: int,
    height: int,
    box_format: BoxFormat = "pixel",
    time: TimeFormat = TimeFormat(),
) -> dict[str, Any]:
    """The answer as Open-o3 style evidence: ``<obj>name</obj>`` then the span as two
    ``<t>`` tags (an instant: "at <t>…</t>") and each box as ``<t>…</t><box>[…]</box>``;
    ``names`` maps tubelet id to its referring phrase (``VideoTables.names``)."""
    ans = inst.answer
    parts = [f"<obj>{names.get(i, i)}</obj>" for i in ans.tubelet_ids]
    if ans.span_s:
        start, end = (time.show(t) for t in ans.span_s)
        parts.append(f"at <t>{start}</t>" if start == end else f"from <t>{start}</t> to <t>{end}</t>")
    for b in ans.boxes:
        parts.append(f"<t>{time.show(b.t_s)}</t><box>{fmt_box(box_to(b.box_xyxy, width, height, box_format))}</box>")
    if ans.text:
        parts.append(ans.text)
    return {
        "id": inst.instruction_id,
        "video": inst.video_id,
        "task_type": inst.task_type,
        "question": _question(inst),
        "answer": " ".join(parts),
    }


def parse_open_o3(
    text: str, width: int, height: int, box_format: BoxFormat = "pixel", time: TimeFormat = TimeFormat()
) -> dict[str, Any]:
    """``{"objects", "span_s", "boxes": [(t_s, pixel box)]}`` read back from evidence tags."""
    objects = re.findall(r"<obj>(.*?)</obj>", text)
    span = None
    m = re.search(r"from <t>(.*?)</t> to <t>(.*?)</t>", text)
    instant = re.search(r"(?<!\w)at <t>(.*?)</t>", text)
    if m:
        span = [time.read(m.group(1)), time.read(m.group(2))]
    elif instant:
        span = [time.read(instant.group(1))] * 2
    boxes = [
        (time.read(t), box_from(_parse_box(b), width, height, box_format))
        for t, b in re.findall(r"<t>([^<]*?|<t_\d+>)</t><box>(.*?)</box>", text)
    ]
    return {"objects": objects, "span_s": span, "boxes": boxes}
