"""Shared test fixtures: where the real assets are, and an offline, loopback-only env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Offline and loopback-only for everything the tests start.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _assets_dir() -> Path | None:
    configured = os.environ.get("TUBELET_ASSETS")
    path = Path(configured) if configured else ROOT.parent / "shared" / "assets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real test assets (``TUBELET_ASSETS`` or ../shared/assets); skip when absent."""
    path = _assets_dir()
    if path is None:
        pytest.skip("real assets not found (set TUBELET_ASSETS or provide ../shared/assets)")
    return path
