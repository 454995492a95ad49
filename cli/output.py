"""Printing query results: an aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

#: Widest cell of ``query --format table``; csv and json print values whole.
MAX_CELL = 60


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


#: ``query --format`` -> printer of (columns, rows)
PRINTERS = {"table": _print_table, "csv": _print_csv, "json": _print_json}
