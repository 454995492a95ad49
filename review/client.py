"""The one place that talks to a Label Studio server (through ``label-studio-sdk``).

Every call goes through :meth:`LabelStudioClient.call`: connection errors, timeouts, 429
and 5xx answers are retried with exponential back-off, and a call that still fails
raises :class:`ReviewServerError` naming what was not done. The SDK's own retries are
off so the attempts and waits are ours and tested.

The API token lives only in the SDK's request headers: it is never in a message, a
log line, a ``repr``, a pickle, or a file tubelet writes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variables read for the server address and the API token.
ENV_URL = "LABEL_STUDIO_URL"
ENV_TOKEN = "LABEL_STUDIO_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"


class ReviewServerError(RuntimeError):
    """A Label Studio request failed after its retries (or cannot be retried)."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all, waiting ``backoff_s * 2**n`` (capped) between them."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_wait_s: float = 8.0
    timeout_s: float = 60.0


def server_settings(url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """The server URL and token: the arguments, else ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``."""
    url = url or os.environ.get(ENV_URL) or DEFAULT_URL
    token = token or os.environ.get(ENV_TOKEN)
    if not token:
        raise ReviewServerError(f"no Label Studio API token: set {ENV_TOKEN} (see `tubelet review serve --help`)")
    return url.rstrip("/"), token


class LabelStudioClient:
    """A Label Studio server, with retries. ``sdk`` is the ``label_studio_sdk.LabelStudio``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from label_studio_sdk import (
            LabelStudio,  # the `review` extra; imported only when used
        )

        self.url, token = server_settings(url, token)
        self.retry = retry
        self._sleep = sleep
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=retry.timeout_s)

    def __repr__(self) -> str:
        return f"LabelStudioClient({self.url!r})"

    def __reduce__(self) -> Any:
        raise TypeError("LabelStudioClient holds an API token and is not pickled; build one per process")

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with retries; ``what`` names the action in errors."""
        options = dict(kwargs.pop("request_options", None) or {})
        options.setdefault("max_retries", 0)
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return fn(*args, request_options=options, **kwargs)
            except Exception as error:  # noqa: BLE001 - classified just below
                retryable, last = _classify(error)
                if not retryable or attempt == self.retry.attempts:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise ReviewServerError(f"{what} failed{tries}: {last} (server {self.url})") from None
                wait = min(self.retry.max_wait_s, self.retry.backoff_s * 2 ** (attempt - 1))
                log.warning(
                    "%s: %s; retrying in %.1fs (attempt %d of %d)", what, last, wait, attempt + 1, self.retry.attempts
                )
                self._sleep(wait)
        raise AssertionError("unreachable")

    # ----------------------------------------------------------- what push and pull need

    def check(self) -> str:
        """The e-mail of the token's user (also proves the server answers and the token works)."""
        me = self.call("contacting Label Studio", self.sdk.users.whoami)
        return str(me.email)

    def find_project(self, title: str) -> Any | None:
        """The project called ``title``, or None."""
        projects = self.call(
            f"listing projects to find {title!r}", lambda **kw: list(self.sdk.projects.list(title=title, **kw))
        )
        exact = [p for p in projects if p.title == title]
        return exact[0] if exact else None

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project as ``{"id", "data", "annotated"}``, page by page."""
        page = 1
        while True:
            batch = self.call(f"listing tasks of project {project_id}", self._tasks_page, project_id, page)
            yield from batch
            if len(batch) < _PAGE:
                return
            page += 1

    def _tasks_page(self, project_id: int, page: int, *, request_options: dict[str, Any]) -> list[dict[str, Any]]:
        pager = self.sdk.tasks.list(
            project=project_id, page=page, page_size=_PAGE, fields="task_only", request_options=request_options
        )
        return [{"id": t.id, "data": t.data, "annotated": _annotated(t)} for t in (pager.items or [])]

    def export(self, project_id: int, task_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """The project's tasks with annotations, keyframes interpolated to every frame."""

        def download(*, request_options: dict[str, Any]) -> list[dict[str, Any]]:
            options = dict(request_options)
            options["additional_query_parameters"] = {"interpolate_key_frames": "true"}
            chunks = self.sdk.projects.exports.download_sync(
                project_id,
                export_type="JSON",
                download_all_tasks=False,
                ids=[str(i) for i in task_ids] if task_ids else None,
                request_options=options,
            )
            return json.loads(b"".join(chunks))

        return self.call(f"exporting annotations of project {project_id}", download)

    def reviewers(self) -> dict[int, str]:
        """User id -> e-mail, to name reviewers."""
        users = self.call("listing users", self.sdk.users.list)
        return {int(u.id): str(u.email or u.username or u.id) for u in users}


_PAGE = 500


def _annotated(task: Any) -> bool:
    """Whether a listed task holds any annotation (unknown counts as yes: the safe answer)."""
    total, cancelled = getattr(task, "total_annotations", None), getattr(task, "cancelled_annotations", None)
    return total is None or bool(total) or bool(cancelled)


def _classify(error: BaseException) -> tuple[bool, str]:
    """(retry?, one-line reason) for an exception from the SDK or httpx."""
    import httpx

    status = getattr(error, "status_code", None)
    if status is not None:
        body = getattr(error, "body", None)
        detail = _short(body)
        return int(status) >= 500 or int(status) in (408, 429), f"HTTP {status}{': ' + detail if detail else ''}"
    if isinstance(error, httpx.TimeoutException):
        return True, f"timed out ({type(error).__name__})"
    if isinstance(error, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, ConnectionError)):
        return True, f"cannot reach the server ({type(error).__name__})"
    return False, f"{type(error).__name__}: {_short(str(error))}"


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str) if value is not None else ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
