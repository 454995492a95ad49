"""Deterministic split assignment for releases: a stable hash of each video's *group key*.

The group key is ``videos.source`` plus, when the video's ``extra`` JSON has one,
``source_group`` (or ``group``); a video with neither is its own group (its video id).
Every video of a group gets the same split, so clips cut from one source never
straddle splits. The split is the bucket of ``sha256(key)`` read as a number in
[0, 1) against the cumulative ratios, in the order given: the same key always lands
in the same split, whatever else the dataset holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_SPLITS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}


def parse_splits(text: str) -> dict[str, float]:
    """``"train=0.8,val=0.1,test=0.1"`` → ``{"train": 0.8, ...}``; ratios are normalised to sum 1."""
    ratios: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--splits {text!r}: expected NAME=RATIO[,NAME=RATIO...]")
        if name in ratios:
            raise ValueError(f"--splits {text!r}: split {name!r} given twice")
        ratio = float(value)
        if ratio < 0:
            raise ValueError(f"--splits {text!r}: negative ratio for {name!r}")
        ratios[name] = ratio
    return normalise(ratios)


def normalise(ratios: Mapping[str, float]) -> dict[str, float]:
    """Ratios scaled to sum 1 (ValueError when empty or all zero)."""
    total = sum(ratios.values())
    if not ratios or total <= 0:
        raise ValueError("splits need at least one positive ratio")
    return {k: v / total for k, v in ratios.items()}


def group_key(video_id: str, source: str | None, extra: str | Mapping[str, Any] | None) -> str:
    """The key that decides a video's split (see the module docstring)."""
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra else {}
        except json.JSONDecodeError:
            extra = {}
    extra = extra if isinstance(extra, Mapping) else {}
    group = extra.get("source_group", extra.get("group"))
    if source is None and group is None:
        return f"video:{video_id}"
    return f"source:{source or ''}\x1fgroup:{'' if group is None else group}"


def hash_unit(key: str) -> float:
    """``sha256(key)`` as a number in [0, 1) (the first 8 bytes)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def split_of(key: str, ratios: Mapping[str, float]) -> str:
    """The split of a group key: its hash's bucket against the cumulative ratios."""
    u = hash_unit(key)
    acc = 0.0
    names: Sequence[str] = list(ratios)
    for name in names:
        acc += ratios[name]
        if u < acc:
            return name
    return next(n for n in reversed(names) if ratios[n] > 0)  # rounding at the top end


def assign_split(
    video_id: str,
    source: str | None,
    extra: str | Mapping[str, Any] | None,
    existing: str | None,
    ratios: Mapping[str, float],
    keep_splits: bool = False,
) -> str:
    """A video's release split: its existing ``videos.split`` when ``keep_splits`` and set,
    else the hash bucket of its group key."""
    if keep_splits and existing:
        return existing
    return split_of(group_key(video_id, source, extra), ratios)
