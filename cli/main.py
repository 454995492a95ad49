"""The ``tubelet`` command line.

Commands::

    tubelet run MANIFEST [--out DIR] [--runner ray|inline] [--address ADDR]
                         [--set key=value ...] [--no-progress] [--log-level LEVEL]
    tubelet status OUT [--errors N]
    tubelet query OUT "SQL" [--format table|csv|json]
    tubelet validate OUT [--all-masks]
    tubelet sample OUT_DIR
    tubelet eval PRED GT [--json] [--iou 0.5] [--videos ID,...]
    tubelet review serve|stop|push|pull|revert ...   (tubelet.cli.review)
    tubelet versions OUT
    tubelet preview OUT --video ID|--instruction ID --to FILE; tubelet report OUT --to DIR   (tubelet.cli.preview)
    tubelet release OUT --version X --to DIR [...]; tubelet diff A B [--json]   (tubelet.cli.release)

Exit codes:

    0  all good
    1  the command completed, but some items were rejected (run, status) or
       validate found problems
    2  the command failed: bad arguments, a bad manifest, an unreadable dataset,
       a failed query, a run that crashed or was interrupted

Errors print one line on stderr; ``--log-level debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import duckdb
import pyarrow.parquet as pq

from tubelet.cli.preview import add_commands as add_preview_commands
from tubelet.cli.release import add_commands as add_release_commands
from tubelet.cli.review import add_commands
from tubelet.cli.sample import write_sample
from tubelet.engine.dataset import Dataset
from tubelet.engine.ledger import MANIFEST_KEY_PREFIX
from tubelet.engine.manifest import ManifestError, load_manifest
from tubelet.engine.validate import validate_dataset
from tubelet.evaluation import evaluate, format_table
from tubelet.pipelines import run_manifest
from tubelet.schemas.arrow import TABLE_SCHEMAS

log = logging.getLogger("tubelet.cli.main")

EXIT_OK = 0
EXIT_REJECTS = 1
EXIT_FAILED = 2

_EPILOG = """exit codes:
  0  all good
  1  completed, but some items were rejected (run, status) or validate found problems
  2  the command failed: bad arguments, bad manifest, unreadable dataset, failed query,
     run crashed or interrupted
"""

#: Widest cell of ``query --format table``; csv and json print values whole.
MAX_CELL = 60


class CommandError(Exception):
    """A failure the user can fix from its message alone (exit code 2, no traceback)."""


# ------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    """Load the manifest, run it, print the summary."""

    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"output={os.path.abspath(args.out)}")
    config = load_manifest(args.manifest, overrides)
    summary = run_manifest(
        config,
        runner=args.runner,
        address=args.address,
        progress=not args.no_progress,
        log_level=getattr(args, "log_level", "info"),  # the run's JSON log keeps info events
    )
    reject_rows = _run_reject_rows(str(summary.output), summary.run_id)
    print(
        f"run {summary.run_id}: {summary.planned} planned, {summary.skipped_already_done} already done, "
        f"{summary.done} done, {summary.failed} failed in {summary.elapsed_s:.1f} s -> {summary.output}"
    )
    if summary.removed_orphans:
        print(f"removed {len(summary.removed_orphans)} orphan files of an interrupted run")
    if summary.failed or summary.rejected_rows or reject_rows:
        print(
            f"rejects: {summary.rejected_rows} manifest rows, {reject_rows} reject rows written by this run; "
            f"see tubelet status {summary.output}"
        )
        return EXIT_REJECTS
    return EXIT_OK


def _run_reject_rows(output: str, run_id: str) -> int:
    """Reject rows committed by the run ``run_id`` (video failures and item rejects alike)."""

    try:
        entries = Dataset(output).ledger()
    except (OSError, ValueError):
        return 0
    return sum(int(e.files["rejects"]["rows"]) for e in entries if e.run_id == run_id and "rejects" in e.files)


def cmd_status(args: argparse.Namespace) -> int:
    """Rows per table, videos done/failed/pending, the newest errors."""

    dataset = _open(args.out)
    with _reading(args.out):
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
    if last_run is not None:
        print(f"last run {last_run.run_id}: {last_run.status}" + (f" ({last_run.error})" if last_run.error else ""))
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
    return EXIT_REJECTS if failed or manifest_rows or counts.get("rejects", 0) else EXIT_OK


def _last_errors(dataset: Any, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` reject rows: newest shards first, last row of a shard first."""

    rows: list[dict[str, Any]] = []
    if limit <= 0:
        return rows
    for path in reversed(dataset.files("rejects")):
        table = pq.read_table(path, columns=["item", "stage", "reason", "video_id"])
        rows.extend(reversed(table.to_pylist()))
        if len(rows) >= limit:
            break
    return rows[:limit]


def cmd_query(args: argparse.Namespace) -> int:
    """Run SQL over the committed shards; each table is a view named after it."""

    dataset = _open(args.out, getattr(args, "version", None))
    with _reading(args.out):
        dataset.info()  # refuses a dataset with a newer major schema version
        con = dataset.connect()
    try:
        cursor = con.execute(args.sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if columns else []
    except duckdb.Error as error:
        raise CommandError(f"query failed: {_one_line(str(error))}") from None
    finally:
        con.close()
    writers: dict[str, Callable[[list[str], list[tuple[Any, ...]]], None]] = {
        "table": _print_table,
        "csv": _print_csv,
        "json": _print_json,
    }
    writers[args.format](columns, rows)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """Check the dataset; print each problem and a summary line."""

    _open(args.out)
    with _reading(args.out):
        report = validate_dataset(args.out, all_masks=args.all_masks)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_REJECTS


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the embedded synthetic demo sample."""

    written = write_sample(args.out_dir)
    print(f"wrote the sample to {written.root}: {written.describe()}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Score the tubelets of PRED against those of GT (J&F, box IoU, tIoU/vIoU, MOTA/IDF1)."""

    tables = {}
    for role, root in (("pred", args.pred), ("gt", args.gt)):
        dataset = _open(root)
        with _reading(root):
            dataset.info()  # refuses a dataset with a newer major schema version
            tables[role] = dataset.read_table("tubelets")
            if role == "gt":
                tables["gt_videos"] = dataset.read_table("videos")
    videos = [v for v in args.videos.split(",") if v] if args.videos else None
    try:
        report = evaluate(tables["pred"], tables["gt"], gt_videos=tables["gt_videos"], iou=args.iou, videos=videos)
    except ValueError as error:  # an unknown --videos id, a bad --iou, masks of another size
        raise CommandError(_one_line(str(error))) from None
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(format_table(report))
    return EXIT_OK


def _open(root: str, version: str | None = None) -> Any:
    try:
        return Dataset(root, version=version)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from None
    except KeyError as error:  # an unknown version: the message lists the known ones
        raise CommandError(str(error.args[0] if error.args else error)) from None


@contextlib.contextmanager
def _reading(root: str) -> Iterator[None]:
    """A dataset that cannot be read (no info.json, a newer schema, a corrupt ledger
    entry, a missing shard) is a one-line error, not a traceback."""
    try:
        yield
    except (OSError, ValueError) as error:  # SchemaVersionError is a ValueError
        raise CommandError(f"cannot read the dataset at {root}: {_one_line(str(error))}") from error


# ------------------------------------------------------------------------- output


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return format(value, ".10g")
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(_jsonable(value), ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN/inf become null, dates and decimals strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    if not columns:
        print("(no result)")
        return
    cells = [[_truncate(_cell(v)) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    print(line(columns))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _truncate(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _print_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])


def _print_json(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    # A JSON array with one row per line: valid JSON, and still readable with grep/head.
    print("[")
    for i, row in enumerate(rows):
        text = json.dumps(_jsonable(dict(zip(columns, row))), ensure_ascii=False)
        print(text + ("," if i < len(rows) - 1 else ""))
    print("]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tubelet`` (exposed for docs and tests)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="log verbosity; debug also prints tracebacks (default: warning)",
    )
    parser = argparse.ArgumentParser(
        prog="tubelet",
        description="Turn raw videos into spatio-temporal instruction datasets.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    run = add("run", "run a manifest: every video through its pipeline, into its output dataset")
    run.add_argument("manifest", help="the manifest YAML file")
    run.add_argument("--out", help="output dataset folder (overrides the manifest's output)")
    run.add_argument("--runner", choices=["ray", "inline"], help="override the manifest's runner")
    run.add_argument("--address", help="join the Ray cluster at ADDR (host:port) instead of starting one")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a manifest key (dotted, e.g. params.decode_check=false, ray.num_cpus=2); repeatable",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

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

    sample = add("sample", "write the embedded synthetic sample (video, frames, DAVIS masks, list)")
    sample.add_argument("out_dir", help="folder to write the sample to")
    sample.set_defaults(func=cmd_sample)

    evaluate = add("eval", "score the tubelets of a dataset against ground truth, per video and overall")
    evaluate.add_argument("pred", help="the dataset folder with the predicted tubelets")
    evaluate.add_argument("gt", help="the dataset folder with the ground-truth tubelets (e.g. an import run)")
    evaluate.add_argument("--json", action="store_true", help="print the full report as JSON (per object too)")
    evaluate.add_argument(
        "--iou", type=float, default=0.5, help="box IoU threshold of recall and the identity metrics (default 0.5)"
    )
    evaluate.add_argument("--videos", metavar="ID,...", help="only these video ids (comma-separated)")
    evaluate.set_defaults(func=cmd_eval)

    add_commands(add, common)

    add_preview_commands(add, common)

    add_release_commands(add, common)
    return parser


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, so an in-process caller may swap it."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _setup_logging(level: str) -> None:
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("tubelet",):
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        if not logger.handlers:
            logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tubelet``; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 0 for --help, 2 for bad arguments
        return int(exit_.code or 0)
    level = getattr(args, "log_level", "warning")
    if args.func is not cmd_run:  # a run installs its own log handlers (tubelet.engine.logs)
        _setup_logging(level)
    debug = level == "debug"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _error("interrupted; committed shards are kept, run again to resume")
        return EXIT_FAILED
    except BrokenPipeError:
        # `tubelet query ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # noqa: BLE001 - every failure becomes one line and exit 2
        if debug:
            traceback.print_exc()
        _error(_describe(error), hint=not debug and not _expected(error))
        return EXIT_FAILED


def _expected(error: BaseException) -> bool:
    """Errors whose message says it all (no 'use --log-level debug' hint)."""

    return isinstance(error, (CommandError, ManifestError, FileNotFoundError))


def _describe(error: BaseException) -> str:
    if isinstance(error, (CommandError, ManifestError)):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return _one_line(str(error))
    return f"{type(error).__name__}: {_one_line(str(error))}"


def _error(message: str, *, hint: bool = False) -> None:
    # One line per problem (a manifest may have several), the hint on the last.
    lines = message.splitlines() or [""]
    if hint:
        lines[-1] += " (--log-level debug shows the traceback)"
    for line in lines:
        print(f"tubelet: error: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
