"""``llava-video``: every item of the demo, DAVIS-2016 and MOT17-mini releases (frame folders and mp4)
loads the way its consumer's loader reads it (tests/release/consumers.py)."""

from __future__ import annotations

import pytest

from tests.release.conftest import RELEASES
from tests.release.consumers import Media, assert_release_loads


@pytest.mark.parametrize("name", RELEASES)
def test_every_item_loads(request: pytest.FixtureRequest, name: str) -> None:
    released = request.getfixturevalue(name)
    assert_release_loads(released, "llava-video", Media())
