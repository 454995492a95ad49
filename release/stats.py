"""What a release holds and what it counts while it is written (shared by the builder and the card)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: The tables a release carries (``rejects`` are the engine's history, not training data).
RELEASE_TABLES: tuple[str, ...] = ("videos", "tubelets", "entities", "events", "instructions", "reviews")


@dataclass
class ReleaseStats:
    """What the card and info.json report, gathered while streaming."""

    counts: dict[str, Counter[str]] = field(default_factory=lambda: {t: Counter() for t in RELEASE_TABLES})
    task_types: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split, task_type)
    categories: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split, category)
    licences: Counter[str] = field(default_factory=Counter)
    durations_s: list[float] = field(default_factory=list)
    tubelet_lengths_s: list[float] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    reviewed_videos: int = 0
    reviewed_tubelets: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rendered: Counter[tuple[str, str]] = field(default_factory=Counter)  # (format, split)
    render_skipped: Counter[str] = field(default_factory=Counter)  # format
    render_notes: Counter[tuple[str, str]] = field(
        default_factory=Counter
    )  # (format, box_masked_regions | skipped:<reason>)
    groups: dict[str, str] = field(default_factory=dict)  # group key -> split (checked: never two)
    split_conflicts: int = 0  # groups whose videos kept different existing splits (keep_splits)
    tubelet_frames: int = 0  # frames listed by the kept tubelets
    mask_frames: int = 0  # of which carry a mask (the card's task categories)
