"""Where a dataset lives: a local folder or an object store, behind one small interface.

Everything the engine writes or reads in an output goes through a ``Storage``, addressed
by POSIX paths relative to the dataset's root (``data/videos/<part>.parquet``,
``meta/ledger/<name>.json``). Two implementations:

- ``LocalStorage``: a folder. Whole-file writes go to a temporary name, are fsynced and
  renamed, so a reader sees the old file or the new one; ``create`` links a fully written
  temporary file into place, which fails if the name exists (atomic put-if-absent).
- ``ObjectStorage``: any fsspec filesystem (``s3://``, ``gs://``, ``memory://``, ...). A
  PUT is atomic (an object appears whole or not at all) and nothing is renamed;
  ``create`` is a conditional put (S3 ``If-None-Match: *``, fsspec's ``"xb"`` mode).
  Storage that cannot create an object only if it is absent is refused for writing:
  the ledger's commit protocol needs it (docs/architecture.md, "Exactly-once").

Parquet is read with page checksum verification on (a page whose CRC32 does not match
raises), and ``write_parquet`` returns the size and sha256 of what it wrote, which the
ledger records (``engine.integrity`` checks both).

Credentials and endpoints come from the environment the way boto3, pyarrow and DuckDB
users expect (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, ``AWS_PROFILE`` and the AWS config files); nothing here stores
or prints them.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from tubelet.schemas.info import fsync_dir

if TYPE_CHECKING:
    import pyarrow.dataset as pads

#: ``scheme://...``: an fsspec URL (a Windows drive letter is one letter, never a scheme)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


class StorageError(RuntimeError):
    """The storage cannot do what the engine needs (e.g. no conditional put)."""


@dataclass(frozen=True)
class WrittenFile:
    """What a whole-file write put there: its size and sha256 (recorded in the ledger)."""

    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> WrittenFile:
        return cls(len(data), hashlib.sha256(data).hexdigest())


def open_parquet(source: Any) -> pq.ParquetFile:
    """A ParquetFile (a path, a file object or a buffer) whose page checksums are verified on read."""
    return pq.ParquetFile(source, page_checksum_verification=True)


def parquet_format() -> pads.ParquetFileFormat:
    """The pyarrow dataset format of every scan: page checksums verified."""
    import pyarrow.dataset as pads  # slow to import (it pulls pandas in): only object-storage reads need it

    return pads.ParquetFileFormat(
        default_fragment_scan_options=pads.ParquetFragmentScanOptions(page_checksum_verification=True)
    )


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``s3://bucket/x``) rather than a local path."""
    return bool(_URL.match(str(location))) and not str(location).startswith("file://")


def public_name(location: str | os.PathLike[str]) -> str:
    """``location`` as it may be shown to others: a local path's last name (no folder of the
    machine it is on), a URL without credentials, query or fragment (``s3://bucket/prefix``)."""
    text = str(location)
    if not is_url(text):
        path = Path(text[len("file://") :] if text.startswith("file://") else text)
        return path.name or path.resolve().name
    parts = urlsplit(text)
    host = parts.netloc.rpartition("@")[2]  # drop user:password@
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def open_storage(location: str | os.PathLike[str]) -> Storage:
    """The storage at ``location``: a local path (or ``file://`` URL) or an fsspec URL."""
    text = str(location)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if is_url(text):
        return ObjectStorage(text)
    return LocalStorage(text)


def as_storage(location: StorageLocation) -> Storage:
    """``location`` as a Storage (a Storage is returned as it is)."""
    return location if isinstance(location, Storage) else open_storage(location)


def join(*parts: str) -> str:
    """A relative storage path from parts (``join("data", "videos", "x.parquet")``)."""
    return posixpath.join(*parts)


class Storage(ABC):
    """A dataset root that can hold files (objects) at relative POSIX paths."""

    #: The root as given, normalised: an absolute local path or a URL.
    root: str

    @property
    @abstractmethod
    def is_local(self) -> bool:
        """Whether this is a local folder (rename, fsync and file locks exist)."""

    @abstractmethod
    def url(self, rel: str = "") -> str:
        """The full path or URL of ``rel``, for messages and for other tools."""

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes:
        """The content of ``rel``; FileNotFoundError when it does not exist."""

    @abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``rel`` whole, replacing it: readers see the old content or the new."""

    @abstractmethod
    def create(self, rel: str, data: bytes) -> bool:
        """Write ``rel`` only if it does not exist, atomically; False if it existed."""

    @abstractmethod
    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is a file (object)."""

    @abstractmethod
    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of the files under folder ``prefix`` (recursive), sorted."""

    @abstractmethod
    def top_level(self) -> list[str]:
        """The names of the files and folders directly under the root (empty if it does not exist)."""

    @abstractmethod
    def delete(self, rel: str) -> None:
        """Remove ``rel``; nothing happens when it does not exist."""

    def write_parquet(self, rel: str, table: pa.Table, **options: Any) -> WrittenFile:
        """Write ``table`` as Parquet at ``rel`` like ``write_bytes`` (whole or not at all);
        returns the file's size and sha256. The file is made in memory first: a part's
        compressed Parquet is smaller than the table it comes from."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)
        data = sink.getvalue().to_pybytes()
        self.write_bytes(rel, data)
        return WrittenFile.of(data)

    @abstractmethod
    def parquet_file(self, rel: str) -> pq.ParquetFile:
        """An open ``ParquetFile`` of ``rel`` (FileNotFoundError when absent)."""

    @abstractmethod
    def arrow_dataset(self, rels: list[str], schema: pa.Schema | None = None) -> pads.Dataset:
        """A pyarrow dataset over the Parquet files ``rels`` (lazy: read while scanned)."""

    def local_path(self, rel: str = "") -> Path | None:
        """The local path of ``rel``, or None on object storage."""
        return None

    def leads_out(self, rel: str) -> str | None:
        """Where ``rel`` really is when a link takes it out of the root, else None (object
        storage has no links: keys stay under their prefix)."""
        return None

    def read_buffer(self, rel: str) -> pa.Buffer:
        """The content of ``rel`` in memory Arrow owns, to decode Parquet from. Why not the
        bytes object: pyarrow tables decoded from a buffer Python owns can abort the
        interpreter at exit ("terminate called without an active exception", pyarrow 24)."""
        sink = pa.BufferOutputStream()
        sink.write(self.read_bytes(rel))
        return sink.getvalue()

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        """The contents of several files (fetched concurrently where the storage can)."""
        return {rel: self.read_bytes(rel) for rel in rels}

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        """The Parquet file ``rel`` as a table (only ``columns`` when given)."""
        return self.parquet_file(rel).read(columns=columns)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Sent to Ray workers by location only: each process opens its own client.
        return (open_storage, (self.root,))


class LocalStorage(Storage):
    """A dataset in a local (or shared POSIX) folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = Path(root).expanduser().resolve()
        self.root = str(self.path)

    @property
    def is_local(self) -> bool:
        return True

    def url(self, rel: str = "") -> str:
        return str(self.path / rel) if rel else self.root

    def local_path(self, rel: str = "") -> Path:
        return self.path / rel if rel else self.path

    def leads_out(self, rel: str) -> str | None:
        real = os.path.realpath(self.path / rel)
        return None if real.startswith(self.root.rstrip(os.sep) + os.sep) else real

    def read_bytes(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()

    def read_buffer(self, rel: str) -> pa.Buffer:
        with pa.OSFile(str(self.path / rel)) as f:  # FileNotFoundError when missing
            return f.read_buffer()

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._atomic(rel, lambda f: f.write(data))

    def create(self, rel: str, data: bytes) -> bool:
        path = self.path / rel
        tmp = self._written(path, lambda f: f.write(data))
        try:
            os.link(tmp, path)  # fails if the name exists: put-if-absent
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return True

    def exists(self, rel: str) -> bool:
        return (self.path / rel).is_file()

    def list_files(self, prefix: str) -> list[str]:
        folder = self.path / prefix
        if not folder.is_dir():
            return []
        return sorted(p.relative_to(self.path).as_posix() for p in folder.rglob("*") if p.is_file())

    def top_level(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []

    def delete(self, rel: str) -> None:
        (self.path / rel).unlink(missing_ok=True)

    def parquet_file(self, rel: str) -> pq.ParquetFile:
        path = self.path / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
        return open_parquet(path)

    def arrow_dataset(self, rels: list[str], schema: pa.Schema | None = None) -> pads.Dataset:
        import pyarrow.dataset as pads  # slow to import (it pulls pandas in): only object-storage reads need it

        return pads.dataset([str(self.path / r) for r in rels], schema=schema, format=parquet_format())

    def _atomic(self, rel: str, write: Any) -> None:
        """Write through a temporary file that is fsynced and renamed into place."""
        path = self.path / rel
        tmp = self._written(path, write)
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)

    def _written(self, path: Path, write: Any) -> Path:
        """A hidden temporary file beside ``path`` holding what ``write(file)`` wrote, fsynced."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary(path)
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    @staticmethod
    def _temporary(path: Path) -> Path:
        # hidden, and unique per writer: two processes never share a temporary name
        return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


class ObjectStorage(Storage):
    """A dataset in an object store reached through fsspec (``s3://bucket/prefix``)."""

    def __init__(self, url: str) -> None:
        self.root = url.rstrip("/")
        protocol, _, rest = self.root.partition("://")
        self.protocol = protocol
        # listings must be fresh: the ledger is read by listing it
        self.fs = fsspec.filesystem(protocol, skip_instance_cache=True, use_listings_cache=False)
        self.base = rest

    @property
    def is_local(self) -> bool:
        return False

    def url(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def _key(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def read_bytes(self, rel: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._key(rel))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url(rel)} is missing") from None
        return data

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self._key(rel), data)

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        if not rels:
            return {}
        keys = [self._key(r) for r in rels]
        found = self.fs.cat(keys, on_error="omit")  # concurrent GETs on async filesystems
        missing = [r for r, k in zip(rels, keys) if k not in found]
        if missing:
            raise FileNotFoundError(f"{self.url(missing[0])} is missing")
        return {r: found[k] for r, k in zip(rels, keys)}

    def create(self, rel: str, data: bytes) -> bool:
        try:
            if self.protocol in ("s3", "s3a"):
                self.fs.pipe_file(self._key(rel), data, mode="create")
            else:
                with self.fs.open(self._key(rel), "xb") as f:
                    f.write(data)
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError) as error:
            raise StorageError(
                f"{self.root}: this storage cannot create an object only if it is absent ({error}); "
                "tubelet needs that to commit runs exactly once"
            ) from error
        return True

    def exists(self, rel: str) -> bool:
        return bool(self.fs.isfile(self._key(rel)))

    def list_files(self, prefix: str) -> list[str]:
        key = self._key(prefix)
        try:
            found = self.fs.find(key)
        except FileNotFoundError:
            return []
        start = len(self.base) + 1
        return sorted(path[start:] for path in found if path.startswith(self.base + "/"))

    def top_level(self) -> list[str]:
        try:
            found = self.fs.ls(self.base, detail=False)
        except FileNotFoundError:
            return []
        return sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in found if path.rstrip("/") != self.base)

    def delete(self, rel: str) -> None:
        try:
            self.fs.rm_file(self._key(rel))
        except FileNotFoundError:
            pass

    def parquet_file(self, rel: str) -> pq.ParquetFile:
        try:
            handle = self.fs.open(self._key(rel), "rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url(rel)} is missing") from None
        return open_parquet(handle)

    def arrow_dataset(self, rels: list[str], schema: pa.Schema | None = None) -> pads.Dataset:
        import pyarrow.dataset as pads  # slow to import (it pulls pandas in): only object-storage reads need it

        return pads.dataset([self._key(r) for r in rels], schema=schema, format=parquet_format(), filesystem=self.fs)


#: What functions taking a dataset root accept: a Storage, a local path or a URL.
StorageLocation = Storage | str | os.PathLike[str]
