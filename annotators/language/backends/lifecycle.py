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

    def check_ready(self) -> None:
        """Raise unless ``setup()`` loaded the model (lite mode has none to load)."""
        if self._backend is not None and not self._ready:
            name = getattr(self, "name", type(self).__name__)
            raise RuntimeError(f"stage {name}: setup() was not called (a runner calls it once per worker)")
