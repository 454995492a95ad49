"""Sam2Propagator on SAM 2.1-tiny with random weights at image_size 256 (CPU), on a few
frames of the synthetic sample. A real-checkpoint test runs when TUBELET_SAM2_CHECKPOINT
names a file.

The propagator decodes through tubelet's VideoReader, so it needs no decord (the PyAV
backend serves it the same pixels); only the comparison with sam2's own mp4 loader,
which is decord-based, needs decord."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sam2")
torch = pytest.importorskip("torch")

from tests.engine.videos import rotated_copy  # noqa: E402
from tubelet.annotators.tracking.propagator import Propagator, Region  # noqa: E402
from tubelet.annotators.tracking.sam2_propagator import Sam2Propagator  # noqa: E402
from tubelet.cli.sample import SampleInfo  # noqa: E402
from tubelet.engine.video import VideoReader  # noqa: E402
from tubelet.schemas.rle import decode_rle  # noqa: E402

SIZE = 256
W, H = 640, 360
START = 30  # the circle (2) and the triangle (3) are both in view here


@pytest.fixture(scope="module")
def sample(synthetic_sample: SampleInfo) -> SampleInfo:
    return synthetic_sample


@pytest.fixture(scope="module")
def masks(sample) -> dict[int, np.ndarray]:
    from PIL import Image

    return {f: np.asarray(Image.open(sample.masks_dir / f"{f:05d}.png")) for f in range(START - 8, START + 10)}


@pytest.fixture(scope="module")
def prop() -> Sam2Propagator:
    torch.manual_seed(0)
    p = Sam2Propagator(image_size=SIZE, device="cpu", max_window=None)
    p.load()
    return p


def _prompt(p: Sam2Propagator, frame: int, masks: dict[int, np.ndarray]) -> None:
    for obj in (2, 3):
        p.add_prompt(frame, obj, box=[0, 0, 10, 10], mask=masks[frame] == obj)


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, tubelet.annotators.tracking.sam2_propagator; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_is_a_propagator_and_validates_options() -> None:
    assert isinstance(Sam2Propagator(), Propagator)
    with pytest.raises(ValueError):
        Sam2Propagator(image_size=250)
    with pytest.raises(ValueError):
        Sam2Propagator(max_window=1)
    with pytest.raises(FileNotFoundError, match="neither a file nor a known hub id"):
        Sam2Propagator(checkpoint="no/such-model", device="cpu", image_size=SIZE).load()


def test_a_config_file_of_ones_own_is_read(tmp_path: Path) -> None:
    """sam2 composes configs by name from its package; a YAML file elsewhere (what a
    manifest's tracker_options.config resolves to) must be read, not looked up."""
    import sam2

    packaged = Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml"
    text = packaged.read_text()
    assert "image_size: 1024" in text
    own = tmp_path / "my configs" / "tiny-192.yaml"
    own.parent.mkdir()
    own.write_text(text.replace("image_size: 1024", "image_size: 192"))
    predictor = Sam2Propagator(config=str(own), device="cpu").load()
    assert predictor.image_size == 192  # the file's value, not the packaged 1024


def test_forward_shapes_ids_scores_and_rle(prop, sample, masks) -> None:
    frames = list(range(START, START + 6))
    prop.start(str(sample.video), frames)
    prop.reset()
    _prompt(prop, START, masks)
    out = list(prop.propagate(START, START + 5))
    assert [f for f, _ in out] == frames
    first = out[0][1]
    assert set(first) == {2, 3}  # a mask prompt is its own output on the prompt frame
    for obj in (2, 3):
        region = first[obj]
        assert region.mask.shape == (H, W) and region.mask.dtype == bool
        truth = masks[START] == obj
        iou = (region.mask & truth).sum() / (region.mask | truth).sum()
        assert iou > 0.9, (obj, iou)
        assert region.score > 0.99
    for _, regions in out:
        assert set(regions) <= {2, 3}
        for region in regions.values():
            assert isinstance(region, Region) and region.mask.shape == (H, W)
            assert 0.5 < region.score <= 1.0  # present means a positive object-score logit
            np.testing.assert_array_equal(decode_rle(region.mask_rle), region.mask)
    assert prop._state is None  # the window's state is released once it is walked
    prop.close()


def test_a_rotated_video_is_fed_to_sam2_upright(prop, sample, masks, tmp_path: Path) -> None:
    """A phone video (a display matrix turning the sample 90 degrees counter-clockwise): the
    model sees the frames a player shows, and masks come back at that size, so a mask prompt
    in the upright frame comes back as itself (up to SAM 2's resampling)."""
    frames = [START, START + 1]
    images = {}
    for turn in (0, 90):
        path = rotated_copy(sample.video, tmp_path / f"ccw{turn}.mp4", turn)
        prop.start(str(path), frames)
        images[turn] = prop._window_state(frames)["images"].numpy()
        if turn:
            prop.add_prompt(START, 2, mask=np.rot90(masks[START] == 2))
            regions = dict(prop.propagate(START, START + 1))
            got, truth = regions[START][2].mask, np.rot90(masks[START] == 2)
            assert got.shape == (W, H) and (got & truth).sum() / (got | truth).sum() > 0.9
        prop.close()
    # (N, 3, S, S): the square model input of the rotated copy is the upright one's, turned
    turned = np.rot90(images[0], k=1, axes=(2, 3))
    assert np.abs(images[90] - turned).mean() < 0.05 < np.abs(images[90] - images[0]).mean()


def test_reverse_order_box_prompt_and_one_frame_window(prop, sample) -> None:
    frames = list(range(START - 3, START + 1))
    with VideoReader(str(sample.video)) as reader:
        prop.start(reader, frames)
        prop.add_prompt(START, 7, box=[90, 170, 160, 250])
        out = list(prop.propagate(START, START - 3, reverse=True))
        assert [f for f, _ in out] == frames[::-1]
        assert all(set(r) <= {7} for _, r in out) and 7 in out[0][1]
        prop.reset()
        prop.add_prompt(START, 7, box=[90, 170, 160, 250])
        one = list(prop.propagate(START, START, reverse=True))  # sam2 alone yields nothing here
        assert [f for f, _ in one] == [START] and 7 in one[0][1]
        prop.close()
        assert reader.frames([START]).shape == (1, H, W, 3)  # a reader we were given stays open


def test_reset_and_two_windows_in_a_row_hold_one_window(prop, sample, masks, monkeypatch) -> None:
    frames = list(range(START, START + 7))
    prop.start(str(sample.video), frames)
    sizes = []
    real = prop._window_state

    def spy(window: list[int]):
        state = real(window)
        sizes.append(state["images"].shape)
        return state

    monkeypatch.setattr(prop, "_window_state", spy)
    _prompt(prop, START, masks)
    prop.reset()
    empty = list(prop.propagate(START, START + 3))  # reset forgot the prompts
    assert empty == [(f, {}) for f in frames[:4]] and sizes == []
    prop.reset()
    _prompt(prop, START, masks)
    a = list(prop.propagate(START, START + 3))
    prop.reset()
    for obj, region in a[-1][1].items():  # carry over, as association does
        prop.add_prompt(START + 3, obj, box=region.box, mask=region.mask)
    b = list(prop.propagate(START + 3, START + 6))
    assert [f for f, _ in a] == frames[:4] and [f for f, _ in b] == frames[3:]
    assert set(b[0][1]) == set(a[-1][1])
    # each state held its own window's frames, at the model's size
    assert sizes[-2:] == [(4, 3, SIZE, SIZE), (4, 3, SIZE, SIZE)]
    with pytest.raises(ValueError, match="outside the window"):
        prop.add_prompt(START, 2, box=[0, 0, 5, 5])
        list(prop.propagate(START + 3, START + 6))
    prop.close()


def test_closing_early_releases_the_state(prop, sample, masks) -> None:
    prop.start(str(sample.video), list(range(START, START + 5)))
    _prompt(prop, START, masks)
    stream = prop.propagate(START, START + 4)
    next(stream)
    assert not torch.is_inference_mode_enabled()  # sam2's inference mode stays inside
    assert prop._state is not None and prop._state["num_frames"] == 5
    stream.close()
    assert prop._state is None
    prop.close()


def test_same_masks_whichever_backend_decodes(prop, sample, masks) -> None:
    """The window's frames come from VideoReader at the model's size: decord and PyAV give
    the same pixels there (tests/engine/test_video_backends.py), so the same masks."""
    from tubelet.engine.video_backend import decord_import_error

    if decord_import_error():
        pytest.skip("decord is not installed: nothing to compare PyAV with")
    frames = list(range(START, START + 3))
    out = {}
    for backend in ("decord", "pyav"):
        with VideoReader(str(sample.video), backend=backend) as reader:
            prop.start(reader, frames)
            _prompt(prop, START, masks)
            out[backend] = [
                (f, {o: r.mask for o, r in regions.items()}) for f, regions in prop.propagate(START, START + 2)
            ]
            prop.close()
    assert [f for f, _ in out["decord"]] == [f for f, _ in out["pyav"]] == frames
    for (_, a), (_, b) in zip(out["decord"], out["pyav"]):
        assert set(a) == set(b) and all(np.array_equal(a[o], b[o]) for o in a)


def test_matches_a_bare_predictor_loop(prop, sample, masks) -> None:
    """Same model, same frames: our per-window state gives sam2's own answer, both ways.
    sam2's ``init_state`` reads an mp4 through decord: this comparison needs it."""
    decord = pytest.importorskip("decord")

    predictor = prop.predictor
    try:
        state = predictor.init_state(str(sample.video))
    finally:
        decord.bridge.set_bridge("native")  # sam2's mp4 loader switches decord to torch, process-wide
    frames = list(range(START, START + 4))
    prop.start(str(sample.video), frames)
    assert set(prop._window_state(frames)) == set(state)  # guards against sam2 changing its state
    for reverse in (False, True):
        first, last = (frames[-1], frames[0]) if reverse else (frames[0], frames[-1])
        predictor.reset_state(state)
        prop.reset()
        for obj in (2, 3):
            predictor.add_new_mask(state, first, obj, masks[first] == obj)
            prop.add_prompt(first, obj, mask=masks[first] == obj)
        bare = {
            f: {o: (m[0] > 0).numpy() for o, m in zip(ids, out)}
            for f, ids, out in predictor.propagate_in_video(state, first, len(frames) - 1, reverse=reverse)
        }
        ours = dict(prop.propagate(first, last, reverse))
        assert list(ours) == list(bare)
        for f, regions in ours.items():
            for obj, region in regions.items():
                truth = bare[f][obj]
                iou = (region.mask & truth).sum() / max(1, (region.mask | truth).sum())
                assert iou > 0.98, (reverse, f, obj, iou)  # measured: identical
    prop.close()


def test_max_window_chunks_and_carries_objects(sample, masks, prop) -> None:
    chunked = Sam2Propagator(image_size=SIZE, device="cpu", max_window=3)
    chunked.predictor = prop.predictor  # share the built model
    seen: list[int] = []
    real = chunked._window_state
    chunked._window_state = lambda w: (seen.append(len(w)), real(w))[1]  # type: ignore[method-assign]
    frames = list(range(START, START + 5))
    chunked.start(str(sample.video), frames)
    _prompt(chunked, START, masks)
    out = list(chunked.propagate(START, START + 4))
    assert [f for f, _ in out] == frames
    assert max(seen) <= 3 and len(seen) >= 2
    assert set(out[0][1]) == {2, 3}
    chunked.close()


@pytest.mark.skipif(
    not os.path.isfile(os.environ.get("TUBELET_SAM2_CHECKPOINT", "")),
    reason="set TUBELET_SAM2_CHECKPOINT to a SAM 2.1-tiny checkpoint file",
)
def test_real_checkpoint_follows_the_circle(sample, masks) -> None:
    p = Sam2Propagator(checkpoint=os.environ["TUBELET_SAM2_CHECKPOINT"], image_size=512, device="cpu")
    frames = list(range(START, START + 6))
    p.start(str(sample.video), frames)
    p.add_prompt(START, 2, box=[0, 0, 1, 1], mask=masks[START] == 2)
    out = dict(p.propagate(START, START + 5))
    for f in frames:
        truth = masks[f] == 2
        mask = out[f][2].mask
        assert (mask & truth).sum() / (mask | truth).sum() > 0.7
    p.close()
