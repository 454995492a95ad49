"""``tubelet pipelines``: every registered pipeline, every parameter with its type,
default and help, from the params models; docs/pipelines.md kept in sync with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tubelet.cli.main import main
from tubelet.cli.pipelines import REGENERATE, render_markdown, type_label, yaml_value
from tubelet.pipelines import PIPELINES, build_pipeline
from tubelet.pipelines.catalog import describe_params, describe_pipeline, pipeline_names
from tubelet.pipelines.params import PATH_RULE, params_model_of
from tubelet.pipelines.registry import builder_of

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "pipelines.md"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["pipelines", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_registered_pipeline_declares_a_model_whose_fields_all_have_help() -> None:
    """Fails when someone adds a parameter without Field(description=...)."""
    for name in PIPELINES:
        model = params_model_of(builder_of(name))
        assert model is not None, f"{name}: build is not decorated with @takes_params(Model)"
        for field, info in model.model_fields.items():
            assert info.description and info.description.strip(), f"{name}: params.{field} has no description"
        assert [p.name for p in describe_params(model) if "." not in p.name] == list(model.model_fields)


def test_a_field_without_help_is_refused() -> None:
    from pydantic import BaseModel, Field

    class Bare(BaseModel):
        helped: int = Field(0, description="has help")
        bare: int = 1

    with pytest.raises(ValueError, match=r"Bare\.bare has no description"):
        describe_params(Bare)


def test_list_names_every_pipeline_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    for name in PIPELINES:
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert describe_pipeline(name).summary in line
    code, out, _ = run(capsys, "--json")
    listed = json.loads(out)
    assert [p["name"] for p in listed] == list(PIPELINES)
    assert all(p["description"] for p in listed)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_each_pipeline_prints_every_parameter(capsys: pytest.CaptureFixture[str], name: str) -> None:
    doc = describe_pipeline(name)
    code, out, _ = run(capsys, name)
    assert code == 0 and out.startswith(f"{name}: {doc.summary}")
    flat = " ".join(out.split())
    assert doc.params
    for p in doc.params:
        header = next(line for line in out.splitlines() if line.startswith(f"  {p.name} = "))
        assert type_label(p) in header
        if not p.unset:
            assert header.startswith(f"  {p.name} = {yaml_value(p.default)}  (")
        assert " ".join(p.help.split()) in flat

    code, out, _ = run(capsys, name, "--json")
    printed = json.loads(out)
    assert code == 0 and printed["name"] == name and printed["path_rule"] == PATH_RULE
    model = params_model_of(builder_of(name))
    assert model is not None
    by_name = {p["name"]: p for p in printed["params"]}
    for field, info in model.model_fields.items():
        p = by_name[field]
        assert p["help"] == info.description and p["type"]
        assert p["default"] == json.loads(json.dumps(info.get_default(call_default_factory=True)))


def test_types_defaults_and_allowed_values_of_track(capsys: pytest.CaptureFixture[str]) -> None:
    params = {p["name"]: p for p in json.loads(run(capsys, "track", "--json")[1])["params"]}
    assert params["profile"]["allowed"] == ["lite", "full"] and params["profile"]["default"] == "lite"
    assert params["conf"]["type"] == "number | null" and params["conf"]["constraint"] == ">= 0, <= 1"
    assert params["keyframe_fps"]["type"] == "number | null" and params["keyframe_fps"]["constraint"] == "> 0"
    assert params["weights"]["type"] == "path or name | null" and params["weights"]["path"]
    assert params["open_vocab_model"]["type"] == "path or name" and params["open_vocab_model"]["path"]
    # keys inside mappings, as written in YAML
    assert params["tracker_options.checkpoint"]["path"] and "default" not in params["tracker_options.checkpoint"]
    assert not params["conf"]["path"]
    strefer = {p["name"]: p for p in json.loads(run(capsys, "strefer", "--json")[1])["params"]}
    assert strefer["track"]["params_of"] == "track" and strefer["backend_options.model"]["path"]
    assert "counting" in strefer["task_types"]["allowed"]


def test_text_explains_the_path_rule_where_there_are_paths(capsys: pytest.CaptureFixture[str]) -> None:
    track = " ".join(run(capsys, "track")[1].split())
    assert "Path or name: see Paths below." in track and " ".join(PATH_RULE.split()) in track
    assert "Paths:" not in run(capsys, "ingest")[1]


def test_unknown_pipeline_is_an_error_listing_the_known(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trak")
    assert code == 2 and not out
    assert "unknown pipeline 'trak'; did you mean 'track'?" in err
    assert all(name in err for name in PIPELINES)
    code, _, err = run(capsys, "no.such.module:build")
    assert code == 2 and "cannot load the pipeline 'no.such.module:build'" in err


def test_a_users_own_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tests.pipelines.user_pipeline:build")
    assert code == 0 and out.startswith("tests.pipelines.user_pipeline:build: reads a weights file")
    assert "  weights = required  (path or name)" in out and "  label = thing  (string)" in out
    code, out, _ = run(capsys, "tests.pipelines.user_pipeline:build_untyped")
    assert code == 0 and "declares no params model" in out and "@takes_params" in out
    assert json.loads(run(capsys, "tests.pipelines.user_pipeline:build_untyped", "--json")[1])["params"] is None


@pytest.mark.parametrize("name", list(PIPELINES))
def test_the_defaults_snippet_builds_the_default_pipeline(name: str) -> None:
    """The manifest snippet of docs/pipelines.md sets every parameter to what leaving it out gives."""
    section = render_markdown([describe_pipeline(name)]).split(f"## {name}\n", 1)[1]
    snippet = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert snippet["pipeline"] == name
    assert build_pipeline(name, snippet["params"]).config_hash == build_pipeline(name, {}).config_hash


def test_markdown_of_one_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "unistg", "--markdown")
    assert code == 0 and out.startswith("# unistg\n")
    assert "| `st_boxes` | integer, >= 1 | `4` |" in out


def test_docs_pipelines_md_is_up_to_date() -> None:
    expected = render_markdown([describe_pipeline(name) for name in pipeline_names()])
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, f"docs/pipelines.md is out of date; regenerate it with: {REGENERATE}"


def test_readme_points_at_the_pipelines_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/pipelines.md" in readme and "tubelet pipelines" in readme
