"""Is a data file the one that was committed? Checking it, and naming it when it is not.

Two checks, from cheap to complete:

- **Page checksums.** Every data file is written with a CRC32 in each page header
  (``engine.parts.PARQUET_OPTIONS``) and every pyarrow read verifies them
  (``engine.storage.open_parquet``): a flipped byte inside a page raises instead of
  decoding into wrong numbers. They do not cover the footer or the magic bytes.
- **The file's digest.** The ledger entry that commits a file records its size and
  sha256; :func:`read_verified` (a reader that reads the whole file anyway) and
  ``tubelet validate`` compare them, which covers every byte. Entries written before
  digests existed have none: their files get the page checks only.

A file that fails either is a :class:`CorruptFileError` naming the file, the shard
whose entry names it and what is wrong — never a bare pyarrow message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import pyarrow as pa

from tubelet.engine.errors import one_line
from tubelet.engine.ledger import LedgerEntry
from tubelet.engine.storage import Storage, open_parquet

#: What pyarrow raises on a file it cannot decode (OSError covers its IO and CRC errors).
PARQUET_ERRORS = (pa.ArrowException, OSError)


class CorruptFileError(ValueError):
    """A committed data file is not what its ledger entry committed, or cannot be decoded."""

    def __init__(self, url: str, reason: str, shard: str = "") -> None:
        self.url, self.reason, self.shard = url, reason, shard
        of = f" (committed by shard {shard})" if shard else ""
        super().__init__(f"{url}{of} is corrupt: {reason}")


def digest_problem(data: bytes | pa.Buffer, info: Mapping[str, object]) -> str | None:
    """Why ``data`` is not the file a ledger entry recorded (``info``: its ``bytes`` and
    ``sha256``), or None; None too when the entry recorded neither (an older dataset)."""
    size = info.get("bytes")
    if isinstance(size, int) and size != len(data):
        return f"it holds {len(data)} bytes, its ledger entry recorded {size}: it changed after it was committed"
    expected = info.get("sha256")
    if isinstance(expected, str):
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            return (
                f"its sha256 is {actual[:16]}…, its ledger entry recorded {expected[:16]}…: "
                "its bytes changed after it was committed"
            )
    return None


def decode_problem(error: BaseException) -> str:
    """What a pyarrow error says about a corrupt file, on one line."""
    return one_line(f"{type(error).__name__}: {error}", 300)


def read_verified(storage: Storage, entry: LedgerEntry, table: str) -> pa.Table:
    """The whole file of ``table`` that ``entry`` committed, read once: its digest checked,
    then decoded with page checksums on. CorruptFileError names it when either fails;
    FileNotFoundError when it is missing."""
    info = entry.files[table]
    rel = str(info["path"])
    data = storage.read_buffer(rel)
    wrong = digest_problem(data, info)
    if wrong:
        raise CorruptFileError(storage.url(rel), wrong, entry.shard)
    try:
        return open_parquet(pa.BufferReader(data)).read()
    except PARQUET_ERRORS as error:
        raise CorruptFileError(storage.url(rel), decode_problem(error), entry.shard) from None


def read_columns(storage: Storage, entry: LedgerEntry, table: str, columns: list[str]) -> pa.Table:
    """Some columns of ``entry``'s file of ``table`` (their pages checked, not the whole
    file's digest); CorruptFileError names the file when they cannot be decoded."""
    rel = str(entry.files[table]["path"])
    try:
        return storage.read_table(rel, columns=columns)
    except FileNotFoundError:
        raise
    except PARQUET_ERRORS as error:
        raise CorruptFileError(storage.url(rel), decode_problem(error), entry.shard) from None


def corrupt_files(storage: Storage, entries: Iterable[LedgerEntry]) -> list[CorruptFileError]:
    """Every committed file that fails its digest or its decoding (reads them all: for
    naming the culprit after a reader failed, and for ``validate``)."""
    found = []
    for entry in entries:
        for table in entry.files:
            try:
                read_verified(storage, entry, table)
            except CorruptFileError as error:
                found.append(error)
            except FileNotFoundError:
                continue  # missing, not corrupt: the readers say so themselves
    return found
