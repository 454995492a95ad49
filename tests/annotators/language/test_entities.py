"""DescribeEntities: lite expressions unique within a video; VLM mode through the tiny
random model (garbage -> clean rejects) and a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.annotators.language.fake_server import CallbackChatServer, FakeChatServer
from tests.annotators.language.test_attributes import make_scene
from tests.samples import fresh_copy
from tubelet.annotators.importers.stage import ImportAnnotations
from tubelet.annotators.language.entities import DescribeEntities, generalized_noun, normalise_expression, ordinal
from tubelet.annotators.language.prompts import ENTITY_DESCRIBE
from tubelet.engine.probe import ProbeVideo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask


@pytest.fixture
def sample_task(imported_sample: VideoTask) -> VideoTask:
    return fresh_copy(imported_sample)  # a fresh task each time (tests relabel categories)


def _run(stage: DescribeEntities, task: VideoTask) -> VideoTask:
    with stage.started():
        [done] = run_stage(stage, [task])
    assert not done.failed, done.rejects
    return done


def _expressions(task: VideoTask) -> dict[str, str]:
    return {e.tubelet_id: e.referring_expression for e in task.entities}


# -- lite ---------------------------------------------------------------------------


def test_lite_entities_of_the_sample(sample_task: VideoTask) -> None:
    task = _run(DescribeEntities(), sample_task)
    assert [e.entity_id for e in task.entities] == [f"{t.tubelet_id}:entity" for t in task.tubelets]
    by_cat = {e.category: e for e in task.entities}
    # the colour is already in the category: not said twice
    assert by_cat["red square"].referring_expression == "the red square"
    for e in task.entities:
        assert e.model_id == "lite" and e.prompt_version == "entity_lite@2" and e.caption is None
        assert e.attributes["expression"]["unique"] is True
        json.dumps(e.attributes)


def test_same_category_is_told_apart_by_colour(sample_task: VideoTask) -> None:
    task = sample_task
    for t in task.tubelets:
        t.category = "shape"
    task = _run(DescribeEntities(), task)
    assert sorted(_expressions(task).values()) == ["the blue shape", "the green shape", "the red shape"]


def test_same_colour_falls_back_to_position_then_motion_then_ordinal(tmp_path: Path) -> None:
    red = (200, 30, 30)
    task = make_scene(
        tmp_path / "v",
        [
            ("box", red, 10, lambda i: (30.0, 90.0)),  # left, still
            ("box", red, 10, lambda i: (160.0, 60.0 + 2 * i)),  # centre, moving down
            ("box", red, 10, lambda i: (170.0, 120.0 - 2 * i)),  # centre, moving up
            ("dog", (40, 80, 200), 10, lambda i: (290.0, 90.0)),
        ],
    )
    task = _run(DescribeEntities(), task)
    got = _expressions(task)
    assert got["scene:t:0"] == "the red box on the left"
    assert got["scene:t:1"] == "the red box in the centre, moving down"
    assert got["scene:t:2"] == "the red box in the centre, moving up"
    assert got["scene:t:3"] == "the blue dog"
    assert task.entities[3].generalized_noun == "animal"
    assert len({normalise_expression(v) for v in got.values()}) == 4

    twins = make_scene(
        tmp_path / "w",
        [
            ("box", red, 8, lambda i: (140.0, 90.0)),
            ("box", red, 8, lambda i: (190.0, 90.0)),
        ],
    )
    twins = _run(DescribeEntities(), twins)
    assert _expressions(twins) == {
        "scene:t:0": "the first box from the left",
        "scene:t:1": "the second box from the left",
    }
    assert all(
        e.attributes["expression"] == {"method": "ordinal", "used": ["ordinal"], "unique": True} for e in twins.entities
    )


def test_relation_to_a_named_object_disambiguates(tmp_path: Path) -> None:
    red = (200, 30, 30)
    # two red cars in the same place class and both still; only one is above the dog
    task = make_scene(
        tmp_path / "v",
        [
            ("car", red, 8, lambda i: (130.0, 70.0)),
            ("car", red, 8, lambda i: (200.0, 115.0)),
            ("dog", (40, 80, 200), 8, lambda i: (130.0, 110.0) if i < 6 else (-50.0, -50.0)),
        ],
    )
    got = _expressions(_run(DescribeEntities(base_attributes=()), task))
    assert got["scene:t:0"] == "the car above the dog"
    assert got["scene:t:1"] != got["scene:t:0"] and got["scene:t:2"] == "the dog"


def test_tubelet_without_visible_frames_is_a_reject(tmp_path: Path) -> None:
    task = make_scene(tmp_path / "v", [("a", (200, 30, 30), 8, lambda i: (50.0, 50.0))], n=3)
    for row in task.tubelets[0].frames:
        row.visible = False
    task = _run(DescribeEntities(), task)
    assert task.entities == [] and [r.item for r in task.rejects] == ["scene:t:0"]


def test_nouns_ordinals_and_config_errors() -> None:
    assert [generalized_noun(c) for c in ("person", "Dog", "car", "pizza", "swan")] == [
        "person",
        "animal",
        "vehicle",
        "food",
        "swan",
    ]
    assert [ordinal(n) for n in (1, 3, 11, 12, 22)] == ["first", "third", "11th", "12th", "22nd"]
    assert normalise_expression("The red  car, on the left.") == "red car on the left"
    with pytest.raises(ValueError, match="mode"):
        DescribeEntities(mode="gpt")
    with pytest.raises(ValueError, match="unknown option"):
        DescribeEntities(mode="vlm", backend="openai", backend_options={"modle": "x"})
    assert not DescribeEntities().needs_actor and DescribeEntities(mode="vlm", backend="openai").needs_actor


# -- VLM: a scripted OpenAI-compatible server -----------------------------------------

ScriptedServer = CallbackChatServer  # replies answer(prompt)


def _hint(prompt: str) -> str:
    return re.search(r'labelled the object "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]


def _answer(category: str, expression: str) -> str:
    return json.dumps(
        {
            "category": category.split()[-1],
            "generalized_noun": "shape",
            "referring_expression": expression,
            "attributes": [category.split()[0], "moving"],
            "caption": f"a {category} sliding across the frame",
        }
    )


def _vlm_stage(server: FakeChatServer, **kw: Any) -> DescribeEntities:
    return DescribeEntities(
        mode="vlm",
        backend="openai",
        n_frames=2,
        backend_options={"base_url": server.base_url, "model": "fake-vlm", "api_key_env": None, "max_retries": 0},
        **kw,
    )


def test_vlm_answers_fill_the_entities(sample_task: VideoTask) -> None:
    with ScriptedServer(lambda p: f"Here you go:\n```json\n{_answer(_hint(p), 'the ' + _hint(p))}\n```") as server:
        task = _run(_vlm_stage(server), sample_task)
    assert len(server.bodies) == 3 and task.rejects == []
    for e in task.entities:
        assert e.referring_expression == f"the {e.category}" and e.caption.startswith(f"a {e.category}")
        assert e.model_id == "fake-vlm" and e.prompt_version == ENTITY_DESCRIBE.id
        assert e.generalized_noun == "shape" and e.attributes["described"][1] == "moving"
        assert e.attributes["colour"] == e.category.split()[0]  # measured attributes kept
        assert e.attributes["expression"] == {"method": "model", "unique": True}
    body = server.bodies[0]
    images = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
    assert len(images) == 2 and body["response_format"]["json_schema"]["schema"] == ENTITY_DESCRIBE.schema


def test_malformed_answers_are_retried_then_rejected(sample_task: VideoTask) -> None:
    def answer(prompt: str) -> str:
        hint = _hint(prompt)
        if hint == "green circle":
            return '{"category": "circle", oops'  # never valid
        if hint == "red square" and "previous answer was rejected" not in prompt:
            return '{"category": "square"}'  # schema violation first, fixed on the re-ask
        return _answer(hint, "the " + hint)

    with ScriptedServer(answer) as server:
        task = _run(_vlm_stage(server, retries=2), sample_task)
    assert sorted(e.category for e in task.entities) == ["blue triangle", "red square"]
    [reject] = task.rejects
    assert reject.item == "sample-scene:davis:2" and reject.stage == "describe_entities"
    assert "after 3 asks" in reject.reason and "malformed JSON" in reject.reason
    assert len(server.bodies) == 3 + 1 + 2  # first asks, the square's re-ask, the circle's two


def test_duplicated_expressions_are_asked_again_then_measured(imported_sample: VideoTask) -> None:
    captions = {c: f"a {c} sliding across the frame" for c in ("red square", "green circle", "blue triangle")}

    def which(prompt: str) -> str:  # the disambiguation prompt lists the *other* captions
        return next(c for c, cap in captions.items() if cap not in prompt)

    def answer_reask(prompt: str) -> str:
        if "described as" in prompt:
            c = which(prompt)
            return json.dumps({"referring_expression": f"the {c.split()[0]} shape"})
        return _answer(_hint(prompt), "the shape")

    with ScriptedServer(answer_reask) as server:
        task = _run(_vlm_stage(server), fresh_copy(imported_sample))
    assert sorted(_expressions(task).values()) == ["the blue shape", "the green shape", "the red shape"]
    assert all(e.attributes["expression"] == {"method": "model-reask", "unique": True} for e in task.entities)
    assert all(e.prompt_version == "entity_describe@1+entity_disambiguate@1" for e in task.entities)

    def stubborn(prompt: str) -> str:
        if "described as" in prompt:
            return json.dumps({"referring_expression": "the shape"})
        return _answer(_hint(prompt), "the shape")

    with ScriptedServer(stubborn) as server:
        task = _run(_vlm_stage(server), fresh_copy(imported_sample))
    by_cat = {e.category: e for e in task.entities}
    assert by_cat["red square"].referring_expression == "the shape (red)"
    assert by_cat["red square"].attributes["expression"] == {
        "method": "model+measured",
        "used": ["colour"],
        "unique": True,
    }
    assert len({normalise_expression(e.referring_expression) for e in task.entities}) == 3


# -- VLM: the tiny random model --------------------------------------------------------


def test_tiny_random_model_output_is_retried_then_rejected_cleanly(
    sample_task: VideoTask, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl

    path = build_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-vlm"))
    stage = DescribeEntities(
        mode="vlm",
        backend="transformers",
        n_frames=2,
        retries=1,
        max_new_tokens=12,
        backend_options={"model": str(path), "device": "cpu", "batch_size": 4},
    )
    task = _run(stage, sample_task)
    stage.teardown()
    assert task.entities == []
    assert sorted(r.item for r in task.rejects) == sorted(t.tubelet_id for t in task.tubelets)
    assert all(r.stage == "describe_entities" and "after 2 asks" in r.reason for r in task.rejects)


# -- DAVIS ----------------------------------------------------------------------------------


def test_lite_entities_on_davis_ground_truth(assets: Path) -> None:
    rows = [json.loads(line) for line in (Path(__file__).parents[3] / "manifests/lists/davis2016.jsonl").open()]
    tasks = []
    for row in rows:
        if row["video_id"] not in ("dog", "car-shadow"):
            continue
        local = {
            key: str(assets / value.split("shared/assets/", 1)[1])
            for key, value in (("uri", row["uri"]), ("path", row["annotations"]["path"]))
        }
        tasks.append(
            VideoTask(
                video_id=row["video_id"],
                uri=local["uri"],
                fps=24,
                annotations={**row["annotations"], "path": local["path"]},
            )
        )
    done = run_stage(DescribeEntities(), run_stage(ImportAnnotations(), run_stage(ProbeVideo(), tasks)))
    entities = {t.video_id: t.entities for t in done}
    [dog], [car] = entities["dog"], entities["car-shadow"]
    # a cream golden retriever; a silver car that drives left, then away from the camera
    assert dog.attributes["colour"] == "white" and dog.generalized_noun == "animal"
    # it runs towards the camera and to the right: right on most frame pairs, down on too few
    assert dog.attributes["direction"] == "right" and dog.attributes["depth"] == "closer"
    assert dog.attributes["checks"]["direction"] >= 0.8
    assert car.attributes["colour"] == "grey" and car.generalized_noun == "vehicle"
    assert car.attributes["velocity"][0] < 0 and car.attributes["depth"] == "away"
    assert car.referring_expression == "the grey car" and dog.referring_expression == "the white dog"
