"""The consumer renderings (tubelet.release.formats through ShardRenderer) on hand-made rows: edge
cases a pipeline run seldom makes — no regions, a region whose tubelet was dropped, a box-only
tubelet, normalised boxes, relative time tokens, frame folders, the alias and the retired name."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.release.consumers import (
    LoadError,
    Media,
    load_llava_video,
    load_video_llava,
    load_videollama3,
    load_videorefer,
)
from tubelet.annotators.instructions.renderers import TimeFormat, parse_unistg
from tubelet.release.build import ReleaseOptions
from tubelet.release.formats import DEFAULT_FORMATS, NotLoadableError, RenderOptions, check_formats
from tubelet.release.render import ShardRenderer
from tubelet.schemas.arrow import record_to_row, records_to_table
from tubelet.schemas.records import Answer, BoxAt, Instruction, Message, RegionRef, Tubelet, TubeletFrame, VideoRecord
from tubelet.schemas.rle import decode_rle, encode_mask

W, H, FPS, N = 64, 48, 10.0, 20  # a 2 s video


def _mask(box: list[float]) -> dict:
    m = np.zeros((H, W), np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    m[y1:y2, x1:x2] = 1
    return encode_mask(m)


def _tubelet(tid: str, masks: bool) -> Tubelet:
    frames = []
    for i in range(0, N, 5):
        box = [4.0 + i, 6.0, 20.0 + i, 30.0]
        frames.append(TubeletFrame(i, i / FPS, box, _mask(box) if masks else None))
    return Tubelet(tid, "v", "dog", "import:test", tid, FPS, W, H, frames)


def _inst(iid: str, question: str, regions: list[RegionRef], answer: Answer, said: str | None = None) -> dict:
    messages = [Message("user", question)] + ([Message("assistant", said)] if said is not None else [])
    inst = Instruction(iid, "v", "test", messages, answer, regions)
    return record_to_row(inst)


ROWS = [
    _inst("plain", "What happens at 1.5s?", [], Answer(text="A dog runs."), "A dog runs."),
    _inst(
        "masked",
        "What is <region0> doing next to <region1>?",
        [RegionRef("<region0>", "masked", [0, 5]), RegionRef("<region1>", "boxes", [10])],
        Answer(text="Running."),
        "Running.",
    ),
    _inst(
        "grounded",
        "When and where is the dog visible?",
        [],
        Answer(span_s=[0.5, 1.5], boxes=[BoxAt(5, 0.5, [9.0, 6.0, 25.0, 30.0])], tubelet_ids=["masked"]),
        "From 0.5s to 1.5s. At 0.5s: [9, 6, 25, 30].",
    ),
    _inst("dropped", "Describe <region0>.", [RegionRef("<region0>", "gone", [0])], Answer(text="x"), "x"),
    _inst("unanswered", "Is the dog visible at 0.5s?", [], Answer(text="Yes")),
]


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 20-frame mp4 the size of the rows' video."""
    from tubelet.engine.video_write import write_mp4

    path = tmp_path_factory.mktemp("formats-unit") / "media" / "v.mp4"
    path.parent.mkdir()
    write_mp4(path, (np.full((H, W, 3), 10 * i, np.uint8) for i in range(N)), FPS)
    return path


def _renderer(root: Path, options: RenderOptions | None = None, notes: Counter | None = None) -> ShardRenderer:
    videos = records_to_table("videos", [VideoRecord("v", "media/v.mp4", FPS, N, N / FPS, W, H, "h264")])
    tubelets = records_to_table("tubelets", [_tubelet("masked", True), _tubelet("boxes", False)])
    return ShardRenderer(ROWS, videos, tubelets, options, notes, media_root=root)


def _render(renderer: ShardRenderer, fmt: str, iid: str, path: str = "media/v.mp4") -> dict:
    row = next(r for r in ROWS if r["instruction_id"] == iid)
    return json.loads(json.dumps(renderer.render(fmt, row, path)))


def test_videorefer_masks_box_masks_and_no_regions(video_file: Path) -> None:
    notes: Counter = Counter()
    renderer = _renderer(video_file.parents[1], notes=notes)
    media = Media()
    item = _render(renderer, "videorefer", "masked")
    assert item["conversations"][0]["value"] == "<video>\nWhat is <region> doing next to <region>?"
    assert [sorted(a) for a in item["annotation"]] == [["0", "5"], ["10"]]
    assert decode_rle(item["annotation"][0]["5"]["segmentation"])[6:30, 9:25].all()
    box_mask = decode_rle(item["annotation"][1]["10"]["segmentation"])
    assert box_mask.sum() == 16 * 24 and box_mask[6:30, 14:30].all()  # the box [14, 6, 30, 30] as a mask
    assert notes == Counter({("videorefer", "box_masked_regions"): 1})
    loaded = load_videorefer(item, video_file.parents[1], media)
    assert [[f for f, _ in r] for r in loaded.masks] == [[0, 5], [10]]
    plain = _render(renderer, "videorefer", "plain")
    assert "annotation" not in plain  # the loader then uses frame 0; an empty list would decode nothing
    assert load_videorefer(plain, video_file.parents[1], media).frames == [0]
    assert _render(renderer, "strefer", "masked") == item  # the alias renders the same
    assert notes[("strefer", "box_masked_regions")] == 1


def test_videollama3_one_mask_per_region_and_list_video(video_file: Path) -> None:
    renderer = _renderer(video_file.parents[1])
    item = _render(renderer, "videollama3", "masked")
    assert item["video"] == ["media/v.mp4"]
    assert [list(m) for m in item["masks"]] == [["0"], ["10"]]  # each object's first listed frame
    assert item["conversations"][0]["value"].count("<region>") == len(item["masks"]) == 2
    load_videollama3(item, video_file.parents[1], Media())
    plain = _render(renderer, "videollama3", "plain")
    assert "masks" not in plain and plain["video"] == ["media/v.mp4"]
    with pytest.raises(LoadError, match="Unsupported video format"):
        load_videollama3(dict(plain, video="media/v.mp4"), video_file.parents[1], Media())


@pytest.mark.parametrize(
    ("fmt", "token", "loader"),
    [("llava-video", "<image>", load_llava_video), ("video-llava", "<video>", load_video_llava)],
)
def test_llavas_one_token_first_and_regions_in_words(video_file: Path, fmt: str, token: str, loader) -> None:
    renderer = _renderer(video_file.parents[1])
    item = _render(renderer, fmt, "masked")
    human = item["conversations"][0]["value"]
    assert (
        human
        == f"{token}\nWhat is the object at [4, 6, 20, 30] at 0s doing next to the object at [14, 6, 30, 30] at 1s?"
    )
    assert item["video"] == "media/v.mp4" and [t["from"] for t in item["conversations"]] == ["human", "gpt"]
    loader(item, video_file.parents[1], Media())
    unanswered = _render(renderer, fmt, "unanswered")  # a row without an assistant turn ends on its answer
    assert unanswered["conversations"][-1] == {"from": "gpt", "value": "Yes"}
    with pytest.raises(LoadError, match="once|start with"):
        loader(
            dict(item, conversations=[{"from": "human", "value": "no token"}, item["conversations"][1]]),
            video_file.parents[1],
            Media(),
        )


def test_a_region_whose_tubelet_was_dropped_is_left_out_and_counted(video_file: Path) -> None:
    notes: Counter = Counter()
    renderer = _renderer(video_file.parents[1], notes=notes)
    for fmt in ("videorefer", "videollama3", "llava-video", "video-llava"):
        with pytest.raises(NotLoadableError, match="gone is not released"):
            _render(renderer, fmt, "dropped")
        assert notes[(fmt, "skipped:region_tubelet_missing")] == 1
    assert _render(renderer, "unistg", "dropped")["question"] == "Describe <region0>."  # Uni-STG text has no regions


def test_frame_folders_only_where_the_loader_reads_them(tmp_path: Path, video_file: Path) -> None:
    (tmp_path / "media" / "v").mkdir(parents=True)
    notes: Counter = Counter()
    renderer = _renderer(tmp_path, notes=notes)
    assert _render(renderer, "videorefer", "masked", "media/v")["video"] == "media/v"
    assert _render(renderer, "videollama3", "masked", "media/v")["video"] == ["media/v"]
    for fmt in ("llava-video", "video-llava"):
        with pytest.raises(NotLoadableError, match="frame folder"):
            _render(renderer, fmt, "plain", "media/v")
        assert notes[(fmt, "skipped:video_folder")] == 1


def test_normalised_boxes_and_relative_time_tokens(video_file: Path) -> None:
    options = RenderOptions(boxes="normalised", times="tokens", time_bins=21)  # a token every 0.1 s
    renderer = _renderer(video_file.parents[1], options)
    time = TimeFormat(bins=21, duration_s=N / FPS)
    grounded = _render(renderer, "llava-video", "grounded")
    answer = grounded["conversations"][1]["value"]
    assert answer == "From <t_5> to <t_15>. At <t_5>: [0.1406, 0.125, 0.3906, 0.625]."
    span, boxes = parse_unistg(answer, W, H, "unit", time)
    assert span == pytest.approx([0.5, 1.5]) and boxes[0][1] == pytest.approx([9, 6, 25, 30], abs=0.01)
    plain = _render(renderer, "video-llava", "plain")["conversations"]
    assert plain[0]["value"] == "<video>\nWhat happens at <t_15>?" and plain[1]["value"] == "A dog runs."
    masked = _render(renderer, "llava-video", "masked")["conversations"][0]["value"]
    assert "the object at [0.0625, 0.125, 0.3125, 0.625] at <t_0>" in masked
    unistg = _render(renderer, "unistg", "grounded")
    assert unistg["answer"] == answer and unistg["video"] == "media/v.mp4"
    assert _render(renderer, "unistg", "plain")["question"] == "What happens at <t_15>?"
    item = _render(renderer, "videorefer", "masked")  # masks and bbox fields stay pixels
    assert item["annotation"][0]["0"]["bbox"] == [4.0, 6.0, 20.0, 30.0]
    thousand = _render(_renderer(video_file.parents[1], RenderOptions(boxes="thousand")), "unistg", "grounded")
    assert thousand["answer"] == "From 0.5s to 1.5s. At 0.5s: [141, 125, 391, 625]."


def test_default_options_keep_the_stored_messages(video_file: Path) -> None:
    renderer = _renderer(video_file.parents[1])
    grounded = _render(renderer, "video-llava", "grounded")
    assert grounded["conversations"][1]["value"] == "From 0.5s to 1.5s. At 0.5s: [9, 6, 25, 30]."


def test_format_names_and_options_are_checked() -> None:
    check_formats(DEFAULT_FORMATS)
    check_formats(("strefer", "unistg"))
    with pytest.raises(ValueError, match="'llava-video'.*'video-llava'"):
        check_formats(("llava",))
    with pytest.raises(ValueError, match="unknown format 'coco'"):
        check_formats(("coco",))
    with pytest.raises(ValueError, match="asked for twice"):
        check_formats(("strefer", "videorefer"))
    with pytest.raises(ValueError, match="asked for twice"):
        check_formats(("unistg", "unistg"))
    with pytest.raises(ValueError, match="box format"):
        ReleaseOptions(version="1", boxes="percent").check()
    with pytest.raises(ValueError, match="time format"):
        ReleaseOptions(version="1", times="frames").check()
    with pytest.raises(ValueError, match="time_bins"):
        ReleaseOptions(version="1", times="tokens", time_bins=1).check()
    assert ReleaseOptions(version="1").formats == DEFAULT_FORMATS
