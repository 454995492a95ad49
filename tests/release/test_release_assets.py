"""Releases of the real imports (manifests/davis-import.yaml, manifests/mot17-import.yaml over
../shared/assets; skipped when absent): every table loads with ``datasets`` eager and streaming,
frame folders become mp4s of the same frames, no path of this machine is written, and one
dataset name (``videos.source``) no longer puts every video in one split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.release.release_data import absolute_paths, machine_paths
from tubelet.engine.video import VideoReader
from tubelet.release.build import ReleaseOptions, release

ROOT = Path(__file__).resolve().parents[2]
#: The shipped lists name the assets relative to the repository's parent.
LIST_PREFIX = "../../../shared/assets"


def _import(assets: Path, manifest: str, list_name: str, out: Path) -> Path:
    """Run a shipped import manifest on the assets, wherever they are (a copy of the manifest
    whose list names them by absolute path)."""
    from tubelet.engine.manifest import load_manifest
    from tubelet.pipelines import run_manifest

    folder = out.parent / f"{out.name}-manifest"
    (folder / "lists").mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / manifest, folder / manifest)
    text = (ROOT / "manifests" / "lists" / list_name).read_text()
    (folder / "lists" / list_name).write_text(text.replace(LIST_PREFIX, str(assets)))
    config = load_manifest(folder / manifest, [f"output={out}", "runner=inline"])
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.failed == 0 and summary.done > 0
    return out


@pytest.mark.assets
@pytest.mark.parametrize(
    ("manifest", "list_name", "videos", "licence"),
    [
        ("davis-import.yaml", "davis2016.jsonl", 8, "other"),  # "DAVIS terms (research use)"
        ("mot17-import.yaml", "mot17-mini.jsonl", 7, "cc-by-nc-sa-3.0"),  # "CC BY-NC-SA 3.0"
    ],
)
def test_import_releases_load_and_travel(
    assets: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    manifest: str,
    list_name: str,
    videos: int,
    licence: str,
) -> None:
    datasets = pytest.importorskip("datasets")
    source = _import(assets, manifest, list_name, tmp_path / "ds")
    needles = machine_paths(tmp_path_factory.getbasetemp(), Path.cwd(), Path.home(), assets)
    for with_media in (False, True):
        out = tmp_path / f"r-{with_media}"
        release(source, out, ReleaseOptions(version="1", with_media=with_media))
        info = json.loads((out / "meta" / "info.json").read_text())
        assert sum(info["counts"]["videos"].values()) == videos
        assert sum(bool(n) for n in info["counts"]["videos"].values()) >= 2  # one source, several splits
        assert info["licence"]["id"] == licence
        for table, files in info["files"].items():
            eager = datasets.load_dataset(str(out), table, cache_dir=str(tmp_path / "hf"))
            streamed = datasets.load_dataset(str(out), table, streaming=True)
            expected = {s: n for s, n in info["counts"][table].items() if n}
            assert set(files) == set(expected) and {s: d.num_rows for s, d in eager.items()} == expected
            assert {s: sum(1 for _ in d) for s, d in streamed.items()} == expected
        assert absolute_paths(out, needles) == []
    media = [json.loads(x) for x in (out / "meta" / "media.jsonl").read_text().splitlines()]
    assert len(media) == videos and all(m["source_kind"] == "frames" and m["included"] for m in media)
    for item in media:
        with VideoReader(str(out / item["path"])) as video:
            assert (video.n_frames, video.meta.fps) == (item["n_frames"], item["fps"])
