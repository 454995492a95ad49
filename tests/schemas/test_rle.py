"""COCO RLE helpers: exact round trips, pixel-exact boxes, and malformed input caught."""

from __future__ import annotations

import numpy as np
import pytest

from tubelet.schemas.geometry import mask_to_box
from tubelet.schemas.rle import (
    box_rle,
    decode_rle,
    empty_rle,
    encode_mask,
    encode_masks,
    merge_rles,
    rle_area,
    rle_counts,
    rle_iou,
    rle_iou_matrix,
    rle_problem,
    rle_to_box_xyxy,
)


def _masks(seed: int = 0, n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        if i % 3 == 0:  # blobs
            m = np.zeros((h, w), dtype=bool)
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = True
        else:  # noise of any density
            m = rng.random((h, w)) < rng.random()
        out.append(m)
    return out


def _runs(mask: np.ndarray) -> np.ndarray:
    """Run lengths in COCO order (column-major, background first), the slow way."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    return np.concatenate(([0], runs)) if flat.size and flat[0] else runs


@pytest.mark.parametrize("mask", _masks())
def test_round_trip_area_box_and_runs(mask: np.ndarray) -> None:
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    assert np.array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == int(mask.sum())
    assert rle_to_box_xyxy(rle) == mask_to_box(mask)
    assert np.array_equal(rle_counts(rle), _runs(mask))
    assert rle_problem(rle, mask.shape) is None


def test_uint8_input_and_box_is_pixel_exact() -> None:
    m = np.zeros((10, 20), dtype=np.uint8)
    m[3, 7] = 255  # one pixel at row 3, column 7
    rle = encode_mask(m)
    assert rle_to_box_xyxy(rle) == [7.0, 3.0, 8.0, 4.0]
    m[3:6, 7:12] = 1
    assert rle_to_box_xyxy(encode_mask(m)) == [7.0, 3.0, 12.0, 6.0]
    full = encode_mask(np.ones((10, 20), dtype=bool))
    assert rle_to_box_xyxy(full) == [0.0, 0.0, 20.0, 10.0]


def test_empty_masks() -> None:
    rle = empty_rle(6, 9)
    assert rle_area(rle) == 0
    assert rle_to_box_xyxy(rle) is None
    assert not decode_rle(rle).any() and decode_rle(rle).shape == (6, 9)
    assert rle_iou(rle, rle) == 0.0
    zero = encode_mask(np.zeros((0, 5), dtype=bool))
    assert decode_rle(zero).shape == (0, 5)
    assert encode_masks(np.zeros((0, 4, 4), dtype=bool)) == []


def test_encode_masks_matches_one_by_one() -> None:
    rng = np.random.default_rng(3)
    stack = rng.random((5, 17, 23)) < 0.3
    assert encode_masks(stack) == [encode_mask(m) for m in stack]


def test_bytes_and_uncompressed_counts_are_accepted() -> None:
    m = np.zeros((5, 4), dtype=bool)
    m[1:3, 1:3] = True
    rle = encode_mask(m)
    as_bytes = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert np.array_equal(decode_rle(as_bytes), m)
    uncompressed = {"size": [5, 4], "counts": _runs(m).tolist()}
    assert np.array_equal(decode_rle(uncompressed), m)
    assert rle_area(uncompressed) == 4


def test_iou_and_merge_match_numpy() -> None:
    rng = np.random.default_rng(7)
    a, b, c = (rng.random((30, 40)) < p for p in (0.3, 0.5, 0.1))
    ra, rb, rc = encode_mask(a), encode_mask(b), encode_mask(c)
    expected = (a & b).sum() / (a | b).sum()
    assert rle_iou(ra, rb) == pytest.approx(expected)
    assert rle_iou(ra, ra) == 1.0
    matrix = rle_iou_matrix([ra, rb, rc], [rb, rc])
    assert matrix.shape == (3, 2)
    assert matrix[0, 0] == pytest.approx(expected)
    assert matrix[2, 1] == pytest.approx(1.0)
    assert rle_iou_matrix([], [ra]).shape == (0, 1)
    assert np.array_equal(decode_rle(merge_rles([ra, rb, rc])), a | b | c)
    assert np.array_equal(decode_rle(merge_rles([ra, rb], intersect=True)), a & b)


def test_size_mismatch_is_an_error() -> None:
    a, b = empty_rle(4, 5), empty_rle(5, 4)
    with pytest.raises(ValueError, match="different sizes"):
        rle_iou(a, b)
    with pytest.raises(ValueError, match="different sizes"):
        merge_rles([a, b])
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 3, 4)))


def test_malformed_rles_are_caught_before_pycocotools() -> None:
    m = np.ones((4, 5), dtype=bool)
    good = encode_mask(m)
    # pycocotools alone would decode this into uninitialised memory: runs cover 20 of 40
    short = {"size": [8, 5], "counts": good["counts"]}
    assert "cover 20 pixels" in rle_problem(short)
    with pytest.raises(ValueError, match="cover 20 pixels"):
        decode_rle(short)
    assert "frame size" in rle_problem(good, (5, 4))
    assert "do not decode" in rle_problem({"size": [4, 5], "counts": "zz~"})
    # "P" (digit 32) has the continuation bit set: more digits should follow
    assert "middle of a number" in rle_problem({"size": [4, 5], "counts": "P"})
    # "O" (digit 31) is a complete number with its sign bit set: a negative run
    assert "negative" in rle_problem({"size": [4, 5], "counts": "O"})
    assert rle_problem({"size": [4, 5]}) is not None
    assert rle_problem("not a dict") is not None
    assert "negative" in rle_problem({"size": [-1, 5], "counts": ""})


def test_box_rle_covers_the_pixels_the_box_touches() -> None:
    rle = box_rle([2.0, 1.0, 5.0, 3.0], 6, 9)  # integer box: exactly its pixels
    mask = decode_rle(rle)
    assert rle["size"] == [6, 9] and mask.sum() == 3 * 2 and mask[1:3, 2:5].all()
    assert rle_to_box_xyxy(rle) == [2.0, 1.0, 5.0, 3.0]
    assert rle_to_box_xyxy(box_rle([1.5, 0.2, 4.1, 2.9], 6, 9)) == [1.0, 0.0, 5.0, 3.0]  # widened to whole pixels
    assert rle_to_box_xyxy(box_rle([-4.0, -1.0, 20.0, 3.0], 6, 9)) == [0.0, 0.0, 9.0, 3.0]  # clipped (amodal)
    with pytest.raises(ValueError, match="covers no pixel"):
        box_rle([10.0, 1.0, 12.0, 3.0], 6, 9)
