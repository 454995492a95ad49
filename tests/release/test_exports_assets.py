"""`tubelet export` of real ground truth — the DAVIS-2016 and MOT17-mini imports (what
manifests/davis-import.yaml and mot17-import.yaml run) — read back by tubelet's importers,
the formats' reference readers and TrackEval itself (needs ../shared/assets; skipped
when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.release.export_readers import (
    davis2017_round_trip,
    imported,
    trackeval_dataset,
    trackeval_scores,
    webdataset_round_trip,
    youtube_vis_round_trip,
)
from tubelet.annotators.importers.common import FrameIndex
from tubelet.annotators.importers.davis import davis_sequence_entries
from tubelet.annotators.importers.mot import import_mot, mot_sequence_entries
from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.pipelines import run_manifest
from tubelet.release.exports import ExportOptions, export

pytestmark = pytest.mark.assets
#: TrackEval's MOT17 distractor classes: person on vehicle, static person, distractor, reflection.
DISTRACTORS = {2, 7, 8, 12}


@pytest.fixture(scope="module")
def datasets(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two import manifests' runs (same pipeline, parameters and video fields), into temporary folders."""
    davis = [dict(e, split="val", source="davis2016") for e in davis_sequence_entries(assets / "davis2016")]
    mot = mot_sequence_entries(assets / "mot17-mini" / "train")
    out = {}
    for name, videos in (("davis", davis), ("mot17", mot)):
        root = tmp_path_factory.mktemp(name) / name
        config = RunConfig(pipeline="import", output=str(root), runner="inline", videos=videos)
        summary = run_manifest(config, progress=False, log_to_stderr=False)
        assert summary.done == len(videos) and summary.failed == 0
        out[name] = root
    return out


def test_davis2016_through_the_importer_and_davis2017_reader(datasets: dict[str, Path], tmp_path: Path) -> None:
    ds = Dataset(datasets["davis"])
    tubelets = ds.records("tubelets")
    out = tmp_path / "davis"
    report = export(datasets["davis"], out, ExportOptions(format="davis"))
    assert report.left_out == [] and report.counts["objects"] == 8 and report.counts["masks_written"] == 391
    again = []
    for entry in davis_sequence_entries(out, fps=24.0):
        task = imported(entry["uri"], entry["video_id"], entry["annotations"], fps=24.0, split="val")
        again += task.tubelets
    # both are 24 fps frame folders: every frame equal, times included
    assert [(t.tubelet_id, t.frames) for t in again] == [(t.tubelet_id, t.frames) for t in tubelets]
    read = davis2017_round_trip(out, "val", tubelets)
    assert read.mismatches == [] and read.masks == 391


def test_davis2016_as_youtube_vis_and_webdataset(datasets: dict[str, Path], tmp_path: Path) -> None:
    ds = Dataset(datasets["davis"])
    tubelets = ds.records("tubelets")
    export(datasets["davis"], tmp_path / "ytvis", ExportOptions(format="youtube-vis"))
    read = youtube_vis_round_trip(tmp_path / "ytvis", "val", tubelets)
    assert read.mismatches == [] and (read.masks, read.boxes) == (391, 391)
    report = export(datasets["davis"], tmp_path / "wds", ExportOptions(format="webdataset", shard_size=3))
    assert report.counts["shards"] == 3 and report.counts["mp4_reencoded"] == 8
    read = webdataset_round_trip(tmp_path / "wds", ds)
    assert read.mismatches == [] and read.masks == 391


def _gt_rows(assets: Path) -> dict[str, np.ndarray]:
    train = assets / "mot17-mini" / "train"
    return {p.parent.parent.name: np.loadtxt(p, delimiter=",", ndmin=2) for p in sorted(train.glob("*/gt/gt.txt"))}


def test_mot17_gt_through_the_importer_and_trackeval(datasets: dict[str, Path], assets: Path, tmp_path: Path) -> None:
    ds = Dataset(datasets["mot17"])
    tubelets = ds.records("tubelets")
    videos = {v.video_id: v for v in ds.records("videos")}
    report = export(datasets["mot17"], tmp_path / "gt", ExportOptions(format="mot", frames=False))
    rows = _gt_rows(assets)
    assert report.counts["boxes"] == sum(len(r) for r in rows.values()) == 1540
    for seq, video in videos.items():
        again = import_mot(tmp_path / "gt" / "MOT17-train" / seq / "gt" / "gt.txt", FrameIndex.of(video))
        assert again.rejects == [] and again.tubelets == [t for t in tubelets if t.video_id == seq]
    export(datasets["mot17"], tmp_path / "all", ExportOptions(format="mot", role="tracker"))
    export(datasets["mot17"], tmp_path / "ped", ExportOptions(format="mot", role="tracker", categories=("pedestrian",)))

    # TrackEval reads every box of both files, exactly as the original gt.txt has it
    dataset = trackeval_dataset(tmp_path / "gt", tmp_path / "all", "train")
    assert sorted(dataset.seq_list) == sorted(rows)
    for seq, gt in rows.items():
        raw = dataset.get_raw_seq_data("tubelet", seq)
        assert raw["num_timesteps"] == videos[seq].n_frames
        for t in range(raw["num_timesteps"]):
            mine = gt[gt[:, 0] == t + 1]
            got = {
                int(i): (d.tolist(), int(c))
                for i, d, c in zip(raw["gt_ids"][t], raw["gt_dets"][t], raw["gt_classes"][t])
            }
            assert got == {int(r[1]): (r[2:6].tolist(), int(r[7])) for r in mine}
            tracked = {int(i): d.tolist() for i, d in zip(raw["tracker_ids"][t], raw["tracker_dets"][t])}
            assert tracked == {int(r[1]): r[2:6].tolist() for r in mine}

    # ground truth against its own pedestrians: 1 everywhere
    perfect = trackeval_scores(trackeval_dataset(tmp_path / "gt", tmp_path / "ped", "train"))
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1"):
        assert perfect[key] == pytest.approx(1.0), key
    # against every row: what the MOTChallenge protocol makes of it, counted from the files
    everything = np.concatenate(list(rows.values()))
    classes, consider = everything[:, 7].astype(int), everything[:, 6]
    tp = int(((classes == 1) & (consider != 0)).sum())
    fp = int((~np.isin(classes, list(DISTRACTORS)) & (classes != 1)).sum())
    scores = trackeval_scores(dataset)
    assert (scores["CLR_TP"], scores["CLR_FN"], scores["CLR_FP"], scores["IDSW"]) == (tp, 0, fp, 0) == (814, 0, 590, 0)
    assert scores["MOTA"] == pytest.approx(1 - fp / tp)


def test_mot17_in_the_mask_formats_and_webdataset(datasets: dict[str, Path], tmp_path: Path) -> None:
    ds = Dataset(datasets["mot17"])
    report = export(datasets["mot17"], tmp_path / "ytvis", ExportOptions(format="youtube-vis", frames=False))
    assert report.counts["left_out:box_only"] == report.counts["tubelets"] == 251  # boxes only: no VIS annotation
    assert youtube_vis_round_trip(tmp_path / "ytvis", "train", ds.records("tubelets")).mismatches == []
    report = export(datasets["mot17"], tmp_path / "wds", ExportOptions(format="webdataset"))
    assert report.counts["samples"] == 7 and report.counts["boxes"] > 0
    read = webdataset_round_trip(tmp_path / "wds", ds)
    assert read.mismatches == [] and read.boxes == report.counts["boxes"]
