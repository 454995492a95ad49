"""Turning errors into the one line a user reads."""

from __future__ import annotations

from collections.abc import Iterator


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` with its whitespace runs made single spaces, cut at ``limit`` with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from (or while handling), outermost first;
    libraries often keep the telling one there (s3fs keeps botocore's, Ray its RPC error)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
