"""meta/info.json: round trip, atomic write, refusing a newer major schema."""

from __future__ import annotations

import json

import pytest

from tubelet.schemas.info import DatasetInfo, RunInfo, SchemaVersionError, read_info, write_info
from tubelet.schemas.version import SCHEMA_VERSION, parse_version


def _info() -> DatasetInfo:
    return DatasetInfo(
        pipeline="ingest",
        config_hash="abc",
        tubelet_version="0.1.0",
        params={"a": 1},
        model_ids={"probe": "ffprobe"},
        counts={"videos": 3},
        created_at="2025-01-01T00:00:00+00:00",
        updated_at="2025-01-01T00:00:00+00:00",
        runs=[RunInfo(run_id="r1", started_at="t", done=3)],
    )


def test_round_trip_and_no_temp_files(tmp_path):
    path = tmp_path / "meta" / "info.json"
    write_info(path, _info())
    assert read_info(path) == _info()
    assert read_info(tmp_path) == _info()  # the dataset root works too
    assert [p.name for p in path.parent.iterdir()] == ["info.json"]


def test_newer_major_is_refused_with_a_clear_error(tmp_path):
    major = parse_version(SCHEMA_VERSION)[0]
    path = tmp_path / "info.json"
    data = _info().to_dict()
    data["schema_version"] = f"{major + 1}.0.0"
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match=rf"schema version {major + 1}\.0\.0.*upgrade tubelet"):
        read_info(path)


def test_newer_minor_reads_and_ignores_unknown_keys(tmp_path):
    major, minor, _ = parse_version(SCHEMA_VERSION)
    data = _info().to_dict()
    data["schema_version"] = f"{major}.{minor + 1}.0"
    data["future_field"] = {"x": 1}
    data["runs"][0]["future_run_field"] = 2
    path = tmp_path / "info.json"
    path.write_text(json.dumps(data))
    info = read_info(path)
    assert info.schema_version == f"{major}.{minor + 1}.0"
    assert info.runs[0].done == 3


@pytest.mark.parametrize("text", ["{not json", "[]", '{"pipeline": "x"}'])
def test_not_an_info_file(tmp_path, text):
    path = tmp_path / "info.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        read_info(path)


def test_missing_info(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset info"):
        read_info(tmp_path)


def test_schemas_import_nothing_of_the_project():
    import ast
    from pathlib import Path

    import tubelet.schemas

    for path in Path(tubelet.schemas.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert name.split(".")[0] not in {"engine", "annotators", "pipelines"}, f"{path.name} imports {name}"
