"""The videos an export reads: selected, checked, then streamed one ledger entry at a time.

``ExportSource.open(root, options)`` reads only the ids (``videos.video_id/split``,
``tubelets.video_id/category``) of every committed shard to decide what is exported and
to fail before anything is written (unknown ``--videos``, nothing selected, no tubelet,
two ids with the same file name). ``items()`` then reads one shard's rows at a time —
a shard holds every row of its videos, and the revision filter of
``tubelet.engine.dataset`` picks the shard that owns a replaced video — so memory is
bounded by one shard, whatever the dataset's size.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tubelet.engine.dataset import Dataset, RevisionFilter
from tubelet.engine.ledger import LedgerEntry, replaced_by
from tubelet.release.exports.common import NO_SPLIT, ExportError, ExportOptions, Tally, VideoItem, safe_name, split_of
from tubelet.schemas import Entity, Event, Instruction, Tubelet, VideoRecord
from tubelet.schemas.arrow import TABLE_SCHEMAS, table_to_records

#: The tables an export reads (reviews and rejects are the dataset's history, not annotations).
EXPORT_TABLES = ("videos", "tubelets", "entities", "events", "instructions")


@dataclass
class ExportSource:
    """A dataset (version) and the videos of it an export takes."""

    dataset: Dataset
    entries: list[LedgerEntry]
    lookup: RevisionFilter | None
    selected: dict[str, str]  # video_id -> shard that owns its rows
    categories: frozenset[str]

    @classmethod
    def open(cls, root: str | os.PathLike[str], options: ExportOptions) -> ExportSource:
        """The selection of ``options`` in the dataset at ``root``; ExportError says why there is none."""
        dataset = Dataset(root, version=options.dataset_version)
        entries = dataset.ledger()
        if not entries:
            raise ExportError(f"{dataset.root}: no committed shard to export")
        owners = replaced_by(entries)
        source = cls(dataset, entries, RevisionFilter(owners) if owners else None, {}, frozenset(options.categories))
        source._select(options)
        return source

    # -- selection -------------------------------------------------------------------

    def _rows(self, entry: LedgerEntry, table: str, columns: list[str] | None = None) -> pa.Table:
        """``entry``'s rows of ``table`` less those a later revision replaces."""
        if table not in entry.files:
            empty = TABLE_SCHEMAS[table].empty_table()
            return empty if columns is None else empty.select(columns)
        data = self.dataset.entry_table(entry, table, columns=columns)
        if self.lookup is not None:
            data = data.filter(self.lookup.keep(data.column("video_id"), entry.shard))
        return data

    def _select(self, options: ExportOptions) -> None:
        wanted = set(options.videos)
        where = f" (split {options.split})" if options.split else ""
        tubelets = 0
        for entry in self.entries:
            videos = self._rows(entry, "videos", ["video_id", "split"])
            chosen = {
                vid
                for vid, split in zip(videos.column("video_id").to_pylist(), videos.column("split").to_pylist())
                if (not wanted or vid in wanted) and (options.split is None or (split or NO_SPLIT) == options.split)
            }
            for vid in chosen:
                self.selected[vid] = entry.shard
            if chosen and "tubelets" in entry.files:
                rows = self._rows(entry, "tubelets", ["video_id", "category"])
                keep = pc.is_in(rows.column("video_id"), value_set=pa.array(sorted(chosen), pa.string()))
                if self.categories:
                    in_category = pc.is_in(rows.column("category"), value_set=pa.array(sorted(self.categories)))
                    keep = pc.and_(keep, in_category)
                tubelets += pc.sum(keep).as_py() or 0
        missing = sorted(wanted - set(self.selected))
        if missing:
            raise ExportError(f"{self.dataset.root}: no video {', '.join(missing)}{where} in the dataset")
        if not self.selected:
            raise ExportError(f"{self.dataset.root}: no video to export{where}")
        if tubelets == 0:
            of = f" of categories {', '.join(sorted(self.categories))}" if self.categories else ""
            raise ExportError(f"{self.dataset.root}: the selected videos have no tubelets{of}: nothing to export")
        self._check_names()

    def _check_names(self) -> None:
        """Two video ids must not share a file name (``safe_name`` makes a clash all but impossible)."""
        seen: dict[str, str] = {}
        for vid in sorted(self.selected):
            name = safe_name(vid)
            if name in seen:
                raise ExportError(f"videos {seen[name]!r} and {vid!r} would both be exported as {name!r}")
            seen[name] = vid

    # -- rows ------------------------------------------------------------------------

    def items(self, tally: Tally) -> Iterator[VideoItem]:
        """Every selected video with its rows, shard by shard (ledger order), by video id within a shard."""
        for entry in self.entries:
            mine = sorted(v for v, shard in self.selected.items() if shard == entry.shard)
            if mine:
                yield from self._entry_items(entry, mine, tally)

    def _entry_items(self, entry: LedgerEntry, video_ids: list[str], tally: Tally) -> Iterator[VideoItem]:
        ids = pa.array(video_ids, pa.string())
        rows: dict[str, dict[str, list[Any]]] = {}
        for table in EXPORT_TABLES:
            data = self._rows(entry, table)
            data = data.filter(pc.is_in(data.column("video_id"), value_set=ids))
            for record in table_to_records(table, data):
                rows.setdefault(record.video_id, {}).setdefault(table, []).append(record)
        for vid in video_ids:
            tables = rows.get(vid, {})
            [video] = tables["videos"]
            yield self._item(video, tables, tally)

    def _item(self, video: VideoRecord, tables: dict[str, list[Any]], tally: Tally) -> VideoItem:
        # rows in the order the shard holds them: the same for the same dataset state
        tubelets: list[Tubelet] = tables.get("tubelets", [])
        entities: list[Entity] = tables.get("entities", [])
        events: list[Event] = tables.get("events", [])
        instructions: list[Instruction] = tables.get("instructions", [])
        if self.categories:
            dropped = {t.tubelet_id for t in tubelets if t.category not in self.categories}
            tubelets = [t for t in tubelets if t.tubelet_id not in dropped]
            entities, events, instructions = _without(dropped, entities, events, instructions, tally)
        tally.counts["videos"] += 1
        tally.counts["tubelets"] += len(tubelets)
        return VideoItem(video, safe_name(video.video_id), split_of(video), tubelets, entities, events, instructions)


def _without(
    dropped: Collection[str],
    entities: list[Entity],
    events: list[Event],
    instructions: list[Instruction],
    tally: Tally,
) -> tuple[list[Entity], list[Event], list[Instruction]]:
    """The rows that name none of the ``dropped`` tubelets (counted under ``dropped:<table>``)."""
    if not dropped:
        return entities, events, instructions
    kept_entities = [e for e in entities if e.tubelet_id not in dropped]
    kept_events = [e for e in events if not set(e.tubelet_ids) & set(dropped)]
    kept_instructions = [
        i for i in instructions if not ({r.tubelet_id for r in i.regions} | set(i.answer.tubelet_ids)) & set(dropped)
    ]
    for table, before, after in (
        ("entities", entities, kept_entities),
        ("events", events, kept_events),
        ("instructions", instructions, kept_instructions),
    ):
        if len(before) > len(after):
            tally.counts[f"dropped:{table}"] += len(before) - len(after)
    return kept_entities, kept_events, kept_instructions
