"""Exit codes a script can trust (issue 14, item 8): one table for every command.

0    ok (item-level rejects of a finished run are no failure)
1    finished, but some videos or manifest rows failed (validate: problems found;
     export: items left out; review push/pull: tasks not applied)
2    refused: bad arguments or input, nothing done
3    the work started and did not finish: a failed or crashed run
4    status: a run is still going
130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.engine import tiny_dataset
from tubelet.cli.common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    CommandError,
    exit_code_of,
)
from tubelet.cli.main import main
from tubelet.engine.dataset import Dataset
from tubelet.engine.locks import DatasetLockedError
from tubelet.engine.manifest import ManifestError
from tubelet.engine.runners.common import RunnerError, StageSetupError

PIPELINE = "tests.engine.pipelines_for_tests:build"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_codes_are_distinct_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    codes = [EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_RUN_FAILED, EXIT_INTERRUPTED]
    assert codes == [0, 1, 2, 3, 130]
    _, out, _ = run(capsys, "--help")
    for code in (*codes, 4):
        assert f"\n  {code:<3} " in out, f"exit code {code} is not in --help"


def test_every_kind_of_error_has_its_code() -> None:
    assert exit_code_of(ManifestError(["m.yaml:3: pipeline: unknown pipeline 'x'"])) == EXIT_USAGE
    assert exit_code_of(FileNotFoundError("no dataset info")) == EXIT_USAGE
    assert exit_code_of(FileExistsError("the destination is not empty")) == EXIT_USAGE
    assert exit_code_of(KeyError("unknown version")) == EXIT_USAGE
    assert exit_code_of(DatasetLockedError("being written by another run")) == EXIT_USAGE
    assert exit_code_of(CommandError("query failed")) == EXIT_USAGE
    # what breaks while working: a runner, storage, a server, anything unexpected
    assert exit_code_of(RunnerError("Ray's raylet died")) == EXIT_RUN_FAILED
    assert exit_code_of(StageSetupError("no weights")) == EXIT_RUN_FAILED
    assert exit_code_of(PermissionError("read-only file system")) == EXIT_RUN_FAILED
    assert exit_code_of(RuntimeError("Label Studio answered 500")) == EXIT_RUN_FAILED
    assert exit_code_of(CommandError("run r1 failed", EXIT_RUN_FAILED)) == EXIT_RUN_FAILED
    assert exit_code_of(KeyboardInterrupt()) == EXIT_INTERRUPTED


def manifest(tmp_path: Path, stages: list[dict], videos: list[str] | None = None, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    entries = [{"uri": f"synthetic://{v}", "video_id": v} for v in (videos or ["v0", "v1", "v2"])]
    path.write_text(
        json.dumps({"pipeline": PIPELINE, "output": "out", "params": {"stages": stages}, "videos": entries})
    )
    return path


def run_manifest(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    return run(capsys, "run", str(path), "--runner", "inline", "--no-progress", "--log-level", "error")


# ------------------------------------------------------------------------------ run


def test_run_with_item_rejects_only_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Tracks too short to keep are recorded as rejects: the run did what it should."""
    m = manifest(tmp_path, [{"kind": "make"}, {"kind": "reject_items"}, {"kind": "instruct"}])
    code, out, err = run_manifest(capsys, m)
    assert code == EXIT_OK, out + err
    assert "3 done, 0 failed" in out and "3 item rejects" in out
    code, out, _ = run(capsys, "status", str(tmp_path / "out"))
    assert code == EXIT_OK and "videos: 3 done, 0 failed, 0 pending" in out


def test_run_with_a_failed_video_exits_1_and_says_so_on_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    m = manifest(tmp_path, [{"kind": "make"}, {"kind": "fail", "fail": ["v1"]}])
    code, out, _ = run_manifest(capsys, m)
    assert code == EXIT_FAILURES and "2 done, 1 failed" in out
    # run again: nothing to do, and the manifest's outcome is still one failed video
    code, out, _ = run_manifest(capsys, m)
    assert code == EXIT_FAILURES and "3 already done" in out and "1 failed video" in out
    code, _, _ = run(capsys, "status", str(tmp_path / "out"))
    assert code == EXIT_FAILURES


def test_run_with_a_rejected_manifest_row_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(
        textwrap.dedent(f"""\
        pipeline: {PIPELINE}
        output: out
        videos:
          - uri: synthetic://v0
            video_id: v0
          - path: list.jsonl
        """)
    )
    (tmp_path / "list.jsonl").write_text('{"uri": "synthetic://v1", "fps": "fast"}\n')
    code, out, _ = run_manifest(capsys, m)
    assert code == EXIT_FAILURES and "1 manifest rows" in out


def test_a_bad_manifest_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("pipeline: track\noutput: out\nvideos: []\n")
    code, out, err = run_manifest(capsys, m)
    assert code == EXIT_USAGE and out == "" and f"{m}:3: videos" in err


def test_a_run_that_fails_exits_3_and_status_says_failed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = manifest(tmp_path, [{"kind": "make"}, {"kind": "broken_setup"}])
    code, out, err = run_manifest(capsys, m)
    assert code == EXIT_RUN_FAILED, out + err
    assert "failed: StageSetupError: stage broken_setup: setup() failed: OSError: no weights" in err
    assert "run the manifest again to resume" in err
    code, out, _ = run(capsys, "status", str(tmp_path / "out"))
    assert code == EXIT_RUN_FAILED and ": failed (StageSetupError" in out


def test_an_interrupted_run_exits_130(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = manifest(tmp_path, [{"kind": "make"}, {"kind": "interrupt", "after": 1}])
    code, _, err = run_manifest(capsys, m)
    assert code == EXIT_INTERRUPTED and "interrupted" in err
    code, out, _ = run(capsys, "status", str(tmp_path / "out"))
    assert code == EXIT_RUN_FAILED and ": interrupted" in out


def test_a_real_track_run_with_short_tracks_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The issue's case: the lite track pipeline on the sample drops tracks too short to
    keep (reject rows); the run is correct and says so with exit 0."""
    pytest.importorskip("cv2")
    assert main(["sample", str(tmp_path / "sample")]) == EXIT_OK
    m = tmp_path / "track.yaml"
    m.write_text(
        # min_length: a track visible on fewer frames is a reject; 50 makes one of the
        # sample's three tracks (45 frames) too short
        "pipeline: track\noutput: out\nparams: {profile: lite, keyframe_fps: 4, association: {min_length: 50}}\n"
        "videos:\n  - uri: sample/scene.mp4\n    video_id: scene\n"
    )
    code, out, err = run_manifest(capsys, m)
    rejects = Dataset(tmp_path / "out").read_table("rejects").to_pylist()
    assert rejects and all(r["reason"].startswith("too short") for r in rejects)
    assert code == EXIT_OK, out + err
    assert "1 done, 0 failed" in out


# --------------------------------------------------------------------------- status


def test_status_of_a_missing_dataset_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "status", str(tmp_path / "nowhere"))
    assert code == EXIT_USAGE and out == "" and "no dataset" in err


# ------------------------------------------------------------------- eval, query ...


def test_eval_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gt = tiny_dataset.build(tmp_path / "gt")
    code, out, _ = run(capsys, "eval", str(gt), str(gt))
    assert code == EXIT_OK and "OVERALL" in out.upper()
    # a dataset of other videos: nothing to compare is a mistake, not a score of zero
    m = manifest(tmp_path, [{"kind": "make"}], videos=["other0", "other1"])
    assert run_manifest(capsys, m)[0] == EXIT_OK
    code, out, err = run(capsys, "eval", str(tmp_path / "out"), str(gt))
    assert code == EXIT_USAGE and out == ""
    assert "no video in common" in err and "other0" in err
    code, _, err = run(capsys, "eval", str(gt), str(gt), "--videos", "nonesuch")
    assert code == EXIT_USAGE and "nonesuch" in err


def test_query_validate_export_release_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ds = tiny_dataset.build(tmp_path / "ds")
    assert run(capsys, "query", str(ds), "SELECT 1")[0] == EXIT_OK
    assert run(capsys, "query", str(ds), "SELECT * FROM nonesuch")[0] == EXIT_USAGE
    assert run(capsys, "validate", str(ds))[0] == EXIT_OK
    assert run(capsys, "validate", str(tmp_path / "nowhere"))[0] == EXIT_USAGE
    broken = tiny_dataset.build(tmp_path / "broken", plant=["box_outside"])
    assert run(capsys, "validate", str(broken))[0] == EXIT_FAILURES
    assert run(capsys, "versions", str(tmp_path / "nowhere"))[0] == EXIT_USAGE
    assert run(capsys, "pipelines", "nonesuch")[0] == EXIT_USAGE
    assert run(capsys, "pipelines", "track")[0] == EXIT_OK
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    code, _, err = run(capsys, "release", str(ds), "--version", "1.0.0", "--to", str(tmp_path / "taken"))
    assert code == EXIT_USAGE, err
    code, _, err = run(capsys, "export", str(ds), "--format", "mot", "--to", str(tmp_path / "taken"))
    assert code == EXIT_USAGE, err
