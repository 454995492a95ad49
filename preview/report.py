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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tubelet.engine.dataset import Dataset
from tubelet.preview.contact_sheet import render_contact_sheet
from tubelet.preview.overlay import VideoRows
from tubelet.preview.plots import bars_png, histogram_png

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.plots img{border:1px solid #ccc;background:#fff;max-width:560px}
.sheet img{max-width:100%;border:1px solid #ccc}.muted{color:#777}
"""


@dataclass
class ReportResult:
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
    result = ReportResult(index=out / "index.html", stats=stats)

    plots = [
        ("task_types.png", lambda p: bars_png(p, stats["task_types"], "instructions per task type")),
        ("categories.png", lambda p: bars_png(p, stats["categories"], "tubelets per category")),
        ("durations.png", lambda p: histogram_png(p, [r[1] for r in stats["videos"]], "video durations", "seconds")),
        (
            "tubelet_lengths.png",
            lambda p: histogram_png(p, stats["tubelet_frames"], "tubelet lengths", "frames listed"),
        ),
    ]
    for name, make in plots:
        make(assets / name)
        result.assets.append(assets / name)

    dataset = Dataset(root)
    video_ids = [r[0] for r in stats["videos"]]
    picked = sample_videos(video_ids, n_videos)
    sheets: list[tuple[str, str | None, str | None]] = []  # video id, asset name, error
    if picked:
        videos = {v.video_id: v for v in dataset.records("videos")}
        tubelets = dataset.records("tubelets")
        entities = dataset.records("entities")
        events = dataset.records("events")
        for vid in picked:
            name = f"sheet_{_safe(vid)}.png"
            try:
                rows = VideoRows.of(
                    videos[vid],
                    [t for t in tubelets if t.video_id == vid],
                    [e for e in entities if e.video_id == vid],
                    [e for e in events if e.video_id == vid],
                )
                render_contact_sheet(None, vid, assets / name, n=sheet_frames, rows=rows)
                sheets.append((vid, name, None))
                result.assets.append(assets / name)
            except Exception as error:  # noqa: BLE001 - a missing video file must not sink the report
                sheets.append((vid, None, f"{type(error).__name__}: {error}"))
    result.videos = [v for v, name, _ in sheets if name]

    counts = stats["counts"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>tubelet report: {html.escape(str(Path(root).resolve().name))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>tubelet dataset report</h1><p class='muted'>{html.escape(str(Path(root).resolve()))}</p>",
        "<h2>Rows per table</h2>",
        _table(["table", "rows"], sorted(counts.items())),
        "<h2>Plots</h2><div class='plots'>",
        *[f"<img src='assets/{name}' alt='{name[:-4]}'>" for name, _ in plots],
        "</div>",
        "<h2>Instructions per task type</h2>",
        _table(["task type", "rows"], stats["task_types"]),
        "<h2>Tubelets per category</h2>",
        _table(["category", "tubelets"], stats["categories"]),
        "<h2>Tubelet sources</h2>",
        _table(["source", "tubelets"], stats["sources"]),
        "<h2>Event labels</h2>",
        _table(["label", "events"], stats["event_labels"]),
        "<h2>Videos</h2>",
        _table(["video", "duration s", "frames", "width", "height", "fps"], stats["videos"]),
    ]
    if stats["rejects"]:
        parts += ["<h2>Rejects</h2>", _table(["stage", "rows"], stats["rejects"])]
    parts.append(f"<h2>Previews ({len(result.videos)} of {len(video_ids)} videos)</h2>")
    for vid, name, error in sheets:
        parts.append(f"<div class='sheet'><h3>{html.escape(vid)}</h3>")
        if name:
            parts.append(f"<img src='assets/{name}' alt='contact sheet of {html.escape(vid, quote=True)}'>")
        else:
            parts.append(f"<p class='muted'>no preview: {html.escape(error or '')}</p>")
        parts.append("</div>")
    parts.append("</body></html>")
    result.index.write_text("\n".join(parts), encoding="utf-8")
    return result
