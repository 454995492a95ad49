"""``tubelet status``, ``query``, ``validate`` and ``eval``: look into datasets.

tubelet status OUT [--errors N]
tubelet query OUT "SQL" [--format table|csv|json] [--version V]
tubelet validate OUT [--all-masks]
tubelet eval PRED GT [--json] [--iou 0.5] [--videos ID,...] [--protocol tubelet|motchallenge]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import duckdb
import pyarrow as pa

from tubelet.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_RUNNING,
    AddCommand,
    CommandError,
    open_dataset,
    reading,
)
from tubelet.cli.output import PRINTERS
from tubelet.engine.dataset import Dataset
from tubelet.engine.errors import one_line
from tubelet.engine.integrity import corrupt_files
from tubelet.engine.ledger import MANIFEST_KEY_PREFIX
from tubelet.engine.run_state import run_state
from tubelet.engine.validate import validate_dataset
from tubelet.evaluation import PROTOCOLS, evaluate, format_table
from tubelet.schemas.arrow import TABLE_SCHEMAS


def add_commands(add: AddCommand) -> None:
    """Register ``status``, ``query``, ``validate`` and ``eval``."""
    status = add("status", "rows per table, videos done/failed/pending, the latest errors")
    status.add_argument("out", help="the dataset folder")
    status.add_argument("--errors", type=int, default=10, metavar="N", help="show the N newest errors (default 10)")
    status.set_defaults(func=cmd_status)

    query = add("query", "run SQL (DuckDB) over the committed shards; each table is a view named after it")
    query.add_argument("out", help="the dataset folder")
    query.add_argument("sql", help='e.g. "SELECT category, count(*) FROM tubelets GROUP BY 1"')
    query.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="output format (default table)"
    )
    query.add_argument("--version", help="query a named version (`tubelet versions OUT`) instead of the current state")
    query.set_defaults(func=cmd_query)

    validate = add("validate", "check schemas, ids, references, frames, boxes and masks of a dataset")
    validate.add_argument("out", help="the dataset folder")
    validate.add_argument("--all-masks", action="store_true", help="decode every mask, not a sample")
    validate.set_defaults(func=cmd_validate)

    evaluate = add("eval", "score the tubelets of a dataset against ground truth, per video and overall")
    evaluate.add_argument("pred", help="the dataset folder with the predicted tubelets")
    evaluate.add_argument("gt", help="the dataset folder with the ground-truth tubelets (e.g. an import run)")
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON (per object too)")
    evaluate.add_argument(
        "--iou", type=float, default=0.5, help="box IoU threshold of recall and the identity metrics (default 0.5)"
    )
    evaluate.add_argument("--videos", metavar="ID,...", help="only these video ids (comma-separated)")
    evaluate.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="tubelet",
        help="tubelet (default): visible boxes in the frame, MOT consider=0 boxes are don't-cares, any ground truth; "
        "motchallenge: TrackEval's official MOT17 evaluation, for ground truth imported from MOT",
    )
    evaluate.set_defaults(func=cmd_eval)


def cmd_status(args: argparse.Namespace) -> int:
    """Rows per table, videos done/failed/pending, the newest errors."""
    dataset = open_dataset(args.out)
    with reading(args.out):
        info = dataset.info()
        counts = dataset.counts()
        status = dataset.item_status()
        pending = dataset.pending()
        errors = _last_errors(dataset, args.errors)

    videos = {k: s for k, s in status.items() if not k.startswith(MANIFEST_KEY_PREFIX)}
    manifest_rows = len(status) - len(videos)
    done = sum(1 for s in videos.values() if s == "done")
    failed = len(videos) - done

    print(
        f"dataset {args.out}: pipeline {info.pipeline}, schema {info.schema_version}, updated {info.updated_at or '-'}"
    )
    last_run = info.runs[-1] if info.runs else None
    state = run_state(last_run) if last_run is not None else None
    if last_run is not None and state is not None:  # what happened, not what was last written
        print(f"last run {last_run.run_id}: {state.status}" + (f" ({state.detail})" if state.detail else ""))
    print("rows:")

    width = max(len(t) for t in TABLE_SCHEMAS)
    for table in TABLE_SCHEMAS:
        print(f"  {table:<{width}}  {counts.get(table, 0):>9}")
    print(f"videos: {done} done, {failed} failed, {len(pending)} pending")
    if manifest_rows:
        print(f"manifest rows rejected: {manifest_rows}")

    if errors:
        print(f"last errors (newest first, {len(errors)} of {counts.get('rejects', 0)}):")
        for row in errors:
            reason = " ".join(str(row["reason"]).split())
            if len(reason) > 200:
                reason = reason[:199] + "…"
            print(f"  [{row['stage']}] {row['item']}: {reason}")
    if state is not None and state.status == "running":
        return EXIT_RUNNING
    if state is not None and state.ended_badly:
        return EXIT_RUN_FAILED
    # item-level rejects (a track too short to keep) are no failure: failed videos and rows are
    return EXIT_FAILURES if failed or manifest_rows else EXIT_OK


def _last_errors(dataset: Dataset, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` reject rows: newest shards first, last row of a shard first."""
    rows: list[dict[str, Any]] = []
    if limit <= 0:
        return rows
    for entry in reversed([e for e in dataset.ledger() if "rejects" in e.files]):
        table = dataset.entry_table(entry, "rejects", columns=["item", "stage", "reason", "video_id"])
        rows.extend(reversed(table.to_pylist()))
        if len(rows) >= limit:
            break
    return rows[:limit]


#: DuckDB's errors about the SQL itself (the others may come from a corrupt file).
SQL_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException)


def cmd_query(args: argparse.Namespace) -> int:
    """Run SQL over the committed shards; each table is a view named after it."""
    dataset = open_dataset(args.out, getattr(args, "version", None))
    try:
        with reading(args.out):
            dataset.info()  # refuses a dataset with a newer major schema version
            con = dataset.connect()
        try:
            cursor = con.execute(args.sql)
            columns = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if columns else []
        finally:
            con.close()
    except duckdb.Error as error:
        raise CommandError(_query_failure(dataset, error)) from None
    PRINTERS[args.format](columns, rows)
    return EXIT_OK


def _query_failure(dataset: Dataset, error: duckdb.Error) -> str:
    """The message of a failed query. DuckDB reads the files without checking their page
    checksums or digests, so when the failure may come from a file, the files are checked
    (only then: it reads them all) and the corrupt ones named."""
    message = f"query failed: {one_line(str(error))}"
    if isinstance(error, SQL_ERRORS):
        return message
    corrupt = corrupt_files(dataset.storage, dataset.ledger())
    if not corrupt:
        return message
    shown = "; ".join(str(c) for c in corrupt[:3]) + (f"; and {len(corrupt) - 3} more" if len(corrupt) > 3 else "")
    return f"query failed: {shown} (tubelet validate checks every file)"


def cmd_validate(args: argparse.Namespace) -> int:
    """Check the dataset; print each problem and a summary line."""
    open_dataset(args.out)
    with reading(args.out):
        report = validate_dataset(args.out, all_masks=args.all_masks)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURES


def cmd_eval(args: argparse.Namespace) -> int:
    """Score the tubelets of PRED against those of GT (J&F, box IoU, tIoU/vIoU, HOTA, MOTA/IDF1)."""
    tables = {}
    for role, root in (("pred", args.pred), ("gt", args.gt)):
        dataset = open_dataset(root)
        with reading(root):
            dataset.info()  # refuses a dataset with a newer major schema version
            tables[role] = dataset.read_table("tubelets")
            tables[f"{role}_videos"] = dataset.read_table("videos")
    videos = [v for v in args.videos.split(",") if v] if args.videos else None
    _check_in_common(args.pred, args.gt, tables["pred_videos"], tables["gt_videos"], videos)
    try:
        report = evaluate(
            tables["pred"],
            tables["gt"],
            gt_videos=tables["gt_videos"],
            iou=args.iou,
            videos=videos,
            protocol=args.protocol,
        )
    except ValueError as error:  # an unknown --videos id, a bad --iou, masks of another size, GT a protocol cannot use
        raise CommandError(one_line(str(error))) from None
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(format_table(report))
    return EXIT_OK


def _check_in_common(pred: str, gt: str, pred_videos: pa.Table, gt_videos: pa.Table, wanted: list[str] | None) -> None:
    """Two datasets without one video in common are a wrong pair of folders, not a score of
    zero: refuse them (a video of both whose tracker found nothing does score zero)."""
    predicted = set(pred_videos.column("video_id").to_pylist())
    truth = set(gt_videos.column("video_id").to_pylist())
    if wanted is not None:
        truth &= set(wanted)  # an id GT lacks is reported by evaluate
    if truth and not predicted & truth:
        raise CommandError(
            f"no video in common: {pred} has {_some(predicted)}, {gt} has {_some(truth)}; nothing to compare"
        )


def _some(ids: set[str], shown: int = 3) -> str:
    listed = ", ".join(sorted(ids)[:shown]) + (", …" if len(ids) > shown else "")
    return f"{len(ids)} video{'s' if len(ids) != 1 else ''} ({listed})" if ids else "no video"
