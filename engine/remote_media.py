"""Videos on object storage, decoded from a local copy in a bounded per-process cache.

decord and PyAV read local files. A video whose ``uri`` is an fsspec URL
(``s3://bucket/clip.mp4``, ``gs://…``, anything fsspec opens) is fetched once into this
process's cache and decoded there; a prefix (``s3://bucket/frames/``) is an image-folder
video whose JPEG/PNG objects directly under it are the frames.

    with fetch("s3://bucket/clip.mp4") as media:   # a lease: the file stays while held
        decode(media.path)

- Fetching: one listing (HEAD or LIST) says what the uri is, each object is downloaded
  into a staging folder that is renamed into place once every object has the size the
  store reported, so a half-written file never carries a final name. Transient failures
  (connection errors, timeouts, throttling, 5xx, short downloads) are retried with capped
  exponential back-off; a missing object or a refused access fails at once.
- The cache: LRU, bounded in bytes (``TUBELET_MEDIA_CACHE_BYTES``, default 2 GiB per
  process), under ``TUBELET_MEDIA_CACHE`` (default ``~/.cache/tubelet/media``, else the
  system temp folder). A file an open lease uses is never evicted, so the budget is
  exceeded only by what open readers hold; a file bigger than the whole budget is fetched,
  used and dropped. Objects are identified by uri plus size and ETag: a re-read of the
  same uri costs one HEAD (a LIST for a folder), not a download, and an object replaced
  in the store is fetched anew. One fetch at a time per process.
- Clean-up: each process owns ``<root>/<pid>-<token>/`` and holds an ``flock`` on
  ``<root>/<pid>-<token>.lock`` for its life. Its folder is removed when it exits
  normally (atexit and multiprocessing's exit hooks); a new cache removes the folders
  whose lock nobody holds, i.e. those of processes that died.

Credentials and endpoints come from the standard environment and config files (fsspec
passes nothing, so s3fs/botocore read ``AWS_*`` variables and ``~/.aws``); nothing here
logs or stores them.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import functools
import hashlib
import logging
import os
import posixpath
import random
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import util as mp_util
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import fsspec

from tubelet.engine.errors import error_chain
from tubelet.engine.storage import is_url

log = logging.getLogger(__name__)

#: Where the per-process caches live (a folder; each process makes its own inside).
CACHE_DIR_ENV = "TUBELET_MEDIA_CACHE"
#: The per-process budget: bytes, or with a binary suffix (``512M``, ``4G``, ``1.5GiB``).
CACHE_BYTES_ENV = "TUBELET_MEDIA_CACHE_BYTES"
DEFAULT_CACHE_BYTES = 2 * 2**30  # per process: a pool of N workers may use N times this

#: The objects of a prefix that are frames of an image-folder video.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

_T = TypeVar("_T")
_STALE_TEMP_S = 60.0  # a lock file still under its temporary name this long was left by a crash
_EREMOTEIO = getattr(errno, "EREMOTEIO", errno.EIO)
# s3fs turns S3 error codes into OSErrors: SlowDown/503 -> EBUSY, 500 -> EREMOTEIO, unknown -> EIO
_TRANSIENT_ERRNOS = {
    errno.EBUSY,
    errno.EIO,
    _EREMOTEIO,
    errno.EAGAIN,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
}
# botocore and aiohttp errors are matched by class name: neither is a dependency of the core
_TRANSIENT_CLASS_WORDS = (
    "Timeout",
    "ConnectionError",
    "ConnectionClosed",
    "Disconnected",
    "IncompleteRead",
    "ClientPayloadError",
    "ResponseStreamingError",
    "ClientOSError",
)
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "RequestLimitExceeded",
    "RequestTimeout",
    "ServiceUnavailable",
    "InternalError",
}
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


# -- errors and retries ------------------------------------------------------------------


class RemoteMediaError(Exception):
    """A remote video that cannot be fetched.

    ``kind`` is one of ``missing`` (no object or prefix at the uri), ``denied`` (no
    credentials or no access), ``unreachable`` (transient failures on every attempt),
    ``unsupported`` (no fsspec filesystem for the scheme) or ``fetch_failed`` (any other
    error). The message reads ``"<kind>: <detail> [<uri>]"`` like ``VideoError``'s.
    """

    def __init__(self, uri: str, kind: str, detail: str, attempts: int = 1) -> None:
        super().__init__(f"{kind}: {detail} [{uri}]")
        self.uri = uri
        self.kind = kind
        self.detail = detail
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray pickles exceptions across workers; the default would call __init__(message).
        return (type(self), (self.uri, self.kind, self.detail, self.attempts))


class IncompleteDownloadError(OSError):
    """A download ended with fewer (or more) bytes than the store reported: retried."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    The wait before retry ``n`` (1-based) is ``min(max_delay_s, first_delay_s * 2**(n-1))``,
    scaled by a random factor in ``[1 - jitter, 1]`` so that workers do not retry in step.
    """

    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0
    jitter: float = 0.5

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        capped = min(self.max_delay_s, self.first_delay_s * 2 ** (retry - 1))
        return capped * (1.0 - self.jitter * random.random())


def failure_kind(error: BaseException) -> str | None:
    """The ``RemoteMediaError`` kind of a permanent failure, or None for a transient one."""
    if isinstance(error, FileNotFoundError):
        return "missing"
    if isinstance(error, PermissionError) or _names_contain(error, ("NoCredentials", "PartialCredentials")):
        return "denied"
    if any(_is_transient(cause) for cause in error_chain(error)):
        return None
    return "fetch_failed"


def _permanent_error(uri: str, error: BaseException) -> RemoteMediaError | None:
    """The error to raise at once for a failure that retrying cannot fix; None if transient."""
    kind = failure_kind(error)
    if kind is None:
        return None
    detail = "no object or prefix at this uri" if kind == "missing" else _brief(error)
    return RemoteMediaError(uri, kind, detail)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, (TimeoutError, ConnectionError, IncompleteDownloadError)):
        return True
    if isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS:
        return True
    if _names_contain(error, _TRANSIENT_CLASS_WORDS):
        return True
    response = getattr(error, "response", None)  # botocore's ClientError
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in _TRANSIENT_CODES or status in _TRANSIENT_HTTP
    return False


def _names_contain(error: BaseException, words: tuple[str, ...]) -> bool:
    return any(word in cls.__name__ for cls in type(error).__mro__ for word in words)


def _brief(error: BaseException, limit: int = 200) -> str:
    """``Type: first line`` of an error, with any ``user:password@`` in a URL masked."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return re.sub(r"//[^/\s@]+@", "//***@", text)[:limit]


# -- what a uri is -----------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteObject:
    """One object to download: its filesystem path, its path inside the entry, its size."""

    path: str
    local: str
    size: int


@dataclass(frozen=True)
class RemoteMedia:
    """A remote video as the store lists it: one file, or a folder of frame objects."""

    uri: str
    name: str  # the local name of the file or folder
    is_folder: bool
    objects: tuple[RemoteObject, ...]
    version: str  # changes when any object changes (sizes and ETags)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def key(self) -> str:
        """The cache entry's folder name: one per uri and version."""
        return hashlib.sha256(f"{self.uri}\0{self.version}".encode()).hexdigest()[:24]


def describe(fs: Any, path: str, uri: str) -> RemoteMedia:
    """List ``path`` on ``fs``: a file object, or a prefix whose image objects are frames."""
    fs.invalidate_cache(path)  # a long-lived worker must see objects replaced since
    info = fs.info(path)
    name = _local_name(path)
    if info.get("type") != "directory":
        obj = RemoteObject(info.get("name", path), name, int(info["size"]))
        return RemoteMedia(uri, name, False, (obj,), _object_version(info))
    frames = [entry for entry in fs.ls(path, detail=True) if _is_frame(entry)]
    objects = tuple(RemoteObject(e["name"], f"{name}/{_basename(e['name'])}", int(e["size"])) for e in frames)
    listing = "\n".join(f"{_basename(e['name'])} {_object_version(e)}" for e in frames)
    return RemoteMedia(uri, name, True, objects, hashlib.sha256(listing.encode()).hexdigest()[:16])


def _is_frame(entry: dict[str, Any]) -> bool:
    name = _basename(entry["name"])
    return entry.get("type") == "file" and name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def _object_version(info: dict[str, Any]) -> str:
    tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime") or ""
    return f"{info.get('size')}:{tag}"


def _basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def _local_name(path: str) -> str:
    """A safe local name that keeps the suffix (FFmpeg's probe uses it for some formats)."""
    name = re.sub(r"[^\w.+-]", "_", _basename(path)).lstrip(".")
    return name[-100:] or "media"


# -- the cache ---------------------------------------------------------------------------


@dataclass
class CacheStats:
    """What a cache did: leases served from disk, downloads, bytes fetched, evictions."""

    hits: int = 0
    downloads: int = 0
    bytes_downloaded: int = 0
    evictions: int = 0


@dataclass
class _Entry:
    key: str
    path: Path  # the entry's folder
    media_path: Path  # the file or frame folder inside it
    size: int
    readers: int = 0


class MediaLease:
    """A fetched video, kept on disk until released; a context manager.

    ``path`` is the local file (or frame folder). A lease that is garbage-collected
    without ``release()`` is released then.
    """

    def __init__(self, path: Path, release: Callable[[], None]) -> None:
        self.path = path
        self._finalizer = weakref.finalize(self, release)
        self._finalizer.atexit = False  # the cache's own exit hook removes everything

    @property
    def released(self) -> bool:
        return not self._finalizer.alive

    def release(self) -> None:
        """Let the cache evict the file again (safe to call twice)."""
        self._finalizer()

    def __enter__(self) -> MediaLease:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


Resolver = Callable[[str], tuple[Any, str]]


def resolve_filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``uri`` and the path on it (credentials from the environment)."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


class MediaCache:
    """This process's copies of remote videos: LRU, at most ``budget_bytes`` not in use.

    ``root`` holds the caches of all processes; this one owns a folder inside it. Use
    ``media_cache()`` for the process's cache; build one directly only for tests or tools.
    ``resolve`` and ``sleep`` are seams for tests (a failing filesystem, no real waits).
    """

    def __init__(
        self,
        root: Path,
        budget_bytes: int,
        *,
        retry: RetryPolicy = RetryPolicy(),
        resolve: Resolver = resolve_filesystem,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if budget_bytes < 0:
            raise ValueError(f"the media cache budget must not be negative, got {budget_bytes}")
        self.root = Path(root)
        self.budget_bytes = budget_bytes
        self.retry = retry
        self.stats = CacheStats()
        self._resolve = resolve
        self._sleep = sleep
        self._lock = threading.RLock()  # one fetch at a time; leases may be released from any thread
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._pid = os.getpid()
        remove_dead_caches(self.root)
        self.path, fd = _claim_folder(self.root)
        self._lock_fd: int | None = fd

    @property
    def used_bytes(self) -> int:
        """Bytes of all entries on disk, in use or not."""
        return sum(e.size for e in self._entries.values())

    @property
    def closed(self) -> bool:
        return self._lock_fd is None

    @property
    def owner_pid(self) -> int:
        """The process that made this cache (a forked child must make its own)."""
        return self._pid

    def fetch(self, uri: str) -> MediaLease:
        """A lease on the local copy of ``uri``, downloaded unless this cache holds it."""
        with self._lock:
            if self.closed:
                raise RuntimeError(f"the media cache {self.path} is closed")
            fs, path = self._filesystem(uri)
            media = self._with_retries(uri, lambda: describe(fs, path, uri))
            entry = self._entries.get(media.key)
            if entry is not None:
                self._entries.move_to_end(media.key)
                self.stats.hits += 1
            else:
                entry = self._download(fs, media)
            entry.readers += 1
            return MediaLease(entry.media_path, functools.partial(self._release, entry.key))

    def close(self) -> None:
        """Remove this process's folder and give up its lock (leases become invalid)."""
        if os.getpid() != self.owner_pid:
            return  # a forked child inherited this object: the folder is its parent's
        with self._lock:
            if self._lock_fd is None:
                return
            shutil.rmtree(self.path, ignore_errors=True)
            (self.root / f"{self.path.name}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None
            self._entries.clear()

    # -- internals -------------------------------------------------------------------

    def _drop_inherited_lock(self) -> None:
        # a forked child shares the parent's open lock; closing the child's copy leaves the
        # parent's folder and lock alone but lets them be swept once the parent dies
        if self._lock_fd is not None and os.getpid() != self.owner_pid:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _filesystem(self, uri: str) -> tuple[Any, str]:
        try:
            return self._resolve(uri)
        except (ValueError, ImportError) as error:  # unknown scheme, or its package is not installed
            raise RemoteMediaError(uri, "unsupported", f"no filesystem for this uri ({_brief(error)})") from None

    def _download(self, fs: Any, media: RemoteMedia) -> _Entry:
        self._evict_until(lambda: self.used_bytes + media.size <= self.budget_bytes)
        staging = self.path / f".fetch-{media.key}-{secrets.token_hex(4)}"
        final = self.path / media.key
        started = time.monotonic()
        try:
            (staging / media.name if media.is_folder else staging).mkdir(parents=True)
            self._with_retries(media.uri, lambda: _download_objects(fs, media.objects, staging))
            shutil.rmtree(final, ignore_errors=True)  # a leftover of an interrupted eviction
            staging.rename(final)  # the whole file or folder appears at once
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.stats.downloads += 1
        self.stats.bytes_downloaded += media.size
        log.debug(
            "fetched %s (%d bytes) in %.1f s",
            media.uri,
            media.size,
            time.monotonic() - started,
            extra={"event": "media_fetched", "bytes": media.size},
        )
        entry = _Entry(media.key, final, final / media.name, media.size)
        self._entries[media.key] = entry
        return entry

    def _with_retries(self, uri: str, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying transient failures; RemoteMediaError when it gives up."""
        attempts = max(self.retry.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                return action()
            except Exception as error:  # noqa: BLE001 - classified: permanent ones are raised at once
                permanent = _permanent_error(uri, error)
                if permanent is not None:
                    raise permanent from None
                if attempt == attempts:
                    detail = f"gave up after {attempts} attempts ({_brief(error)})"
                    raise RemoteMediaError(uri, "unreachable", detail, attempts) from None
                self._wait_before_retry(uri, error, attempt, attempts)
        raise AssertionError("the loop returns or raises")

    def _wait_before_retry(self, uri: str, error: Exception, attempt: int, attempts: int) -> None:
        delay = self.retry.delay(attempt)
        log.warning(
            "fetching %s failed (%s); retry %d of %d in %.1f s",
            uri,
            _brief(error),
            attempt,
            attempts - 1,
            delay,
            extra={"event": "media_fetch_retry", "attempt": attempt},
        )
        self._sleep(delay)

    def _release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.readers -= 1
            self._evict_until(lambda: self.used_bytes <= self.budget_bytes)

    def _evict_until(self, enough: Callable[[], bool]) -> None:
        """Drop unused entries, least recently used first, until ``enough()`` holds."""
        for entry in list(self._entries.values()):
            if enough():
                return
            if entry.readers == 0 and self._entries.pop(entry.key, None) is not None:
                shutil.rmtree(entry.path, ignore_errors=True)
                self.stats.evictions += 1


def _download_objects(fs: Any, objects: tuple[RemoteObject, ...], staging: Path) -> None:
    """Download every object not yet complete in ``staging``; raise if any is short."""
    pending = [o for o in objects if not _complete(staging / o.local, o.size)]
    if pending:
        # one call: async filesystems (s3fs) download a folder's frames concurrently
        fs.get([o.path for o in pending], [str(staging / o.local) for o in pending])
    short = [o for o in pending if not _complete(staging / o.local, o.size)]
    if short:
        got = _size_or_zero(staging / short[0].local)
        raise IncompleteDownloadError(
            f"{len(short)} of {len(objects)} objects incomplete ({short[0].path}: got {got} of {short[0].size} bytes)"
        )


def _complete(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def _size_or_zero(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


# -- folders of processes ----------------------------------------------------------------


def _claim_folder(root: Path) -> tuple[Path, int]:
    """Make this process's folder under ``root`` and hold its lock; (folder, lock fd)."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{secrets.token_hex(4)}"
    temporary = root / f".{name}.lock.tmp"
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # the lock is held before its name appears, and the name before the folder: a sweeper
    # never finds a live process's folder without a held lock next to it
    os.rename(temporary, root / f"{name}.lock")
    folder = root / name
    folder.mkdir(mode=0o700)
    return folder, fd


def remove_dead_caches(root: Path) -> list[str]:
    """Remove the folders under ``root`` whose process died (its lock is free); their names."""
    if not root.is_dir():
        return []
    removed = [lock.stem for lock in sorted(root.glob("*.lock")) if _remove_if_dead(lock, root / lock.stem)]
    for folder in root.iterdir():
        if folder.is_dir() and not (root / f"{folder.name}.lock").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a sweep interrupted between its two steps
            removed.append(folder.name)
    for temporary in root.glob(".*.lock.tmp"):
        if _age_s(temporary) > _STALE_TEMP_S and _remove_if_dead(temporary, None):
            removed.append(temporary.name)
    return removed


def _remove_if_dead(lock: Path, folder: Path | None) -> bool:
    """Remove ``folder`` and then ``lock`` if no process holds the lock."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False  # removed by another sweeper
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its process is alive
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


# -- this process's cache ----------------------------------------------------------------


def default_cache_root() -> Path:
    """``$TUBELET_MEDIA_CACHE``, else ``~/.cache/tubelet/media``, else the system temp folder."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = base / "tubelet" / "media"
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except (OSError, RuntimeError):  # no home folder, or a read-only one
        pass
    return Path(tempfile.gettempdir()) / f"tubelet-media-{os.getuid()}"


def default_budget_bytes() -> int:
    """``$TUBELET_MEDIA_CACHE_BYTES`` parsed by ``parse_bytes``, else 2 GiB."""
    configured = os.environ.get(CACHE_BYTES_ENV)
    if not configured:
        return DEFAULT_CACHE_BYTES
    try:
        return parse_bytes(configured)
    except ValueError as error:
        raise ValueError(f"{CACHE_BYTES_ENV}: {error}") from None


def parse_bytes(text: str) -> int:
    """``"1048576"``, ``"512M"``, ``"4G"``, ``"1.5GiB"`` as bytes (suffixes are binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size in bytes: {text!r} (e.g. 2147483648, 512M, 4G)")
    number, unit = match.groups()
    multiplier = 1024 ** ("KMGT".index(unit.upper()) + 1) if unit else 1
    return int(float(number) * multiplier)


@dataclass
class _ProcessCache:
    cache: MediaCache | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_current = _ProcessCache()


def _forget_parent_cache() -> None:
    """In a forked child: start afresh, and let go of the parent's lock so its death is seen."""
    parent = _current.cache
    _current.cache, _current.lock = None, threading.Lock()
    if parent is not None:
        parent._drop_inherited_lock()


os.register_at_fork(after_in_child=_forget_parent_cache)


def media_cache() -> MediaCache:
    """This process's cache, made from the environment on first use (and after a fork)."""
    with _current.lock:
        cache = _current.cache
        if cache is None or cache.closed or cache.owner_pid != os.getpid():
            cache = MediaCache(default_cache_root(), default_budget_bytes())
            atexit.register(cache.close)
            # pool workers leave through multiprocessing, which skips atexit but runs these
            mp_util.Finalize(None, cache.close, exitpriority=0)
            _current.cache = cache
        return cache


def reset_media_cache() -> None:
    """Close this process's cache (its files go); the next fetch starts a new one."""
    with _current.lock:
        if _current.cache is not None:
            _current.cache.close()
            _current.cache = None


def is_remote(uri: str) -> bool:
    """Whether ``uri`` is fetched through fsspec (a URL other than ``file://``)."""
    return is_url(uri)


def fetch(uri: str) -> MediaLease:
    """A lease on a local copy of the remote video ``uri`` (this process's cache)."""
    return media_cache().fetch(uri)
