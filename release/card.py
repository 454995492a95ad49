"""The dataset card (``README.md``) of a release, with its histograms as PNG plots.

Everything here is a function of the release's content: plots are drawn with the Agg
backend and saved without the ``Software`` metadata key, so their bytes repeat.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tubelet.preview.plots import histogram_png
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
    """Write ``README.md`` and ``meta/plots/*.png`` into the release ``folder``."""
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
        f"# Tubelet dataset release {info['version']}",
        "",
        f"Built from `{source['path']}`"
        + (f" (dataset version `{source['version']}`)" if source.get("version") else "")
        + f" by the `{info.get('pipeline')}` pipeline; schema version {info['schema_version']}.",
        (
            "Tables follow tubelet's data format (docs/data-format.md): absolute 0-based frame indices, "
            "times in seconds, absolute-pixel `[x1, y1, x2, y2]` boxes, COCO RLE masks, JSON strings for "
            "free-form dictionaries."
        ),
        "",
        "## Loading",
        "",
        "```python",
        "import datasets",
        'instructions = datasets.load_dataset("parquet", data_files={',
        *(
            f'    "{s}": "data/instructions/{s}-*.parquet",' for s in splits if counts["instructions"].get(s)
        ),  # a split without files would fail to load
        "})",
        "```",
        "",
        "Check the files with `sha256sum -c SHA256SUMS`.",
        "",
        "## Rows per table and split",
        "",
        *_table(
            ["table", *splits, "total"],
            [[t, *(c.get(s, 0) for s in splits), sum(c.values())] for t, c in counts.items()],
        ),
        "## Instructions per task type",
        "",
        *_by_split(stats.task_types, splits, "task type"),
        "## Tubelets per category",
        "",
        *_by_split(stats.categories, splits, "category"),
        "## Renderings",
        "",
        (
            "Relative video paths in the renderings are under this folder: set the loader's video or data folder "
            "(`--data_folder`, `--video_folder`) to it. Notes: `box_masked_regions` regions of tubelets without "
            "masks got box-shaped masks; `skipped:<reason>` rows their consumer could not load were left out."
        ),
        "",
        *_table(
            ["format", "file", *splits, "skipped", "notes"],
            [
                [
                    f,
                    f"instructions/{f}/<split>",
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
        "## Source licences",
        "",
        *_table(["licence", "videos"], sorted(stats.licences.items())),
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
            "Splits are a stable hash of each video's source group (`videos.source` plus `extra.source_group`/`group`): "
            "videos of one group never straddle splits."
        ),
        "",
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
    (folder / "README.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "n/a"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
