"""`tubelet export` (tubelet.release.exports): each format written, then read back by tubelet's
importer or the format's reference reader (tests/release/export_readers.py), with identical
boxes and masks; deterministic bytes; clear errors. Datasets are built here: the bundled
synthetic sample (masks; an mp4 and the same frames as a folder), a MOT sequence written
in the test (boxes beyond the frame, occluded rows, ignored classes) and the tiny dataset
of the validate tests (media that does not exist)."""

from __future__ import annotations

import copy
import dataclasses
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine import tiny_dataset
from tests.release.export_readers import (
    davis2017_masks,
    davis2017_round_trip,
    davis2017_sequences,
    export_objects,
    imported,
    trackeval_dataset,
    trackeval_scores,
    visible_masks,
    webdataset_round_trip,
    youtube_vis_round_trip,
)
from tubelet.annotators.importers.common import FrameIndex
from tubelet.annotators.importers.davis import davis_sequence_entries
from tubelet.annotators.importers.mot import import_mot, mot_sequence_entries
from tubelet.cli.main import main
from tubelet.cli.sample import SampleInfo
from tubelet.engine.dataset import Dataset
from tubelet.engine.task import VideoTask
from tubelet.engine.writer import ShardWriter
from tubelet.release.exports import ExportError, ExportExistsError, ExportOptions, export
from tubelet.release.exports.common import numbered, safe_name
from tubelet.release.exports.davis import PALETTE
from tubelet.schemas import Answer, Entity, Event, Instruction, Message, RegionRef, Tubelet, TubeletFrame
from tubelet.schemas.info import DatasetInfo, write_info
from tubelet.schemas.rle import encode_mask

pytest.importorskip("cv2")  # the synthetic sample's mp4


def write_dataset(root: Path, tasks: list[VideoTask]) -> Path:
    """``tasks`` committed through the real ShardWriter, one shard each."""
    with ShardWriter(root, shard_size=1, run_id="20250101T000000Z-export") as writer:
        for task in tasks:
            writer.add(task)
    write_info(root / "meta" / "info.json", DatasetInfo(pipeline="test", config_hash="0" * 16))
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sidecar(folder: Path) -> dict:
    return json.loads((folder / "tubelet_export.json").read_text())


# ------------------------------------------------------------------ datasets


@pytest.fixture(scope="module")
def sample_ds(synthetic_sample: SampleInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as an mp4 (with an entity, an event and an instruction) and as a frame folder."""
    rows = [json.loads(line) for line in synthetic_sample.video_list.read_text().splitlines()]
    tasks = []
    for row in rows:
        annotations = dict(row["annotations"], path=str(synthetic_sample.masks_dir))
        uri = synthetic_sample.root / row["uri"]
        tasks.append(imported(uri, row["video_id"], annotations, row.get("fps"), split="val"))
    mp4 = tasks[0]
    first = mp4.tubelets[0]
    mp4.entities = [Entity(f"{first.tubelet_id}:entity", mp4.video_id, first.tubelet_id, first.category, "the square")]
    mp4.events = [Event(f"{mp4.video_id}:event:0:0", mp4.video_id, [first.tubelet_id], 1.5, 2.0, 36, 48, "moves right")]
    mp4.instructions = [
        Instruction(
            f"{mp4.video_id}:temporal_grounding:0",
            mp4.video_id,
            "temporal_grounding",
            [Message("user", "When does <region0> move?"), Message("assistant", "1.5 s to 2.0 s.")],
            Answer(span_s=[1.5, 2.0], tubelet_ids=[first.tubelet_id]),
            regions=[RegionRef("<region0>", first.tubelet_id, [36])],
        )
    ]
    return write_dataset(tmp_path_factory.mktemp("sample-ds") / "ds", tasks)


#: frame,id,x,y,w,h,consider,class,visibility: pedestrians 3 and 12 (12 reaches past the
#: left edge, is fully occluded on frame 3, has fractional coordinates), a static person (7)
#: and a car (3) that are not considered, an occluder (9).
MOT_GT = """\
1,3,10,5,8,20,1,1,1
2,3,11,5,8,20,1,1,0.75
3,3,12,5,8,20,1,1,1
4,3,13,5,8,20,1,1,1
1,12,-3.5,20.25,9,18,1,1,0.5
2,12,-2.5,20.25,9,18,1,1,0.5
3,12,-1.5,20.25,9,18,1,1,0
4,12,-0.5,20.25,9,18,1,1,0.6
1,4,40,30,10,12,0,7,1
2,4,40,30,10,12,0,7,1
2,5,30,2,20,10,0,3,0.9
3,5,31,2,20,10,0,3,0.9
4,6,50,10,10,30,0,9,1
"""


@pytest.fixture(scope="module")
def mot_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-frame MOT sequence (frames 000001.jpg…, 64x48 at 10 fps) imported as ground truth."""
    tmp = tmp_path_factory.mktemp("mot-ds")
    img1 = tmp / "seq" / "img1"
    img1.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(1, 5):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(img1 / f"{i:06d}.jpg")
    (tmp / "seq" / "gt.txt").write_text(MOT_GT)
    task = imported(img1, "seq-a", {"format": "mot", "path": str(tmp / "seq" / "gt.txt")}, fps=10.0, split="train")
    assert task.rejects == []
    return write_dataset(tmp / "ds", [task])


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return tiny_dataset.build(tmp_path / "tiny")


# ------------------------------------------------------------------ MOT


def test_mot_gt_round_trips_through_the_importer(mot_ds: Path, tmp_path: Path) -> None:
    report = export(mot_ds, tmp_path / "gt", ExportOptions(format="mot"))
    assert report.counts["boxes"] == len(MOT_GT.splitlines()) and report.left_out == []
    split = tmp_path / "gt" / "MOT17-train"
    assert (tmp_path / "gt" / "seqmaps" / "MOT17-train.txt").read_text() == "name\nseq-a\n"
    written = sorted(
        tuple(float(v) for v in line.split(",")) for line in (split / "seq-a/gt/gt.txt").read_text().splitlines()
    )
    assert written == sorted(tuple(float(v) for v in line.split(",")) for line in MOT_GT.splitlines())
    [original] = Dataset(mot_ds).records("videos")
    tubelets = Dataset(mot_ds).records("tubelets")

    # the gt file alone, imported against the dataset's own video
    again = import_mot(split / "seq-a/gt/gt.txt", FrameIndex.of(original))
    assert again.rejects == [] and again.tubelets == tubelets  # ids, categories, amodal boxes, visibility, consider

    # the exported folder as a MOTChallenge sequence: seqinfo.ini, img1/, gt/gt.txt
    [entry] = mot_sequence_entries(split)
    assert (entry["video_id"], entry["fps"], entry["extra"]) == ("seq-a", 10.0, {"seq_length": 4})
    task = imported(entry["uri"], entry["video_id"], entry["annotations"], entry["fps"])
    assert task.tubelets == tubelets
    assert task.video is not None and (task.video.width, task.video.height, task.video.n_frames) == (64, 48, 4)
    assert (split / "seq-a/img1/000001.jpg").read_bytes() == (Path(original.uri) / "000001.jpg").read_bytes()


def test_trackeval_loads_every_box_and_scores_gt_against_itself(mot_ds: Path, tmp_path: Path) -> None:
    export(mot_ds, tmp_path / "gt", ExportOptions(format="mot", frames=False))
    export(mot_ds, tmp_path / "all", ExportOptions(format="mot", role="tracker"))
    export(mot_ds, tmp_path / "ped", ExportOptions(format="mot", role="tracker", categories=("pedestrian",)))
    assert not (tmp_path / "gt" / "MOT17-train/seq-a/img1").exists()
    assert sorted(p.name for p in (tmp_path / "all" / "MOT17-train/tubelet/data").iterdir()) == ["seq-a.txt"]

    dataset = trackeval_dataset(tmp_path / "gt", tmp_path / "all", "train")
    raw = dataset.get_raw_seq_data("tubelet", "seq-a")
    rows = np.array([[float(v) for v in line.split(",")] for line in MOT_GT.splitlines()])
    for t in range(4):
        mine = rows[rows[:, 0] == t + 1]
        order = np.argsort(mine[:, 1])
        assert np.array_equal(np.sort(raw["gt_ids"][t]), mine[order, 1].astype(int))
        by_id = dict(zip(raw["gt_ids"][t], raw["gt_dets"][t]))
        assert all(np.array_equal(by_id[int(r[1])], r[2:6]) for r in mine)  # x, y, w, h exactly
        assert dict(zip(raw["gt_ids"][t], raw["gt_classes"][t])) == {int(r[1]): int(r[7]) for r in mine}
        assert dict(zip(raw["gt_ids"][t], raw["gt_extras"][t]["zero_marked"])) == {int(r[1]): int(r[6]) for r in mine}
        tracked = dict(zip(raw["tracker_ids"][t], raw["tracker_dets"][t]))
        assert all(np.array_equal(tracked[int(r[1])], r[2:6]) for r in mine)  # the tracker file has every row too
        assert set(raw["tracker_classes"][t]) <= {-1} and set(raw["tracker_confidences"][t]) <= {1.0}

    # gt scored against its own pedestrians: perfect by every measure
    perfect = trackeval_scores(trackeval_dataset(tmp_path / "gt", tmp_path / "ped", "train"))
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1"):
        assert perfect[key] == pytest.approx(1.0), key
    assert (perfect["CLR_TP"], perfect["CLR_FN"], perfect["CLR_FP"], perfect["IDSW"]) == (8, 0, 0, 0)

    # against every row: the static person (a distractor class) is removed, the car and the
    # occluder are false positives (MOTChallenge protocol, TrackEval's preprocessing)
    scores = trackeval_scores(dataset)
    assert (scores["CLR_TP"], scores["CLR_FN"], scores["CLR_FP"]) == (8, 0, 3)
    assert scores["MOTA"] == pytest.approx(1 - 3 / 8)


def test_mot_rows_kept_aside_by_the_importer_are_written_back(tiny: Path, tmp_path: Path) -> None:
    """A MOT import may keep a class per row (``extra.mot_classes``) and the rows wholly outside
    the frame (``extra.outside``, no frame of the tubelet): the gt file has them all again."""
    [video] = [v for v in Dataset(tiny).records("videos") if v.video_id == "a"]
    frames = [
        TubeletFrame(0, 0.0, [0.0, 4.0, 10.0, 20.0], amodal_xyxy=[-5.0, 4.0, 10.0, 20.0]),
        TubeletFrame(1, 0.1, [1.0, 4.0, 11.0, 20.0], visible=False),
    ]
    extra = {
        "mot_class": 1,
        "mot_classes": [1, 7],
        "visibility": [0.5, 0.0],
        "consider": [True, False],
        "outside": [
            {"frame_idx": 2, "xyxy": [-20.0, 4.0, -5.0, 20.0], "mot_class": 1, "visibility": 0.0, "consider": True}
        ],
    }
    task = VideoTask(video_id="a", uri=video.uri)
    task.video = video
    task.tubelets = [Tubelet("a:mot:4", "a", "pedestrian", "import:mot", "4", 10.0, 64, 48, frames, extra=extra)]
    root = write_dataset(tmp_path / "ds", [task])
    report = export(root, tmp_path / "gt", ExportOptions(format="mot", frames=False))
    assert report.counts["rows_outside_the_frame"] == 1
    assert (
        tmp_path / "gt/MOT17-val/a/gt/gt.txt"
    ).read_text() == "1,4,-5,4,15,16,1,1,0.5\n2,4,1,4,10,16,0,7,0\n3,4,-20,4,15,16,1,1,0\n"
    export(root, tmp_path / "tracker", ExportOptions(format="mot", role="tracker"))
    text = (tmp_path / "tracker/MOT17-val/tubelet/data/a.txt").read_text()
    assert text == "1,4,-5,4,15,16,1,-1,-1,-1\n2,4,1,4,10,16,1,-1,-1,-1\n3,4,-20,4,15,16,1,-1,-1,-1\n"


def test_mot_ids_are_kept_or_numbered_by_first_appearance() -> None:
    def tube(tid: str, track: str, first: int) -> Tubelet:
        frames = [TubeletFrame(first, first / 10, [0.0, 0.0, 4.0, 4.0])]
        return Tubelet(tid, "v", "person", "test", track, 10.0, 8, 8, frames)

    kept = [tube("v:a", "7", 3), tube("v:b", "2", 0)]
    assert numbered(kept, keep="any") == {"v:a": 7, "v:b": 2}
    assert numbered(kept, keep="contiguous") == {"v:b": 1, "v:a": 2}  # 2 and 7 are not 1..2
    words = [tube("v:z", "zeta", 0), tube("v:y", "ypsilon", 5), tube("v:x", "xi", 0)]
    assert numbered(words, keep="any") == {"v:x": 1, "v:z": 2, "v:y": 3}
    assert numbered([tube("v:a", "1", 4), tube("v:b", "1", 0)], keep="any") == {"v:b": 1, "v:a": 2}  # not distinct


def test_names_are_safe_for_every_consumer() -> None:
    assert safe_name("MOT17-02-FRCNN") == "MOT17-02-FRCNN"
    assert safe_name("clip.v2") != safe_name("clip_v2") == "clip_v2"
    assert "." not in safe_name("clip.v2") and "/" not in safe_name("a/b")
    assert safe_name("__key__").startswith("v__key__-")  # webdataset skips __x__ keys


# ------------------------------------------------------------------ DAVIS


def test_davis_round_trips_through_the_importer_and_the_davis2017_reader(sample_ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "davis"
    report = export(sample_ds, out, ExportOptions(format="davis"))
    assert report.left_out == [] and report.counts["objects"] == 6 and report.counts["pngs_written"] == 144
    assert "overlap_pixels" not in report.counts  # a palette import never overlaps
    ds = Dataset(sample_ds)
    videos = {v.video_id: v for v in ds.records("videos")}
    tubelets = ds.records("tubelets")
    assert davis2017_sequences(out, "val") == ["sample-scene", "sample-scene-frames"]

    png = Image.open(out / "Annotations/480p/sample-scene/00030.png")
    assert png.mode == "P" and png.getpalette()[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    assert PALETTE[:12] == bytes([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0])

    entries = davis_sequence_entries(out, fps=24.0)
    for entry in entries:
        vid = entry["video_id"]
        task = imported(entry["uri"], vid, entry["annotations"], fps=24.0)
        mine = [t for t in tubelets if t.video_id == vid]
        assert [(t.tubelet_id, len(t.frames)) for t in task.tubelets] == [(t.tubelet_id, len(t.frames)) for t in mine]
        for again, before in zip(task.tubelets, mine, strict=True):
            assert without_times(again) == without_times(before)  # masks (RLE), boxes, visibility: all equal
            # a frame folder's times are frame / fps; the mp4's came from its container (rounded to its time base)
            assert [f.t_s for f in again.frames] == pytest.approx([f.t_s for f in before.frames], abs=1e-5)
    # davis2017-evaluation's reader: every object is on the first frame here
    read = davis2017_round_trip(out, "val", tubelets)
    assert read.mismatches == [] and read.masks == report.counts["masks_written"] == len(visible_masks(tubelets))
    assert davis2017_masks(out, "sample-scene")[0].shape == (3, 72, 360, 640)
    # JPEG frames of a folder are copied, those of an mp4 decoded once
    frames = Path(videos["sample-scene-frames"].uri)
    assert (out / "JPEGImages/480p/sample-scene-frames/00005.jpg").read_bytes() == (frames / "00005.jpg").read_bytes()
    assert Image.open(out / "JPEGImages/480p/sample-scene/00005.jpg").size == (640, 360)
    objects = {v["video_id"]: v["objects"] for v in sidecar(out)["videos"]}
    assert objects["sample-scene"] == {
        "1": "sample-scene:davis:1",
        "2": "sample-scene:davis:2",
        "3": "sample-scene:davis:3",
    }


def without_times(tubelet: Tubelet) -> list[TubeletFrame]:
    return [dataclasses.replace(f, t_s=0.0) for f in tubelet.frames]


def _mask_tubelet(tid: str, track: str, frames: dict[int, tuple[int, int, int, int]], w: int = 64, h: int = 48):
    rows = []
    for f, (x1, y1, x2, y2) in frames.items():
        m = np.zeros((h, w), dtype=np.uint8)
        m[y1:y2, x1:x2] = 1
        rows.append(TubeletFrame(f, f / 10, [float(x1), float(y1), float(x2), float(y2)], mask_rle=encode_mask(m)))
    return Tubelet(tid, "a", "thing", "test", track, 10.0, w, h, rows)


def test_davis_overlaps_go_to_the_lower_id_and_box_only_tubelets_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_dataset.build(tmp_path / "ds")
    # replace video a's tubelets: "p" appears first (id 1) and covers part of "q" (id 2) on
    # frame 3 and all of it on frame 4; "r" is box-only
    ds = Dataset(root)
    [video] = [v for v in ds.records("videos") if v.video_id == "a"]
    task = VideoTask(video_id="a", uri=video.uri)
    task.video = video
    p = _mask_tubelet("a:p", "p", {2: (0, 0, 10, 10), 3: (0, 0, 10, 10), 4: (0, 0, 10, 10)})
    q = _mask_tubelet("a:q", "q", {3: (5, 5, 15, 15), 4: (2, 2, 8, 8), 5: (20, 20, 30, 30)})
    r = copy.deepcopy(q)
    r.tubelet_id, r.track_id = "a:r", "r"
    for f in r.frames:
        f.mask_rle = None
    task.tubelets = [p, q, r]
    fresh = write_dataset(tmp_path / "overlap", [task])

    out = tmp_path / "davis"
    code = main(["export", str(fresh), "--format", "davis", "--to", str(out), "--no-frames"])
    assert code == 1  # written, but an item was left out
    printed = capsys.readouterr().out
    assert "a:r: a box-only tubelet" in printed
    labels = {f: np.array(Image.open(out / f"Annotations/480p/a/{f:05d}.png")) for f in range(10)}
    assert not (out / "JPEGImages").exists()
    assert set(np.unique(labels[0])) == {0} and len(labels) == 10  # every frame has a PNG
    assert (labels[3][5:10, 5:10] == 1).all() and (labels[3][10:15, 5:15] == 2).all()
    assert (labels[4] == 2).sum() == 0 and (labels[5][20:30, 20:30] == 2).all()
    info = sidecar(out)
    assert info["counts"]["overlap_pixels"] == 25 + 36 and info["counts"]["overlap_frames"] == 2
    assert info["counts"]["object_frames_hidden_by_overlap"] == 1 and info["counts"]["left_out:box_only"] == 1
    assert info["left_out"] == [{"item": "a:r", "reason": "a box-only tubelet: DAVIS annotations are masks"}]
    assert info["videos"][0]["objects"] == {"1": "a:p", "2": "a:q"}


# ------------------------------------------------------------------ YouTube-VIS


def test_youtube_vis_decodes_as_the_api_reads_it(sample_ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "ytvis"
    report = export(sample_ds, out, ExportOptions(format="youtube-vis"))
    data = json.loads((out / "val.json").read_text())
    assert sorted(data) == ["annotations", "categories", "info", "licenses", "videos"]
    assert [c["name"] for c in data["categories"]] == ["blue triangle", "green circle", "red square"]
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    names = {1: "sample-scene", 2: "sample-scene-frames"}
    assert [v["id"] for v in data["videos"]] == [1, 2]
    for video in data["videos"]:
        assert (video["width"], video["height"], video["length"]) == (640, 360, 72)
        assert video["file_names"][7] == f"{names[video['id']]}/00007.jpg"
        assert all((out / "val" / "JPEGImages" / name).is_file() for name in video["file_names"])
    tubelets = {t.tubelet_id: t for t in Dataset(sample_ds).records("tubelets")}
    category = {c["id"]: c["name"] for c in data["categories"]}
    objects = export_objects(out)
    for ann in data["annotations"]:
        tube = tubelets[objects[names[ann["video_id"]]][ann["id"]]]
        assert category[ann["category_id"]] == tube.category and ann["iscrowd"] == 0
        assert len(ann["segmentations"]) == len(ann["bboxes"]) == len(ann["areas"]) == 72
    read = youtube_vis_round_trip(out, "val", list(tubelets.values()))
    assert read.mismatches == [] and read.masks == report.counts["masks_written"] == len(
        visible_masks(list(tubelets.values()))
    )
    assert read.boxes == read.masks  # every visible frame of an import has its mask


# ------------------------------------------------------------------ WebDataset


def test_webdataset_samples_read_back_with_webdataset(sample_ds: Path, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    out = tmp_path / "wds"
    report = export(sample_ds, out, ExportOptions(format="webdataset", shard_size=1))
    assert sorted(p.name for p in out.iterdir()) == ["tubelet_export.json", "val-000000.tar", "val-000001.tar"]
    assert (report.counts["mp4_copied"], report.counts["mp4_reencoded"]) == (1, 1)
    with tarfile.open(out / "val-000000.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["sample-scene.json", "sample-scene.mp4"]
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644) for m in members)

    samples = list(wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False).decode())
    assert [s["__key__"] for s in samples] == ["sample-scene", "sample-scene-frames"]
    assert "uri" not in samples[0]["json"]["video"] and samples[0]["json"]["events"][0]["text"] == "moves right"
    assert samples[1]["json"]["video"]["media"] == {
        "codec": "h264",
        "copied": False,
        "member": "sample-scene-frames.mp4",
        "rotation": 0,
    }
    read = webdataset_round_trip(out, Dataset(sample_ds))
    assert read.mismatches == [] and read.masks == report.counts["masks"] > 0


# ------------------------------------------------------------------ every format


@pytest.mark.parametrize("fmt", ["mot", "davis", "youtube-vis", "webdataset"])
def test_the_same_dataset_gives_the_same_bytes(sample_ds: Path, tmp_path: Path, fmt: str) -> None:
    first = export(sample_ds, tmp_path / "one", ExportOptions(format=fmt, videos=("sample-scene-frames",)))
    second = export(sample_ds, tmp_path / "two", ExportOptions(format=fmt, videos=("sample-scene-frames",)))
    assert first.counts == second.counts and first.counts["videos"] == 1
    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_selection_by_video_split_and_category(sample_ds: Path, tmp_path: Path) -> None:
    options = ExportOptions(format="mot", role="tracker", videos=("sample-scene",), categories=("green circle",))
    report = export(sample_ds, tmp_path / "one", options)
    assert (report.counts["videos"], report.counts["tubelets"]) == (1, 1)
    assert report.counts["dropped:entities"] == 1 and report.counts["dropped:instructions"] == 1
    lines = (tmp_path / "one/MOT17-val/tubelet/data/sample-scene.txt").read_text().splitlines()
    assert {line.split(",")[1] for line in lines} == {"2"}
    with pytest.raises(ExportError, match="no video to export \\(split train\\)"):
        export(sample_ds, tmp_path / "two", ExportOptions(format="mot", split="train"))
    with pytest.raises(ExportError, match="no video nope in the dataset"):
        export(sample_ds, tmp_path / "three", ExportOptions(format="mot", videos=("nope", "sample-scene")))
    with pytest.raises(ExportError, match="no tubelets of categories dragon"):
        export(sample_ds, tmp_path / "four", ExportOptions(format="mot", categories=("dragon",)))


def test_errors_name_the_item(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExportError, match="unknown export format 'coco'; formats: davis, mot, webdataset, youtube-vis"):
        export(tiny, tmp_path / "x", ExportOptions(format="coco"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ExportExistsError, match="busy exists and is not empty"):
        export(tiny, busy, ExportOptions(format="mot"))
    assert (busy / "keep.txt").read_text() == "mine"
    # the tiny dataset's videos point at files that do not exist
    with pytest.raises(ExportError, match="video a: its media /videos/a.mp4 is missing"):
        export(tiny, tmp_path / "wds", ExportOptions(format="webdataset"))
    with pytest.raises(ExportError, match="video a: its media /videos/a.mp4 is missing"):
        export(tiny, tmp_path / "davis", ExportOptions(format="davis"))
    assert not (tmp_path / "wds").exists() and not (tmp_path / "davis").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # annotations alone need no media
    assert export(tiny, tmp_path / "masks", ExportOptions(format="davis", frames=False)).counts["objects"] == 3

    empty = tmp_path / "empty"
    task = VideoTask(video_id="a", uri="/videos/a.mp4")
    task.video = Dataset(tiny).records("videos")[0]
    write_dataset(empty, [task])
    with pytest.raises(ExportError, match="the selected videos have no tubelets: nothing to export"):
        export(empty, tmp_path / "none", ExportOptions(format="youtube-vis"))

    code = main(["export", str(tiny), "--format", "coco", "--to", str(tmp_path / "c")])
    assert code == 2 and "invalid choice: 'coco'" in capsys.readouterr().err
    code = main(["export", str(tiny), "--format", "mot", "--to", str(busy)])
    assert code == 2 and "busy exists and is not empty" in capsys.readouterr().err
    code = main(["export", str(tiny), "--format", "webdataset", "--to", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and "tubelet: error: video a: its media /videos/a.mp4 is missing" in err
    code = main(["export", str(tmp_path / "nowhere"), "--format", "mot", "--to", str(tmp_path / "n")])
    assert code == 2 and "no dataset at" in capsys.readouterr().err


def test_cli_export_prints_what_it_wrote(sample_ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(sample_ds), "--format", "youtube-vis", "--to", str(tmp_path / "y"), "--no-frames"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"youtube-vis export written to {tmp_path / 'y'}: 2 videos, 6 tubelets")
    assert "annotations 6" in out and not (tmp_path / "y" / "val").exists()
    info = sidecar(tmp_path / "y")
    assert info["options"] == {"categories": [], "dataset_version": None, "frames": False, "split": None, "videos": []}
    assert info["dataset"]["name"] == "ds" and str(tmp_path) not in json.dumps(info)


def test_export_reads_a_dataset_on_object_storage(sample_ds: Path, tmp_path: Path, s3) -> None:
    url = s3.url("exports", "ds")
    s3.fs().put(str(sample_ds), url, recursive=True)
    export(url, tmp_path / "remote", ExportOptions(format="davis", frames=False))
    export(sample_ds, tmp_path / "local", ExportOptions(format="davis", frames=False))
    assert tree(tmp_path / "remote") == tree(tmp_path / "local")  # the name is "ds" both ways
