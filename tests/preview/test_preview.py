"""Previews and reports make real pictures: the overlays are where the rows say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tubelet.preview.contact_sheet import render_contact_sheet, sheet_layout
from tubelet.preview.instruction_view import (
    ANSWER_COLOUR,
    MARGIN,
    SPAN_COLOUR,
    TIMELINE_BG,
    TIMELINE_HEIGHT,
    WIDTH,
    render_instruction,
)
from tubelet.preview.overlay import OverlayStyle, VideoRows, draw_frame, scaled_box
from tubelet.preview.report import sample_videos, write_report
from tubelet.preview.video_preview import open_dataset, reader_for, render_preview
from tubelet.schemas.records import Answer, BoxAt, Instruction, Message, RegionRef
from tubelet.schemas.rle import decode_rle

PLAIN = OverlayStyle(labels=False, events=False, header=False)


def _isolated_frame(rows: VideoRows):
    """(tubelet, row) on a frame where its box overlaps no other visible box, mask present."""
    for tube in rows.tubelets:
        for row in tube.visible_frames:
            if row.mask_rle is None:
                continue
            others = [rows.by_frame[t.tubelet_id].get(row.frame_idx) for t in rows.tubelets if t is not tube]
            x1, y1, x2, y2 = row.box_xyxy
            if (
                all(
                    o is None
                    or not o.visible
                    or o.box_xyxy[2] <= x1
                    or o.box_xyxy[0] >= x2
                    or o.box_xyxy[3] <= y1
                    or o.box_xyxy[1] >= y2
                    for o in others
                )
                and x2 - x1 > 12
                and y2 - y1 > 12
            ):
                return tube, row
    raise AssertionError("no isolated tubelet frame")


def test_overlay_tints_masks_outlines_boxes_and_leaves_the_rest(any_dataset: tuple[Path, str]) -> None:
    root, video_id = any_dataset
    rows = VideoRows.load(open_dataset(root), video_id)
    tube, row = _isolated_frame(rows)
    with reader_for(rows) as reader:
        raw = reader.frames([row.frame_idx])[0]
    colour = np.asarray(rows.colours[tube.tubelet_id], dtype=np.float32)
    drawn = draw_frame(raw, row.frame_idx, rows, style=PLAIN)
    assert drawn.shape == raw.shape and drawn.dtype == np.uint8

    mask = decode_rle(row.mask_rle)
    c1, r1, c2, r2 = scaled_box(row.box_xyxy, 1.0, 1.0, raw.shape[1], raw.shape[0])
    inner = mask.copy()
    inner[:, : c1 + PLAIN.box_px] = inner[:, c2 - PLAIN.box_px :] = False  # not under the box outline
    inner[: r1 + PLAIN.box_px] = inner[r2 - PLAIN.box_px :] = False
    assert inner.sum() > 50
    before = raw[inner].astype(np.float32)
    after = drawn[inner].astype(np.float32)
    expected = before * (1 - PLAIN.alpha) + colour * PLAIN.alpha
    assert np.abs(after - expected).max() <= 1.0
    # tinted toward the tubelet's colour
    assert np.linalg.norm(after - colour, axis=1).mean() < 0.7 * np.linalg.norm(before - colour, axis=1).mean()
    # the box edge has the box colour
    assert tuple(drawn[(r1 + r2) // 2, c1]) == tuple(colour.astype(np.uint8))
    assert tuple(drawn[r1, (c1 + c2) // 2]) == tuple(colour.astype(np.uint8))
    # far outside every box: unchanged
    outside = np.ones(raw.shape[:2], dtype=bool)
    for t in rows.tubelets:
        other = rows.by_frame[t.tubelet_id].get(row.frame_idx)
        if other is not None and other.visible:
            b1, s1, b2, s2 = scaled_box(other.box_xyxy, 1.0, 1.0, raw.shape[1], raw.shape[0])
            outside[max(s1 - 2, 0) : s2 + 2, max(b1 - 2, 0) : b2 + 2] = False
    assert np.array_equal(drawn[outside], raw[outside])

    # with text: the label tag sits above the box, the header top right, events bottom left
    full = draw_frame(raw, row.frame_idx, rows, float(row.t_s))
    assert not np.array_equal(full[0:8, -8:], raw[0:8, -8:])  # header strip
    if rows.active_events(row.frame_idx):
        assert (full[-3, 1] <= 40).all()  # the dark event strip in the corner
    assert np.array_equal(full[inner], drawn[inner]) or not np.array_equal(full, drawn)


def test_overlay_at_a_smaller_size_scales_boxes_and_masks(sample_dataset: Path) -> None:
    rows = VideoRows.load(open_dataset(sample_dataset), "scene")
    tube, row = _isolated_frame(rows)
    with reader_for(rows) as reader:
        raw = reader.frames([row.frame_idx], size=(320, 180))[0]
    drawn = draw_frame(raw, row.frame_idx, rows, style=PLAIN)
    c1, r1, _c2, r2 = scaled_box(row.box_xyxy, 0.5, 0.5, 320, 180)
    assert tuple(drawn[(r1 + r2) // 2, c1]) == rows.colours[tube.tubelet_id]
    assert np.array_equal(drawn[:, : max(c1 - 40, 0)][:, :5], raw[:, : max(c1 - 40, 0)][:, :5]) or c1 < 45


def _mp4_frames(path: Path) -> tuple[int, int, int, str]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        n = sum(1 for _ in container.decode(video=0))
        return n, stream.codec_context.width, stream.codec_context.height, stream.codec_context.name


def test_mp4_and_gif_have_the_expected_frames(any_dataset: tuple[Path, str], tmp_path: Path) -> None:
    root, video_id = any_dataset
    rows = VideoRows.load(open_dataset(root), video_id)
    result = render_preview(root, video_id, tmp_path / "all.mp4")
    n, w, h, codec = _mp4_frames(tmp_path / "all.mp4")
    assert n == result.frames == rows.video.n_frames
    assert (w, h) == (rows.video.width // 2 * 2, rows.video.height // 2 * 2) and codec == "h264"

    result = render_preview(root, video_id, tmp_path / "half.mp4", max_frames=20, scale=0.5)
    n, w, h, _ = _mp4_frames(tmp_path / "half.mp4")
    assert n == result.frames == 20
    assert w % 2 == 0 and h % 2 == 0 and abs(w - rows.video.width / 2) <= 2

    with reader_for(rows) as reader:
        expected = len(reader.sample_indices(fps=8))
    result = render_preview(root, video_id, tmp_path / "p.gif", fps=8, scale=0.5)
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == result.frames == expected
        assert 120 <= gif.info["duration"] <= 130  # GIF keeps centiseconds


def test_contact_sheet_grid(any_dataset: tuple[Path, str], tmp_path: Path) -> None:
    root, video_id = any_dataset
    rows = VideoRows.load(open_dataset(root), video_id)
    sheet = render_contact_sheet(root, video_id, tmp_path / "sheet.png", n=12, cols=4, thumb_width=384)
    layout = sheet_layout(rows.video.width, rows.video.height, 12, 4, 384)
    assert (layout.rows, layout.cols) == (3, 4)
    assert sheet.size == layout.size
    th = layout.thumb_height
    assert layout.size == (4 * 384 + 5 * 6, 24 + 3 * (th + 18) + 4 * 6)
    with Image.open(tmp_path / "sheet.png") as png:
        assert png.format == "PNG" and png.size == layout.size
    pixels = np.asarray(sheet)
    for i in range(12):  # every cell holds a picture, not the background
        x, y = layout.cell(i)
        cell = pixels[y : y + th, x : x + layout.thumb_width]
        assert cell.std() > 10


def test_instruction_view_draws_the_span_and_the_boxes(sample_dataset: Path, tmp_path: Path) -> None:
    dataset = open_dataset(sample_dataset)
    rows = VideoRows.load(dataset, "scene")
    circle = next(t for t in rows.tubelets if t.category == "green circle")
    box_row = next(f for f in circle.frames if f.frame_idx == 40)
    inst = Instruction(
        instruction_id="scene:st_grounding:test",
        video_id="scene",
        task_type="st_grounding",
        messages=[Message("user", "Where is <region0> between 1 s and 2 s?"), Message("assistant", "From 1s to 2s.")],
        answer=Answer(
            span_s=[1.0, 2.0], boxes=[BoxAt(40, box_row.t_s, box_row.box_xyxy)], tubelet_ids=[circle.tubelet_id]
        ),
        regions=[RegionRef("<region0>", circle.tubelet_id, [5])],
    )
    image, layout = render_instruction(None, inst.instruction_id, tmp_path / "inst.png", instruction=inst, rows=rows)
    assert image.size == (layout.width, layout.height) and layout.frames == [5, 40]
    x0, y0, x1, y1 = layout.timeline
    assert (x0, x1, y1 - y0) == (MARGIN, WIDTH - MARGIN, TIMELINE_HEIGHT)
    duration = rows.video.duration_s
    span_x0 = MARGIN + (WIDTH - 2 * MARGIN) * 1.0 / duration
    span_x1 = MARGIN + (WIDTH - 2 * MARGIN) * 2.0 / duration
    pixels = np.asarray(image)
    strip = pixels[y0 + 2]  # the top row: region ticks only
    tick = round(layout.x_of(5 / rows.video.fps))
    for x in range(x0 + 1, x1 - 1):
        if abs(x - tick) <= 2:
            continue
        if span_x0 + 1 < x < span_x1 - 1:
            assert tuple(strip[x]) == SPAN_COLOUR, x
        elif x < span_x0 - 1 or x > span_x1 + 1:
            assert tuple(strip[x]) == TIMELINE_BG, x
    # the answer box on frame 40's panel is outlined in the answer colour
    cx, cy, tw, th = layout.cells[1]
    s = tw / rows.video.width
    c1, r1, _c2, r2 = scaled_box(box_row.box_xyxy, s, th / rows.video.height, tw, th)
    assert tuple(pixels[cy + (r1 + r2) // 2, cx + c1]) == ANSWER_COLOUR
    with Image.open(tmp_path / "inst.png") as png:
        assert png.format == "PNG"


def test_instruction_view_of_generated_rows(sample_dataset: Path, tmp_path: Path) -> None:
    dataset = open_dataset(sample_dataset)
    instructions = dataset.records("instructions")
    kinds = {i.task_type for i in instructions}
    assert {"temporal_grounding", "st_grounding"} <= kinds
    for inst in instructions:
        if inst.task_type in ("temporal_grounding", "st_grounding", "region_qa"):
            image, layout = render_instruction(sample_dataset, inst.instruction_id, tmp_path / "i.png")
            assert layout.frames and layout.cells
            if inst.answer.span_s:
                x = round((layout.x_of(inst.answer.span_s[0]) + layout.x_of(inst.answer.span_s[1])) / 2)
                assert tuple(np.asarray(image)[layout.timeline[1] + 2, x]) in (
                    SPAN_COLOUR,
                    (40, 90, 220),
                    ANSWER_COLOUR,
                )
    with pytest.raises(KeyError):
        render_instruction(sample_dataset, "nope", None)


def _check_report(out: Path) -> list[str]:
    index = (out / "index.html").read_text()
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", index)
    assert refs
    for ref in refs:
        assert not re.match(r"^[a-z]+:", ref) and not ref.startswith("//"), ref  # offline: no URL
        assert (out / ref).is_file(), ref
    images = re.findall(r"""<img[^>]*src=['"]([^'"]+)['"]""", index)
    for ref in images:
        data = (out / ref).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(out / ref) as img:
            img.verify()
    assert "<script" not in index and "http" not in index.split("</style>")[0]
    return images


def test_report_is_offline_and_complete(sample_dataset: Path, tmp_path: Path) -> None:
    result = write_report(sample_dataset, tmp_path / "report", n_videos=6)
    images = _check_report(tmp_path / "report")
    assert result.videos == ["scene"] and any("sheet_" in i for i in images) and len(images) == 5
    index = (tmp_path / "report" / "index.html").read_text()
    for text in ("instructions", "temporal_grounding", "green circle", "scene"):
        assert text in index


@pytest.mark.assets
def test_report_on_davis(davis_dataset: Path, tmp_path: Path) -> None:
    result = write_report(davis_dataset, tmp_path / "report", n_videos=1)
    images = _check_report(tmp_path / "report")
    assert len(result.videos) == 1 and len(images) == 5
    assert result.videos == sample_videos(["blackswan", "dog"], 1)


def test_sample_videos_is_deterministic() -> None:
    ids = [f"v{i}" for i in range(20)]
    assert sample_videos(ids, 6) == sample_videos(list(reversed(ids)), 6)
    assert len(sample_videos(ids, 6)) == 6 and sample_videos(ids, 50) == sorted(ids)


def test_cli_commands(sample_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tubelet.cli.main import main

    def run(*argv: str) -> int:
        return main(list(argv))

    assert (
        run(
            "preview",
            str(sample_dataset),
            "--video",
            "scene",
            "--to",
            str(tmp_path / "a.gif"),
            "--max-frames",
            "6",
            "--scale",
            "0.25",
            "--contact-sheet",
            str(tmp_path / "s.png"),
        )
        == 0
    )
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 6
    assert (tmp_path / "s.png").is_file()
    assert run("preview", str(sample_dataset), "--video", "scene", "--to", str(tmp_path / "only.png")) == 0
    assert Image.open(tmp_path / "only.png").size == sheet_layout(640, 360, 12).size
    inst = open_dataset(sample_dataset).records("instructions")[0]
    assert (
        run("preview", str(sample_dataset), "--instruction", inst.instruction_id, "--to", str(tmp_path / "i.png")) == 0
    )
    assert run("report", str(sample_dataset), "--to", str(tmp_path / "rep"), "--videos", "1") == 0
    _check_report(tmp_path / "rep")
    assert "wrote" in capsys.readouterr().out
    assert run("preview", str(sample_dataset), "--to", "x.mp4") == 2  # --video or --instruction
    with pytest.raises(ValueError, match="mp4 or .gif"):
        render_preview(sample_dataset, "scene", tmp_path / "x.avi")
