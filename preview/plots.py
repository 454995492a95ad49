"""The PNG plots of the report and the release card (matplotlib, Agg backend).

Saved without the ``Software`` metadata key and with fixed sizes, so the same values
give the same bytes: a release must be reproducible to the byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def histogram_png(
    path: Path, values: Sequence[float | None], title: str, xlabel: str, *, colour: str = "#e07b2a"
) -> None:
    """A histogram of ``values`` (None ignored) at ``path``; "no rows" when there are none."""
    numbers = [float(v) for v in values if v is not None]

    def draw(ax: Any) -> None:
        if numbers:
            ax.hist(numbers, bins=min(30, max(1, len(set(numbers)))), color=colour, edgecolor="white")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")

    _save(path, title, (5.6, 2.8), draw, empty=not numbers)


def bars_png(
    path: Path, pairs: Sequence[tuple[Any, ...]], title: str, *, limit: int = 20, colour: str = "#3b7dd8"
) -> None:
    """Horizontal bars of ``(label, count)`` pairs, the first on top, at most ``limit``."""
    pairs = list(pairs)[:limit]

    def draw(ax: Any) -> None:
        ax.barh([str(p[0]) for p in pairs][::-1], [p[1] for p in pairs][::-1], color=colour)

    _save(path, title, (5.6, max(2.0, 0.3 * len(pairs) + 1.0)), draw, empty=not pairs)


def _save(path: Path, title: str, size: tuple[float, float], draw: Callable[[Any], None], *, empty: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(ax)
        if empty:
            ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
