"""The instruction renderings of a release, one module per consumer: each writes an instruction row
the way that consumer's own training loader reads it (docs/data-format.md, "Consumer formats").

| format | file | read by |
|---|---|---|
| ``videorefer`` (alias ``strefer``) | ``.json`` | VideoRefer v1 (VideoLLaMA2-based), Strefer |
| ``videollama3`` | ``.json`` | VideoRefer-VideoLLaMA3 (and VideoLLaMA3, masks ignored) |
| ``llava-video`` | ``.json`` | LLaVA-NeXT: LLaVA-Video, LLaVA-OneVision |
| ``video-llava`` | ``.json`` | Video-LLaVA |
| ``unistg`` | ``.jsonl`` | Uni-STG style grounding text |

The former ``llava`` name is refused with a pointer to the two names that replace it: it was
read three ways (LLaVA-1.5 takes no video, LLaVA-NeXT wants ``<image>``, Video-LLaVA ``<video>``),
and a guess would silently drop the video for two of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tubelet.release.formats import llava_video, unistg, video_llava, videollama3, videorefer
from tubelet.release.formats.common import NotLoadableError, RenderInput, RenderOptions

#: Each format's renderer.
RENDERERS: dict[str, Callable[[RenderInput], dict[str, Any]]] = {
    "videorefer": videorefer.render,
    "videollama3": videollama3.render,
    "llava-video": llava_video.render,
    "video-llava": video_llava.render,
    "unistg": unistg.render,
}
#: Other names a format answers to (its files go under the name asked for).
ALIASES: dict[str, str] = {"strefer": "videorefer"}
#: Names no longer rendered, with what to ask for instead.
RETIRED: dict[str, str] = {
    "llava": (
        "'llava' is no longer a format: LLaVA-1.5 reads no video, and the video LLaVAs disagree on the token; "
        "ask for 'llava-video' (LLaVA-NeXT, LLaVA-Video, LLaVA-OneVision: <image>) "
        "or 'video-llava' (Video-LLaVA: <video>)"
    )
}
#: Rendering formats (aliases included) and their file suffix.
FORMATS: dict[str, str] = {
    **{name: ".jsonl" if name == "unistg" else ".json" for name in RENDERERS},
    **{alias: ".json" for alias in ALIASES},
}
#: What a release renders unless told otherwise: every consumer.
DEFAULT_FORMATS: tuple[str, ...] = tuple(RENDERERS)


def canonical(name: str) -> str:
    """The format a name stands for (an alias resolved)."""
    return ALIASES.get(name, name)


def check_formats(formats: Sequence[str]) -> None:
    """ValueError naming the problem: a retired or unknown name, or one format asked for twice."""
    for name in formats:
        if name in RETIRED:
            raise ValueError(RETIRED[name])
        if name not in FORMATS:
            raise ValueError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}")
    seen: dict[str, str] = {}
    for name in formats:
        other = seen.setdefault(canonical(name), name)
        if other != name or formats.count(name) > 1:
            raise ValueError(f"format {name!r} asked for twice ({other!r} renders the same)")


def render_item(name: str, item: RenderInput) -> dict[str, Any]:
    """One item in format ``name``; NotLoadableError where its consumer could not load it."""
    return RENDERERS[canonical(name)](item)


__all__ = [
    "ALIASES",
    "DEFAULT_FORMATS",
    "FORMATS",
    "RENDERERS",
    "RETIRED",
    "RenderInput",
    "RenderOptions",
    "NotLoadableError",
    "canonical",
    "check_formats",
    "render_item",
]
