"""Releases that the consumer-format tests load, built once per session with every rendering:

- ``demo_release``: the synthetic sample through ``strefer`` (lite language) with its exact masks
  imported (``source: import``), so every region has masks;
- ``davis_release`` / ``mot_release`` (assets; skipped when absent): the DAVIS-2016 and MOT17-mini
  imports of manifests/lists/ (the videos of davis-import.yaml and mot17-import.yaml) through
  ``strefer`` with ``source: import``. MOT tubelets are boxes only, so their regions get box masks.

``davis_mp4_release`` / ``mot_mp4_release`` are the same with every frame folder re-encoded to an
mp4 first (``engine.video_write.export_mp4``, frame for frame), so the loaders that read video files
only are exercised on real data too.

Each is a ``Released``: the release folder, and every region frame's expected mask (the tubelet's
mask, or its box as a rectangle), by item id and region index, to check masks land on their frame;
``truth`` (demo, DAVIS) also checks them against the source annotation of that frame.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tubelet.cli.sample import SampleInfo
from tubelet.release.build import ReleaseOptions, data_files, release
from tubelet.schemas.rle import decode_rle

ROOT = Path(__file__).resolve().parents[2]
LISTS = ROOT / "manifests" / "lists"
#: How the shipped lists point at the assets (relative to manifests/lists/ in the main checkout).
ASSETS_PREFIX = "../../../shared/assets/"


#: The source annotation of a tubelet on a frame: (tubelet row, frame index) -> its mask, or its
#: pixel-exact box (then compared with the decoded mask's tight box).
Truth = Callable[[dict, int], "np.ndarray | list[float]"]


@dataclass
class Released:
    """A release, and what every region's mask must be, to check the renderings against."""

    name: str
    source: Path  # the dataset released
    path: Path
    info: dict
    instructions: dict[str, dict]  # instruction row by id
    tubelets: dict[str, dict]  # tubelet row by id
    videos: dict[str, dict]  # video row by id
    truth: Truth | None = None

    def region_tubelet(self, item_id: str, region: int) -> dict:
        """The tubelet row of the ``region``-th placeholder occurrence of the item's question."""
        row = self.instructions[item_id]
        placeholders = [p for m in row["messages"] if m["role"] == "user" for p in _placeholders(m["content"])]
        ref = next(r for r in row["regions"] if r["placeholder"] == placeholders[region])
        return self.tubelets[ref["tubelet_id"]]

    def box_masked_regions(self, first_frame_only: bool) -> int:
        """Region occurrences of the released instructions with a frame that has no mask."""
        n = 0
        for row in self.instructions.values():
            refs = {r["placeholder"]: r for r in row["regions"]}
            for p in [p for m in row["messages"] if m["role"] == "user" for p in _placeholders(m["content"])]:
                frames = {f["frame_idx"]: f for f in self.tubelets[refs[p]["tubelet_id"]]["frames"]}
                listed = refs[p]["frame_idx"][:1] if first_frame_only else refs[p]["frame_idx"]
                n += any(frames[i]["mask_rle"] is None for i in listed)
        return n

    def folder_videos(self) -> set[str]:
        """Ids of the videos that are frame folders in the release."""
        return {vid for vid, v in self.videos.items() if (self.path / v["uri"]).is_dir()}

    def expected_mask(self, item_id: str, region: int, frame_idx: int) -> np.ndarray:
        """The mask the ``region``-th placeholder of the item's question points at on ``frame_idx``:
        the tubelet's mask there, or (a box-only tubelet) every pixel its box touches."""
        tube = self.region_tubelet(item_id, region)
        frame = next(f for f in tube["frames"] if f["frame_idx"] == frame_idx)
        if frame["mask_rle"] is not None:
            return decode_rle(frame["mask_rle"])
        mask = np.zeros((tube["height"], tube["width"]), dtype=bool)
        x1, y1, x2, y2 = frame["box_xyxy"]
        mask[max(0, math.floor(y1)) : math.ceil(y2), max(0, math.floor(x1)) : math.ceil(x2)] = True
        return mask

    def check(self, item_id: str, region: int, frame_idx: int, mask: np.ndarray) -> str | None:
        """A ``consumers.MaskCheck``: the decoded mask is the region's on that frame, pixel for pixel."""
        if item_id not in self.instructions:
            return f"no instruction {item_id} in the release"
        if not np.array_equal(mask.astype(bool), self.expected_mask(item_id, region, frame_idx)):
            return "not the region's mask on that frame"
        if self.truth is not None:
            truth = self.truth(self.region_tubelet(item_id, region), frame_idx)
            if isinstance(truth, np.ndarray) and not np.array_equal(mask.astype(bool), truth):
                return "not the source annotation of that frame"
            if not isinstance(truth, np.ndarray) and _tight_box(mask) != [float(v) for v in truth]:
                return f"tight box {_tight_box(mask)} is not the source box {truth} of that frame"
        return None


def _tight_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _placeholders(text: str) -> list[str]:
    return re.findall(r"<region\d+>", text)


def _rows(folder: Path, table: str) -> list[dict]:
    return [r for paths in data_files(folder, table).values() for p in paths for r in pq.read_table(p).to_pylist()]


def _release(name: str, source: Path, dest: Path, truth: Truth | None = None) -> Released:
    release(source, dest, ReleaseOptions(version="1.0", with_media=True), created_at="2000-01-01T00:00:00+00:00")
    return Released(
        name=name,
        source=source,
        path=dest,
        info=json.loads((dest / "meta" / "info.json").read_text()),
        instructions={r["instruction_id"]: r for r in _rows(dest, "instructions")},
        tubelets={r["tubelet_id"]: r for r in _rows(dest, "tubelets")},
        videos={r["video_id"]: r for r in _rows(dest, "videos")},
        truth=truth,
    )


def _strefer_import(out: Path, videos: list[dict], **params: object) -> Path:
    from tubelet.engine.config import RunConfig
    from tubelet.pipelines import run_manifest

    config = RunConfig(
        pipeline="strefer",
        output=str(out),
        runner="inline",
        videos=videos,
        params={"source": "import", "decode_check": False, **params},
    )
    summary = run_manifest(config, progress=False, log_to_stderr=False)
    assert summary.failed == 0 and summary.done == len(videos)
    return out


@pytest.fixture(scope="session")
def demo_release(tmp_path_factory: pytest.TempPathFactory, synthetic_sample: SampleInfo) -> Released:
    tmp = tmp_path_factory.mktemp("formats-demo")
    masks = {"format": "davis", "path": str(synthetic_sample.masks_dir), "categories": synthetic_sample.categories}
    video = {"uri": str(synthetic_sample.video), "video_id": "scene", "source": "demo", "annotations": masks}
    gt = {str(o["id"]): o["boxes_xyxy"] for o in json.loads(synthetic_sample.ground_truth.read_text())["objects"]}

    def truth(tube: dict, frame_idx: int) -> list[float]:  # the sample's pixel-exact box of the object
        return gt[tube["track_id"]][str(frame_idx)]

    source = _strefer_import(tmp / "out", [video], max_per_task=10)
    return _release("demo", source, tmp / "release", truth)


def asset_videos(assets: Path, list_name: str, **defaults: object) -> list[dict]:
    """The rows of a shipped video list with their asset paths pointed at ``assets``."""
    rows = []
    for line in (LISTS / list_name).read_text().splitlines():
        row = {**defaults, **json.loads(line)}
        row["uri"] = str(assets / row["uri"].removeprefix(ASSETS_PREFIX))
        ann = row["annotations"]
        row["annotations"] = dict(ann, path=str(assets / ann["path"].removeprefix(ASSETS_PREFIX)))
        rows.append(row)
    if not all(Path(r["uri"]).exists() for r in rows):
        pytest.skip(f"the videos of {list_name} are not all in the assets")
    return rows


def as_mp4(videos: list[dict], folder: Path) -> list[dict]:
    """The videos with each frame folder re-encoded to an mp4, frame for frame (its container's rate)."""
    from tubelet.engine.video_write import export_mp4

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for row in videos:
        dest = folder / f"{row['video_id']}.mp4"
        export_mp4(row["uri"], dest, fps=row.get("fps"))
        out.append({k: v for k, v in row.items() if k != "fps"} | {"uri": str(dest)})
    return out


def davis_truth(assets: Path) -> Truth:
    """A DAVIS tubelet's mask on a frame: its annotation PNG (nonzero = the object)."""

    def truth(tube: dict, frame_idx: int) -> np.ndarray:
        from PIL import Image

        png = assets / "davis2016" / "Annotations" / "480p" / tube["video_id"] / f"{frame_idx:05d}.png"
        with Image.open(png) as image:
            return np.asarray(image) != 0

    return truth


def _davis(tmp: Path, assets: Path, mp4: bool) -> Released:
    videos = asset_videos(assets, "davis2016.jsonl", fps=24, source="davis2016")
    videos = as_mp4(videos, tmp / "mp4") if mp4 else videos
    name = "davis-mp4" if mp4 else "davis"
    return _release(name, _strefer_import(tmp / "out", videos), tmp / "release", davis_truth(assets))


def _mot(tmp: Path, assets: Path, mp4: bool) -> Released:
    videos = asset_videos(assets, "mot17-mini.jsonl", source="mot17")
    videos = as_mp4(videos, tmp / "mp4") if mp4 else videos
    return _release("mot-mp4" if mp4 else "mot", _strefer_import(tmp / "out", videos), tmp / "release")


def _asset_release(build: Callable[[Path, Path, bool], Released], mp4: bool) -> Callable[..., Released]:
    """A session fixture of the release ``build`` makes (frame folders, or re-encoded to mp4)."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Released:
        return build(tmp_path_factory.mktemp("formats-assets"), assets, mp4)

    return fixture


davis_release = _asset_release(_davis, mp4=False)
davis_mp4_release = _asset_release(_davis, mp4=True)
mot_release = _asset_release(_mot, mp4=False)
mot_mp4_release = _asset_release(_mot, mp4=True)


#: Every release the format tests load, by fixture name (the asset ones skip without assets).
RELEASES = [
    "demo_release",
    *(
        pytest.param(name, marks=pytest.mark.assets)
        for name in ("davis_release", "davis_mp4_release", "mot_release", "mot_mp4_release")
    ),
]
