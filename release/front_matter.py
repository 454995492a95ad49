"""The YAML front matter of a release's card: what the Hugging Face Hub and ``datasets`` read.

- ``license`` (and ``license_name``/``license_link``/``license_details`` for ``other``):
  ``tubelet.release.licence``.
- ``task_categories``: from the Hub's task list, by what the release holds:
  ``video-text-to-text`` and ``visual-question-answering`` for instructions,
  ``object-detection`` for tubelet boxes, ``image-segmentation`` when frames carry masks.
- ``size_categories``: the Hub's bucket of the default config's rows.
- ``configs``: one per table with rows (``config_name: <table>``, ``data_files``: one
  entry per non-empty split listing its files); ``instructions`` is ``default: true``, or
  ``videos`` when there are no instructions. A table without rows gets no config.

The values depend on the release's content only, and are dumped in a fixed key order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tubelet.release.licence import LicenceDecision
from tubelet.release.stats import RELEASE_TABLES

#: The Hub's size buckets: (upper bound, label), for ``size_categories``.
_SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
]
#: The table a plain ``load_dataset(RELEASE)`` loads, in order of preference.
_DEFAULT_ORDER = ("instructions", "videos")


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` label for ``n`` rows."""
    return next((label for bound, label in _SIZES if n < bound), "n>1T")


def totals(info: Mapping[str, Any]) -> dict[str, int]:
    """Rows per table."""
    return {t: sum(c.values()) for t, c in info["counts"].items()}


def default_table(info: Mapping[str, Any]) -> str | None:
    """The table of the default config: instructions, else videos, else the first with rows."""
    rows = totals(info)
    candidates = [t for t in (*_DEFAULT_ORDER, *RELEASE_TABLES) if rows.get(t)]
    return candidates[0] if candidates else None


def configs(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``configs`` list: the default table first, then the others with rows in table order."""
    default = default_table(info)
    order = [t for t in RELEASE_TABLES if t in info["files"]]
    order.sort(key=lambda t: t != default)  # stable: the default first
    out = []
    for table in order:
        config: dict[str, Any] = {"config_name": table}
        if table == default:
            config["default"] = True
        files = info["files"][table]
        config["data_files"] = [{"split": s, "path": list(files[s])} for s in info["splits"] if s in files]
        out.append(config)
    return out


def task_categories(info: Mapping[str, Any]) -> list[str]:
    """Hub task ids for what the release holds."""
    rows = totals(info)
    tasks = []
    if rows.get("instructions"):
        tasks += ["video-text-to-text", "visual-question-answering"]
    if rows.get("tubelets"):
        tasks.append("object-detection")
        if info["masks"]["with_mask"]:
            tasks.append("image-segmentation")
    return tasks


def tags(info: Mapping[str, Any]) -> list[str]:
    """Free-form Hub tags: tubelet, video, and what the tables hold."""
    rows = totals(info)
    out = ["tubelet", "video"]
    if rows.get("tubelets"):
        out += ["object-tracking", "spatio-temporal-grounding"]
        if info["masks"]["with_mask"]:
            out.append("video-object-segmentation")
    if rows.get("events"):
        out.append("temporal-grounding")
    if rows.get("instructions"):
        out.append("instruction-tuning")
    return out


def pretty_name(info: Mapping[str, Any]) -> str:
    """``<source dataset's name> (tubelet release <version>)``."""
    name = str(info["source"]["name"]).rstrip("/").rsplit("/", 1)[-1] or "dataset"
    return f"{name} (tubelet release {info['version']})"


def front_matter(info: Mapping[str, Any]) -> dict[str, Any]:
    """The card's metadata, as the Hub's dataset card spec names it."""
    default = default_table(info)
    meta: dict[str, Any] = {"pretty_name": pretty_name(info)}
    meta |= LicenceDecision(**info["licence"]).front_matter()
    meta["task_categories"] = task_categories(info)
    meta["tags"] = tags(info)
    meta["size_categories"] = [size_category(totals(info).get(default, 0) if default else 0)]
    meta["configs"] = configs(info)
    return meta


def front_matter_text(info: Mapping[str, Any]) -> str:
    """The ``---``-fenced YAML block that opens the card."""
    body = yaml.safe_dump(front_matter(info), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    return f"---\n{body}---\n"
