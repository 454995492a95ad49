"""Visual prompts (highlight where the mask is and nowhere else, crops, time sampling) and
the versioned prompt templates."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from tubelet.annotators.language.prompts import (
    ENTITY_DESCRIBE,
    ENTITY_DISAMBIGUATE,
    TEMPLATES,
    PromptTemplate,
    get_template,
)
from tubelet.annotators.language.visual_prompt import (
    VisualPromptConfig,
    crop_box,
    fit,
    frames_needed,
    highlight,
    sample_frames,
    visual_prompt,
)
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_mask

H, W = 120, 160


def _square(x1: int, y1: int, side: int = 20) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y1 : y1 + side, x1 : x1 + side] = True
    return mask


def _tubelet(masks: dict[int, np.ndarray | None], with_masks: bool = True, fps: float = 10.0) -> Tubelet:
    rows = []
    for i in sorted(masks):
        m = masks[i]
        if m is None:
            rows.append(TubeletFrame(frame_idx=i, t_s=i / fps, box_xyxy=[0, 0, 1, 1], visible=False))
            continue
        ys, xs = np.nonzero(m)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        rows.append(
            TubeletFrame(frame_idx=i, t_s=i / fps, box_xyxy=box, mask_rle=encode_mask(m) if with_masks else None)
        )
    return Tubelet(
        tubelet_id="v:t:1",
        video_id="v",
        category="thing",
        source="test",
        track_id="1",
        fps=fps,
        width=W,
        height=H,
        frames=rows,
    )


def _grey_frames(indices: list[int]) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    return {i: rng.integers(60, 140, (H, W, 3), dtype=np.uint8) for i in indices}


def test_highlight_changes_the_mask_and_a_thin_ring_only() -> None:
    image = np.full((H, W, 3), 100, np.uint8)
    mask = _square(50, 40, 30)
    out = highlight(image, mask, colour=(255, 0, 0), alpha=0.5, outline_px=2)
    assert image[0, 0, 0] == 100  # the input is not modified
    assert np.all(out[mask] == [177, 50, 50])  # tinted: half grey, half red (truncated)
    changed = np.any(out != image, axis=2)
    ys, xs = np.nonzero(changed)
    # the ring lies just outside the mask: nothing farther than outline_px changed
    assert ys.min() >= 40 - 2 and ys.max() <= 69 + 2 and xs.min() >= 50 - 2 and xs.max() <= 79 + 2
    ring = changed & ~mask
    assert ring.sum() > 0 and np.all(out[ring] == [255, 0, 0])
    assert changed[40 - 2, 60] and not changed[40 - 3, 60]


def test_visual_prompt_highlights_each_sampled_frame_where_the_object_is() -> None:
    masks = {i: _square(10 + 10 * i, 50) for i in range(10)}
    tube = _tubelet(masks)
    frames = _grey_frames(list(masks))
    prompt = visual_prompt(tube, frames, VisualPromptConfig(n_frames=3, max_side=None))
    assert prompt.frame_idx == [0, 4, 9] or prompt.frame_idx == [0, 5, 9]
    assert prompt.views == ["highlight"] * 3 and len(prompt.images) == 3
    for image, idx in zip(prompt.images, prompt.frame_idx):
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        changed = np.any(image != frames[idx], axis=2)
        assert changed[masks[idx]].all()  # every object pixel is marked
        far = ~_grow(masks[idx], 4)
        assert not changed[far].any()  # and nothing away from it
    assert "Image 1: the whole frame at 0.00 s" in prompt.describe()


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    out = np.zeros_like(mask)
    out[max(0, ys.min() - px) : ys.max() + px + 1, max(0, xs.min() - px) : xs.max() + px + 1] = True
    return out


def test_box_only_tubelets_highlight_their_box() -> None:
    masks = {0: _square(30, 30, 20), 1: _square(40, 30, 20)}
    tube = _tubelet(masks, with_masks=False)
    frames = _grey_frames([0, 1])
    prompt = visual_prompt(tube, frames, VisualPromptConfig(n_frames=2, outline_px=0, max_side=None))
    changed = np.any(prompt.images[1] != frames[1], axis=2)
    assert np.array_equal(changed, masks[1])


def test_crop_holds_the_object_with_its_margin_and_stays_in_the_frame() -> None:
    masks = {0: _square(100, 30, 20)}
    frames = _grey_frames([0])
    prompt = visual_prompt(
        _tubelet(masks),
        frames,
        VisualPromptConfig(n_frames=1, views=("highlight", "crop"), crop_margin=0.5, max_side=None),
    )
    assert prompt.views == ["highlight", "crop"]
    crop = prompt.images[1]
    assert crop.shape == (40, 40, 3)  # 20 px + 50 % on each side
    # the crop starts 10 px before the object: its inside is the source's pixels
    assert np.array_equal(crop[15:25, 15:25], frames[0][35:45, 105:115])
    assert crop_box([150, 100, 160, 120], H, W, margin=0.5, min_px=32) == (128, 80, 160, 120)  # shifted inside


def test_sampling_skips_invisible_frames_and_is_even_in_time() -> None:
    masks: dict[int, np.ndarray | None] = {i: _square(10 + i, 10) for i in range(21)}
    masks[10] = None
    tube = _tubelet(masks)
    picked = [f.frame_idx for f in sample_frames(tube, 3)]
    assert picked[0] == 0 and picked[-1] == 20 and picked[1] in (9, 11)
    assert len(sample_frames(tube, 50)) == 20  # never more than the visible frames
    assert frames_needed([tube, tube], 3) == picked


def test_fit_bounds_the_longest_side() -> None:
    image = np.zeros((300, 1000, 3), np.uint8)
    assert fit(image, 500).shape == (150, 500, 3)
    assert fit(image, 2000) is image


def test_config_rejects_unknown_views() -> None:
    with pytest.raises(ValueError, match="views"):
        VisualPromptConfig(views=("zoom",))


# -- prompt templates --------------------------------------------------------------

#: Fingerprints of released versions: editing a template's text or schema must come with
#: a new version (and a new line here), else rows would record a version that lies.
RELEASED = {"entity_describe@1": "eb227d7bdfa7", "entity_disambiguate@1": "9a20994f4b63"}


def test_released_templates_are_unchanged_unless_their_version_is() -> None:
    assert {t.id: t.fingerprint for t in TEMPLATES.values()} == RELEASED


def test_templates_render_their_fields_and_schemas_are_valid() -> None:
    for template in TEMPLATES.values():
        jsonschema.Draft202012Validator.check_schema(template.schema)
    assert ENTITY_DESCRIBE.fields == {"marker", "image_guide", "category_hint", "start_s", "end_s", "others"}
    text = ENTITY_DISAMBIGUATE.render(
        marker="red", image_guide="Image 1", expression="the dog", competing='"the dog" (a dog)'
    )
    assert 'described as "the dog"' in text
    with pytest.raises(KeyError, match="missing fields"):
        ENTITY_DESCRIBE.render(marker="red")
    with pytest.raises(KeyError, match="unknown"):
        get_template("nope")
    with pytest.raises(ValueError, match="plain name"):
        PromptTemplate(name="x", version="1", text="{0}")
    template = PromptTemplate(name="x", version="2", text="a {b}")
    assert template.id == "x@2" and template.render(b="c") == "a c"
