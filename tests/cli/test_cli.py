"""The tubelet command line: output formats and exit codes (the whole table: test_exit_codes.py)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.engine import tiny_dataset
from tubelet.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return tiny_dataset.build(tmp_path / "ds")


# --------------------------------------------------------------------------- basics


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "exit codes:" in out and "0    all good" in out and "2    refused, nothing done" in out
    code, out, _ = run(capsys, "run", "--help")
    assert code == 0 and "--set KEY=VALUE" in out and "exit codes:" in out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "query", "x", "SELECT 1", "--format", "xml")
    assert code == 2 and "invalid choice" in err


def test_python_dash_m_engine() -> None:
    result = subprocess.run([sys.executable, "-m", "tubelet", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "usage: tubelet" in result.stdout


# ---------------------------------------------------------------------------- query


def test_query_table(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    code, out, _ = run(
        capsys,
        "query",
        str(dataset),
        "SELECT category, n_visible, round(start_s, 2) AS s FROM tubelets ORDER BY category",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["category", "n_visible", "s"]
    assert set(lines[1]) <= {"-", " "}
    assert [l.split() for l in lines[2:5]] == [["cat", "6", "0.2"], ["dog", "6", "0.2"], ["person", "6", "0.2"]]
    assert lines[5] == "(3 rows)"
    # columns line up: numbers right-aligned under their header
    assert lines[2].index("6") + 1 == lines[0].index("n_visible") + len("n_visible")


def test_query_csv_and_json(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    sql = (
        "SELECT v.video_id, count(*) AS frames, NULL AS nothing, [1, 2] AS l "
        "FROM tubelets t JOIN videos v USING (video_id), unnest(t.frames) AS u(f) GROUP BY 1 ORDER BY 1"
    )
    code, out, err = run(capsys, "query", str(dataset), sql, "--format", "csv")
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [
        ["video_id", "frames", "nothing", "l"],
        ["a", "12", "", "[1, 2]"],
        ["b", "6", "", "[1, 2]"],
    ]
    code, out, _ = run(capsys, "query", str(dataset), sql, "--format", "json")
    assert code == 0
    assert json.loads(out) == [
        {"video_id": "a", "frames": 12, "nothing": None, "l": [1, 2]},
        {"video_id": "b", "frames": 6, "nothing": None, "l": [1, 2]},
    ]


def test_query_every_table_is_a_view(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    code, out, _ = run(
        capsys,
        "query",
        str(dataset),
        "SELECT (SELECT count(*) FROM videos) v, (SELECT count(*) FROM entities) e, "
        "(SELECT count(*) FROM events) ev, (SELECT count(*) FROM instructions) i, "
        "(SELECT count(*) FROM reviews) r, (SELECT count(*) FROM rejects) rj",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out) == [{"v": 2, "e": 2, "ev": 2, "i": 2, "r": 0, "rj": 1}]


def test_query_errors_exit_2(capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "query", str(dataset), "SELECT nope FROM tubelets")
    assert code == 2 and out == ""
    assert err.startswith("tubelet: error: query failed:") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "query", str(tmp_path / "missing"), "SELECT 1")
    assert code == 2 and "no dataset at" in err


# ------------------------------------------------------------------- validate/status


def test_validate_exit_codes(capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", str(dataset), "--all-masks")
    assert code == 0 and out.strip().endswith(": OK")
    broken = tiny_dataset.build(tmp_path / "broken", plant=["box_outside", "dangling_video"])
    code, out, _ = run(capsys, "validate", str(broken))
    lines = out.strip().splitlines()
    assert code == 1
    assert any(l.startswith("[tubelets] tubelet 'a:test:2'") and "outside the 64x48 frame" in l for l in lines)
    assert any("video 'ghost' is not in the videos table" in l for l in lines)
    assert lines[-1].endswith(": 2 problems")
    assert run(capsys, "validate", str(tmp_path / "missing"))[0] == 2


def test_status(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    (dataset / "meta" / "plan.json").write_text(json.dumps({"items": ["a", "b", "c"]}))
    code, out, _ = run(capsys, "status", str(dataset))
    assert code == 0  # its one reject row is an item's (a mask): no video failed
    assert "pipeline test" in out
    assert any(l.split() == ["tubelets", "3"] for l in out.splitlines())
    assert "videos: 2 done, 0 failed, 1 pending" in out
    assert "[import:test] b:mask:9: mask 9 has no frame" in out


def test_status_newest_errors_first(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tubelet.engine.task import VideoTask
    from tubelet.engine.writer import ShardWriter

    root = tiny_dataset.build(tmp_path / "ds")
    with ShardWriter(root, shard_size=1, run_id="20990101T000000Z-later0") as writer:
        for name in ("late1", "late2"):
            task = VideoTask(video_id=name, uri=f"/v/{name}.mp4")
            task.fail("probe", RuntimeError(f"{name} is broken"))
            writer.add(task)
    code, out, _ = run(capsys, "status", str(root), "--errors", "2")
    errors = [l.strip() for l in out.splitlines() if l.startswith("  [")]
    assert errors == [
        "[probe] /v/late2.mp4: RuntimeError: late2 is broken",
        "[probe] /v/late1.mp4: RuntimeError: late1 is broken",
    ]
    assert "videos: 2 done, 2 failed, 0 pending" in out and code == 1


# ------------------------------------------------------------------------------ run


def test_bad_manifest_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("pipeline: import\noutput: out\nvideos:\n  - uri: a.mp4\n    fps: -1\n")
    code, out, err = run(capsys, "run", str(m), "--no-progress")
    assert code == 2 and out == ""
    assert err == f"tubelet: error: {m}:5: videos[0].fps: Input should be greater than 0\n"
    code, _, err = run(
        capsys, "run", str(m), "--set", "videos.0.fps=2", "--set", "pipeline=nonesuch", "--runner", "inline"
    )
    assert code == 2 and "unknown pipeline 'nonesuch'" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("cv2")
    root = tmp_path_factory.mktemp("demo")
    assert main(["sample", str(root / "out" / "sample")]) == 0
    (root / "manifests").mkdir()
    shutil.copy(ROOT / "manifests" / "demo.yaml", root / "manifests" / "demo.yaml")
    return root


def test_demo_end_to_end_inline(capsys: pytest.CaptureFixture[str], sample_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "demo-out"
    manifest = sample_dir / "manifests" / "demo.yaml"
    code, out, err = run(
        capsys,
        "run",
        str(manifest),
        "--runner",
        "inline",
        "--no-progress",
        "--out",
        str(out_dir),
        "--log-level",
        "warning",
    )
    assert code == 0, err
    assert "1 planned" in out and "1 done, 0 failed" in out and str(out_dir) in out
    assert run(capsys, "validate", str(out_dir), "--all-masks")[0] == 0
    code, out, _ = run(capsys, "status", str(out_dir))
    assert code == 0 and "videos: 1 done, 0 failed, 0 pending" in out
    code, out, _ = run(
        capsys,
        "query",
        str(out_dir),
        "SELECT category, n_visible, start_frame, end_frame FROM tubelets ORDER BY track_id",
        "--format",
        "json",
    )
    rows = json.loads(out)
    gt = json.loads((sample_dir / "out" / "sample" / "ground_truth.json").read_text())
    assert [r["category"] for r in rows] == ["red square", "green circle", "blue triangle"]
    assert [r["n_visible"] for r in rows] == [o["visible_frames"] for o in gt["objects"]]
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [
        (o["first_frame"], o["last_frame"]) for o in gt["objects"]
    ]
    # a second run finds everything committed and does nothing
    code, out, _ = run(
        capsys,
        "run",
        str(manifest),
        "--runner",
        "inline",
        "--no-progress",
        "--out",
        str(out_dir),
        "--log-level",
        "warning",
    )
    assert code == 0 and "1 already done, 0 done" in out


def test_run_with_rejected_rows_exits_1(capsys: pytest.CaptureFixture[str], sample_dir: Path, tmp_path: Path) -> None:
    sample = sample_dir / "out" / "sample"
    (tmp_path / "list.jsonl").write_text(
        textwrap.dedent(f"""\
        {{"uri": "{sample / "scene.mp4"}", "video_id": "ok"}}
        {{"uri": "{sample / "scene.mp4"}", "fps": "fast"}}
        {{"uri": "missing.mp4"}}
        """)
    )
    m = tmp_path / "m.yaml"
    m.write_text("pipeline: ingest\noutput: out\nvideos:\n  - path: list.jsonl\n")
    code, out, err = run(capsys, "run", str(m), "--runner", "inline", "--no-progress", "--log-level", "error")
    assert code == 1, err
    assert "1 failed" in out and "failures: 1 failed video, 1 manifest rows rejected" in out
    code, out, _ = run(capsys, "status", str(tmp_path / "out"))
    assert code == 1 and "videos: 1 done, 1 failed, 0 pending" in out and "manifest rows rejected: 1" in out
    assert "list.jsonl:2: fps: Input should be a valid number" in out


@pytest.mark.ray
def test_demo_manifest_on_ray(capsys: pytest.CaptureFixture[str], sample_dir: Path, tmp_path: Path, ray_local) -> None:
    """What `make demo` runs: the demo manifest as written (runner ray)."""
    out_dir = tmp_path / "demo-ray"
    code, out, err = run(
        capsys,
        "run",
        str(sample_dir / "manifests" / "demo.yaml"),
        "--no-progress",
        "--out",
        str(out_dir),
        "--log-level",
        "warning",
    )
    assert code == 0, err
    assert run(capsys, "validate", str(out_dir))[0] == 0
    code, out, _ = run(capsys, "query", str(out_dir), "SELECT count(*) AS n FROM tubelets", "--format", "csv")
    assert out.splitlines() == ["n", "3"]


def test_unreadable_dataset_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    info = dataset / "meta" / "info.json"
    data = json.loads(info.read_text())
    data["schema_version"] = "2.0.0"
    info.write_text(json.dumps(data))
    for argv in (["status", str(dataset)], ["query", str(dataset), "SELECT 1"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err.startswith(f"tubelet: error: cannot read the dataset at {dataset}:") and "newer" in err
        assert len(err.splitlines()) == 1
    next((dataset / "meta" / "ledger").glob("*.json")).write_text("{torn")
    code, _, err = run(capsys, "validate", str(dataset))
    assert code == 2 and "corrupt ledger entry" in err and len(err.splitlines()) == 1
