"""People are described by what they wear (upper / lower garment colours on body bands of
the mask, skin left out), never by a colour of the whole body."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tubelet.annotators.language.attributes import measure_video
from tubelet.annotators.language.colours import colour_name
from tubelet.annotators.language.entities import lite_expressions
from tubelet.annotators.language.garments import GarmentConfig, body_bands, garment_colours, is_person, skin
from tubelet.schemas import Tubelet, TubeletFrame
from tubelet.schemas.rle import encode_mask

W, H = 200, 300
#: Skin tones from light to dark (sRGB), all of which the skin rule must catch.
SKINS = [(224, 172, 150), (198, 134, 100), (141, 85, 60), (90, 56, 40)]
HAIR = (25, 20, 18)


def person_image(top: tuple[int, int, int], bottom: tuple[int, int, int], skin_rgb: tuple[int, int, int]):
    """A standing figure on a grey background: hair and face, a top with bare arms,
    bottoms, then bare shins; returns (image, mask)."""
    image = np.full((H, W, 3), 128, np.uint8)
    mask = np.zeros((H, W), bool)
    x1, x2 = 70, 130

    def paint(r1: int, r2: int, c1: int, c2: int, rgb: tuple[int, int, int]) -> None:
        image[r1:r2, c1:c2] = rgb
        mask[r1:r2, c1:c2] = True

    paint(20, 35, 85, 115, HAIR)  # hair
    paint(35, 60, 88, 112, skin_rgb)  # face
    paint(60, 150, x1, x2, top)  # top
    paint(60, 140, x1 - 12, x1, skin_rgb)  # bare arms
    paint(60, 140, x2, x2 + 12, skin_rgb)
    paint(150, 230, x1 + 5, x2 - 5, bottom)  # bottoms (shorts or trousers)
    paint(230, 280, x1 + 8, x2 - 8, skin_rgb)  # bare shins
    return image, mask


def person_tubelet(mask: np.ndarray, category: str = "person", n: int = 3) -> Tubelet:
    ys, xs = np.nonzero(mask)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    frames = [TubeletFrame(i, i / 10, list(box), mask_rle=encode_mask(mask)) for i in range(n)]
    return Tubelet("v:p", "v", category, "test", "p", 10.0, W, H, frames)


@pytest.mark.parametrize("skin_rgb", SKINS)
def test_a_person_is_named_by_clothes_whatever_the_skin(skin_rgb: tuple[int, int, int]) -> None:
    image, mask = person_image((200, 30, 30), (40, 80, 200), skin_rgb)
    tube = person_tubelet(mask)
    attrs = measure_video([tube], dict.fromkeys(range(3), image))[tube.tubelet_id]
    assert attrs["colour"] is None and attrs["colours"] == {}  # no colour of the whole person
    assert (attrs["garments"]["upper"], attrs["garments"]["lower"]) == ("red", "blue")
    [(text, record)] = lite_expressions([tube], {tube.tubelet_id: attrs}).values()
    assert text == "the person in a red top and blue bottoms" and record["used"] == ["colour"]


@pytest.mark.parametrize("skin_rgb", SKINS)
def test_skin_is_never_a_garment_colour(skin_rgb: tuple[int, int, int]) -> None:
    # bare-chested in skin-coloured shorts: nothing is said, rather than the skin's colour
    image, mask = person_image(skin_rgb, skin_rgb, skin_rgb)
    tube = person_tubelet(mask)
    attrs = measure_video([tube], dict.fromkeys(range(3), image))[tube.tubelet_id]
    assert attrs["garments"]["upper"] is None and attrs["garments"]["lower"] is None
    [(text, _)] = lite_expressions([tube], {tube.tubelet_id: attrs}).values()
    assert text == "the person"
    assert skin(np.array([skin_rgb], np.uint8)).all()


def test_fabrics_are_not_skin() -> None:
    fabrics = [(245, 245, 245), (230, 222, 205), (128, 128, 128), (40, 60, 90), (200, 30, 30), (20, 20, 20)]
    assert not skin(np.array(fabrics, np.uint8)).any()  # white, cream, grey, denim, red, black


def test_whole_body_colour_words_never_reach_a_person_expression() -> None:
    # the case: a dark-haired person in a white top and dark jeans used to be
    # "the black person" (the whole mask's colour); same scene, two people
    a_img, a_mask = person_image((245, 245, 245), (40, 60, 90), SKINS[0])
    b_img, b_mask = person_image((20, 20, 20), (20, 20, 20), SKINS[3])
    image = np.concatenate([a_img, b_img], axis=1)
    frames = dict.fromkeys(range(3), image)
    left = person_tubelet(np.concatenate([a_mask, np.zeros_like(b_mask)], axis=1))
    right = person_tubelet(np.concatenate([np.zeros_like(a_mask), b_mask], axis=1))
    for t, tid in ((left, "v:a"), (right, "v:b")):
        t.tubelet_id, t.width = tid, 2 * W
    measured = measure_video([left, right], frames)
    texts = {tid: text for tid, (text, _) in lite_expressions([left, right], measured).items()}
    assert texts == {"v:a": "the person in a white top and blue bottoms", "v:b": "the person dressed in black"}
    colours = "|".join(["black", "white", "grey", "brown", "pink", "orange", "yellow", "red"])
    assert not any(re.search(rf"\b({colours}) person\b", t) for t in texts.values())


def test_cut_or_lying_people_are_not_measured() -> None:
    config = GarmentConfig()
    _, mask = person_image((200, 30, 30), (40, 80, 200), SKINS[0])
    assert body_bands(mask, config) is not None
    assert body_bands(np.roll(mask, -20, axis=0), config) is None  # the head is cut by the top
    assert body_bands(np.roll(mask, 25, axis=0), config) is None  # the feet by the bottom
    lying = np.zeros((W, H), bool)
    lying[:, :] = np.rot90(mask)[:W, :H]
    assert body_bands(lying, config) is None
    image, _ = person_image((200, 30, 30), (40, 80, 200), SKINS[0])
    worn = garment_colours([(image, np.roll(mask, -20, axis=0))], config)
    assert worn["frames"] == 0 and worn["upper"] is None


def test_a_two_colour_top_is_not_named() -> None:
    image, mask = person_image((200, 30, 30), (40, 80, 200), SKINS[1])
    image[60:150, 100:130] = (40, 160, 60)  # half red, half green
    worn = garment_colours([(image, mask)], GarmentConfig())
    assert worn["upper"] is None and set(worn["upper_colours"]) >= {"red", "green"}
    assert worn["lower"] == "blue"


def test_person_categories() -> None:
    assert all(is_person(c) for c in ("person", "Woman", "young man", "pedestrian", "child"))
    assert not any(is_person(c) for c in ("dog", "horse and rider", "personal computer", ""))


@pytest.mark.parametrize(
    ("rgb", "name"),
    [((40, 60, 90), "blue"), ((30, 45, 70), "blue"), ((206, 199, 191), "white"), ((110, 110, 112), "grey")],
)
def test_dark_and_muted_garment_colours(rgb: tuple[int, int, int], name: str) -> None:
    # dark denim is blue by its hue, not black as the nearest Lab prototype had it
    assert colour_name(np.array([rgb], np.uint8)) == name


def test_in_between_colours_have_no_name() -> None:
    # a faded slate (chroma 8-15) and a dark grey between black and grey: no word is safe
    assert colour_name(np.array([(100, 110, 125)], np.uint8)) is None
    assert colour_name(np.array([(60, 60, 60)], np.uint8)) is None
