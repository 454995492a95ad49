"""Which library decodes video files: ``decord`` or ``pyav`` (frame folders always use Pillow).

Both give the same frame indices, timestamps and pixels (docs/architecture.md, "Video IO").
decord has wheels for x86-64 Linux and Windows only; PyAV for every platform. ``auto``
takes decord where it imports, else PyAV.

The choice, first that applies:
1. ``VideoReader(..., backend=...)``;
2. this process's default, ``set_video_backend(name)`` — what a run's workers are given
   (``tubelet.engine.runners.common.WorkerSettings``), from the manifest's
   ``video_backend`` or ``tubelet run --video-backend``;
3. the environment variable ``TUBELET_VIDEO_BACKEND`` (for library users and the other
   commands);
4. ``auto``.
"""

from __future__ import annotations

import functools
import os

BACKENDS = ("auto", "decord", "pyav")
ENV_VAR = "TUBELET_VIDEO_BACKEND"

_process_default: str | None = None


class VideoBackendError(ValueError):
    """An unknown backend name, or a backend that cannot be used here."""


def check_name(name: str, where: str = "video_backend") -> str:
    """``name`` if it is a backend name, else a VideoBackendError naming ``where`` it came from."""
    if name not in BACKENDS:
        raise VideoBackendError(f"{where}: unknown video backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def set_video_backend(name: str | None) -> str | None:
    """Make ``name`` this process's default (None: back to the environment or ``auto``);
    returns the previous default. Only the name is checked here, not that it imports."""
    global _process_default
    previous = _process_default
    _process_default = None if name is None else check_name(name)
    return previous


def get_video_backend() -> str | None:
    """This process's default as ``set_video_backend`` left it (None: none set)."""
    return _process_default


def requested_backend() -> str:
    """What this process asks for when a reader names no backend: its default, else
    ``TUBELET_VIDEO_BACKEND``, else ``auto``."""
    if _process_default is not None:
        return _process_default
    from_env = os.environ.get(ENV_VAR, "").strip().lower()
    return check_name(from_env, ENV_VAR) if from_env else "auto"


def resolve_backend(name: str | None = None) -> str:
    """The backend that decodes here: "decord" or "pyav" (``name`` None: ``requested_backend()``).

    ``auto`` is decord where it imports, else PyAV. Asking for decord where it does not
    import is a VideoBackendError that says how to choose another.
    """
    wanted = check_name(name) if name is not None else requested_backend()
    if wanted == "pyav":
        return "pyav"
    problem = decord_import_error()
    if wanted == "auto":
        return "pyav" if problem else "decord"
    if problem:
        raise VideoBackendError(
            f"video backend 'decord' was asked for (video_backend in the manifest, tubelet run --video-backend, "
            f"or {ENV_VAR}) but decord cannot be imported here ({problem}); decord 0.6 has wheels for x86-64 "
            "Linux and Windows only: use video_backend 'pyav' or 'auto'"
        )
    return "decord"


def describe(name: str | None = None) -> str:
    """One line for the log: what was asked for and what decodes, e.g. "decord (auto: decord is installed)"."""
    wanted = check_name(name) if name is not None else requested_backend()
    chosen = resolve_backend(wanted)
    if wanted != "auto":
        return f"{chosen} (asked for)"
    problem = decord_import_error()
    return f"{chosen} (auto: {'decord cannot be imported: ' + problem if problem else 'decord is installed'})"


@functools.cache
def decord_import_error() -> str | None:
    """Why decord cannot be imported in this process, or None if it can (checked once)."""
    try:
        import decord  # noqa: F401
    except Exception as error:  # noqa: BLE001 - an ImportError, or a wheel whose native library fails to load
        return f"{type(error).__name__}: {error}"
    return None
