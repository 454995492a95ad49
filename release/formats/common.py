"""What the consumer formats share: the input of one item, its conversation turns, its regions
(with their masks, or box-shaped masks where a tubelet has none), and how times and boxes print.

A format module is one function ``render(item: RenderInput) -> dict``; it raises
``NotLoadableError`` (a ValueError) for an instruction its consumer cannot load as written, with a
short ``reason`` the release counts (``meta/info.json`` ``render_notes``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tubelet.annotators.instructions.derive import fmt_box, sub_times
from tubelet.annotators.instructions.renderers import BoxFormat, TimeFormat, box_to, unistg_answer
from tubelet.schemas.records import Instruction, RegionRef, Tubelet, TubeletFrame
from tubelet.schemas.rle import RLE, box_rle, rle_size

#: ``--boxes`` names and the renderers' box format each stands for.
BOX_FORMATS: dict[str, BoxFormat] = {"pixel": "pixel", "normalised": "unit", "thousand": "thousand"}
#: ``--times`` names: seconds ("3.21s") or relative time tokens ("<t_42>", ``time_bins`` over the video).
TIME_FORMATS: tuple[str, ...] = ("seconds", "tokens")
#: A region placeholder as the instructions table writes it.
PLACEHOLDER_RE = re.compile(r"<region\d+>")
#: Conversation speakers of the LLaVA family, by message role (system turns are left out: the
#: loaders map only these two speakers, and VideoRefer's raises on any other).
SPEAKERS = {"user": "human", "assistant": "gpt"}
#: A note the release counts: regions of tubelets without masks, given box-shaped masks.
BOX_MASKS = "box_masked_regions"


class NotLoadableError(ValueError):
    """An instruction a format cannot write so that its consumer loads it; ``reason`` is counted."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class RenderOptions:
    """How boxes and times print in the text of every format (masks and ``bbox`` fields stay pixels)."""

    boxes: str = "pixel"  # a BOX_FORMATS name
    times: str = "seconds"  # a TIME_FORMATS name
    time_bins: int = 100  # relative time tokens <t_0>…<t_{bins-1}> over the video's duration

    def check(self) -> None:
        if self.boxes not in BOX_FORMATS:
            raise ValueError(f"unknown box format {self.boxes!r}; choose one of {', '.join(BOX_FORMATS)}")
        if self.times not in TIME_FORMATS:
            raise ValueError(f"unknown time format {self.times!r}; choose one of {', '.join(TIME_FORMATS)}")
        if self.time_bins < 2:
            raise ValueError(f"time_bins must be >= 2, got {self.time_bins}")

    @property
    def is_default(self) -> bool:
        """Pixels and seconds: the stored messages print exactly this way, so they are kept as written."""
        return self.boxes == "pixel" and self.times == "seconds"

    @property
    def box_format(self) -> BoxFormat:
        return BOX_FORMATS[self.boxes]

    def time_format(self, duration_s: float) -> TimeFormat:
        """Seconds, or tokens over ``duration_s``; NotLoadableError when tokens need a duration the video lacks."""
        if self.times == "seconds":
            return TimeFormat()
        if not duration_s or duration_s <= 0:
            raise NotLoadableError("no_duration", "relative time tokens need the video's duration")
        return TimeFormat(bins=self.time_bins, duration_s=duration_s)


@dataclass(frozen=True)
class VideoInfo:
    """The video of an item as its format writes it."""

    path: str  # relative to the release root (media/<id>.mp4), or the dataset's uri
    width: int
    height: int
    duration_s: float
    is_folder: bool  # a folder of frame images, not a video file


@dataclass
class RenderInput:
    """One instruction to render, with what it points at."""

    inst: Instruction
    video: VideoInfo
    tubelets: Mapping[str, Tubelet]  # at least every tubelet its regions name that is in the release
    options: RenderOptions
    note: Callable[[str], None]  # counts one note of this format (e.g. BOX_MASKS)

    @property
    def time(self) -> TimeFormat:
        return self.options.time_format(self.video.duration_s)


# ---------------------------------------------------------------- conversations


def turns(item: RenderInput) -> list[dict[str, str]]:
    """The conversation as ``[{"from": "human"|"gpt", "value"}]``: human first, alternating, ending on
    the answer; times (and, when options are not the default, grounded answers) printed as asked."""
    out = [{"from": SPEAKERS[m.role], "value": m.content} for m in item.inst.messages if m.role in SPEAKERS]
    if not out or out[-1]["from"] != "gpt":  # a conversation ends on the answer
        out.append({"from": "gpt", "value": item.inst.answer.text or ""})
    expected = ["human", "gpt"] * (len(out) // 2)
    if [t["from"] for t in out] != expected:
        raise NotLoadableError("conversation", f"turns {[t['from'] for t in out]} do not alternate from a human turn")
    if not item.options.is_default:
        time = item.time
        for turn in out[:-1]:
            turn["value"] = sub_times(turn["value"], time.show)
        out[-1]["value"] = _answer(item, out[-1]["value"], time)
    return out


def _answer(item: RenderInput, written: str, time: TimeFormat) -> str:
    """The last turn: a span/box answer printed again in the asked formats, other answers as written."""
    answer = item.inst.answer
    if not answer.span_s and not answer.boxes:
        return sub_times(written, time.show)
    video = item.video
    return unistg_answer(answer, video.width, video.height, item.options.box_format, time)


def open_with(token: str, conversation: list[dict[str, str]], also_banned: tuple[str, ...] = ()) -> None:
    """Put the media ``token`` once, at the start of the first human turn; NotLoadableError when a turn already
    holds it or another media token (a loader would count it as one more video or image)."""
    for turn in conversation:
        for banned in (token, *also_banned):
            if banned in turn["value"]:
                raise NotLoadableError("media_token_in_text", f"a {turn['from']} turn already holds {banned}")
    conversation[0]["value"] = f"{token}\n{conversation[0]['value']}"


def require_video_file(item: RenderInput, consumer: str) -> None:
    """NotLoadableError for a frame folder: ``consumer`` reads video files only."""
    if item.video.is_folder:
        raise NotLoadableError(
            "video_folder", f"{item.video.path} is a frame folder; {consumer} reads video files only"
        )


# ---------------------------------------------------------------- regions


def regions_in_order(item: RenderInput, conversation: list[dict[str, str]]) -> list[tuple[RegionRef, Tubelet]]:
    """The region and tubelet of each placeholder occurrence in the human turns, in reading order
    (the order loaders tie ``<region>`` tokens to masks); NotLoadableError where one cannot be resolved."""
    refs = {r.placeholder: r for r in item.inst.regions}
    out = []
    for turn in conversation:
        if turn["from"] != "human":
            continue
        for placeholder in PLACEHOLDER_RE.findall(turn["value"]):
            ref = refs.get(placeholder)
            if ref is None:
                raise NotLoadableError("placeholder_without_region", f"{placeholder} names no region")
            tube = item.tubelets.get(ref.tubelet_id)
            if tube is None:
                raise NotLoadableError(
                    "region_tubelet_missing", f"{placeholder}'s tubelet {ref.tubelet_id} is not released"
                )
            if not ref.frame_idx:
                raise NotLoadableError("region_without_frames", f"{placeholder} lists no frame")
            out.append((ref, tube))
    return out


def replace_placeholders(conversation: list[dict[str, str]], texts: list[str]) -> None:
    """Replace the placeholder occurrences of the human turns, in reading order, by ``texts``."""
    pending = iter(texts)
    for turn in conversation:
        if turn["from"] == "human":
            turn["value"] = PLACEHOLDER_RE.sub(lambda _: next(pending), turn["value"])


def region_frame(ref: RegionRef, tube: Tubelet, frame_idx: int) -> TubeletFrame:
    frame = next((f for f in tube.frames if f.frame_idx == frame_idx), None)
    if frame is None:
        raise NotLoadableError(
            "region_frame_missing", f"{ref.placeholder}: tubelet {tube.tubelet_id} has no frame {frame_idx}"
        )
    return frame


def region_masks(item: RenderInput, ref: RegionRef, tube: Tubelet, frames: list[int]) -> list[tuple[TubeletFrame, RLE]]:
    """Each of ``frames`` (absolute frame indices of the video) with the region's mask on it, or a
    box-shaped mask where the tubelet has none (counted once per region as BOX_MASKS)."""
    size = (item.video.height, item.video.width)
    out = []
    boxed = False
    for idx in frames:
        frame = region_frame(ref, tube, idx)
        if frame.mask_rle is None:
            out.append((frame, box_rle(frame.box_xyxy, *size)))
            boxed = True
        elif rle_size(frame.mask_rle) != size:
            raise NotLoadableError(
                "mask_size", f"{tube.tubelet_id} frame {idx}: mask {rle_size(frame.mask_rle)} is not {size}"
            )
        else:
            out.append((frame, frame.mask_rle))
    if boxed:
        item.note(BOX_MASKS)
    return out


def region_phrase(item: RenderInput, ref: RegionRef, tube: Tubelet) -> str:
    """A region written out for a consumer without region input: its box on its first frame, and when."""
    frame = region_frame(ref, tube, ref.frame_idx[0])
    video, time = item.video, item.time
    box = box_to(frame.box_xyxy, video.width, video.height, item.options.box_format)
    return f"the object at {fmt_box(box)} at {time.show(frame.t_s)}"


def base_item(item: RenderInput, conversation: list[dict[str, str]]) -> dict[str, object]:
    """The keys every conversation format writes: ``id``, ``task_type``, ``conversations``."""
    return {"id": item.inst.instruction_id, "task_type": item.inst.task_type, "conversations": conversation}


def with_region_tokens(
    item: RenderInput, banned: tuple[str, ...]
) -> tuple[list[dict[str, str]], list[tuple[RegionRef, Tubelet]]]:
    """A conversation for a consumer with region input: ``<video>`` first, each placeholder a
    ``<region>`` token (``banned``: tokens no turn may already hold); with its regions in order."""
    conversation = turns(item)
    regions = regions_in_order(item, conversation)
    open_with("<video>", conversation, also_banned=banned)
    replace_placeholders(conversation, ["<region>"] * len(regions))
    return conversation, regions


def with_regions_in_words(item: RenderInput, token: str, banned: str, consumer: str) -> dict[str, object]:
    """An item for a consumer without region input that reads video files only: ``token`` once, first,
    each region written out (``region_phrase``), ``video`` a path."""
    require_video_file(item, consumer)
    conversation = turns(item)
    regions = regions_in_order(item, conversation)
    open_with(token, conversation, also_banned=(banned,))
    replace_placeholders(conversation, [region_phrase(item, ref, tube) for ref, tube in regions])
    return {**base_item(item, conversation), "video": item.video.path}
