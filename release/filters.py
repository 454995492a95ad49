"""What a release keeps of one shard: the filters of ``ReleaseOptions`` and the drops they cascade into.

A filter drops rows, then every row that points at a dropped one, in the order the
references run: tubelets → entities and events (their tubelets) → instructions (the
tubelets their regions and answer ground, the ids of their provenance). Each drop is
counted under ``<table>:<reason>`` (``rejected``, ``min_score``, ``dangling``,
``not_reviewed``) for the card and ``meta/info.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tubelet.schemas.arrow import PRIMARY_KEYS

#: A reviewed item: ``(reviews.item_table, reviews.item_id)``.
ItemKey = tuple[str, str]


def column_rows(data: pa.Table, *names: str) -> Iterator[tuple[Any, ...]]:
    """The values of some columns of ``data``, row by row, as Python tuples."""
    return zip(*(data.column(name).to_pylist() for name in names))


def latest_verdicts(reviews: pa.Table) -> dict[ItemKey, str]:
    """Each reviewed item's latest verdict: by ``reviewed_at``, ties broken by ``review_id``."""
    latest: dict[ItemKey, tuple[tuple[str, Any], str]] = {}
    for table, item, verdict, at, review_id in column_rows(
        reviews, "item_table", "item_id", "verdict", "reviewed_at", "review_id"
    ):
        key = (table or "", item or "")
        stamp = (at or "", review_id)
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, verdict or "")
    return {key: verdict for key, (_, verdict) in latest.items()}


def rejected_items(reviews: pa.Table) -> set[ItemKey]:
    """The items whose latest verdict is ``reject``."""
    return {key for key, verdict in latest_verdicts(reviews).items() if verdict == "reject"}


@dataclass
class KeptRows:
    """One shard's rows that go into the release, next to its (already filtered) videos."""

    tubelets: pa.Table
    entities: pa.Table
    events: pa.Table
    instructions: pa.Table
    instruction_rows: list[dict[str, Any]]  # ``instructions`` as Python rows: renderings and stats read them
    reviews: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        """The tables by name, in release table order (``videos`` aside)."""
        return {
            "tubelets": self.tubelets,
            "entities": self.entities,
            "events": self.events,
            "instructions": self.instructions,
            "reviews": self.reviews,
        }


class ShardFilter:
    """Drops the rows of one shard that a release leaves out, counting every drop in ``dropped``."""

    def __init__(self, rejected: Collection[ItemKey], min_score: float | None, dropped: Counter[str]) -> None:
        self.rejected = rejected
        self.min_score = min_score
        self.dropped = dropped

    def reviewed_videos_only(self, videos: pa.Table, reviewed: Collection[str]) -> pa.Table:
        """The videos with at least one review."""
        ok = [vid in reviewed for vid in videos.column("video_id").to_pylist()]
        return self._drop(videos, _mask(ok), "videos:not_reviewed")

    def keep(self, tables: Mapping[str, pa.Table], kept_videos: Iterable[str]) -> KeptRows:
        """The rows of ``tables`` that belong to ``kept_videos`` and survive the filters and their cascade."""
        videos = pa.array(sorted(kept_videos), pa.string())
        tubelets = self._tubelets(_in_videos(tables["tubelets"], videos))
        tubelet_ids = set(tubelets.column("tubelet_id").to_pylist())
        entities = self._entities(_in_videos(tables["entities"], videos), tubelet_ids)
        events = self._events(_in_videos(tables["events"], videos), tubelet_ids)
        # provenance may name any kept tubelet, entity or event
        known = tubelet_ids | set(entities.column("entity_id").to_pylist()) | set(events.column("event_id").to_pylist())
        instructions, rows = self._instructions(_in_videos(tables["instructions"], videos), tubelet_ids, known)
        return KeptRows(tubelets, entities, events, instructions, rows, _in_videos(tables["reviews"], videos))

    def _tubelets(self, tubelets: pa.Table) -> pa.Table:
        """The tubelets not rejected and, with ``min_score``, scored at least that (a null score is below it)."""
        tubelets = self._not_rejected(tubelets, "tubelets")
        if self.min_score is None:
            return tubelets
        bound = pa.scalar(self.min_score, pa.float32())
        ok = pc.fill_null(pc.greater_equal(tubelets.column("mean_score"), bound), False)
        return self._drop(tubelets, ok, "tubelets:min_score")

    def _entities(self, entities: pa.Table, tubelet_ids: Collection[str]) -> pa.Table:
        """The entities not rejected whose tubelet is kept."""
        entities = self._not_rejected(entities, "entities")
        ok = [i in tubelet_ids for i in entities.column("tubelet_id").to_pylist()]
        return self._drop(entities, _mask(ok), "entities:dangling")

    def _events(self, events: pa.Table, tubelet_ids: Collection[str]) -> pa.Table:
        """The events not rejected whose tubelets are all kept."""
        events = self._not_rejected(events, "events")
        ok = [all(i in tubelet_ids for i in ids or []) for ids in events.column("tubelet_ids").to_pylist()]
        return self._drop(events, _mask(ok), "events:dangling")

    def _instructions(
        self, instructions: pa.Table, tubelet_ids: Collection[str], known: Collection[str]
    ) -> tuple[pa.Table, list[dict[str, Any]]]:
        """The instructions not rejected whose references are all kept, as a table and as Python rows."""
        instructions = self._not_rejected(instructions, "instructions")
        rows = instructions.to_pylist()
        ok = [_instruction_resolves(row, tubelet_ids, known) for row in rows]
        return self._drop(instructions, _mask(ok), "instructions:dangling"), [r for r, k in zip(rows, ok) if k]

    def _not_rejected(self, data: pa.Table, table: str) -> pa.Table:
        """The rows of ``table`` whose latest verdict is not ``reject``."""
        if not self.rejected:
            return data
        ok = [(table, i) not in self.rejected for i in data.column(_primary_key(table)).to_pylist()]
        return self._drop(data, _mask(ok), f"{table}:rejected")

    def _drop(self, data: pa.Table, keep: pa.Array | pa.ChunkedArray, reason: str) -> pa.Table:
        """``data`` filtered by ``keep``; the rows it drops are counted under ``reason``."""
        self.dropped[reason] += len(keep) - (pc.sum(keep).as_py() or 0)
        return data.filter(keep)


def _in_videos(data: pa.Table, videos: pa.Array) -> pa.Table:
    return data.filter(pc.is_in(data.column("video_id"), value_set=videos))


def _instruction_resolves(row: Mapping[str, Any], tubelet_ids: Collection[str], known: Collection[str]) -> bool:
    """Every tubelet the instruction grounds (regions, answer) and every id of its provenance is kept."""
    grounded = [r["tubelet_id"] for r in row["regions"] or []]
    grounded += list((row["answer"] or {}).get("tubelet_ids") or [])
    return all(t in tubelet_ids for t in grounded) and all(p in known for p in row["provenance"] or [])


def _mask(keep: list[bool]) -> pa.Array:
    return pa.array(keep, pa.bool_())


def _primary_key(table: str) -> str:
    key = PRIMARY_KEYS[table]
    assert key is not None
    return key
