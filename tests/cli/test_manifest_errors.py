"""A manifest that cannot run is refused before anything is created, and every error
names the manifest's file, the line and the key (issue 14, item 4)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tubelet.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def refused(capsys: pytest.CaptureFixture[str], manifest: Path, *extra: str) -> list[str]:
    """Run ``manifest``; check it is refused with exit 2, one-line errors, nothing written."""
    code, out, err = run(capsys, "run", str(manifest), "--runner", "inline", "--no-progress", *extra)
    assert code == 2 and out == "", err
    lines = err.splitlines()
    assert lines and all(line.startswith(f"tubelet: error: {manifest}") for line in lines), err
    assert "Traceback" not in err and "debug shows the traceback" not in err
    assert not (manifest.parent / "out").exists(), "a refused manifest must leave no output folder"
    return [line.removeprefix("tubelet: error: ") for line in lines]


def test_unknown_pipeline_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        # a comment first
        output: out
        pipeline: trak
        videos: [{uri: a.mp4}]
        """,
    )
    [line] = refused(capsys, m)
    assert line.startswith(f"{m}:3: pipeline: unknown pipeline 'trak'; did you mean 'track'?")
    assert "ingest" in line


def test_unknown_pipeline_given_with_set_names_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(tmp_path / "m.yaml", "pipeline: track\noutput: out\nvideos: [{uri: a.mp4}]\n")
    [line] = refused(capsys, m, "--set", "pipeline=nonesuch")
    assert line.startswith(f"{m}: --set pipeline=nonesuch: pipeline: unknown pipeline 'nonesuch'")


def test_a_module_function_pipeline_that_cannot_be_loaded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(tmp_path / "m.yaml", "pipeline: no.such.module:build\noutput: out\nvideos: [{uri: a.mp4}]\n")
    [line] = refused(capsys, m)
    assert line.startswith(f"{m}:1: pipeline: cannot load the pipeline 'no.such.module:build'")


def test_every_bad_param_names_its_line_and_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: track
        output: out
        params:
          profil: lite
          keyframe_fps: -1
        videos: [{uri: a.mp4}]
        """,
    )
    lines = refused(capsys, m)
    assert lines == [
        f"{m}:4: params.profil: unknown key; did you mean 'profile'? (expected one of: "
        + lines[0].split("(expected one of: ", 1)[1],
        f"{m}:5: params.keyframe_fps: Input should be greater than 0",
    ]


def test_a_bad_nested_param_names_the_dotted_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: strefer
        output: out
        params:
          language: lite
          track:
            profile: lite
            keyframe_fpss: 4
        videos: [{uri: a.mp4}]
        """,
    )
    [line] = refused(capsys, m)
    assert line.startswith(f"{m}:7: params.track.keyframe_fpss: unknown key; did you mean 'keyframe_fps'?")


def test_a_bad_param_given_with_set_names_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(tmp_path / "m.yaml", "pipeline: track\noutput: out\nvideos: [{uri: a.mp4}]\n")
    [line] = refused(capsys, m, "--set", "params.conf=2")
    assert line == f"{m}: --set params.conf=2: params.conf: Input should be less than or equal to 1"


def test_unknown_stage_options_are_refused_before_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # these used to pass the params model and fail in the worker's setup(), after the
    # output (info.json, log, plan) had been written
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: track
        output: out
        params:
          tracker_options:
            grabcut_evry: 2
          association:
            iou_thresh: 0.3
        videos: [{uri: a.mp4}]
        """,
    )
    lines = refused(capsys, m)
    assert lines[0].startswith(f"{m}:5: params.tracker_options.grabcut_evry: unknown option of the flow tracker")
    assert "did you mean 'grabcut_every'?" in lines[0]
    assert lines[1].startswith(f"{m}:7: params.association.iou_thresh: unknown option")
    assert len(lines) == 2


def test_a_missing_path_param_names_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: track
        output: out
        params:
          profile: lite
          weights: ./models/yolo.pt
        videos: [{uri: a.mp4}]
        """,
    )
    [line] = refused(capsys, m)
    assert line == (
        f"{m}:5: params.weights: no such file or folder: {tmp_path / 'models' / 'yolo.pt'} "
        "(relative to the manifest's folder)"
    )


def test_a_manifest_that_is_not_utf8_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_bytes(b"pipeline: track\noutput: out\n# caf\xe9 au lait\nvideos: [{uri: a.mp4}]\n")
    [line] = refused(capsys, m)
    assert line.startswith(f"{m}:3: not UTF-8 text: byte 0xe9 at column 6")


def test_a_mismatched_output_leaves_no_log_behind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A run refused because the output holds another config's dataset adds nothing to it."""
    pytest.importorskip("cv2")
    code, _, _ = run(capsys, "sample", str(tmp_path / "sample"))
    assert code == 0
    m = write(
        tmp_path / "m.yaml",
        """
        pipeline: ingest
        output: ds
        videos: [{uri: sample/scene.mp4}]
        """,
    )
    code, _, err = run(capsys, "run", str(m), "--runner", "inline", "--no-progress")
    assert code == 0, err
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "ds").rglob("*"))
    code, out, err = run(
        capsys, "run", str(m), "--runner", "inline", "--no-progress", "--set", "params.decode_check=false"
    )
    assert code == 2 and "config hash" in err
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "ds").rglob("*")) == before
