"""tubelet.engine.validate: a clean dataset passes; each planted problem is found and named."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.engine import tiny_dataset
from tubelet.engine.ledger import LedgerEntry, commit_entry
from tubelet.engine.validate import validate_dataset
from tubelet.schemas.arrow import TABLE_SCHEMAS


def problems(root: Path, **kwargs) -> list[str]:
    return [str(p) for p in validate_dataset(root, **kwargs).problems]


def recommit(root: Path, path: Path, table: str, rows: list[dict]) -> None:
    """Rewrite a committed file with ``rows`` as if they had been committed so."""
    tiny_dataset.recommit_file(root, path, pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[table]))


def test_clean_dataset_passes(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    report = validate_dataset(root, all_masks=True)
    assert report.problems == []
    assert report.ok
    assert report.rows["videos"] == 2 and report.rows["tubelets"] == 3 and report.rows["rejects"] == 1
    assert report.summary().endswith(": OK")


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        ("duplicate_id", "[tubelets] tubelet_id 'a:test:1' appears 2 times"),
        ("dangling_video", "[tubelets] tubelet 'ghost:test:1' (row 3): video 'ghost' is not in the videos table"),
        (
            "frame_beyond",
            "[tubelets] tubelet 'a:test:7' (row 2) frames[0] (frame_idx 12): frame_idx is not below the video's n_frames = 10",
        ),
        (
            "box_outside",
            "[tubelets] tubelet 'a:test:2' (row 1) frames[0] (frame_idx 2): box [50, 4, 70, 30] is outside the 64x48 frame",
        ),
        (
            "rle_size",
            "[tubelets] tubelet 'a:test:2' (row 1) frames[1] (frame_idx 3): mask size [48, 32] is not the frame size [48, 64] (height, width)",
        ),
        ("dangling_tubelet", "[entities] entity_id 'b:e2': tubelet \"b:test:404\" is not in the tubelets table"),
    ],
)
def test_planted_problem_is_found(tmp_path: Path, plant: str, expected: str) -> None:
    root = tiny_dataset.build(tmp_path / "ds", plant=[plant])
    found = problems(root)
    assert expected in found
    report = validate_dataset(root)
    assert not report.ok and "problem" in report.summary()


def test_corrupt_mask_found_with_all_masks(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    # Rewrite one tubelet shard with a mask whose runs do not cover the frame.
    path = next((root / "data" / "tubelets").glob("*.parquet"))
    rows = pq.read_table(path).to_pylist()
    rows[0]["frames"][2]["mask_rle"]["counts"] = "0"  # 0 pixels, not 48*64
    recommit(root, path, "tubelets", rows)
    found = problems(root, all_masks=True)
    assert any("frames[2]" in p and "mask does not decode" in p for p in found), found


def test_schema_mismatch_and_missing_file(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    bad = pa.table({"event_id": ["x"], "video_id": ["a"], "start_s": ["soon"]})
    pq.write_table(bad, root / "data" / "events" / "bad.parquet")
    commit_entry(
        root,
        LedgerEntry(
            shard="zzz-bad",
            run_id="r",
            committed_at="2025-01-01T00:00:00+00:00",
            items={"x": "done"},
            files={
                "events": {"path": "data/events/bad.parquet", "rows": 1},
                "entities": {"path": "data/entities/gone.parquet", "rows": 1},
            },
        ),
    )
    found = problems(root)
    assert "[events] data/events/bad.parquet: column 'start_s' is string, expected double" in found
    assert "[events] data/events/bad.parquet: column 'text' is missing" in found
    assert "[entities] shard zzz-bad names data/entities/gone.parquet, which is missing" in found
    # the good shards of events were still checked: no crash, no spurious reference errors
    assert not any("is not in the" in p for p in found)


def test_ledger_row_count_mismatch(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    entry_path = sorted((root / "meta" / "ledger").glob("*.json"))[0]
    entry = json.loads(entry_path.read_text())
    entry["files"]["videos"]["rows"] = 5
    entry_path.write_text(json.dumps(entry))
    assert any("ledger says 5 rows" in p for p in problems(root))


def test_info_missing_or_newer(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["schema_version"] = "99.0.0"
    info_path.write_text(json.dumps(info))
    found = problems(root)
    assert len(found) == 1 and found[0].startswith("[meta]") and "newer than this tubelet reads" in found[0]
    info_path.unlink()
    found = problems(root)
    assert len(found) == 1 and "no dataset info" in found[0]


def test_event_and_instruction_references(tmp_path: Path) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    path = next((root / "data" / "events").glob("*.parquet"))
    rows = pq.read_table(path).to_pylist()
    rows[0]["tubelet_ids"] = ["nope"]
    rows[0]["end_frame"] = 10
    recommit(root, path, "events", rows)
    path = next((root / "data" / "instructions").glob("*.parquet"))
    rows = pq.read_table(path).to_pylist()
    rows[0]["answer"]["boxes"][0]["box_xyxy"] = [0.0, 0.0, 65.0, 10.0]
    rows[0]["regions"][0]["frame_idx"] = [2, 11]
    recommit(root, path, "instructions", rows)
    found = problems(root)
    vid = rows[0]["video_id"]
    assert f"[events] event_id '{vid}:ev1': tubelet \"nope\" is not in the tubelets table" in found
    assert f"[events] event_id '{vid}:ev1': frames 2..10 are not within the video's 0..9" in found
    assert any(
        p.startswith(f"[instructions] instruction_id '{vid}:i1': answer box [0.0,0.0,65.0,10.0]") for p in found
    ), found
    assert f"[instructions] instruction_id '{vid}:i1': frame 11 is not within the video's 0..9" in found


def test_not_a_dataset_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        validate_dataset(tmp_path / "nothing")
    root = tiny_dataset.build(tmp_path / "ds")
    next((root / "meta" / "ledger").glob("*.json")).write_text("{torn")
    with pytest.raises(ValueError, match="corrupt ledger entry"):
        validate_dataset(root)
