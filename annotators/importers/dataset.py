"""LoadFromDataset: a video's rows from an existing tubelet dataset (``source: dataset``).

Captions, timelines and instructions can then be made again — with another model, another
prompt — without tracking again: the video's ``videos`` row and its tubelets (and, when
asked, its entities and events) are read from the dataset the manifest listed it from
(``videos: - dataset: …``), local or on object storage. A video is read from the ledger
entry that holds it (its latest revision, when one replaced it), so one file of each
table is read per video, not the whole dataset.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import LedgerEntry, Status, replaced_by
from tubelet.engine.stage import Stage
from tubelet.engine.task import DatasetRef, VideoTask
from tubelet.schemas.arrow import empty_table, table_to_records

#: Tables a ``source: dataset`` run may carry over besides videos and tubelets.
KEEPABLE = ("entities", "events")


@dataclass
class LoadFromDataset(Stage):
    """Fill ``task.video`` and ``task.tubelets`` (plus the ``keep`` tables) from the
    video's origin dataset. A video the dataset does not hold, or holds as failed, fails."""

    keep: tuple[str, ...] = ()
    cached_files: int = 16
    _sources: dict[DatasetRef, _Source] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.keep) - set(KEEPABLE))
        if unknown:
            raise ValueError(f"keep: unknown tables {unknown}; choose from {', '.join(KEEPABLE)}")

    def setup(self) -> None:
        self._sources = {}

    def teardown(self) -> None:
        self._sources = {}

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            self.load(task)
        return batch

    def load(self, task: VideoTask) -> None:
        """The task's rows, from its origin."""
        if task.origin is None:
            raise ValueError(
                f"video {task.video_id} was not listed from a dataset: `source: dataset` needs "
                "`videos: [{dataset: <path or URL>}]` in the manifest"
            )
        source = self._sources.get(task.origin)
        if source is None:
            source = self._sources[task.origin] = _Source(task.origin, self.cached_files)
        [video] = source.rows(task.video_id, "videos")
        task.video = video
        task.tubelets = source.rows(task.video_id, "tubelets")
        if "entities" in self.keep:
            task.entities = source.rows(task.video_id, "entities")
        if "events" in self.keep:
            task.events = source.rows(task.video_id, "events")


class _Source:
    """One origin dataset: which entry holds each video, and a few of its files cached."""

    def __init__(self, ref: DatasetRef, cached_files: int) -> None:
        self.ref = ref
        self.dataset = Dataset(ref.location, version=ref.version)
        entries = self.dataset.ledger()
        by_shard = {e.shard: e for e in entries}
        self.holder: dict[str, tuple[LedgerEntry, Status]] = {}
        for entry in entries:
            for key, status in entry.items.items():
                self.holder[key] = (entry, status)
        for video_id, shard in replaced_by(entries).items():
            self.holder[video_id] = (by_shard[shard], "done")  # its latest revision has its rows
        self._files: OrderedDict[tuple[str, str], pa.Table] = OrderedDict()
        self._cached = cached_files

    def rows(self, video_id: str, table: str) -> list[Any]:
        """The video's rows of ``table``, as records."""
        held = self.holder.get(video_id)
        where = self.ref.location + (f" (version {self.ref.version})" if self.ref.version else "")
        if held is None:
            raise ValueError(f"video {video_id} is not in the dataset {where}")
        entry, status = held
        if status != "done":
            raise ValueError(f"video {video_id} failed in the dataset {where} (see its rejects there)")
        data = self._file(entry, table)
        return table_to_records(table, data.filter(pc.equal(data.column("video_id"), video_id)))

    def _file(self, entry: LedgerEntry, table: str) -> pa.Table:
        key = (entry.shard, table)
        if key in self._files:
            self._files.move_to_end(key)
            return self._files[key]
        data = self.dataset.entry_table(entry, table) if table in entry.files else empty_table(table)
        self._files[key] = data
        while len(self._files) > self._cached:
            self._files.popitem(last=False)
        return data
