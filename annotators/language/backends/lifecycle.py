"""ModelLifecycle: the setup/teardown every stage that may hold a VLM backend shares."""

from __future__ import annotations

from typing import Any


class ModelLifecycle:
    """Mixin for a ``Stage`` whose ``_backend`` (a ``VLMBackend``, or None in lite mode) is
    built at configuration and loaded once per worker.

    The stage sets ``self._backend`` and ``self._ready = False`` in ``__post_init__``.
    Without a backend there is nothing to load, so the stage runs as plain tasks
    rather than in an actor pool (unless it asks for a GPU).
    """

    _backend: Any
    _ready: bool

    @property
    def needs_actor(self) -> bool:
        return self._backend is not None or self.resources.gpus > 0  # type: ignore[attr-defined]

    def setup(self) -> None:
        """Load the model (once per worker); nothing to do without one."""
        if self._backend is not None and not self._ready:
            self._backend.setup()
        self._ready = True

    def teardown(self) -> None:
        if self._backend is not None and self._ready:
            self._backend.close()
        self._ready = False

    def ensure_ready(self) -> None:
        """``setup()`` unless done: a runner may call ``process`` without it (inline)."""
        if not self._ready:
            self.setup()
