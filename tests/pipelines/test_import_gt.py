"""The import pipeline: ProbeVideo → ImportAnnotations, from the shipped manifests to a
written, validated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tubelet.engine.manifest import expand_videos, load_manifest
from tubelet.pipelines import build_pipeline

ROOT = Path(__file__).resolve().parents[2]


def test_build_validates_params() -> None:
    pipeline = build_pipeline("import", {})
    assert [s.name for s in pipeline.stages] == ["probe_video", "import_annotations"]
    assert pipeline.stages[0].decode_check is True
    assert not any(s.needs_actor for s in pipeline.stages)  # cheap: plain Ray tasks
    assert build_pipeline("import", {"decode_check": False}).stages[0].decode_check is False
    with pytest.raises(ValueError, match="mask_sample"):
        build_pipeline("import", {"mask_sample": 3})


def _manifest(name: str, out: Path):
    config = load_manifest(ROOT / "manifests" / name, [f"output={out}", "runner=inline"])
    tasks, rejects = expand_videos(config)
    if rejects or not all(Path(t.uri).exists() for t in tasks):
        pytest.skip("the manifests' video lists point at ../shared/assets, which is not here")
    return config, tasks


@pytest.mark.assets
def test_shipped_manifests_expand(assets: Path, tmp_path: Path) -> None:
    _, davis = _manifest("davis-import.yaml", tmp_path / "a")
    assert len(davis) == 8 and all(t.fps == 24.0 and t.annotations["format"] == "davis" for t in davis)
    assert all(Path(t.annotations["path"]).is_dir() for t in davis)
    _, mot = _manifest("mot17-import.yaml", tmp_path / "b")
    assert len(mot) == 7 and all(t.source == "mot17" and Path(t.annotations["path"]).is_file() for t in mot)
    _, ingest = _manifest("ingest-assets.yaml", tmp_path / "c")
    assert len(ingest) == 6 + 8 + 7 and all(t.annotations is None for t in ingest)
    assert sum(t.uri.endswith(".mp4") for t in ingest) == 6


@pytest.mark.assets
@pytest.mark.parametrize(
    ("manifest", "videos", "tubelets", "frames"),
    [
        ("davis-import.yaml", 8, 8, 391),
        ("mot17-import.yaml", 7, 251, 1540),  # one frame per gt.txt row
    ],
)
def test_import_run_writes_a_valid_dataset(
    assets: Path, tmp_path: Path, manifest: str, videos: int, tubelets: int, frames: int
) -> None:
    from tubelet.engine.dataset import Dataset
    from tubelet.engine.validate import validate_dataset
    from tubelet.pipelines import run_manifest

    config, _ = _manifest(manifest, tmp_path / "out")
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (videos, 0)
    report = validate_dataset(tmp_path / "out", all_masks=True)
    assert report.ok, "\n".join(str(p) for p in report.problems)
    con = Dataset(tmp_path / "out").connect()
    (n_videos,) = con.execute("SELECT count(*) FROM videos").fetchone()
    n_tubelets, n_frames = con.execute("SELECT count(*), sum(n_frames) FROM tubelets").fetchone()
    (n_rejects,) = con.execute("SELECT count(*) FROM rejects").fetchone()
    assert (n_videos, n_tubelets, n_frames, n_rejects) == (videos, tubelets, frames, 0)
    if manifest.startswith("mot17"):
        # visibility is queryable next to the frames it belongs to
        (vis,) = con.execute(
            "SELECT json_extract(extra, '$.visibility') FROM tubelets WHERE tubelet_id = 'MOT17-04-FRCNN:mot:1'"
        ).fetchone()
        assert json.loads(vis)[:2] == [0.86014, 0.86173]
    else:
        (swan,) = con.execute("SELECT category FROM tubelets WHERE video_id = 'blackswan'").fetchone()
        assert swan == "swan"
