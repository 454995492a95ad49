"""highlight() works on the mask's neighbourhood only: the result must equal the plain
full-frame tint + ring, for masks anywhere (edges and corners included)."""

from __future__ import annotations

import numpy as np
import pytest

from tubelet.annotators.language.visual_prompt import highlight

cv2 = pytest.importorskip("cv2")


def full_frame(
    image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float, outline_px: int
) -> np.ndarray:
    """The reference: blend and dilate over the whole frame."""
    out = image.copy()
    tint = np.asarray(colour, dtype=np.float32)
    out[mask] = np.clip(out[mask].astype(np.float32) * (1 - alpha) + tint * alpha, 0, 255).astype(np.uint8)
    if outline_px > 0 and mask.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outline_px + 1, 2 * outline_px + 1))
        ring = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask
        out[ring] = np.asarray(colour, dtype=np.uint8)
    return out


def test_highlight_equals_the_full_frame_reference() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(4, 90, 2))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), dtype=bool)
        for _ in range(int(rng.integers(0, 4))):  # 0-3 blobs, possibly touching the edges
            y, x = int(rng.integers(-5, h)), int(rng.integers(-5, w))
            mask[max(0, y) : y + int(rng.integers(1, 25)), max(0, x) : x + int(rng.integers(1, 25))] = True
        for outline in (0, 1, 3, 6):
            got = highlight(image, mask, (0, 255, 0), 0.4, outline)
            assert np.array_equal(got, full_frame(image, mask, (0, 255, 0), 0.4, outline))
    assert not np.shares_memory(highlight(image, mask), image)  # a copy, never in place
