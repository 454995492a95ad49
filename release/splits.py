"""Release splits: which split each video of a release goes to.

**Groups.** A video's group is ``extra.source_group`` (or ``extra.group``) when its
``extra`` JSON names one, else the video itself. Every video of a group gets the same
split, so clips cut from one recording never straddle splits. ``videos.source`` is not
a group: it names the dataset a video came from (``davis2016``), and grouping by it put
whole datasets in one split.

**Assignment over the whole set.** Each split gets a whole number of video slots, its
ratio of the videos by largest remainder (10 at 0.8/0.1/0.1: 8/1/1; 7: 5/1/1; 2: 2/0/0).
The groups are ordered by the sha256 of their key (ties by key) and laid end to end,
each as long as its number of videos; a group goes to the split whose slots hold the
middle of its run, so single-video groups fill the slots exactly and a large group
lands where most of it falls. A split is only left empty when there are too few videos
to fill it (two videos at 0.8/0.1/0.1: both in train; the release warns). The result depends on the set of groups and their sizes only, never on
shard or row order.

**Stability.** A group keeps its place in the hash order whatever else is added, but
groups added before it push it along: adding ``m`` videos moves at most about ``m``
videos' worth of groups across each split boundary (those the insertion pushes over
it), every other group keeps its split. ``keep_splits`` pins the videos that carry a
``videos.split``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

DEFAULT_SPLITS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
#: What ``datasets`` accepts as a split name (its ``Split`` check): word characters, dot-separated.
_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")


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
    """Ratios scaled to sum 1 (ValueError when empty, all zero or a name ``datasets`` refuses)."""
    total = sum(ratios.values())
    if not ratios or total <= 0:
        raise ValueError("splits need at least one positive ratio")
    for name in ratios:
        check_split_name(name, "--splits")
    return {k: v / total for k, v in ratios.items()}


def check_split_name(name: str, where: str) -> str:
    """``name``, or ValueError when ``datasets`` would refuse it as a split name."""
    if not _SPLIT_NAME.match(name):
        raise ValueError(f"{where}: split name {name!r} is not a valid split name (letters, digits, _ and inner dots)")
    return name


def group_key(video_id: str, extra: str | Mapping[str, Any] | None) -> str:
    """The key of a video's group (see the module docstring)."""
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra else {}
        except json.JSONDecodeError:
            extra = {}
    extra = extra if isinstance(extra, Mapping) else {}
    group = extra.get("source_group", extra.get("group"))
    return f"video:{video_id}" if group is None or group == "" else f"group:{group}"


@dataclass(frozen=True)
class VideoToSplit:
    """What the assignment reads of one released video."""

    video_id: str
    extra: str | Mapping[str, Any] | None = None
    existing: str | None = None  # ``videos.split``: kept with ``keep_splits``


@dataclass
class SplitAssignment:
    """Each released video's split, and what a card says about the result."""

    of_video: dict[str, str]
    names: list[str]  # every split of the release, in order: the ratios' order, then kept names
    groups: Counter[str] = field(default_factory=Counter)  # groups per split
    conflicts: int = 0  # groups whose kept splits disagree (keep_splits only)

    def videos(self) -> Counter[str]:
        """Videos per split."""
        return Counter(self.of_video.values())

    def empty(self) -> list[str]:
        """The splits that hold no video."""
        videos = self.videos()
        return [name for name in self.names if not videos[name]]

    def warnings(self, ratios: Mapping[str, float]) -> list[str]:
        """One line per empty split and for groups split apart by kept splits."""
        n_videos, n_groups = len(self.of_video), sum(self.groups.values())
        wanted = ", ".join(f"{k}={v:.3g}" for k, v in ratios.items())
        lines = [
            f"split {name!r} is empty: {n_videos} video(s) in {n_groups} group(s) cannot fill the ratios {wanted}"
            for name in self.empty()
            if ratios.get(name, 1.0) > 0  # a split asked to be empty is no surprise
        ]
        if self.conflicts:
            lines.append(f"{self.conflicts} group(s) straddle splits: their videos keep different videos.split values")
        return lines


def assign_splits(
    videos: Iterable[VideoToSplit], ratios: Mapping[str, float], keep_splits: bool = False
) -> SplitAssignment:
    """The split of every video (see the module docstring); ``ratios`` as ``normalise`` returns them."""
    members: dict[str, list[VideoToSplit]] = {}
    for video in videos:
        members.setdefault(group_key(video.video_id, video.extra), []).append(video)
    of_video: dict[str, str] = {}
    of_group: dict[str, set[str]] = {}
    free: dict[str, int] = {}  # groups the ratios place: key -> videos
    for key, group in members.items():
        kept = [v.existing for v in group if keep_splits and v.existing]
        if not kept:
            free[key] = len(group)
            continue
        # a kept group's videos without a split follow the group's most common one
        default = sorted(Counter(kept).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        for video in group:
            split = check_split_name(video.existing or default, f"video {video.video_id}: videos.split")
            of_video[video.video_id] = split
            of_group.setdefault(key, set()).add(split)
    for key, split in cut_by_count(free, ratios).items():
        for video in members[key]:
            of_video[video.video_id] = split
        of_group[key] = {split}
    used = set(of_video.values())
    # the ratios' splits (all of them when the ratios placed a group), then the other kept names
    names = [n for n in ratios if free or not of_video or n in used]
    names += sorted(used - set(names))
    groups = Counter(split for splits in of_group.values() for split in splits)
    conflicts = sum(len(splits) > 1 for splits in of_group.values())
    return SplitAssignment(dict(sorted(of_video.items())), names, groups, conflicts)


def cut_by_count(groups: Mapping[str, int], ratios: Mapping[str, float]) -> dict[str, str]:
    """``{group key: split}``: the groups in hash order, laid end to end by size, each in the split
    whose run of video slots holds its middle. Each split has ``quotas`` slots."""
    names: Sequence[str] = [k for k, v in ratios.items() if v > 0]
    quotas = split_quotas(sum(groups.values()), [ratios[k] for k in names])
    bounds, acc = [], 0
    for quota in quotas:
        acc += quota
        bounds.append(2 * acc)  # twice the bound: compared with twice the middle (integers only)
    out: dict[str, str] = {}
    position = 0
    for key in sorted(groups, key=lambda k: (hashlib.sha256(k.encode()).hexdigest(), k)):
        middle2 = 2 * position + groups[key]
        out[key] = next((n for n, b in zip(names, bounds) if middle2 < b), names[-1])
        position += groups[key]
    return out


def split_quotas(total: int, ratios: Sequence[float]) -> list[int]:
    """``total`` videos shared by ``ratios`` in whole numbers (largest remainder, ties to the earlier split):
    10 at 0.8/0.1/0.1 → 8/1/1, 7 → 5/1/1, 2 → 2/0/0."""
    shares = [Fraction(r).limit_denominator(1_000_000) for r in ratios]
    exact = [share / sum(shares) * total for share in shares]
    quotas = [int(q) for q in exact]  # floors: the shares are positive
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas
