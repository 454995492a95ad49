"""``tubelet validate``: check a whole dataset folder, file by file and table against table.

What is checked:

- ``meta/info.json`` is present and its schema version is one this code reads;
- every committed file exists, is the file its ledger entry committed (its size and
  sha256, when the entry recorded them), decodes with its page checksums verified, and
  its schema equals its table's Arrow schema (a file that fails is named, and its rows
  are not read);
- primary keys are unique across all shards of a table;
- references resolve: tubelets, entities, events, instructions and reviews → videos;
  entities, events and instruction regions/answers → tubelets (of the same video);
- frames lie within their video (``0 ≤ frame_idx < n_frames``), boxes inside the frame,
  mask RLEs decode to the frame size (a sample, or every mask with ``all_masks``) —
  the row-level checks of ``tubelet.schemas.validation``.

Problems are data, never exceptions: only a folder that is not a readable dataset at
all (no folder, a corrupt or tampered ledger) raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from tubelet.engine.dataset import UNFILTERED_TABLES, Dataset, RevisionFilter, conform
from tubelet.engine.integrity import PARQUET_ERRORS, decode_problem, digest_problem
from tubelet.engine.ledger import LedgerEntry, replaced_by
from tubelet.engine.storage import Storage, StorageLocation, open_parquet
from tubelet.schemas.arrow import PRIMARY_KEYS, TABLE_SCHEMAS, empty_table
from tubelet.schemas.validation import validate_tables, validate_tubelets, validate_videos
from tubelet.schemas.version import SCHEMA_VERSION, parse_version

#: Problems of one kind shown before they are counted (a systematic error repeats).
MAX_EXAMPLES = 20


_MORE = re.compile(r"^\.\.\. and (\d+) more")


@dataclass
class Problem:
    """One thing wrong with a dataset: the table (or ``meta``) and what, naming the row.

    A line that stands for several problems of one kind (``... and 12 more``) has
    ``count`` > 1.
    """

    table: str
    message: str

    def __post_init__(self) -> None:
        # tubelet.schemas.validation names the table itself at times: "[tubelets] tubelets: ..." reads badly
        prefix = f"{self.table}: "
        if self.message.startswith(prefix):
            self.message = self.message[len(prefix) :]

    @property
    def count(self) -> int:
        more = _MORE.match(self.message)
        return int(more.group(1)) if more else 1

    def __str__(self) -> str:
        return f"[{self.table}] {self.message}"


@dataclass
class ValidationReport:
    """What ``validate_dataset`` checked and found."""

    root: str
    rows: dict[str, int] = field(default_factory=dict)  # rows checked per table
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: what was checked and how many problems."""
        rows = sum(self.rows.values())
        tables = sum(1 for n in self.rows.values() if n)
        n = sum(p.count for p in self.problems)
        verdict = "OK" if self.ok else f"{n} problem{'s' if n != 1 else ''}"
        return f"validate {self.root}: {self.files} files, {rows} rows in {tables} tables: {verdict}"


def validate_dataset(root: StorageLocation, *, all_masks: bool = False, mask_sample: int = 256) -> ValidationReport:
    """Check the dataset at ``root``; returns every problem found.

    Raises FileNotFoundError / ValueError only when ``root`` is not a readable dataset
    (no such folder, a corrupt ledger entry).
    """
    dataset = Dataset(root)
    entries = dataset.ledger()  # raises on a corrupt ledger: nothing else can be checked
    report = ValidationReport(root=dataset.root)
    storage = dataset.storage

    dataset_version = _check_info(dataset, report)
    tables: dict[str, pa.Table] = {}
    owners = replaced_by(entries)  # a revision's rows supersede the earlier rows of its videos
    for table in TABLE_SCHEMAS:
        keep = RevisionFilter(owners) if owners and table not in UNFILTERED_TABLES else None
        parts = []
        for entry in entries:
            if table not in entry.files:
                continue
            # Only files that are intact and fit the schema are read: the rows of the others cannot be checked.
            data = _read_checked(storage, entry, table, dataset_version, report)
            if data is not None:
                parts.append(data if keep is None else data.filter(keep.keep(data.column("video_id"), entry.shard)))
        tables[table] = pa.concat_tables(parts) if parts else empty_table(table)
        report.rows[table] = tables[table].num_rows

    _check_rows(tables, report, all_masks=all_masks, mask_sample=mask_sample)
    _check_references(tables, report)
    return report


# ---------------------------------------------------------------------------- meta


def _check_info(dataset: Dataset, report: ValidationReport) -> tuple[int, int, int] | None:
    """Problems with meta/info.json; returns the dataset's schema version when readable."""
    try:
        info = dataset.info()
    except (OSError, ValueError) as error:  # SchemaVersionError is a ValueError
        report.problems.append(Problem("meta", str(error)))
        return None
    try:
        return parse_version(info.schema_version)
    except ValueError as error:
        report.problems.append(Problem("meta", f"info.json: {error}"))
        return None


# ---------------------------------------------------------------------------- files


def _read_checked(
    storage: Storage,
    entry: LedgerEntry,
    table: str,
    dataset_version: tuple[int, int, int] | None,
    report: ValidationReport,
) -> pa.Table | None:
    """The rows of ``entry``'s file of ``table`` in the current schema, read once; None
    (with the problems added, naming the file) when it is missing, not the file the
    ledger committed, undecodable, or of another schema."""
    info = entry.files[table]
    rel = str(info["path"])
    try:
        data = storage.read_buffer(rel)
    except FileNotFoundError:
        report.problems.append(Problem(table, f"shard {entry.shard} names {rel}, which is missing"))
        return None
    report.files += 1
    wrong = digest_problem(data, info)
    if wrong:
        report.problems.append(Problem(table, f"{rel} (shard {entry.shard}) is corrupt: {wrong}"))
        return None
    try:
        parquet = open_parquet(pa.BufferReader(data))
        schema = parquet.schema_arrow
    except PARQUET_ERRORS as error:
        report.problems.append(Problem(table, f"{rel}: not a readable Parquet file: {decode_problem(error)}"))
        return None
    if not _check_file_schema(schema, table, rel, dataset_version, report):
        return None
    rows = parquet.metadata.num_rows
    if int(info["rows"]) != rows:
        report.problems.append(
            Problem(table, f"shard {entry.shard}: ledger says {info['rows']} rows, {rel} holds {rows}")
        )
    try:
        return conform(parquet.read(), table)
    except PARQUET_ERRORS as error:
        report.problems.append(Problem(table, f"{rel} (shard {entry.shard}) is corrupt: {decode_problem(error)}"))
        return None


def _check_file_schema(
    schema: pa.Schema, table: str, rel: str, dataset_version: tuple[int, int, int] | None, report: ValidationReport
) -> bool:
    """Whether the file ``rel`` (its ``schema``) has ``table``'s schema; adds a problem per
    differing column if not.

    A file written by an older minor version may lack columns added since (they read
    as nulls); any other difference is a problem.
    """
    found = schema.remove_metadata()
    expected = TABLE_SCHEMAS[table]
    if found.equals(expected):
        return True
    older = dataset_version is not None and dataset_version < parse_version(SCHEMA_VERSION)
    ok = True
    for f in expected:
        if f.name not in found.names:
            if not (older and f.nullable):
                report.problems.append(Problem(table, f"{rel}: column {f.name!r} is missing"))
                ok = False
            continue
        got = found.field(f.name)
        if not got.type.equals(f.type):
            report.problems.append(Problem(table, f"{rel}: column {f.name!r} is {got.type}, expected {f.type}"))
            ok = False
        elif got.nullable != f.nullable:
            want = "nullable" if f.nullable else "not null"
            report.problems.append(Problem(table, f"{rel}: column {f.name!r} should be {want}"))
            ok = False
    for name in found.names:
        if name not in expected.names:
            report.problems.append(Problem(table, f"{rel}: unexpected column {name!r}"))
            ok = False
    if ok and found.names != [n for n in expected.names if n in found.names]:
        report.problems.append(Problem(table, f"{rel}: columns are not in the schema's order"))
        ok = False
    return ok


# ---------------------------------------------------------------------------- rows


def _check_rows(tables: dict[str, pa.Table], report: ValidationReport, *, all_masks: bool, mask_sample: int) -> None:
    """Row-level checks (tubelet.schemas.validation): ids, frames, boxes, masks, summaries."""
    videos = tables["videos"]
    for message in validate_videos(videos, max_examples=MAX_EXAMPLES):
        report.problems.append(Problem("videos", message))
    for message in validate_tubelets(
        tables["tubelets"],
        videos,
        check_masks="all" if all_masks else "sample",
        mask_sample=mask_sample,
        max_examples=MAX_EXAMPLES,
    ):
        report.problems.append(Problem("tubelets", message))
    for table, data in tables.items():
        if table in ("videos", "tubelets") or not PRIMARY_KEYS.get(table):
            continue
        for message in validate_tables({table: data}, max_examples=MAX_EXAMPLES):
            report.problems.append(Problem(table, message))


# Each query returns (id, message) rows for one kind of broken reference or range.
_REFERENCE_CHECKS: list[tuple[str, str]] = [
    (
        "entities",
        """SELECT e.entity_id, 'video ' || to_json(e.video_id) || ' is not in the videos table'
           FROM entities e ANTI JOIN videos v USING (video_id)""",
    ),
    (
        "entities",
        """SELECT e.entity_id, 'tubelet ' || to_json(e.tubelet_id) || ' is not in the tubelets table'
           FROM entities e ANTI JOIN tubelets t USING (tubelet_id)""",
    ),
    (
        "entities",
        """SELECT e.entity_id, 'tubelet ' || to_json(e.tubelet_id) || ' belongs to video '
                  || to_json(t.video_id) || ', not ' || to_json(e.video_id)
           FROM entities e JOIN tubelets t USING (tubelet_id) WHERE t.video_id <> e.video_id""",
    ),
    (
        "events",
        """SELECT e.event_id, 'video ' || to_json(e.video_id) || ' is not in the videos table'
           FROM events e ANTI JOIN videos v USING (video_id)""",
    ),
    (
        "events",
        """WITH refs AS (SELECT event_id, video_id, unnest(tubelet_ids) AS tubelet_id FROM events)
           SELECT r.event_id, 'tubelet ' || to_json(r.tubelet_id) || ' is not in the tubelets table'
           FROM refs r ANTI JOIN tubelets t USING (tubelet_id)""",
    ),
    (
        "events",
        """WITH refs AS (SELECT event_id, video_id, unnest(tubelet_ids) AS tubelet_id FROM events)
           SELECT r.event_id, 'tubelet ' || to_json(r.tubelet_id) || ' belongs to video '
                  || to_json(t.video_id) || ', not ' || to_json(r.video_id)
           FROM refs r JOIN tubelets t USING (tubelet_id) WHERE t.video_id <> r.video_id""",
    ),
    (
        "events",
        """SELECT e.event_id, 'frames ' || e.start_frame || '..' || e.end_frame
                  || ' are not within the video''s 0..' || (v.n_frames - 1)
           FROM events e JOIN videos v USING (video_id)
           WHERE e.start_frame < 0 OR e.end_frame >= v.n_frames OR e.start_frame > e.end_frame""",
    ),
    (
        "events",
        """SELECT e.event_id, 'span ' || e.start_s || '..' || e.end_s || ' s is not a time span'
           FROM events e WHERE NOT (e.start_s >= 0 AND e.start_s <= e.end_s)""",
    ),
    (
        "instructions",
        """SELECT i.instruction_id, 'video ' || to_json(i.video_id) || ' is not in the videos table'
           FROM instructions i ANTI JOIN videos v USING (video_id)""",
    ),
    (
        "instructions",
        """WITH refs AS (
               SELECT instruction_id, unnest(regions).tubelet_id AS tubelet_id FROM instructions
               UNION ALL
               SELECT instruction_id, unnest(answer.tubelet_ids) FROM instructions)
           SELECT DISTINCT r.instruction_id, 'tubelet ' || to_json(r.tubelet_id) || ' is not in the tubelets table'
           FROM refs r ANTI JOIN tubelets t USING (tubelet_id)""",
    ),
    (
        "instructions",
        """WITH f AS (
               SELECT instruction_id, video_id, unnest(r.frame_idx) AS frame_idx
               FROM (SELECT instruction_id, video_id, unnest(regions) AS r FROM instructions)
               UNION ALL
               SELECT instruction_id, video_id, b.frame_idx
               FROM (SELECT instruction_id, video_id, unnest(answer.boxes) AS b FROM instructions))
           SELECT DISTINCT f.instruction_id, 'frame ' || f.frame_idx || ' is not within the video''s 0..' || (v.n_frames - 1)
           FROM f JOIN videos v USING (video_id) WHERE f.frame_idx < 0 OR f.frame_idx >= v.n_frames""",
    ),
    (
        "instructions",
        """WITH b AS (SELECT instruction_id, video_id, unnest(answer.boxes) AS b FROM instructions)
           SELECT b.instruction_id, 'answer box ' || to_json(b.b.box_xyxy) || ' at frame ' || b.b.frame_idx
                  || ' is outside the ' || v.width || 'x' || v.height || ' frame'
           FROM b JOIN videos v USING (video_id)
           WHERE NOT coalesce(len(b.b.box_xyxy) = 4 AND b.b.box_xyxy[1] >= 0 AND b.b.box_xyxy[2] >= 0
                  AND b.b.box_xyxy[1] < b.b.box_xyxy[3] AND b.b.box_xyxy[2] < b.b.box_xyxy[4]
                  AND b.b.box_xyxy[3] <= v.width AND b.b.box_xyxy[4] <= v.height, false)""",
    ),
    (
        "instructions",
        """SELECT i.instruction_id, 'answer span ' || to_json(i.answer.span_s) || ' is not within the video''s '
                  || v.duration_s || ' s'
           FROM instructions i JOIN videos v USING (video_id)
           WHERE i.answer.span_s IS NOT NULL AND NOT coalesce(len(i.answer.span_s) = 2
                 AND 0 <= i.answer.span_s[1] AND i.answer.span_s[1] <= i.answer.span_s[2]
                 AND i.answer.span_s[2] <= v.duration_s + 1.0 / v.fps, false)""",
    ),
    (
        "reviews",
        """SELECT r.review_id, 'video ' || to_json(r.video_id) || ' is not in the videos table'
           FROM reviews r ANTI JOIN videos v USING (video_id)""",
    ),
]


def _check_references(tables: dict[str, pa.Table], report: ValidationReport) -> None:
    """Cross-table checks, in SQL over the loaded tables (fast on millions of rows)."""
    con = duckdb.connect()
    try:
        for name, data in tables.items():
            con.register(name, data)
        for table, sql in _REFERENCE_CHECKS:
            if tables[table].num_rows == 0:
                continue
            rows = con.execute(sql).fetchall()
            for row_id, message in rows[:MAX_EXAMPLES]:
                report.problems.append(Problem(table, f"{PRIMARY_KEYS[table]} {row_id!r}: {message}"))
            if len(rows) > MAX_EXAMPLES:
                report.problems.append(Problem(table, f"... and {len(rows) - MAX_EXAMPLES} more like the above"))
    finally:
        con.close()
