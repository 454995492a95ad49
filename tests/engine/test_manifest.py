"""Manifest loading: line-numbered errors, overrides, video lists, paths and ids."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tubelet.engine.config import VideoList
from tubelet.engine.manifest import (
    Duplicates,
    ManifestError,
    expand_videos,
    iter_videos,
    load_manifest,
    stable_video_id,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ManifestError) as info:
        load_manifest(path, overrides)
    return str(info.value)


# ------------------------------------------------------------------------- errors


def test_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - uri: a.mp4
          - uri: b.mp4
          - uri: c.mp4
            fps: 0
        """,
    )
    assert error_of(m) == f"{m}:7: videos[2].fps: Input should be greater than 0"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        shard_sise: 4
        videos:
          - uri: a.mp4
        """,
    )
    message = error_of(m)
    assert message.startswith(f"{m}:3: shard_sise: unknown key; did you mean 'shard_size'?")
    assert "base_dir" not in message  # loader-owned fields are not offered


def test_unknown_nested_key_and_bad_type(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        shard_size: many
        ray:
          num_cpu: 2
        videos:
          - uri: a.mp4
            annotations: {format: davis, path: masks, colour: red}
        """,
    )
    lines = error_of(m).splitlines()
    assert f"{m}:3: shard_size: Input should be a valid integer, unable to parse string as an integer" in lines
    assert any(line.startswith(f"{m}:5: ray.num_cpu: unknown key; did you mean 'num_cpus'?") for line in lines)
    assert lines[2] == f"{m}:8: videos[0].annotations.colour: unknown key (expected one of: format, path, categories)"
    assert len(lines) == 3  # in the order of the file


def test_missing_required_keys(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        name: nothing
        videos:
          - uri: a.mp4
        """,
    )
    lines = error_of(m).splitlines()
    assert lines == [f"{m}:1: pipeline: required key is missing", f"{m}:1: output: required key is missing"]


def test_video_list_entry_errors_are_about_the_list(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - path: lists/v.jsonl
            bogus: 1
        """,
    )
    write(tmp_path / "lists" / "v.jsonl", '{"uri": "a.mp4"}\n')
    # Only the VideoList reading of the entry is reported, not "uri is missing".
    assert error_of(m).splitlines() == [
        f"{m}:5: videos[0].bogus: unknown key (expected one of: path, format, defaults)"
    ]


def test_yaml_syntax_error_has_the_line(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out: x
        videos:
          - uri: a.mp4
        """,
    )
    assert error_of(m) == f"{m}:2: YAML syntax error: mapping values are not allowed here"


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - uri: a.mp4
        output: other
        """,
    )
    assert error_of(m) == f"{m}:5: duplicate key 'output'"


def test_missing_list_file_and_unknown_format(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - path: lists/none.jsonl
          - path: lists/v.txt
        """,
    )
    write(tmp_path / "lists" / "v.txt", "a.mp4\n")
    lines = error_of(m).splitlines()
    assert lines[0] == f"{m}:4: videos[0].path: list file not found: {tmp_path / 'lists' / 'none.jsonl'}"
    assert lines[1].startswith(f"{m}:5: videos[1].path: cannot tell the list format")


def test_unknown_default_field(tmp_path: Path) -> None:
    write(tmp_path / "v.jsonl", '{"uri": "a.mp4"}\n')
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - path: v.jsonl
            defaults:
              fsp: 24
        """,
    )
    assert error_of(m).startswith(f"{m}:6: videos[0].defaults.fsp: unknown field; did you mean 'fps'?")


def test_unreadable_and_empty_manifests(tmp_path: Path) -> None:
    assert "cannot read manifest" in error_of(tmp_path / "nope.yaml")
    assert error_of(write(tmp_path / "empty.yaml", "\n")) == f"{tmp_path / 'empty.yaml'}:1: the manifest is empty"
    assert "a manifest is a mapping" in error_of(write(tmp_path / "list.yaml", "- a\n- b\n"))


# ------------------------------------------------------------------------ overrides


def test_overrides_parse_yaml_scalars_and_create_keys(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        params: {decode_check: true}
        videos:
          - uri: a.mp4
        """,
    )
    config = load_manifest(
        m, ["params.decode_check=false", "ray.num_cpus=2", "shard_size=8", "videos.0.fps=12.5", "name=my run"]
    )
    assert config.params == {"decode_check": False}
    assert config.ray.num_cpus == 2
    assert config.shard_size == 8
    assert config.videos[0].fps == 12.5
    assert config.name == "my run"
    assert config.base_dir == str(tmp_path)
    assert config.manifest_path == str(m.resolve())


def test_bad_override_names_the_override(tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - uri: a.mp4
        """,
    )
    assert error_of(m, ("shard_size=0",)) == f"{m}: --set shard_size=0: shard_size: Input should be greater than 0"
    assert "expected key=value" in error_of(m, ("shard_size",))
    assert "is not a mapping" in error_of(m, ("pipeline.x=1",))
    assert "has no item 3" in error_of(m, ("videos.3.fps=2",))


# ----------------------------------------------------------------------- expansion


def test_inline_entries_resolve_against_the_manifest_folder(tmp_path: Path) -> None:
    m = write(
        tmp_path / "manifests" / "m.yaml",
        """
        pipeline: import
        output: ../out
        videos:
          - uri: ../videos/a.mp4
            annotations:
              format: davis
              path: ../gt/a
              categories: {1: person, 2: dog}
          - uri: /abs/b.mp4
            video_id: bee
            fps: 30
            split: val
            extra: {weather: rain}
          - uri: s3://bucket/c.mp4
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    assert rejects == []
    a, b, c = tasks
    assert a.uri == str(tmp_path / "videos" / "a.mp4")
    assert a.annotations == {
        "format": "davis",
        "path": str(tmp_path / "gt" / "a"),
        "categories": {"1": "person", "2": "dog"},
    }
    assert (b.video_id, b.uri, b.fps, b.split, b.extra) == ("bee", "/abs/b.mp4", 30.0, "val", {"weather": "rain"})
    assert c.uri == "s3://bucket/c.mp4"
    assert a.video_id == stable_video_id("../videos/a.mp4")


def test_jsonl_list_rows_defaults_and_rejects(tmp_path: Path) -> None:
    write(
        tmp_path / "lists" / "v.jsonl",
        """
        {"uri": "clips/a.mp4", "annotations": {"path": "gt/a"}}
        {not json

        {"uri": "b.mp4", "fps": 30, "annotations": {"path": "/gt/b", "format": "mot"}}
        {"video_id": "no-uri", "annotations": {"path": "gt/x"}}
        {"uri": "c.mp4", "fps": -1, "annotations": {"path": "gt/c"}}
        ["a list"]
        {"uri": "clips/a.mp4", "annotations": {"path": "gt/a2"}}
        {"uri": "d.mp4", "colour": "red", "annotations": {"path": "gt/d"}}
        """,
    )
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - path: lists/v.jsonl
            defaults:
              fps: 24
              source: mine
              annotations: {format: davis, categories: {1: person}}
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    assert [t.uri for t in tasks] == [str(tmp_path / "lists" / "clips" / "a.mp4"), str(tmp_path / "lists" / "b.mp4")]
    a, b = tasks
    assert (a.fps, a.source) == (24.0, "mine")  # defaults fill what a row does not set
    assert a.annotations == {
        "format": "davis",
        "path": str(tmp_path / "lists" / "gt" / "a"),
        "categories": {"1": "person"},
    }
    assert b.fps == 30.0 and b.annotations["format"] == "mot"  # a row's own values win
    by_item = {r.item: r.reason for r in rejects}
    assert all(r.stage == "manifest" for r in rejects)
    assert by_item["lists/v.jsonl:2"].startswith("invalid JSON")
    assert by_item["lists/v.jsonl:5"] == "uri: required key is missing"
    assert by_item["lists/v.jsonl:6"] == "fps: Input should be greater than 0"
    assert by_item["lists/v.jsonl:7"] == "expected a JSON object, got list"
    assert by_item["lists/v.jsonl:8"].startswith(f"duplicate video_id {a.video_id!r} (first at lists/v.jsonl:1)")
    assert by_item["lists/v.jsonl:9"].startswith("colour: unknown key")
    assert len(rejects) == 6


def test_csv_list_with_dotted_and_json_columns(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text(
        "uri,fps,split,annotations.format,annotations.path,annotations.categories,extra\n"
        'a.mp4,25,train,davis,gt/a,"{""1"": ""person""}","{""k"": 1}"\n'
        "b.mp4,,,,,,\n"
        "c.mp4,fast,,,,,\n"
        "d.mp4,1,2,3\n"
        '"multi\nline.mp4",10,,,,,\n'
    )
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: ingest
        output: out
        videos:
          - path: v.csv
            defaults: {split: test}
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    a, b, multi = tasks
    assert (a.fps, a.split, a.extra) == (25.0, "train", {"k": 1})
    assert a.annotations == {"format": "davis", "path": str(tmp_path / "gt" / "a"), "categories": {"1": "person"}}
    assert (b.fps, b.split, b.annotations) == (None, "test", None)  # empty cells are unset
    assert multi.uri == str(tmp_path / "multi\nline.mp4")
    assert {r.item: r.reason for r in rejects} == {
        "v.csv:4": "fps: Input should be a valid number, unable to parse string as a number",
        "v.csv:5": "expected 7 columns, got 4",
    }


def test_parquet_list_and_explicit_format(tmp_path: Path) -> None:
    table = pa.table(
        {
            "uri": ["a.mp4", None, "c.mp4"],
            "fps": [None, 10.0, 30.0],
            "annotations": [{"format": "mot", "path": "gt/a.txt"}, None, None],
        }
    )
    pq.write_table(table, tmp_path / "videos.bin")
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - path: videos.bin
            format: parquet
            defaults: {fps: 24}
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    assert [(t.uri, t.fps) for t in tasks] == [(str(tmp_path / "a.mp4"), 24.0), (str(tmp_path / "c.mp4"), 30.0)]
    assert tasks[0].annotations["path"] == str(tmp_path / "gt" / "a.txt")
    assert [(r.item, r.reason) for r in rejects] == [("videos.bin:2", "uri: required key is missing")]


def test_unreadable_list_is_one_reject_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "v.parquet").write_bytes(b"not parquet at all")
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - uri: a.mp4
          - path: v.parquet
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    assert len(tasks) == 1
    assert len(rejects) == 1 and rejects[0].item == "v.parquet"
    assert rejects[0].reason.startswith("cannot read list:")


def test_duplicate_inline_ids_are_rejected_with_the_manifest_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # reject items name the manifest relative to the working folder
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: import
        output: out
        videos:
          - uri: a.mp4
          - uri: ./a.mp4
          - uri: other.mp4
            video_id: x
          - uri: again.mp4
            video_id: x
        """,
    )
    tasks, rejects = expand_videos(load_manifest(m))
    assert len(tasks) == 2
    label = "m.yaml"
    assert [r.item for r in rejects] == [f"{label}:5", f"{label}:8"]
    assert rejects[1].reason == f"duplicate video_id 'x' (first at {label}:6)"
    # a run reads the manifest twice: the second pass reuses what the first found
    config = load_manifest(m)
    duplicates = Duplicates()
    first = list(iter_videos(config, duplicates))
    assert duplicates.known and sorted(duplicates.reasons) == [1, 3]
    assert list(iter_videos(config, duplicates)) == first


# ----------------------------------------------------------------------------- ids


def test_stable_ids() -> None:
    assert stable_video_id("clips/My Video (1).mp4") == stable_video_id("./clips/My Video (1).mp4")
    vid = stable_video_id("clips/My Video (1).mp4")
    stem, digest = vid.rsplit("-", 1)
    assert stem == "My-Video-1" and len(digest) == 8 and int(digest, 16) >= 0
    assert stable_video_id("clips/frames/") == stable_video_id("clips/frames")
    assert stable_video_id("clips/frames").startswith("frames-")
    assert stable_video_id("a/x.mp4") != stable_video_id("b/x.mp4")
    assert stable_video_id("日本.mp4").startswith("video-")


def test_ids_survive_moving_manifest_and_videos_together(tmp_path: Path) -> None:
    def ids(root: Path) -> list[str]:
        write(root / "lists" / "v.jsonl", '{"uri": "../videos/a.mp4"}\n')
        m = write(
            root / "m.yaml",
            """
            pipeline: ingest
            output: out
            videos:
              - uri: videos/b.mp4
              - path: lists/v.jsonl
            """,
        )
        tasks, _ = expand_videos(load_manifest(m))
        return [t.video_id for t in tasks]

    first = ids(tmp_path / "one")
    shutil.move(tmp_path / "one", tmp_path / "two")
    assert ids(tmp_path / "elsewhere" / "deeper") == first


def test_list_entries_stay_video_lists(tmp_path: Path) -> None:
    write(tmp_path / "v.jsonl", '{"uri": "a.mp4"}\n')
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: ingest
        output: out
        videos:
          - path: v.jsonl
        """,
    )
    config = load_manifest(m)
    assert isinstance(config.videos[0], VideoList)
    assert json.loads(config.model_dump_json())["videos"][0]["path"] == "v.jsonl"


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_bytes("\ufeffuri,split\na.mp4,val\n".encode("utf-8"))
    m = write(tmp_path / "m.yaml", "pipeline: ingest\noutput: out\nvideos:\n  - path: v.csv\n")
    tasks, rejects = expand_videos(load_manifest(m))
    assert rejects == [] and [(t.uri, t.split) for t in tasks] == [(str(tmp_path / "a.mp4"), "val")]


def test_loader_owned_fields_cannot_be_set(tmp_path: Path) -> None:
    m = write(tmp_path / "m.yaml", "pipeline: ingest\noutput: out\nbase_dir: /elsewhere\nvideos:\n  - uri: a.mp4\n")
    assert error_of(m) == f"{m}:3: base_dir: set by the loader, not in a manifest"
    m = write(tmp_path / "ok.yaml", "pipeline: ingest\noutput: out\nvideos:\n  - uri: a.mp4\n")
    assert "is set by the loader" in error_of(m, ("base_dir=/x",))


def test_config_built_in_code_resolves_against_its_base_dir(tmp_path: Path, monkeypatch) -> None:
    from tubelet.engine.config import RunConfig

    monkeypatch.chdir(tmp_path)
    config = RunConfig(pipeline="ingest", output="out", videos=[{"uri": "a.mp4"}, {"uri": "b.mp4", "video_id": "a-x"}])
    tasks, rejects = expand_videos(config)
    assert [t.uri for t in tasks] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert rejects == []
