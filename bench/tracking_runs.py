"""What the tracking benchmarks share: the bundled video lists rebased onto an assets
folder, ground-truth import, a lite track run, and the figures read back.

Not a benchmark itself (no ``bench_`` prefix); the ``bench_track_*`` scripts import it
from their own folder.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.evaluation.fragments import fragments, overall_tracks_per_object
from tubelet.evaluation.report import evaluate_datasets
from tubelet.pipelines import run_manifest

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "models/yolov8n-int8-tflite/yolov8n_int8.tflite"
#: the lists in manifests/lists name the assets relative to the checkout's parent
_LISTED_ASSETS = "../../../shared/assets"


def default_assets() -> str:
    return os.environ.get("TUBELET_ASSETS", str(ROOT.parent / "shared" / "assets"))


def video_list(name: str, assets: str | Path, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The entries of ``manifests/lists/<name>.jsonl`` with their paths under ``assets``
    (the lists point at ``../shared/assets`` beside the main checkout, which a worktree
    or another machine does not have)."""
    out = []
    for line in (ROOT / "manifests" / "lists" / f"{name}.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line.replace(_LISTED_ASSETS, str(Path(assets).resolve())))
        if only is None or entry["video_id"] in only:
            out.append(entry)
    return out


def import_gt(videos: list[dict[str, Any]], out: str, defaults: dict[str, Any] | None = None) -> None:
    config = RunConfig(pipeline="import", output=out, runner="inline", videos=_listed(videos, defaults))
    run_manifest(config, progress=False, log_to_stderr=False)


def track(
    videos: list[dict[str, Any]],
    out: str,
    params: dict[str, Any],
    defaults: dict[str, Any] | None = None,
    runner: str = "inline",
) -> float:
    """Run the ``track`` pipeline; the wall time in seconds."""
    config = RunConfig(pipeline="track", output=out, runner=runner, videos=_listed(videos, defaults), params=params)
    started = time.perf_counter()
    run_manifest(config, progress=False, log_to_stderr=False)
    return time.perf_counter() - started


def lite_yolo(assets: str | Path, **params: Any) -> dict[str, Any]:
    """Params of the lite profile with the bundled YOLOv8n weights."""
    return {"profile": "lite", "weights": str(Path(assets) / WEIGHTS), **params}


def scores(pred: str, gt: str, protocol: str = "tubelet") -> dict[str, Any]:
    """``tubelet eval``'s report plus fragmentation: per video ``metrics`` gains
    ``tracks_per_object`` and ``split``; ``overall`` gains ``tracks_per_object``."""
    report = evaluate_datasets(pred, gt, protocol=protocol).to_dict()
    pred_table, gt_set = Dataset(pred).read_table("tubelets"), Dataset(gt)
    frags = {
        f.video_id: f
        for f in fragments(pred_table, gt_set.read_table("tubelets"), gt_videos=gt_set.read_table("videos"))
    }
    for video in report["videos"]:
        f = frags.get(video["video_id"])
        video["metrics"]["tracks_per_object"] = f.tracks_per_object if f else None
        video["metrics"]["split"] = f.split if f else None
    report["overall"]["tracks_per_object"] = overall_tracks_per_object(list(frags.values()))
    return report


def tracks(dataset: str) -> dict[str, list[dict[str, Any]]]:
    """Per video, its tubelets: id, category, first/last visible frame, visible frames,
    and the category's confidence and votes when the tracker recorded them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in Dataset(dataset).read_table("tubelets").to_pylist():
        visible = [f["frame_idx"] for f in row["frames"] if f["visible"]]
        extra = json.loads(row["extra"]) if isinstance(row.get("extra"), str) else row.get("extra") or {}
        out.setdefault(row["video_id"], []).append(
            {
                "tubelet_id": row["tubelet_id"],
                "category": row["category"],
                "first": min(visible) if visible else None,
                "last": max(visible) if visible else None,
                "visible": len(visible),
                "category_confidence": extra.get("category_confidence"),
                "category_votes": extra.get("category_votes"),
            }
        )
    return out


def with_sets(params: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """``params`` with each ``KEY=JSON`` of ``items`` set (dots in KEY reach into mappings)."""
    out = json.loads(json.dumps(params))
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=JSON")
        *path, last = key.split(".")
        here = out
        for part in path:
            here = here.setdefault(part, {})
        here[last] = json.loads(value)
    return out


def fmt(value: Any, digits: int = 3) -> str:
    """A figure for a table cell ("-" for none)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _listed(videos: list[dict[str, Any]], defaults: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{**(defaults or {}), **v} for v in videos]
