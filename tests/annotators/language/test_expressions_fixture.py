"""Lite referring expressions on hand-labelled real frames (``expression_fixture``): every
garment colour, object colour and relation said is true, no expression holds a false
or unfit statement, and no person is named by a colour of the whole body.

Needs the bundled videos (``TUBELET_ASSETS``); skips without them. docs/benchmarks.md
("Referring expressions (issue 15)") has the figures before and after, from
``bench/bench_expressions.py fixture``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.annotators.language.expression_fixture import load_fixture, score_fixture


@pytest.fixture(scope="module")
def score(assets: Path):
    if not (assets / "videos" / "sam2-demo").is_dir():
        pytest.skip("the sam2-demo videos are not in the assets folder")
    return score_fixture(assets)


def test_fixture_labels_are_complete() -> None:
    for video in load_fixture()["videos"]:
        for name, label in video["objects"].items():
            assert set(label["boxes"]) == {str(f) for f in video["frames"]}, name
            assert ("upper" in label and "lower" in label) != ("colour" in label), name
        for pair in video["relations"]:
            assert set(pair["horizontal"]) == set(pair["size"]) == {str(f) for f in video["frames"]}


def test_everything_said_is_true(score) -> None:
    figures = score.figures()
    assert score.false == [], score.texts
    assert figures["expressions_with_a_false_statement"] == 0.0
    assert figures["garment_colour_accuracy"] == 1.0 and score.garments_said >= 3  # said of some, right on all
    assert figures["object_colour_accuracy"] == 1.0 and score.object_colours_said == 3
    assert figures["relation_accuracy"] == 1.0 and score.relations_said >= 4


def test_no_person_has_a_whole_body_colour(score) -> None:
    assert score.whole_body_person_colours == 0
    people = [t for t in score.texts if t.split(":")[0] in ("woman", "man", "boy", "girl")]
    assert len(people) == 4 and all("'the person" in t for t in people)
