"""The dataset card (``README.md``) of a release, with its histograms as PNG plots.

It opens with the YAML front matter the Hub and ``datasets`` read
(``tubelet.release.front_matter``), then says how to load the release, where its media
are, which table or split is empty, what it counts, under which licence, and warns
about what went wrong (an empty split).

Everything here is a function of the release's content: plots are drawn with the Agg
backend and saved without the ``Software`` metadata key, so their bytes repeat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tubelet.preview.plots import histogram_png
from tubelet.release.front_matter import configs, front_matter_text, pretty_name
from tubelet.release.stats import RELEASE_TABLES, ReleaseStats
from tubelet.schemas.arrow import PRIMARY_KEYS, TABLE_SCHEMAS


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _by_split(counter: Mapping[tuple[str, str], int], splits: Sequence[str], label: str) -> list[str]:
    keys = sorted({k for _, k in counter})
    rows = [[k, *(counter.get((s, k), 0) for s in splits), sum(counter.get((s, k), 0) for s in splits)] for k in keys]
    return _table([label, *splits, "total"], rows) if rows else ["(none)", ""]


def write_card(folder: Path, info: Mapping[str, Any], stats: ReleaseStats) -> None:
    """Write ``README.md`` (YAML front matter, then the card) and ``meta/plots/*.png`` into the release ``folder``."""
    histogram_png(folder / "meta" / "plots" / "durations.png", stats.durations_s, "Video durations", "seconds")
    histogram_png(
        folder / "meta" / "plots" / "tubelet_lengths.png",
        stats.tubelet_lengths_s,
        "Tubelet lengths",
        "seconds (end_s - start_s)",
    )
    splits: list[str] = list(info["splits"])
    counts = info["counts"]
    source = info["source"]
    n_videos = sum(counts["videos"].values())
    n_tubelets = sum(counts["tubelets"].values())
    lines = [
        f"# {pretty_name(info)}",
        "",
        f"Built from `{source['name']}`"
        + (f" (dataset version `{source['version']}`)" if source.get("version") else "")
        + f" by the `{info.get('pipeline')}` pipeline; schema version {info['schema_version']}.",
        (
            "Tables follow tubelet's data format (docs/data-format.md): absolute 0-based frame indices, "
            "times in seconds, absolute-pixel `[x1, y1, x2, y2]` boxes, COCO RLE masks, JSON strings for "
            "free-form dictionaries."
        ),
        "",
        *_warnings(info["warnings"]),
        *_loading(info),
        *_media(info),
        "## Rows per table and split",
        "",
        *_table(
            ["table", *splits, "total"],
            [[t, *(c.get(s, 0) for s in splits), sum(c.values())] for t, c in counts.items()],
        ),
        *_empty(info),
        "## Instructions per task type",
        "",
        *_by_split(stats.task_types, splits, "task type"),
        "## Tubelets per category",
        "",
        *_by_split(stats.categories, splits, "category"),
        "## Renderings",
        "",
        "Files `instructions/<format>/<split>.json` (`.jsonl` for unistg), for the splits with items. "
        "Videos are named relative to this folder: set the loader's video or data folder "
        "(`--data_folder`, `--video_folder`) to it. Notes: `box_masked_regions` regions of tubelets without "
        "masks got box-shaped masks; `skipped:<reason>` rows their consumer could not load were left out.",
        "",
        *_table(
            ["format", *splits, "skipped", "notes"],
            [
                [
                    f,
                    *(info["rendered"][f].get(s, 0) for s in splits),
                    info["render_skipped"][f],
                    ", ".join(f"{n} {c}" for n, c in info["render_notes"][f].items()) or "-",
                ]
                for f in info["rendered"]
            ],
        ),
        "## Distributions",
        "",
        "![video durations](meta/plots/durations.png)",
        "",
        "![tubelet lengths](meta/plots/tubelet_lengths.png)",
        "",
        "## Licence",
        "",
        _licence_text(info["licence"]),
        "",
        *_table(["source licence", "videos"], sorted(stats.licences.items())),
        "## Review coverage",
        "",
        (f"- videos with reviews: {stats.reviewed_videos} of {n_videos} ({_share(stats.reviewed_videos, n_videos)})"),
        (
            f"- tubelets with reviews: {stats.reviewed_tubelets} of {n_tubelets}"
            f" ({_share(stats.reviewed_tubelets, n_tubelets)})"
        ),
        "",
        *(_table(["verdict", "reviews"], sorted(stats.verdicts.items())) if stats.verdicts else ["No reviews.", ""]),
        "## Filters and splits",
        "",
        "```json",
        _json(info["options"]),
        "```",
        "",
        (
            "A video's split follows its group: `extra.source_group` (or `extra.group`) when set, else the video "
            "itself, so videos of one group never straddle splits. Groups are ordered by a hash of their key and "
            "cut at the cumulative ratios by video count (deterministic; adding videos moves few groups)."
        ),
        "",
        *_table(
            ["split", "groups", "videos"], [[s, info["groups"].get(s, 0), counts["videos"].get(s, 0)] for s in splits]
        ),
        *(_table(["dropped", "rows"], sorted(info["dropped"].items())) if info["dropped"] else []),
        "## Pipeline and models",
        "",
        (
            f"- pipeline: `{info.get('pipeline')}` (config hash `{source.get('config_hash')}`, "
            f"tubelet {info.get('tubelet_version')})"
        ),
        *(f"- {k}: `{v}`" for k, v in sorted(info["model_ids"].items())),
        "",
        "## Schema",
        "",
    ]

    for table in RELEASE_TABLES:
        lines.append(f"### {table} (key `{PRIMARY_KEYS[table]}`)")
        lines.append("")
        lines += _table(
            ["column", "type", "nullable"],
            [[f.name, f"`{f.type}`", "yes" if f.nullable else "no"] for f in TABLE_SCHEMAS[table]],
        )
    card = front_matter_text(info) + "\n" + "\n".join(lines).rstrip() + "\n"
    (folder / "README.md").write_text(card, encoding="utf-8")


def _warnings(warnings: Sequence[str]) -> list[str]:
    return [*(f"- **Warning:** {w}" for w in warnings), ""] if warnings else []


def _loading(info: Mapping[str, Any]) -> list[str]:
    """How to load it: one ``datasets`` config per table with rows, the default first."""
    names = [c["config_name"] for c in configs(info)]
    if not names:
        return ["## Loading", "", "This release holds no rows, so it declares no `datasets` config.", ""]
    first = names[0]
    return [
        "## Loading",
        "",
        "```python",
        "import datasets",
        f'{first} = datasets.load_dataset("path/to/this/release", "{first}")  # or "<user>/<repo>" on the Hub',
        f'{first} = datasets.load_dataset("path/to/this/release", "{first}", streaming=True)',
        "```",
        "",
        f"Configs (one per table with rows): {', '.join(f'`{n}`' for n in names)}; the default is `{first}`. "
        "Check the files with `sha256sum -c SHA256SUMS`.",
        "",
    ]


def _media(info: Mapping[str, Any]) -> list[str]:
    """Where the videos are: in ``media/``, or to be put there."""
    media = info["media"]
    where = (
        f"Videos are referenced relative to this folder as `media/<video id>.<ext>` (the `uri` column of "
        f"`videos` and every rendering); `{media['list']}` lists each one with the name of the file or image "
        "folder it came from."
    )
    if media["included"]:
        status = "They are included: video files as they were, image folders as H.264 mp4 at their frame rate."
    else:
        status = (
            "**The media are not included.** Put each video at its path before use; an image folder "
            "(`source_kind: frames`) becomes an H.264 mp4 at its `fps`, one frame per image in name order "
            "(`tubelet release --with-media` does that), so the frame indices of the tables stay valid."
        )
    return ["## Media", "", where, "", status, ""]


def _empty(info: Mapping[str, Any]) -> list[str]:
    """Which table or split has no rows, hence no file (and no config for a table)."""
    lines = []
    if info["empty_tables"]:
        lines.append(f"Tables without rows (no file, no config): {', '.join(info['empty_tables'])}.")
    splits = [f"{t}: {', '.join(s)}" for t, s in info["empty_splits"].items() if s]
    if splits:
        lines.append(f"Empty splits (no file): {'; '.join(splits)}.")
    return [part for line in lines for part in (line, "")]


def _licence_text(licence: Mapping[str, Any]) -> str:
    how = "set with `--license`" if licence["given"] else "derived from the videos' `licence` values"
    if licence["id"] != "other":
        return f"Licence `{licence['id']}` ({how})."
    return f"Licence `other` (`{licence['name']}`, {how}; see `LICENSE.md`): {licence['details']}."


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "n/a"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
