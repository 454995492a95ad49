"""A static HTML report of a dataset: statistics, plots and contact sheets, viewable offline.

``write_report(root, out_dir, n_videos=6)`` writes ``out_dir/index.html`` (inline CSS,
no script, no network) and ``out_dir/assets/*.png``: matplotlib (Agg) plots of the
task-type counts, categories, video durations and tubelet lengths, and a contact sheet
for each of ``n_videos`` videos picked deterministically (the videos whose sha1(id)
sort first, so the pick does not depend on ingest order).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.engine.dataset import Dataset
from tubelet.engine.storage import public_name
from tubelet.preview.contact_sheet import render_contact_sheet
from tubelet.preview.overlay import VideoRows
from tubelet.preview.plots import bars_png, histogram_png
from tubelet.schemas.records import Entity, Event, Tubelet, VideoRecord

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.plots img{border:1px solid #ccc;background:#fff;max-width:560px}
.sheet img{max-width:100%;border:1px solid #ccc}.muted{color:#777}
"""


#: The tables after the plots: heading, column names, key in ``dataset_stats``.
_TABLES: list[tuple[str, list[str], str]] = [
    ("Instructions per task type", ["task type", "rows"], "task_types"),
    ("Tubelets per category", ["category", "tubelets"], "categories"),
    ("Tubelet sources", ["source", "tubelets"], "sources"),
    ("Event labels", ["label", "events"], "event_labels"),
    ("Videos", ["video", "duration s", "frames", "width", "height", "fps"], "videos"),
]


@dataclass
class ReportResult:
    """What ``write_report`` wrote: the page, its images, the videos with a contact sheet."""

    index: Path
    assets: list[Path] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def sample_videos(video_ids: list[str], n: int) -> list[str]:
    """``n`` video ids picked deterministically (lowest sha1 of the id), in id order."""
    ranked = sorted(video_ids, key=lambda v: hashlib.sha1(v.encode("utf-8")).hexdigest())
    return sorted(ranked[: max(0, n)])


def dataset_stats(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Rows per table, task types, categories, video durations and tubelet lengths."""
    dataset = Dataset(root)
    con = dataset.connect()

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in con.execute(sql).fetchall()]

    return {
        "counts": dataset.counts(),
        "task_types": rows("SELECT task_type, count(*) FROM instructions GROUP BY 1 ORDER BY 2 DESC, 1"),
        "categories": rows("SELECT category, count(*) FROM tubelets GROUP BY 1 ORDER BY 2 DESC, 1"),
        "sources": rows("SELECT source, count(*) FROM tubelets GROUP BY 1 ORDER BY 2 DESC, 1"),
        "event_labels": rows("SELECT coalesce(label, '-'), count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1"),
        "videos": rows("SELECT video_id, duration_s, n_frames, width, height, fps FROM videos ORDER BY video_id"),
        "tubelet_frames": [r[0] for r in rows("SELECT n_frames FROM tubelets")],
        "tubelet_seconds": [r[0] for r in rows("SELECT end_s - start_s FROM tubelets")],
        "rejects": rows("SELECT stage, count(*) FROM rejects GROUP BY 1 ORDER BY 2 DESC"),
    }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] + "-" + hashlib.sha1(name.encode()).hexdigest()[:6]


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, float):
                cells.append(f'<td class="n">{v:.3f}</td>')
            elif isinstance(v, int):
                cells.append(f'<td class="n">{v}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_report(
    root: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, n_videos: int = 6, sheet_frames: int = 8
) -> ReportResult:
    """Write ``out_dir/index.html`` and its ``assets/``; returns what was written."""
    out = Path(out_dir)
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    stats = dataset_stats(root)
    plots = _write_plots(stats, assets)
    video_ids = [r[0] for r in stats["videos"]]
    sheets = _write_sheets(root, sample_videos(video_ids, n_videos), assets, sheet_frames)
    result = ReportResult(
        index=out / "index.html",
        assets=plots + [assets / s.asset for s in sheets if s.asset],
        videos=[s.video_id for s in sheets if s.asset],
        stats=stats,
    )
    page = [*_head(root), *_statistics(stats, [p.name for p in plots]), *_previews(sheets, len(video_ids))]
    result.index.write_text("\n".join([*page, "</body></html>"]), encoding="utf-8")
    return result


def _plots(stats: dict[str, Any]) -> list[tuple[str, Callable[[Path], None]]]:
    """The report's plots: the asset's name and how to draw it there."""
    return [
        ("task_types.png", lambda p: bars_png(p, stats["task_types"], "instructions per task type")),
        ("categories.png", lambda p: bars_png(p, stats["categories"], "tubelets per category")),
        ("durations.png", lambda p: histogram_png(p, [r[1] for r in stats["videos"]], "video durations", "seconds")),
        (
            "tubelet_lengths.png",
            lambda p: histogram_png(p, stats["tubelet_frames"], "tubelet lengths", "frames listed"),
        ),
    ]


def _write_plots(stats: dict[str, Any], assets: Path) -> list[Path]:
    paths = []
    for name, draw in _plots(stats):
        draw(assets / name)
        paths.append(assets / name)
    return paths


@dataclass(frozen=True)
class _Sheet:
    """A picked video's contact sheet: its asset's name, or why there is none."""

    video_id: str
    asset: str | None
    error: str | None = None


@dataclass
class _Tables:
    """The rows contact sheets draw, each table read once for all the videos."""

    videos: dict[str, VideoRecord]
    tubelets: list[Tubelet]
    entities: list[Entity]
    events: list[Event]

    @classmethod
    def read(cls, dataset: Dataset) -> _Tables:
        videos = {v.video_id: v for v in dataset.records("videos")}
        return cls(videos, dataset.records("tubelets"), dataset.records("entities"), dataset.records("events"))

    def rows(self, video_id: str) -> VideoRows:
        """``video_id``'s rows (KeyError for an unknown video)."""
        return VideoRows.of(
            self.videos[video_id],
            [t for t in self.tubelets if t.video_id == video_id],
            [e for e in self.entities if e.video_id == video_id],
            [e for e in self.events if e.video_id == video_id],
        )


def _write_sheets(root: str | os.PathLike[str], video_ids: list[str], assets: Path, sheet_frames: int) -> list[_Sheet]:
    """A contact sheet in ``assets`` for each of ``video_ids``, in order."""
    if not video_ids:
        return []
    tables = _Tables.read(Dataset(root))
    return [_write_sheet(tables, vid, assets, sheet_frames) for vid in video_ids]


def _write_sheet(tables: _Tables, video_id: str, assets: Path, sheet_frames: int) -> _Sheet:
    name = f"sheet_{_safe(video_id)}.png"
    try:
        render_contact_sheet(None, video_id, assets / name, n=sheet_frames, rows=tables.rows(video_id))
    except Exception as error:  # noqa: BLE001 - a missing video file must not sink the report
        uri = tables.videos[video_id].uri if video_id in tables.videos else ""
        # the page is shared: the video is named by its file or folder name, not the path on this machine
        text = str(error).replace(uri, public_name(uri)) if uri else str(error)
        return _Sheet(video_id, None, f"{type(error).__name__}: {text}")
    return _Sheet(video_id, name)


def _head(root: str | os.PathLike[str]) -> list[str]:
    """The page's head and title: the dataset's folder name (a URL without credentials), no path of this machine."""
    name = html.escape(public_name(root))
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tubelet report: {name}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>tubelet dataset report</h1><p class='muted'>{name}</p>",
    ]


def _statistics(stats: dict[str, Any], plot_names: list[str]) -> list[str]:
    """Rows per table, the plots, the tables of ``_TABLES``, and the rejects when there are any."""
    parts = [
        "<h2>Rows per table</h2>",
        _table(["table", "rows"], sorted(stats["counts"].items())),
        "<h2>Plots</h2><div class='plots'>",
        *[f"<img src='assets/{name}' alt='{name.removesuffix('.png')}'>" for name in plot_names],
        "</div>",
    ]
    for heading, headers, key in _TABLES:
        parts += [f"<h2>{heading}</h2>", _table(headers, stats[key])]
    if stats["rejects"]:
        parts += ["<h2>Rejects</h2>", _table(["stage", "rows"], stats["rejects"])]
    return parts


def _previews(sheets: list[_Sheet], n_videos: int) -> list[str]:
    """A section per picked video: its contact sheet, or why there is none."""
    shown = sum(1 for s in sheets if s.asset)
    parts = [f"<h2>Previews ({shown} of {n_videos} videos)</h2>"]
    for sheet in sheets:
        vid = sheet.video_id
        parts.append(f"<div class='sheet'><h3>{html.escape(vid)}</h3>")
        if sheet.asset:
            parts.append(f"<img src='assets/{sheet.asset}' alt='contact sheet of {html.escape(vid, quote=True)}'>")
        else:
            parts.append(f"<p class='muted'>no preview: {html.escape(sheet.error or '')}</p>")
        parts.append("</div>")
    return parts
