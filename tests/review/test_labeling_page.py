"""The labeling page of a pushed task, rendered in headless Chromium and looked at.

The test logs in through Label Studio's login form like a reviewer, opens the task of
the ``mirror30`` video with its prediction selected, and saves a screenshot (under
``tmp_path`` and as ``out/review-labeling-page.png`` in the repository, for people to
look at). It then checks what the screenshot shows, not only that it exists: the video
frame is drawn, every track visible on the first frame has its box stroked in its
label's colour exactly where the prediction puts it, the frame counter reads
``1 of <n_frames>`` and the Regions panel lists every track and event span.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tubelet.engine.dataset import Dataset
from tubelet.review.client import LabelStudioClient
from tubelet.review.label_config import _PALETTE
from tubelet.review.push import _label_sets, push
from tubelet.review.tasks import DATA_TUBELETS, DATA_VIDEO_ID

from .browser import chromium_page, login
from .conftest import REPO

pytestmark = pytest.mark.labelstudio

VIDEO = "mirror30"
SCREENSHOT = REPO / "out" / "review-labeling-page.png"


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _label_colours(dataset: Path) -> dict[str, np.ndarray]:
    """Label -> colour, as the labeling config assigns them (categories, then event labels)."""
    cats, labels = _label_sets(Dataset(dataset))
    ordered = sorted(set(cats)) + sorted(set(labels))
    return {label: _rgb(_PALETTE[i % len(_PALETTE)]) for i, label in enumerate(ordered)}


def _video_rect(pixels: np.ndarray, box: dict[str, float]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the video frame drawn inside the canvas at ``box``: the rows and
    columns that mostly differ from the canvas's letterbox background."""
    x, y = round(box["x"]), round(box["y"])
    area = pixels[y : y + int(box["height"]), x : x + int(box["width"])].astype(float)
    background = area[0, 0]
    differs = np.abs(area - background).sum(axis=2) > 30
    cols = np.flatnonzero(differs.mean(axis=0) > 0.5)
    rows = np.flatnonzero(differs.mean(axis=1) > 0.5)
    assert cols.size and rows.size, "the video canvas is blank: no frame was drawn"
    return x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1


def _stroked(pixels: np.ndarray, colour: np.ndarray, line: str, at: float, start: float, end: float) -> float:
    """The best fraction, over the rows (``line="h"``) or columns (``"v"``) within 3 px of
    ``at``, of pixels from ``start`` to ``end`` within a small distance of ``colour``."""
    best = 0.0
    lo, hi = round(start) + 4, round(end) - 4
    for offset in range(-3, 4):
        k = round(at) + offset
        if not 0 <= k < (pixels.shape[0] if line == "h" else pixels.shape[1]):
            continue
        strip = pixels[k, lo:hi] if line == "h" else pixels[lo:hi, k]
        if strip.size:
            best = max(best, float((np.abs(strip.astype(float) - colour).max(axis=1) < 40).mean()))
    return best


def _regions_panel(page: Any) -> dict[int, tuple[str, str, list[str]]]:
    """Index -> (kind, title, texts shown under it) of every row of the Regions panel (a
    virtual list: scrolled through). The texts are the per-region text boxes the config
    shows in the list (``displayMode="region-list"``)."""
    holder = page.locator(".lsf-outliner .lsf-tree-list-holder").first
    seen: dict[int, tuple[str, str, list[str]]] = {}
    read = """el => [...el.querySelectorAll('.lsf-tree__node')].map(n => [
        (n.className.match(/lsf-tree__node_type_(\\w+)/) || [, '?'])[1],
        (n.querySelector('.lsf-outliner-item__index') || {}).textContent || '',
        (n.querySelector('.lsf-outliner-item__title') || {}).textContent || '',
        [...n.querySelectorAll('textarea, input')].map(t => t.value)])"""
    for _ in range(50):
        for kind, index, title, texts in holder.evaluate(read):
            if index.strip().isdigit():
                seen[int(index)] = (kind, title.strip(), [t.strip() for t in texts])
        before = holder.evaluate("el => el.scrollTop")
        holder.evaluate("el => { el.scrollTop += el.clientHeight / 2; }")
        page.wait_for_timeout(50)
        if holder.evaluate("el => el.scrollTop") == before:
            break
    holder.evaluate("el => { el.scrollTop = 0; }")
    return seen


def test_labeling_page_shows_the_video_with_its_predicted_boxes(label_studio, dataset: Path, tmp_path: Path) -> None:
    client = LabelStudioClient(label_studio.url, label_studio.token)
    report = push(dataset, "labeling page", client=client)
    task = next(t for t in client.tasks(report.project_id) if t["data"][DATA_VIDEO_ID] == VIDEO)
    (prediction,) = client.sdk.predictions.list(task=task["id"])
    tracks = [r for r in prediction.result if r["type"] == "videorectangle"]
    spans = [r for r in prediction.result if r["type"] == "timelinelabels"]
    on_first_frame = [r for r in tracks if r["value"]["sequence"][0]["frame"] == 1]
    assert on_first_frame, "no predicted box on frame 1 of the test video"
    n_frames = next(v.n_frames for v in Dataset(dataset).records("videos") if v.video_id == VIDEO)
    colours = _label_colours(dataset)

    with chromium_page(width=1600, height=1000) as page:
        login(page, label_studio.url, label_studio.username, label_studio.password)
        # every task's video is served (the test video lives under a symbolically linked folder)
        for pushed in client.tasks(report.project_id):
            response = page.request.get(label_studio.url + pushed["data"]["video"])
            assert response.status == 200, (pushed["data"]["video"], response.status)
            assert response.headers["content-type"].startswith("video/"), response.headers
        page.goto(f"{label_studio.url}/projects/{report.project_id}/data?task={task['id']}")
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }", timeout=20_000
        )
        # show the prediction itself (Label Studio opens a draft annotation copied from it)
        page.locator(f"text=/^{re.escape(prediction.model_version[:8])}/").first.click()
        page.wait_for_function(
            f"""() => window.Konva && Konva.stages.some(
            s => s.find('Rect').filter(r => r.isVisible()).length >= {len(on_first_frame)})""",
            timeout=10_000,
        )
        page.mouse.move(1, 1)  # no tooltip of the tab over the page
        page.wait_for_timeout(500)  # the frame canvas repaints after the region layer
        png = page.screenshot(path=str(tmp_path / "review-labeling-page.png"))
        canvas = page.evaluate("""() => { const c = [...document.querySelectorAll('canvas')]
            .find(c => !c.closest('.konvajs-content')); const r = c.getBoundingClientRect();
            return {x: r.x, y: r.y, width: r.width, height: r.height}; }""")
        counter = page.locator(".lsf-frames-control").first.inner_text()
        regions = _regions_panel(page)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "review-labeling-page.png", SCREENSHOT)

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    # the frame counter: frame 1 of all the video's frames (the task's frame rate is right)
    match = re.search(r"(\d+)\s*of\s*(\d+)", counter)
    assert match, f"no 'N of M' frame counter in {counter!r}"
    assert (int(match[1]), int(match[2])) == (1, n_frames), counter
    # the Regions panel: one row per track and per event span
    kinds = sorted(kind for kind, _, _ in regions.values())
    assert len(regions) == len(tracks) + len(spans), regions
    assert kinds.count("videorectangleregion") == len(tracks), regions
    assert sorted(regions) == list(range(1, len(regions) + 1)), regions
    # each track's row names its tubelet and shows its referring expression (dog #1 vs dog #4)
    expressions = {e.tubelet_id: e.referring_expression for e in Dataset(dataset).records("entities")}
    track_rows = [(title, texts) for kind, title, texts in regions.values() if kind == "videorectangleregion"]
    for region in tracks:
        tid = task["data"][DATA_TUBELETS][region["id"]]
        tube = next(t for t in Dataset(dataset).records("tubelets") if t.tubelet_id == tid)
        (row,) = [(title, texts) for title, texts in track_rows if f"#{tube.track_id}  {tid}" in texts]
        assert region["value"]["labels"][0] in row[0], row
        assert expressions.get(tid) and expressions[tid] in row[1], (tid, row)
    # the video frame is drawn, with the source's aspect ratio
    x0, y0, x1, y1 = _video_rect(pixels, canvas)
    assert abs((x1 - x0) / (y1 - y0) - task["data"]["width"] / task["data"]["height"]) < 0.02, (x0, y0, x1, y1)
    # each box visible on frame 1 is stroked in its label's colour where the prediction puts it
    w, h = x1 - x0, y1 - y0
    for region in on_first_frame:
        key = region["value"]["sequence"][0]
        colour = colours[region["value"]["labels"][0]]
        left, top = x0 + key["x"] / 100 * w, y0 + key["y"] / 100 * h
        right, bottom = left + key["width"] / 100 * w, top + key["height"] / 100 * h
        for line, at, start, end in (
            ("h", top, left, right),
            ("h", bottom, left, right),
            ("v", left, top, bottom),
            ("v", right, top, bottom),
        ):
            if line == "v" and not x0 + 2 <= at <= x1 - 2:
                continue  # an edge on the frame's border may be clipped
            share = _stroked(pixels, colour, line, at, start, end)
            assert share > 0.8, f"box {region['id']}: {line} edge at {at:.0f} px has only {share:.0%} label colour"
