"""``tubelet release``: an immutable, versioned, split, documented, checksummed release.

    release(root, dest, ReleaseOptions(version="1.0", formats=("videorefer", "llava-video")))

A release folder::

    <dest>/
      README.md                          the dataset card: Hub front matter, counts, plots, schema, licences, reviews
      SHA256SUMS                         sha256 of every other file (``sha256sum -c`` reads it)
      meta/info.json                     version, created_at, source dataset + version, counts, ids
      meta/plots/*.png                   histograms the card shows
      data/<table>/<split>-00000.parquet canonical tables, one or more files per table and split
      instructions/<format>/<split>.json[l]  renderings, each as its consumer's loader reads it:
                                         videorefer (alias strefer), videollama3, llava-video,
                                         video-llava (JSON), unistg (JSONL)
      meta/media.jsonl                   each video's file under media/ and the name of its source
      media/<safe video id>.<ext>        with ``with_media``: the videos (files copied, image folders as mp4)
      LICENSE.md                         when the licence is ``other``: the videos' licences

Only non-empty files are written: a split without rows of a table has no file of it, and
the card and ``meta/info.json`` say which table/split is empty. The card's YAML front
matter declares the licence, task categories and one ``datasets`` config per non-empty
table, so ``datasets.load_dataset(<dest>, "<table>")`` loads any table (``tubelet.release.front_matter``).
No path of the building machine is written: videos are ``media/<safe id>.<ext>``
relative to the release (``tubelet.release.media``), the source dataset is named by its
folder name.

A first, cheap pass reads the ``videos`` tables of the ledger entries and assigns every
video its split from the whole set (``tubelet.release.splits``) and its file under
``media/``. Then it is written streaming: the source is read one committed shard (ledger entry) at a time
(a shard holds every row of its videos, and the revision filter of ``tubelet.engine.dataset`` picks
which shard owns a replaced video), rows are filtered, given their video's split and
appended to one Parquet writer per table and split, so memory is bounded by a shard plus
a row group. Everything but ``meta/info.json``'s ``created_at`` is a function of the
source dataset version and the options: two releases of the same state are byte-identical
otherwise. It is built in a hidden sibling folder and renamed into place at the end; a
``dest`` that exists and is not empty is refused.

Filters (each drops rows, and the rows that point at them, so every id an instruction,
entity or event names is in the same split of the release):
- ``min_score``: tubelets whose ``mean_score`` is below it (or null);
- ``reviewed_only``: videos without any ``reviews`` row;
- ``exclude_rejected``: items whose latest review verdict (by ``reviewed_at``, then
  ``review_id``) is ``reject``.

The filters and their cascade are ``tubelet.release.filters``, the instruction renderings
``tubelet.release.render``; this module reads, splits, writes and checksums.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tubelet.engine.dataset import Dataset, RevisionFilter
from tubelet.engine.ledger import LedgerEntry, replaced_by
from tubelet.engine.storage import public_name
from tubelet.engine.versions import list_versions
from tubelet.engine.writer import utc_now
from tubelet.release.card import write_card
from tubelet.release.filters import KeptRows, ShardFilter, column_rows, rejected_items
from tubelet.release.formats import check_formats
from tubelet.release.licence import LICENSE_FILE, LicenceDecision, check_license, decide_licence, licence_file
from tubelet.release.media import MEDIA_LIST, VideoMedia, VideoSource, media_list, place, plan_media
from tubelet.release.render import DEFAULT_FORMATS, FORMATS, RenderOptions, ShardRenderer
from tubelet.release.splits import DEFAULT_SPLITS, SplitAssignment, VideoToSplit, assign_splits, normalise
from tubelet.release.staging import is_free, staged_folder
from tubelet.release.stats import RELEASE_TABLES, ReleaseStats
from tubelet.schemas.arrow import TABLE_SCHEMAS
from tubelet.schemas.version import SCHEMA_VERSION

SUMS_FILE = "SHA256SUMS"
INFO_FILE = "meta/info.json"
RELEASE_FORMAT = 1
#: A table sink writes a row group once it buffers this many bytes (or ``row_group_rows`` rows).
ROW_GROUP_BYTES = 16 << 20

log = logging.getLogger(__name__)


class ReleaseExistsError(FileExistsError):
    """The release folder exists and is not empty: releases are immutable."""


@dataclass
class ReleaseOptions:
    """What goes into a release and how it is split and rendered."""

    version: str
    splits: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLITS))
    keep_splits: bool = False
    min_score: float | None = None
    reviewed_only: bool = False
    exclude_rejected: bool = False
    formats: Sequence[str] = DEFAULT_FORMATS
    boxes: str = "pixel"  # how boxes print in the renderings' text: pixel | normalised | thousand
    times: str = "seconds"  # how times print there: seconds | tokens (relative time tokens <t_k>)
    time_bins: int = 100  # relative time tokens over each video's duration
    with_media: bool = False
    license: str | None = None  # a Hub licence id; None: derived from the videos' licences (tubelet.release.licence)
    dataset_version: str | None = None  # a name from tubelet.engine.versions; None: the current ledger
    rows_per_file: int = 1_000_000
    row_group_rows: int = 50_000

    def check(self) -> None:
        check_formats(self.formats)
        self.render_options().check()
        if not self.version or "/" in self.version:
            raise ValueError(f"bad release version {self.version!r}")
        if self.rows_per_file < 1 or self.row_group_rows < 1:
            raise ValueError("rows_per_file and row_group_rows must be >= 1")
        normalise(self.splits)
        if self.license is not None:
            check_license(self.license)

    def to_dict(self) -> dict[str, Any]:
        return {
            "splits": [[k, v] for k, v in normalise(self.splits).items()],
            "keep_splits": self.keep_splits,
            "min_score": self.min_score,
            "reviewed_only": self.reviewed_only,
            "exclude_rejected": self.exclude_rejected,
            "formats": list(self.formats),
            "boxes": self.boxes,
            "times": self.times,
            "time_bins": self.time_bins,
            "with_media": self.with_media,
            "license": self.license,
            "dataset_version": self.dataset_version,
            "rows_per_file": self.rows_per_file,
            "row_group_rows": self.row_group_rows,
        }

    def render_options(self) -> RenderOptions:
        return RenderOptions(boxes=self.boxes, times=self.times, time_bins=self.time_bins)


@dataclass
class ReleaseReport:
    path: Path
    version: str
    counts: dict[str, dict[str, int]]
    dropped: dict[str, int]
    rendered: dict[str, dict[str, int]]
    files: int
    seconds: float
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ sinks


class _ParquetSink:
    """Rows of one table and split: buffered to ``row_group_rows``, rolled to a new file every
    ``rows_per_file`` rows (``<split>-00000.parquet``, ``-00001``…)."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema, rows_per_file: int, row_group_rows: int) -> None:
        self.folder, self.split, self.schema = folder, split, schema
        self.rows_per_file, self.row_group_rows = rows_per_file, row_group_rows
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.buffered_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.in_file = 0
        self.n_files = 0
        self.rows = 0
        self.paths: list[Path] = []

    def add(self, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        self.buffer.append(data)
        self.buffered += data.num_rows
        self.buffered_bytes += data.nbytes
        self.rows += data.num_rows
        if self.buffered >= self.row_group_rows or self.buffered_bytes >= ROW_GROUP_BYTES:
            self._drain()

    def _open(self) -> pq.ParquetWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.split}-{self.n_files:05d}.parquet"
        self.n_files += 1
        self.paths.append(path)
        self.in_file = 0
        return pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def _drain(self) -> None:
        """Write the buffer as row groups of at most ``row_group_rows`` rows, none across two files."""
        if not self.buffer:
            return
        data = pa.concat_tables(self.buffer)
        self.buffer, self.buffered, self.buffered_bytes = [], 0, 0
        offset = 0
        while offset < data.num_rows:
            writer = self._writer_with_room()
            take = min(data.num_rows - offset, self.rows_per_file - self.in_file, self.row_group_rows)
            writer.write_table(data.slice(offset, take), row_group_size=take)
            self.in_file += take
            offset += take

    def _writer_with_room(self) -> pq.ParquetWriter:
        """The open file, or the next one when none is open or the open one is full."""
        if self.writer is None or self.in_file >= self.rows_per_file:
            if self.writer is not None:
                self.writer.close()
            self.writer = self._open()
        return self.writer

    def close(self) -> None:
        """Write what is buffered and close the file; a sink that got no row writes no file."""
        self._drain()
        if self.writer is not None:
            self.writer.close()


class _JsonSink:
    """One rendering of one split: a streamed JSON array (``.json``) or JSON lines (``.jsonl``), opened
    for its first item (a split without items has no file)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lines = path.suffix == ".jsonl"
        self.fh: TextIO = path.open("w", encoding="utf-8", newline="\n")
        self.n = 0
        if not self.lines:
            self.fh.write("[")

    def add(self, item: Mapping[str, Any]) -> None:
        text = json.dumps(item, ensure_ascii=False, sort_keys=True)
        if self.lines:
            self.fh.write(text + "\n")
        else:
            self.fh.write(("\n" if self.n == 0 else ",\n") + text)
        self.n += 1

    def close(self) -> None:
        if not self.lines:
            self.fh.write("\n]\n" if self.n else "]\n")
        self.fh.close()


# ------------------------------------------------------------------ the release


def release(
    root: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    options: ReleaseOptions,
    *,
    created_at: str | None = None,
) -> ReleaseReport:
    """Write the release of dataset ``root`` to ``dest`` (see the module docstring)."""
    started = time.perf_counter()
    options.check()
    dest = Path(dest)
    _refuse_non_empty(dest)
    source = _Source.open(root, options)
    plan = _plan(source, options)
    for line in plan.warnings:
        log.warning("release %s: %s", options.version, line)
    with staged_folder(dest, "partial") as staging:
        builder = _Builder(source, staging, options, plan)
        stats = builder.run()
        info = _release_info(options, stats, plan, source, builder.files(), created_at or utc_now())
        n_files = _write_meta(staging, info, stats, plan)
    return ReleaseReport(
        path=dest,
        version=options.version,
        counts={t: dict(sorted(c.items())) for t, c in stats.counts.items()},
        dropped=_nonzero_drops(stats),
        rendered=_nested(stats.rendered),
        files=n_files,
        seconds=time.perf_counter() - started,
        warnings=list(plan.warnings),
    )


def _refuse_non_empty(dest: Path) -> None:
    if not is_free(dest):
        raise ReleaseExistsError(f"{dest} exists and is not empty: a release is immutable; choose a new folder")


@dataclass
class _Source:
    """What is released: the ledger entries of the dataset (version), its info and its version name."""

    dataset: Dataset
    entries: list[LedgerEntry]
    info: dict[str, Any]
    version: str | None  # None: the current state is no named version
    lookup: RevisionFilter | None  # the videos a later entry replaces (None: nothing is revised)

    @classmethod
    def open(cls, root: str | os.PathLike[str], options: ReleaseOptions) -> _Source:
        """The source of ``options.dataset_version`` (None: the current state); ValueError when it has no shard."""
        ds = Dataset(root, version=options.dataset_version)
        entries = ds.ledger()
        if not entries:
            raise ValueError(f"{root}: no committed shard to release")
        try:
            info = ds.info().to_dict()
        except FileNotFoundError:
            info = {}
        owners = replaced_by(entries)
        lookup = RevisionFilter(owners) if owners else None  # only a revised dataset has rows to skip
        return cls(ds, entries, info, options.dataset_version or _matching_version(ds, entries), lookup)

    def read(self, entry: LedgerEntry, table: str) -> pa.Table:
        """One table of a ledger entry in the current schema, less the videos a later entry replaces."""
        if table not in entry.files:
            return TABLE_SCHEMAS[table].empty_table()
        data = self.dataset.entry_table(entry, table)
        if self.lookup is not None:
            data = data.filter(self.lookup.keep(data.column("video_id"), entry.shard))
        return data


@dataclass
class _Plan:
    """What the first pass decides for every released video: its split and its file under ``media/``."""

    splits: SplitAssignment
    media: dict[str, VideoMedia]
    warnings: list[str]


def _plan(source: _Source, options: ReleaseOptions) -> _Plan:
    """Read the ``videos`` of every ledger entry (and with ``reviewed_only`` which have reviews) and
    assign splits from the whole set, so ratios hold on small releases and shard order does not matter."""
    to_split: list[VideoToSplit] = []
    to_place: list[VideoSource] = []
    for entry in source.entries:
        videos = source.read(entry, "videos")
        reviewed = set(source.read(entry, "reviews").column("video_id").to_pylist()) if options.reviewed_only else None
        for vid, uri, codec, fps, n_frames, extra, split, rotation in column_rows(
            videos, "video_id", "uri", "codec", "fps", "n_frames", "extra", "split", "rotation"
        ):
            if reviewed is None or vid in reviewed:
                to_split.append(VideoToSplit(vid, extra, split))
                to_place.append(VideoSource(vid, uri, codec, fps, n_frames, rotation))
    ratios = normalise(options.splits)
    splits = assign_splits(to_split, ratios, options.keep_splits)
    warnings = splits.warnings(ratios)
    if not to_split:
        warnings.append("the release holds no video")
    return _Plan(splits, plan_media(to_place), warnings)


def _write_meta(out: Path, info: Mapping[str, Any], stats: ReleaseStats, plan: _Plan) -> int:
    """The card, ``LICENSE.md`` (licence ``other``), ``meta/media.jsonl``, ``meta/info.json`` and, last as it
    covers them, ``SHA256SUMS``; the number of files it lists."""
    write_card(out, info, stats)
    licence = LicenceDecision(**info["licence"])
    if licence.id == "other":
        (out / LICENSE_FILE).write_text(licence_file(licence, info["version"]), encoding="utf-8")
    (out / MEDIA_LIST).parent.mkdir(parents=True, exist_ok=True)
    (out / MEDIA_LIST).write_text(media_list(plan.media, info["media"]["included"]), encoding="utf-8")
    (out / INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return write_checksums(out)


def _nonzero_drops(stats: ReleaseStats) -> dict[str, int]:
    return {k: v for k, v in sorted(stats.dropped.items()) if v}


def _nested(counter: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in sorted(counter.items()):
        out.setdefault(a, {})[b] = n
    return out


def _matching_version(dataset: Dataset, entries: Sequence[LedgerEntry]) -> str | None:
    """The name of the latest named version whose shards are exactly the current ledger."""
    shards = tuple(e.shard for e in entries)
    for version in reversed(list_versions(dataset.storage)):
        if tuple(version.shards) == shards:
            return version.name
    return None


class _Builder:
    """Streams the source, one ledger entry at a time, into the release folder."""

    def __init__(self, source: _Source, out: Path, options: ReleaseOptions, plan: _Plan) -> None:
        self.source, self.out, self.options, self.plan = source, out, options, plan
        self.stats = ReleaseStats()
        self.sinks: dict[tuple[str, str], _ParquetSink] = {}
        self.renders: dict[tuple[str, str], _JsonSink] = {}

    def run(self) -> ReleaseStats:
        """Write every ledger entry's rows and close the files; what was written, counted."""
        for entry in self.source.entries:
            self.add_entry(entry)
        self.close()
        return self.stats

    def add_entry(self, entry: LedgerEntry) -> None:
        """Filter one ledger entry's rows, give each its video's split, write them and render the instructions."""
        tables = {table: self.source.read(entry, table) for table in RELEASE_TABLES}
        reviews = tables["reviews"]
        reviewed_videos = set(reviews.column("video_id").to_pylist())
        rejected = rejected_items(reviews) if self.options.exclude_rejected else set()
        rows = ShardFilter(rejected, self.options.min_score, self.stats.dropped)
        videos = tables["videos"]
        if self.options.reviewed_only:
            videos = rows.reviewed_videos_only(videos, reviewed_videos)
        video_split = {vid: self.plan.splits.of_video[vid] for vid in videos.column("video_id").to_pylist()}
        kept = rows.keep(tables, video_split.keys())
        videos, video_paths = self._place_media(videos)
        self._count(videos, kept, video_split, reviewed_videos)
        self._write_tables({"videos": videos, **kept.tables()}, video_split)
        if self.options.formats and kept.instruction_rows:
            self._render_rows(kept.instruction_rows, videos, kept.tubelets, video_split, video_paths)

    def close(self) -> None:
        """Close every file (only tables, splits and renderings with rows have one)."""
        for sink in self.sinks.values():
            sink.close()
        for render in self.renders.values():
            render.close()

    def files(self) -> dict[str, dict[str, list[str]]]:
        """``{table: {split: [paths relative to the release]}}`` of the Parquet files written."""
        out: dict[str, dict[str, list[str]]] = {}
        for (table, split), sink in sorted(self.sinks.items()):
            if sink.paths:
                out.setdefault(table, {})[split] = [p.relative_to(self.out).as_posix() for p in sink.paths]
        return out

    # media

    def _place_media(self, videos: pa.Table) -> tuple[pa.Table, dict[str, str]]:
        """The videos with ``uri`` (and a re-encoded video's ``codec`` and ``rotation``) set to their file
        in the release, and those paths by id; with ``with_media`` the files are written there."""
        media = [self.plan.media[vid] for vid in videos.column("video_id").to_pylist()]
        if self.options.with_media:
            for item in media:
                place(item, self.out)
        for column, values in (
            ("uri", [m.path for m in media]),
            ("codec", [m.codec for m in media]),
            ("rotation", [m.released_rotation for m in media]),
        ):
            index = videos.schema.get_field_index(column)
            field = videos.schema.field(column)
            videos = videos.set_column(index, field, pa.array(values, field.type))
        return videos, {m.video_id: m.path for m in media}

    # stats for the card

    def _count(
        self, videos: pa.Table, kept: KeptRows, video_split: Mapping[str, str], reviewed_videos: set[str]
    ) -> None:
        """Add one shard's kept rows to the card's statistics."""
        self._count_videos(videos, reviewed_videos)
        self._count_tubelets(kept.tubelets, kept.reviews, video_split)
        for verdict in kept.reviews.column("verdict").to_pylist():
            self.stats.verdicts[verdict or "unknown"] += 1
        for row in kept.instruction_rows:
            self.stats.task_types[(video_split[row["video_id"]], row["task_type"] or "unknown")] += 1

    def _count_videos(self, videos: pa.Table, reviewed_videos: set[str]) -> None:
        for vid, duration, licence in column_rows(videos, "video_id", "duration_s", "licence"):
            self.stats.durations_s.append(float(duration))
            self.stats.licences[licence or "unknown"] += 1
            self.stats.reviewed_videos += vid in reviewed_videos

    def _count_tubelets(self, tubelets: pa.Table, reviews: pa.Table, video_split: Mapping[str, str]) -> None:
        reviewed = {i for table, i in column_rows(reviews, "item_table", "item_id") if table == "tubelets"}
        for vid, category, tid, start, end in column_rows(
            tubelets, "video_id", "category", "tubelet_id", "start_s", "end_s"
        ):
            self.stats.categories[(video_split[vid], category or "unknown")] += 1
            self.stats.tubelet_lengths_s.append(float((end or 0.0) - (start or 0.0)))
            self.stats.reviewed_tubelets += tid in reviewed
        frames = pc.list_flatten(tubelets.column("frames"))
        self.stats.tubelet_frames += len(frames)
        self.stats.mask_frames += pc.sum(pc.is_valid(pc.struct_field(frames, "mask_rle"))).as_py() or 0

    # writing

    def _write_tables(self, tables: Mapping[str, pa.Table], video_split: Mapping[str, str]) -> None:
        """Append each table's rows to the files of their video's split."""
        for table, data in tables.items():
            if data.num_rows == 0:
                continue
            split_col = pa.array([video_split[v] for v in data.column("video_id").to_pylist()], pa.string())
            for split in sorted(set(split_col.to_pylist())):
                part = data.filter(pc.equal(split_col, split))
                self._sink(table, split).add(part)
                self.stats.counts[table][split] += part.num_rows

    def _render_rows(
        self,
        inst_rows: list[dict[str, Any]],
        videos: pa.Table,
        tubelets: pa.Table,
        video_split: Mapping[str, str],
        video_paths: Mapping[str, str],
    ) -> None:
        """Append each instruction row to every requested rendering of its video's split."""
        renderer = ShardRenderer(
            inst_rows, videos, tubelets, self.options.render_options(), self.stats.render_notes, media_root=self.out
        )
        for row in inst_rows:
            split, path = video_split[row["video_id"]], video_paths[row["video_id"]]
            for fmt in self.options.formats:
                try:
                    item = renderer.render(fmt, row, path)
                except (KeyError, ValueError):  # a row a format cannot express is counted, not fatal
                    self.stats.render_skipped[fmt] += 1
                    continue
                self._render(fmt, split).add(item)
                self.stats.rendered[(fmt, split)] += 1

    def _sink(self, table: str, split: str) -> _ParquetSink:
        key = (table, split)
        if key not in self.sinks:
            self.sinks[key] = _ParquetSink(
                self.out / "data" / table,
                split,
                TABLE_SCHEMAS[table],
                self.options.rows_per_file,
                self.options.row_group_rows,
            )
        return self.sinks[key]

    def _render(self, fmt: str, split: str) -> _JsonSink:
        key = (fmt, split)
        if key not in self.renders:
            self.renders[key] = _JsonSink(self.out / "instructions" / fmt / f"{split}{FORMATS[fmt]}")
        return self.renders[key]


def _release_info(
    options: ReleaseOptions,
    stats: ReleaseStats,
    plan: _Plan,
    source: _Source,
    files: Mapping[str, Mapping[str, list[str]]],
    created_at: str,
) -> dict[str, Any]:
    """``meta/info.json``: what the release is, holds and left empty (everything the card shows)."""
    splits = plan.splits.names
    counts = {t: {s: stats.counts[t].get(s, 0) for s in splits} for t in RELEASE_TABLES}
    return {
        "format": RELEASE_FORMAT,
        "version": options.version,
        "created_at": created_at,
        "schema_version": SCHEMA_VERSION,
        "source": {
            "name": public_name(source.dataset.root),  # a folder name or a URL: no path of this machine
            "version": source.version,
            "schema_version": source.info.get("schema_version"),
            "config_hash": source.info.get("config_hash"),
        },
        "pipeline": source.info.get("pipeline"),
        # model ids are names already; a local weights path would still be cut to its file name
        "model_ids": {
            k: public_name(v) if os.path.isabs(v) else v for k, v in (source.info.get("model_ids") or {}).items()
        },
        "tubelet_version": source.info.get("tubelet_version"),
        "options": options.to_dict(),
        "licence": decide_licence(options.license, stats.licences).to_dict(),
        "splits": splits,
        "groups": {s: plan.splits.groups.get(s, 0) for s in splits},
        "split_conflicts": plan.splits.conflicts,
        "counts": counts,
        "files": {t: dict(files[t]) for t in RELEASE_TABLES if t in files},
        "empty_tables": [t for t in RELEASE_TABLES if not sum(counts[t].values())],
        "empty_splits": {t: [s for s in splits if not c[s]] for t, c in counts.items() if sum(c.values())},
        "media": {"included": options.with_media, "list": MEDIA_LIST, "videos": len(plan.media)},
        "dropped": _nonzero_drops(stats),
        "rendered": {f: {s: stats.rendered.get((f, s), 0) for s in splits} for f in options.formats},
        "render_skipped": {f: stats.render_skipped.get(f, 0) for f in options.formats},
        "render_notes": {
            f: {n: c for (g, n), c in sorted(stats.render_notes.items()) if g == f} for f in options.formats
        },
        "masks": {"tubelet_frames": stats.tubelet_frames, "with_mask": stats.mask_frames},
        "warnings": list(plan.warnings),
    }


# ------------------------------------------------------------------ checksums and loading


def write_checksums(folder: Path) -> int:
    """Write ``SHA256SUMS`` (``sha256sum`` format, sorted by path) over every file but itself;
    returns the number of files listed."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):  # Path order: by folder, then name
        rel = path.relative_to(folder).as_posix()
        if rel != SUMS_FILE:
            lines.append(f"{_sha256(path)}  {rel}\n")
    (folder / SUMS_FILE).write_text("".join(lines), encoding="utf-8")
    return len(lines)


def verify_checksums(folder: str | os.PathLike[str]) -> list[str]:
    """Paths whose content does not match ``SHA256SUMS``, or that are missing or unlisted."""
    folder = Path(folder)
    listed = dict(_sums_line(line) for line in (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines())
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {SUMS_FILE}
    return [
        rel
        for rel in sorted(present | set(listed))
        if rel not in listed or not (folder / rel).is_file() or _sha256(folder / rel) != listed[rel]
    ]


def _sums_line(line: str) -> tuple[str, str]:
    """``(path, digest)`` of one ``SHA256SUMS`` line."""
    digest, _, rel = line.partition("  ")
    return rel, digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):  # streamed: media files can be large
            digest.update(chunk)
    return digest.hexdigest()


def data_files(folder: str | os.PathLike[str], table: str) -> dict[str, list[str]]:
    """``{split: [parquet paths]}`` of one table of a release, for
    ``datasets.load_dataset("parquet", data_files=...)``: only the splits with rows (an empty
    split has no file), none for a table without rows."""
    folder = Path(folder)
    out: dict[str, list[str]] = {}
    for path in sorted((folder / "data" / table).glob("*.parquet")):
        split = path.name.rsplit("-", 1)[0]
        out.setdefault(split, []).append(str(path))
    return out


def iter_table(folder: str | os.PathLike[str], table: str) -> Iterable[tuple[str, pa.RecordBatch]]:
    """``(split, batch)`` over every file of one release table, streamed."""
    for split, paths in data_files(folder, table).items():
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
                yield split, batch
