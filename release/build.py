"""``tubelet release``: an immutable, versioned, split, documented, checksummed release.

    release(root, dest, ReleaseOptions(version="1.0", formats=("strefer", "llava")))

A release folder::

    <dest>/
      README.md                          the dataset card (counts, plots, schema, licences, review coverage)
      SHA256SUMS                         sha256 of every other file (``sha256sum -c`` reads it)
      meta/info.json                     version, created_at, source dataset + version, counts, ids
      meta/plots/*.png                   histograms the card shows
      data/<table>/<split>-00000.parquet canonical tables, one or more files per table and split
      instructions/<format>/<split>.json[l]  renderings: strefer (VideoRefer JSON), unistg (JSONL),
                                         llava (conversations JSON)
      media/<video_id>.<ext>             with ``with_media``: copies of the videos (uris rewritten)

It is written streaming: the source is read one committed shard (ledger entry) at a time
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
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tubelet.annotators.instructions.renderers import to_unistg, to_videorefer
from tubelet.engine.dataset import Dataset, RevisionFilter
from tubelet.engine.ledger import LedgerEntry, replaced_by
from tubelet.engine.versions import list_versions
from tubelet.engine.writer import utc_now
from tubelet.release.card import write_card
from tubelet.release.splits import DEFAULT_SPLITS, assign_split, group_key, normalise
from tubelet.release.stats import RELEASE_TABLES, ReleaseStats
from tubelet.schemas.arrow import PRIMARY_KEYS, TABLE_SCHEMAS, row_to_record
from tubelet.schemas.version import SCHEMA_VERSION

#: Rendering formats of the instruction files, with their file suffix.
FORMATS: dict[str, str] = {"strefer": ".json", "unistg": ".jsonl", "llava": ".json"}
SUMS_FILE = "SHA256SUMS"
INFO_FILE = "meta/info.json"
RELEASE_FORMAT = 1
#: A table sink writes a row group once it buffers this many bytes (or ``row_group_rows`` rows).
ROW_GROUP_BYTES = 16 << 20


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
    formats: Sequence[str] = ("strefer", "unistg", "llava")
    with_media: bool = False
    dataset_version: str | None = None  # a name from tubelet.engine.versions; None: the current ledger
    rows_per_file: int = 1_000_000
    row_group_rows: int = 50_000

    def check(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; formats: {', '.join(FORMATS)}")
        if not self.version or "/" in self.version:
            raise ValueError(f"bad release version {self.version!r}")
        if self.rows_per_file < 1 or self.row_group_rows < 1:
            raise ValueError("rows_per_file and row_group_rows must be >= 1")
        normalise(self.splits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "splits": [[k, v] for k, v in normalise(self.splits).items()],
            "keep_splits": self.keep_splits,
            "min_score": self.min_score,
            "reviewed_only": self.reviewed_only,
            "exclude_rejected": self.exclude_rejected,
            "formats": list(self.formats),
            "with_media": self.with_media,
            "dataset_version": self.dataset_version,
            "rows_per_file": self.rows_per_file,
            "row_group_rows": self.row_group_rows,
        }


@dataclass
class ReleaseReport:
    path: Path
    version: str
    counts: dict[str, dict[str, int]]
    dropped: dict[str, int]
    rendered: dict[str, dict[str, int]]
    files: int
    seconds: float


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
            self._drain(final=False)

    def _open(self) -> pq.ParquetWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.split}-{self.n_files:05d}.parquet"
        self.n_files += 1
        self.paths.append(path)
        self.in_file = 0
        return pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def _drain(self, final: bool) -> None:
        if not self.buffer:
            return
        data = pa.concat_tables(self.buffer)
        self.buffer, self.buffered, self.buffered_bytes = [], 0, 0
        offset = 0
        while offset < data.num_rows:
            if self.writer is None or self.in_file >= self.rows_per_file:
                if self.writer is not None:
                    self.writer.close()
                self.writer = self._open()
            take = min(data.num_rows - offset, self.rows_per_file - self.in_file, self.row_group_rows)
            self.writer.write_table(data.slice(offset, take), row_group_size=take)
            self.in_file += take
            offset += take

    def close(self) -> None:
        self._drain(final=True)
        if self.writer is None:  # an empty split still gets a file, so every split loads
            self.writer = self._open()
            self.writer.write_table(self.schema.empty_table())
        self.writer.close()


class _JsonSink:
    """One rendering of one split: a streamed JSON array (``.json``) or JSON lines (``.jsonl``)."""

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


# ------------------------------------------------------------------ renderings


def _region_text(ref: Mapping[str, Any], tubelet: Mapping[str, Any] | None) -> str:
    """A ``<regionN>`` placeholder as text for LLaVA: its box on its first listed frame."""
    if tubelet is None:
        return "the object"
    frames = {f["frame_idx"]: f for f in tubelet["frames"] or []}
    for idx in ref.get("frame_idx") or []:
        f = frames.get(idx)
        if f is not None:
            box = ", ".join(_num(v) for v in f["box_xyxy"])
            return f"the object at [{box}] at {_num(f['t_s'])}s"
    return "the object"


def _num(v: float) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def to_llava(row: Mapping[str, Any], video_path: str, tubelets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """LLaVA-style conversations: ``<video>`` opens the first human turn; ``<regionN>``
    placeholders become the region's pixel box on its first frame (LLaVA has no region input)."""
    regions = {r["placeholder"]: r for r in row["regions"] or []}

    def fill(text: str) -> str:
        for placeholder, ref in regions.items():
            if placeholder in text:
                text = text.replace(placeholder, _region_text(ref, tubelets.get(ref["tubelet_id"])))
        return text

    conversations = []
    for m in row["messages"] or []:
        if m["role"] not in ("user", "assistant"):
            continue
        value = fill(m["content"])
        if m["role"] == "user" and not conversations:
            value = "<video>\n" + value
        conversations.append({"from": "human" if m["role"] == "user" else "gpt", "value": value})
    if not conversations or conversations[-1]["from"] != "gpt":
        conversations.append({"from": "gpt", "value": (row["answer"] or {}).get("text") or ""})
    return {
        "id": row["instruction_id"],
        "video": video_path,
        "task_type": row["task_type"],
        "conversations": conversations,
    }


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
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseExistsError(f"{dest} exists and is not empty: a release is immutable; choose a new folder")
    ds = Dataset(root, version=options.dataset_version)
    entries = ds.ledger()
    if not entries:
        raise ValueError(f"{root}: no committed shard to release")
    try:
        source_info = ds.info().to_dict()
    except FileNotFoundError:
        source_info = {}
    source_version = options.dataset_version or _matching_version(Path(root), entries)

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        builder = _Builder(Path(root), staging, options)
        owners = replaced_by(entries)
        lookup = RevisionFilter(owners) if owners else None
        for entry in entries:
            builder.add_entry(entry, lookup)
        builder.close()
        stats = builder.stats
        info = _release_info(options, stats, Path(root), source_version, source_info, created_at or utc_now())

        write_card(staging, info, stats)
        (staging / INFO_FILE).parent.mkdir(parents=True, exist_ok=True)
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        n_files = write_checksums(staging)
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReleaseReport(
        path=dest,
        version=options.version,
        counts={t: dict(sorted(c.items())) for t, c in stats.counts.items()},
        dropped={k: v for k, v in sorted(stats.dropped.items()) if v},
        rendered=_nested(stats.rendered),
        files=n_files,
        seconds=time.perf_counter() - started,
    )


def _nested(counter: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in sorted(counter.items()):
        out.setdefault(a, {})[b] = n
    return out


def _matching_version(root: Path, entries: Sequence[LedgerEntry]) -> str | None:
    """The name of the latest named version whose shards are exactly the current ledger."""
    shards = tuple(e.shard for e in entries)
    for version in reversed(list_versions(root)):
        if tuple(version.shards) == shards:
            return version.name
    return None


class _Builder:
    """Streams the source, one ledger entry at a time, into the release folder."""

    def __init__(self, root: Path, out: Path, options: ReleaseOptions) -> None:
        self.root, self.out, self.options = root, out, options
        self.ratios = normalise(options.splits)
        self.stats = ReleaseStats()
        self.sinks: dict[tuple[str, str], _ParquetSink] = {}
        self.renders: dict[tuple[str, str], _JsonSink] = {}
        self.splits: list[str] = list(self.ratios)

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

    def _read(self, entry: LedgerEntry, table: str, lookup: RevisionFilter | None) -> pa.Table:
        info = entry.files.get(table)
        if info is None:
            return TABLE_SCHEMAS[table].empty_table()
        path = self.root / str(info["path"])
        data = _conform(pq.read_table(path), table)
        if lookup is not None:
            data = data.filter(lookup.keep(data.column("video_id"), entry.shard))
        return data

    def add_entry(self, entry: LedgerEntry, lookup: RevisionFilter | None) -> None:
        opts, stats = self.options, self.stats
        t = {table: self._read(entry, table, lookup) for table in RELEASE_TABLES}

        # Reviews: the latest verdict of each item, the reviewed videos.
        reviews = t["reviews"]
        rejected: set[tuple[str, str]] = set()
        if reviews.num_rows:
            latest: dict[tuple[str, str], tuple[str, str, str]] = {}
            for table_, item, verdict, at, rid in zip(
                *(
                    reviews.column(c).to_pylist()
                    for c in ("item_table", "item_id", "verdict", "reviewed_at", "review_id")
                )
            ):
                key = (table_ or "", item or "")
                stamp = (at or "", rid)
                if key not in latest or stamp > latest[key][:2]:
                    latest[key] = (at or "", rid, verdict or "")
            rejected = {k for k, v in latest.items() if v[2] == "reject"} if opts.exclude_rejected else set()
        reviewed_videos = set(reviews.column("video_id").to_pylist())

        # Videos: split and the reviewed-only filter.
        videos = t["videos"]
        video_split: dict[str, str] = {}
        keep_mask = []
        for vid, source, extra, split in zip(
            *(videos.column(c).to_pylist() for c in ("video_id", "source", "extra", "split"))
        ):
            keep = not (opts.reviewed_only and vid not in reviewed_videos)
            keep_mask.append(keep)
            if not keep:
                stats.dropped["videos:not_reviewed"] += 1
                continue
            s = assign_split(vid, source, extra, split, self.ratios, opts.keep_splits)
            if s not in self.splits:
                self.splits.append(s)
            video_split[vid] = s
            g = group_key(vid, source, extra)
            if stats.groups.setdefault(g, s) != s:
                stats.split_conflicts += 1
        videos = videos.filter(pa.array(keep_mask, pa.bool_()))
        kept_videos = pa.array(sorted(video_split), pa.string())

        def in_videos(data: pa.Table) -> pa.Table:
            return data.filter(pc.is_in(data.column("video_id"), value_set=kept_videos))

        def not_rejected(data: pa.Table, table: str) -> pa.Table:
            if not rejected:
                return data
            ids = data.column(_pk(table)).to_pylist()
            mask = [(table, i) not in rejected for i in ids]
            stats.dropped[f"{table}:rejected"] += mask.count(False)
            return data.filter(pa.array(mask, pa.bool_()))

        tubelets = not_rejected(in_videos(t["tubelets"]), "tubelets")
        if opts.min_score is not None:
            score_ok = pc.fill_null(
                pc.greater_equal(tubelets.column("mean_score"), pa.scalar(opts.min_score, pa.float32())), False
            )
            stats.dropped["tubelets:min_score"] += tubelets.num_rows - (pc.sum(score_ok).as_py() or 0)
            tubelets = tubelets.filter(score_ok)
        tub_ids = set(tubelets.column("tubelet_id").to_pylist())

        entities = not_rejected(in_videos(t["entities"]), "entities")
        mask = [i in tub_ids for i in entities.column("tubelet_id").to_pylist()]
        stats.dropped["entities:dangling"] += mask.count(False)
        entities = entities.filter(pa.array(mask, pa.bool_()))

        events = not_rejected(in_videos(t["events"]), "events")
        mask = [all(i in tub_ids for i in (ids or [])) for ids in events.column("tubelet_ids").to_pylist()]
        stats.dropped["events:dangling"] += mask.count(False)
        events = events.filter(pa.array(mask, pa.bool_()))

        known = tub_ids | set(entities.column("entity_id").to_pylist()) | set(events.column("event_id").to_pylist())
        instructions = not_rejected(in_videos(t["instructions"]), "instructions")
        inst_rows = instructions.to_pylist()
        mask = []
        for row in inst_rows:
            names = [r["tubelet_id"] for r in row["regions"] or []]
            names += list((row["answer"] or {}).get("tubelet_ids") or [])
            ok = all(n in tub_ids for n in names) and all(p in known for p in row["provenance"] or [])
            mask.append(ok)
        stats.dropped["instructions:dangling"] += mask.count(False)
        instructions = instructions.filter(pa.array(mask, pa.bool_()))
        inst_rows = [r for r, ok in zip(inst_rows, mask) if ok]

        reviews = in_videos(reviews)

        # Media and uris.
        video_paths: dict[str, str] = {}
        uris = videos.column("uri").to_pylist()
        for vid, uri in zip(videos.column("video_id").to_pylist(), uris):
            video_paths[vid] = self._copy_media(vid, uri) if opts.with_media else uri
        if opts.with_media:
            videos = videos.set_column(
                videos.schema.get_field_index("uri"),
                videos.schema.field("uri"),
                pa.array([video_paths[v] for v in videos.column("video_id").to_pylist()], pa.string()),
            )

        # Stats for the card.
        for vid, dur, lic in zip(*(videos.column(c).to_pylist() for c in ("video_id", "duration_s", "licence"))):
            stats.durations_s.append(float(dur))
            stats.licences[lic or "unknown"] += 1
            stats.reviewed_videos += vid in reviewed_videos
        reviewed_tubelets = {
            i
            for tb, i in zip(reviews.column("item_table").to_pylist(), reviews.column("item_id").to_pylist())
            if tb == "tubelets"
        }
        for vid, cat, tid, s0, s1 in zip(
            *(tubelets.column(c).to_pylist() for c in ("video_id", "category", "tubelet_id", "start_s", "end_s"))
        ):
            stats.categories[(video_split[vid], cat or "unknown")] += 1
            stats.tubelet_lengths_s.append(float((s1 or 0.0) - (s0 or 0.0)))
            stats.reviewed_tubelets += tid in reviewed_tubelets
        for v in reviews.column("verdict").to_pylist():
            stats.verdicts[v or "unknown"] += 1
        for row in inst_rows:
            stats.task_types[(video_split[row["video_id"]], row["task_type"] or "unknown")] += 1

        # Tables, by split.
        for table, data in (
            ("videos", videos),
            ("tubelets", tubelets),
            ("entities", entities),
            ("events", events),
            ("instructions", instructions),
            ("reviews", reviews),
        ):
            if data.num_rows == 0:
                continue
            split_col = pa.array([video_split[v] for v in data.column("video_id").to_pylist()], pa.string())
            for split in sorted(set(split_col.to_pylist())):
                part = data.filter(pc.equal(split_col, split))
                self._sink(table, split).add(part)
                stats.counts[table][split] += part.num_rows

        # Renderings.
        if opts.formats and inst_rows:
            self._render_rows(inst_rows, videos, tubelets, video_split, video_paths)

    def _render_rows(
        self,
        inst_rows: list[dict[str, Any]],
        videos: pa.Table,
        tubelets: pa.Table,
        video_split: Mapping[str, str],
        video_paths: Mapping[str, str],
    ) -> None:
        dims = {v: (w, h) for v, w, h in zip(*(videos.column(c).to_pylist() for c in ("video_id", "width", "height")))}
        needed = {r["tubelet_id"] for row in inst_rows for r in row["regions"] or []}
        tub_index = {tid: i for i, tid in enumerate(tubelets.column("tubelet_id").to_pylist()) if tid in needed}
        tub_rows: dict[str, dict[str, Any]] = {}
        if tub_index:
            order = sorted(tub_index.values())
            taken = tubelets.take(pa.array(order, pa.int64())).to_pylist()
            tub_rows = {row["tubelet_id"]: row for row in taken}
        tub_records: dict[str, Any] = {}
        for row in inst_rows:
            split = video_split[row["video_id"]]
            path = video_paths[row["video_id"]]
            record = None
            for fmt in self.options.formats:
                try:
                    if fmt == "llava":
                        item = to_llava(row, path, tub_rows)
                    else:
                        record = record or row_to_record("instructions", row)
                        if fmt == "unistg":
                            w, h = dims[row["video_id"]]
                            item = to_unistg(record, w, h)
                            item["video"] = path
                        else:
                            for r in record.regions:
                                if r.tubelet_id not in tub_records and r.tubelet_id in tub_rows:
                                    tub_records[r.tubelet_id] = row_to_record("tubelets", tub_rows[r.tubelet_id])
                            item = to_videorefer(record, tub_records, video_path=path)
                except (KeyError, ValueError):
                    self.stats.render_skipped[fmt] += 1
                    continue
                self._render(fmt, split).add(item)
                self.stats.rendered[(fmt, split)] += 1

    def _copy_media(self, video_id: str, uri: str) -> str:
        src = Path(uri)
        name = video_id.replace("/", "_").replace(os.sep, "_")
        if src.is_dir():
            rel = f"media/{name}"
            shutil.copytree(src, self.out / rel)
        elif src.is_file():
            rel = f"media/{name}{src.suffix}"
            (self.out / "media").mkdir(exist_ok=True)
            shutil.copyfile(src, self.out / rel)
        else:
            raise FileNotFoundError(f"video {video_id}: {uri} is not a local file or folder (--with-media)")
        return rel

    def close(self) -> None:
        for split in self.splits:  # every split has a file of every table, even an empty one
            for table in RELEASE_TABLES:
                self._sink(table, split)
            for fmt in self.options.formats:
                self._render(fmt, split)
        for sink in self.sinks.values():
            sink.close()
        for render in self.renders.values():
            render.close()


def _pk(table: str) -> str:
    key = PRIMARY_KEYS[table]
    assert key is not None
    return key


def _conform(data: pa.Table, table: str) -> pa.Table:
    schema = TABLE_SCHEMAS[table]
    columns = [data.column(f.name) if f.name in data.column_names else pa.nulls(data.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _release_info(
    options: ReleaseOptions,
    stats: ReleaseStats,
    root: Path,
    source_version: str | None,
    source_info: Mapping[str, Any],
    created_at: str,
) -> dict[str, Any]:
    splits = sorted({s for c in stats.counts.values() for s in c} | set(normalise(options.splits)))
    return {
        "format": RELEASE_FORMAT,
        "version": options.version,
        "created_at": created_at,
        "schema_version": SCHEMA_VERSION,
        "source": {
            "path": str(root.resolve()),
            "version": source_version,
            "schema_version": source_info.get("schema_version"),
            "config_hash": source_info.get("config_hash"),
        },
        "pipeline": source_info.get("pipeline"),
        "model_ids": dict(source_info.get("model_ids") or {}),
        "tubelet_version": source_info.get("tubelet_version"),
        "options": options.to_dict(),
        "splits": splits,
        "counts": {t: {s: stats.counts[t].get(s, 0) for s in splits} for t in RELEASE_TABLES},
        "dropped": {k: v for k, v in sorted(stats.dropped.items()) if v},
        "rendered": {f: {s: stats.rendered.get((f, s), 0) for s in splits} for f in options.formats},
        "render_skipped": {f: stats.render_skipped.get(f, 0) for f in options.formats},
        "split_conflicts": stats.split_conflicts,
    }


# ------------------------------------------------------------------ checksums and loading


def write_checksums(folder: Path) -> int:
    """Write ``SHA256SUMS`` (``sha256sum`` format, sorted by path) over every file but itself;
    returns the number of files listed."""

    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == SUMS_FILE:
            continue
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {rel}\n")
    (folder / SUMS_FILE).write_text("".join(lines), encoding="utf-8")
    return len(lines)


def verify_checksums(folder: str | os.PathLike[str]) -> list[str]:
    """Paths whose content does not match ``SHA256SUMS``, or that are missing or unlisted."""

    folder = Path(folder)
    listed: dict[str, str] = {}
    for line in (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        listed[rel] = digest
    bad = []
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {SUMS_FILE}
    for rel in sorted(present | set(listed)):
        path = folder / rel
        if rel not in listed or not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != listed[rel]:
            bad.append(rel)
    return bad


def data_files(folder: str | os.PathLike[str], table: str) -> dict[str, list[str]]:
    """``{split: [parquet paths]}`` of one table of a release, for
    ``datasets.load_dataset("parquet", data_files=...)``."""
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
