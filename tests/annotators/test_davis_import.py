"""DAVIS import: real DAVIS-2016 masks reproduced exactly; palette sequences by object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.engine.videos import make_mp4
from tubelet.annotators.importers.davis import davis_sequence_entries, import_davis
from tubelet.annotators.importers.stage import ImportAnnotations
from tubelet.engine.config import VideoEntry
from tubelet.engine.probe import probe_task
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import records_to_table
from tubelet.schemas.geometry import mask_to_box
from tubelet.schemas.rle import decode_rle
from tubelet.schemas.validation import validate_tubelets

SEQUENCES = [
    "blackswan",
    "car-shadow",
    "dog",
    "drift-chicane",
    "horsejump-high",
    "kite-surf",
    "libby",
    "motocross-jump",
]
STAGE = ImportAnnotations()


def _task(
    uri: Path | str, annotations: dict[str, Any] | None, fps: float | None = 24.0, video_id: str = "v"
) -> VideoTask:
    """A task as the import pipeline sees it after ProbeVideo."""
    task = VideoTask(video_id=video_id, uri=str(uri), fps=fps, annotations=annotations)
    task.video = probe_task(task, decode_check=False)
    return task


def _run(task: VideoTask) -> VideoTask:
    [done] = run_stage(STAGE, [task])
    return done


def _check_against_pngs(task: VideoTask, pngs: list[Path], labels_of: Any) -> None:
    """Every tubelet frame equals the PNGs; absent frames follow the lifetime rule."""
    per_frame = [labels_of(np.asarray(Image.open(p))) for p in pngs]
    ids = sorted({int(i) for labels in per_frame for i in np.unique(labels) if i})
    assert [t.track_id for t in task.tubelets] == [str(i) for i in ids]
    for oid, tube in zip(ids, task.tubelets, strict=True):
        present = [i for i, labels in enumerate(per_frame) if (labels == oid).any()]
        listed = list(range(present[0], present[-1] + 1))
        assert [f.frame_idx for f in tube.frames] == listed
        last_box = None
        for f in tube.frames:
            gt = per_frame[f.frame_idx] == oid
            assert f.t_s == f.frame_idx / 24
            if gt.any():
                assert f.visible
                assert np.array_equal(decode_rle(f.mask_rle), gt)
                assert f.box_xyxy == mask_to_box(gt)
                last_box = f.box_xyxy
            else:
                assert not f.visible and f.mask_rle is None and f.box_xyxy == last_box
            assert f.amodal_xyxy is None and f.score is None


@pytest.mark.assets
@pytest.mark.parametrize("seq", SEQUENCES)
def test_davis2016_masks_are_reproduced_exactly(assets: Path, seq: str) -> None:
    root = assets / "davis2016"
    [entry] = [e for e in davis_sequence_entries(root) if e["video_id"] == seq]
    task = _run(_task(entry["uri"], entry["annotations"], video_id=seq))
    assert not task.failed and task.rejects == []
    [tube] = task.tubelets
    assert (tube.tubelet_id, tube.track_id, tube.source, tube.category) == (
        f"{seq}:davis:1",
        "1",
        "import:davis",
        "object",
    )
    assert (tube.fps, tube.width, tube.height) == (24.0, 854, 480)
    assert tube.extra == {"mask_format": "binary"}
    pngs = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
    assert len(pngs) == task.video.n_frames
    _check_against_pngs(task, pngs, lambda a: (a == 255).astype(np.uint8))
    videos = records_to_table("videos", [task.video])
    assert validate_tubelets(records_to_table("tubelets", task.tubelets), videos, check_masks="all") == []


@pytest.mark.assets
def test_davis_entries_are_video_entries(assets: Path) -> None:
    entries = davis_sequence_entries(assets / "davis2016")
    assert [e["video_id"] for e in entries] == SEQUENCES
    for e in entries:
        VideoEntry.model_validate(e)
        assert e["fps"] == 24.0 and Path(e["uri"]).is_dir() and Path(e["annotations"]["path"]).is_dir()


@pytest.mark.assets
def test_categories_come_from_the_annotation_ref(assets: Path) -> None:
    [entry] = [e for e in davis_sequence_entries(assets / "davis2016") if e["video_id"] == "dog"]
    task = _run(_task(entry["uri"], {**entry["annotations"], "categories": {"1": "dog"}}, video_id="dog"))
    assert task.tubelets[0].category == "dog"


# ------------------------------------------------------------------ synthetic sequences

H, W = 24, 32
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [7] * (3 * 253)


def _frames(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / f"{name}.jpg")
    return folder


def _palette_png(path: Path, labels: np.ndarray) -> None:
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.astype(np.uint8).tobytes())
    image.putpalette(PALETTE)
    image.save(path)
    assert Image.open(path).mode == "P"


def _scene(n: int = 7) -> list[np.ndarray]:
    """Object 1 moves through every frame; 2 leaves after frame 1, returns on frame 4 and
    leaves for good; 200 shows up on frame 3 only; a void (255) band crosses object 1."""
    out = []
    for i in range(n):
        lab = np.zeros((H, W), dtype=np.uint8)
        lab[2:10, 2 + i : 8 + i] = 1
        if i in (0, 1, 4):
            lab[14:20, 20 + i : 26] = 2
        if i == 3:
            lab[20:23, 0:3] = 200
        lab[5, :] = 255  # void
        out.append(lab)
    return out


def _without_void(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == 255, 0, labels)


def test_palette_sequence_gives_one_tubelet_per_object(tmp_path: Path) -> None:
    names = [f"{i:05d}" for i in range(7)]
    frames = _frames(tmp_path / "frames", names)
    masks = tmp_path / "masks"
    masks.mkdir()
    scene = _scene()
    for name, labels in zip(names, scene, strict=True):
        _palette_png(masks / f"{name}.png", labels)
    _palette_png(masks / "99999.png", scene[0])  # names no frame: rejected, not fatal
    ann = {"format": "davis", "path": str(masks), "categories": {"1": "dog", "2": "ball"}}
    task = _run(_task(frames, ann))

    assert not task.failed
    assert [(t.tubelet_id, t.category) for t in task.tubelets] == [
        ("v:davis:1", "dog"),
        ("v:davis:2", "ball"),
        ("v:davis:200", "object"),
    ]
    _check_against_pngs(task, sorted(masks.glob("0*.png")), _without_void)
    ball = task.tubelets[1]
    assert [f.visible for f in ball.frames] == [True, True, False, False, True]  # frames 0-4
    assert ball.frames[2].box_xyxy == ball.frames[1].box_xyxy == [21.0, 14.0, 26.0, 20.0]
    assert [f.frame_idx for f in task.tubelets[2].frames] == [3]
    assert all(
        not (decode_rle(f.mask_rle) & (scene[f.frame_idx] == 255)).any()
        for t in task.tubelets
        for f in t.frames
        if f.visible
    )  # void is nobody's
    [reject] = task.rejects
    assert reject.stage == "import_annotations" and reject.item.endswith("99999.png")
    assert "names no frame file" in reject.reason


def test_frame_order_is_the_readers_natural_order(tmp_path: Path) -> None:
    names = [f"f{i}" for i in range(1, 13)]  # f1 … f12, unpadded: f10 is the 10th frame
    frames = _frames(tmp_path / "frames", names)
    masks = tmp_path / "masks"
    masks.mkdir()
    lab = np.zeros((H, W), dtype=np.uint8)
    lab[1:4, 1:4] = 1
    for name in ("f2", "f10", "f12"):
        _palette_png(masks / f"{name}.png", lab)
    task = _run(_task(frames, {"format": "davis", "path": str(masks)}))
    assert [f.frame_idx for f in task.tubelets[0].frames] == [1, 9, 11]
    with VideoReader(str(frames), fps=24) as reader:
        assert reader.n_frames == 12


def test_grayscale_index_maps_and_1_bit_masks(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "frames", ["0", "1"])
    gray, onebit = tmp_path / "gray", tmp_path / "onebit"
    gray.mkdir()
    onebit.mkdir()
    labels = np.zeros((H, W), dtype=np.uint8)
    labels[0:5, 0:5], labels[10:12, 10:20] = 1, 3
    for name in ("0", "1"):
        Image.fromarray(labels).save(gray / f"{name}.png")  # mode L with values 0, 1, 3
        Image.fromarray(labels == 3).save(onebit / f"{name}.png")  # mode 1
    task = _run(_task(frames, {"format": "davis", "path": str(gray)}))
    assert [t.track_id for t in task.tubelets] == ["1", "3"]
    assert task.tubelets[0].extra["mask_format"] == "indexed"
    task = _run(_task(frames, {"format": "davis", "path": str(onebit)}))
    [tube] = task.tubelets
    assert tube.track_id == "1" and tube.extra["mask_format"] == "binary"
    assert np.array_equal(decode_rle(tube.frames[0].mask_rle), labels == 3)


def test_masks_on_a_video_file_use_container_times(tmp_path: Path) -> None:
    video = make_mp4(tmp_path / "clip.mp4", n=12, width=W, height=H)
    masks = tmp_path / "masks"
    masks.mkdir()
    lab = np.zeros((H, W), dtype=np.uint8)
    lab[3:9, 4:12] = 5
    for name in ("00003", "00005", "00099"):  # frame indices; 99 is beyond the video
        _palette_png(masks / f"{name}.png", lab)
    task = _run(_task(video, {"format": "davis", "path": str(masks)}, fps=None))
    [tube] = task.tubelets
    with VideoReader(str(video)) as reader:
        ts = reader.timestamps()
    assert [(f.frame_idx, f.t_s, f.visible) for f in tube.frames] == [(3, ts[3], True), (5, ts[5], True)]
    [reject] = task.rejects
    assert reject.item.endswith("00099.png") and "frame index below 12" in reject.reason


def _fails(task: VideoTask) -> str:
    done = _run(task)
    assert done.failed and done.failed_stage == "import_annotations"
    return done.rejects[-1].reason


def test_unusable_annotations_reject_the_video(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "frames", ["0", "1"])
    assert "FileNotFoundError" in _fails(_task(frames, {"format": "davis", "path": str(tmp_path / "nope")}))
    small = tmp_path / "small"
    small.mkdir()
    _palette_png(small / "0.png", np.ones((12, 16), dtype=np.uint8))
    assert "mask is 16x12 but the video is 32x24" in _fails(_task(frames, {"format": "davis", "path": str(small)}))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    binary = np.zeros((H, W), dtype=np.uint8)
    binary[0:3, 0:3] = 255
    Image.fromarray(binary).save(mixed / "0.png")
    Image.fromarray(binary // 255 * 2).save(mixed / "1.png")  # an index map after a 0/255 mask
    assert "read as binary" in _fails(_task(frames, {"format": "davis", "path": str(mixed)}))
    other = tmp_path / "other"
    other.mkdir()
    _palette_png(other / "zzz.png", binary)
    assert "names a frame" in _fails(_task(frames, {"format": "davis", "path": str(other)}))
    assert "no annotations" in _fails(_task(frames, None))
    assert "unknown annotation format 'coco'" in _fails(_task(frames, {"format": "coco", "path": "x"}))
    unprobed = VideoTask(video_id="u", uri=str(frames), fps=24, annotations={"format": "davis", "path": "x"})
    assert "run ProbeVideo" in _fails(unprobed)


def test_import_davis_directly(tmp_path: Path) -> None:
    """The importer works without a task: a FrameIndex is all it needs."""
    from tubelet.annotators.importers.common import FrameIndex

    frames = _frames(tmp_path / "frames", ["0", "1", "2"])
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, labels in enumerate(_scene(3)):
        _palette_png(masks / f"{i}.png", labels)
    video = probe_task(VideoTask(video_id="d", uri=str(frames), fps=10.0), decode_check=False)
    result = import_davis(masks, FrameIndex.of(video))
    assert [t.tubelet_id for t in result.tubelets] == ["d:davis:1", "d:davis:2"]
    assert [f.t_s for f in result.tubelets[0].frames] == [0.0, 0.1, 0.2]
