"""``tubelet export``: a dataset written in a standard format that other tools read as they are.

    export(root, dest, ExportOptions(format="mot", role="gt"))

The formats (one module each): ``mot`` (MOTChallenge gt.txt / tracker files for TrackEval),
``davis`` (DAVIS-2017 palette PNGs), ``youtube-vis`` (YouTube-VIS JSON with RLE masks),
``webdataset`` (tar shards of mp4 + json). Every export writes ``tubelet_export.json`` at
its root: the options, the source dataset's name and state, counts, every item left out
with the reason, and per video its exported name, split and object ids → tubelet ids.

Like a release, an export is built in a hidden sibling folder and renamed into place, so
``dest`` is complete or absent; a ``dest`` that exists and is not empty is refused. The
source is streamed one shard at a time (``source.ExportSource``). The same dataset state
and options give the same bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tubelet.release.exports.common import (
    SIDECAR,
    SIDECAR_FORMAT,
    Exporter,
    ExportExistsError,
    ExportOptions,
    Tally,
    json_bytes,
    log,
)
from tubelet.release.exports.davis import DavisExporter
from tubelet.release.exports.mot import MotExporter
from tubelet.release.exports.source import ExportSource
from tubelet.release.exports.webdataset import WebDatasetExporter
from tubelet.release.exports.youtube_vis import YouTubeVisExporter
from tubelet.release.staging import is_free, staged_folder
from tubelet.schemas.version import SCHEMA_VERSION

#: Format name -> the exporter that writes it: ``cls(out_folder, options, tally)``.
FORMATS: dict[str, Callable[[Path, ExportOptions, Tally], Exporter]] = {
    "mot": MotExporter,
    "davis": DavisExporter,
    "youtube-vis": YouTubeVisExporter,
    "webdataset": WebDatasetExporter,
}


@dataclass
class ExportReport:
    """What an export wrote."""

    format: str
    path: Path
    counts: dict[str, int]
    left_out: list[dict[str, str]]
    seconds: float


def export(root: str | os.PathLike[str], dest: str | os.PathLike[str], options: ExportOptions) -> ExportReport:
    """Export the dataset at ``root`` (a folder or a URL) to the folder ``dest`` (see the module docstring).

    Raises ExportError (a ValueError) for bad options or a selection with nothing to export
    or whose media is missing, ExportExistsError for a non-empty ``dest``.
    """
    started = time.perf_counter()
    options.check(FORMATS)
    dest = Path(dest)
    _refuse_non_empty(dest)
    source = ExportSource.open(root, options)
    tally = Tally()
    with staged_folder(dest, "export") as out:
        exporter = FORMATS[options.format](out, options, tally)
        videos: list[dict[str, Any]] = []
        for item in source.items(tally):
            exporter.add(item)
            videos.append({"video_id": item.video.video_id, "name": item.name, "split": item.split})
        exporter.finish()
        for kind, n in tally.counts.items():
            if kind.startswith("left_out:"):
                log.warning("left out %d item(s) (%s): each is listed in %s", n, kind.split(":", 1)[1], SIDECAR)
        sidecar = _sidecar(root, options, source, tally, videos, exporter.objects)
        (out / SIDECAR).write_bytes(json_bytes(sidecar, indent=2))
    return ExportReport(
        format=options.format,
        path=dest,
        counts=dict(sorted(tally.counts.items())),
        left_out=list(tally.left_out),
        seconds=time.perf_counter() - started,
    )


def _refuse_non_empty(dest: Path) -> None:
    if not is_free(dest):
        raise ExportExistsError(
            f"{dest} exists and is not empty: an export never writes over files; choose a new folder"
        )


def _sidecar(
    root: str | os.PathLike[str],
    options: ExportOptions,
    source: ExportSource,
    tally: Tally,
    videos: list[dict[str, Any]],
    objects: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """``tubelet_export.json``: nothing in it depends on where or when the export ran."""
    return {
        "tubelet_export": SIDECAR_FORMAT,
        "format": options.format,
        "options": options.to_dict(),
        "dataset": {
            "name": Path(str(root).rstrip("/")).name,
            "version": options.dataset_version,
            "last_shard": source.entries[-1].shard,
            "schema_version": SCHEMA_VERSION,
        },
        "counts": dict(sorted(tally.counts.items())),
        "left_out": sorted(tally.left_out, key=lambda x: (x["item"], x["reason"])),
        "videos": [
            {**v, "objects": dict(sorted(objects.get(v["video_id"], {}).items(), key=_id_order))}
            for v in sorted(videos, key=lambda v: v["video_id"])
        ],
    }


def _id_order(pair: tuple[str, str]) -> tuple[int, str]:
    """Numeric object ids in numeric order (``2`` before ``10``), other keys after, by name."""
    key = pair[0]
    return (int(key), "") if key.isdigit() else (1 << 62, key)
