"""`tubelet run` of the ingest pipeline over every real asset plus four bad inputs.

The good videos land in `videos` with the figures of the assets' README; a truncated
mp4, a zero-byte file, a text file named .mp4 and a missing path each land in `rejects`
with a clear reason, and the run still completes (exit code 1: some items rejected).
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.videos import cut
from tubelet.engine.dataset import Dataset

ROOT = Path(__file__).resolve().parents[2]

SAM2_DEMO = {  # file: (width, height, fps, frames), from the assets' README
    "bedroom.mp4": (960, 540, 30.0, 200),
    "01_dog.mp4": (1280, 720, 29.97, 289),
    "02_cups.mp4": (1280, 720, 29.97, 300),
    "03_blocks.mp4": (1280, 720, 29.97, 292),
    "04_coffee.mp4": (1280, 720, 29.97, 287),
    "05_default_juggle.mp4": (1280, 720, 24.0, 247),
}
DAVIS = {
    "blackswan": 50,
    "car-shadow": 40,
    "dog": 60,
    "drift-chicane": 52,
    "horsejump-high": 50,
    "kite-surf": 50,
    "libby": 49,
    "motocross-jump": 40,
}


def _write_inputs(assets: Path, tmp: Path) -> Path:
    demo = assets / "videos" / "sam2-demo"
    rows = [{"video_id": f"sam2-{name}", "uri": str(demo / name)} for name in SAM2_DEMO]
    rows += [
        {"video_id": f"davis-{seq}", "uri": str(assets / "davis2016/JPEGImages/480p" / seq), "fps": 24} for seq in DAVIS
    ]
    for seq in sorted((assets / "mot17-mini/train").iterdir()):
        info = configparser.ConfigParser()
        info.read(seq / "seqinfo.ini")
        rows.append({"video_id": seq.name, "uri": str(seq / "img1"), "fps": float(info["Sequence"]["frameRate"])})
    bad = tmp / "bad"
    bad.mkdir()
    cut(demo / "04_coffee.mp4", bad / "truncated.mp4", 0.5)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "notes.mp4").write_text("this is not a video\n" * 20)
    rows += [
        {"video_id": "bad-truncated", "uri": str(bad / "truncated.mp4")},
        {"video_id": "bad-empty", "uri": str(bad / "empty.mp4")},
        {"video_id": "bad-text", "uri": str(bad / "notes.mp4")},
        {"video_id": "bad-missing", "uri": str(bad / "missing.mp4")},
    ]
    (tmp / "videos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = tmp / "ingest.yaml"
    manifest.write_text(
        "pipeline: ingest\noutput: out\nrunner: ray\nshard_size: 6\n"
        "ray: {num_cpus: 2}\nvideos:\n  - path: videos.jsonl\n"
    )
    return manifest


@pytest.mark.slow
@pytest.mark.ray
def test_ingest_run_over_real_assets_rejects_only_the_bad_files(assets: Path, tmp_path: Path) -> None:
    manifest = _write_inputs(assets, tmp_path)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [sys.executable, "-m", "tubelet", "run", str(manifest), "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # finished, some items rejected

    con = Dataset(tmp_path / "out").connect()
    videos = {
        r[0]: r[1:] for r in con.execute("SELECT video_id, width, height, fps, n_frames, codec FROM videos").fetchall()
    }
    for name, (w, h, fps, n) in SAM2_DEMO.items():
        width, height, got_fps, frames, codec = videos[f"sam2-{name}"]
        assert (width, height, frames, codec) == (w, h, n, "h264")
        assert got_fps == pytest.approx(fps, abs=0.01)
    for seq, n in DAVIS.items():
        assert videos[f"davis-{seq}"][:4] == (854, 480, 24.0, n)
    for seq in sorted((assets / "mot17-mini/train").iterdir()):
        info = configparser.ConfigParser()
        info.read(seq / "seqinfo.ini")
        s = info["Sequence"]
        frames_present = len(list((seq / "img1").glob("*.jpg")))
        assert videos[seq.name][:4] == (int(s["imWidth"]), int(s["imHeight"]), float(s["frameRate"]), frames_present)
    assert len(videos) == len(SAM2_DEMO) + len(DAVIS) + 7  # no bad file slipped in

    rejects = dict(con.execute("SELECT video_id, reason FROM rejects WHERE stage = 'probe_video'").fetchall())
    assert set(rejects) == {"bad-truncated", "bad-empty", "bad-text", "bad-missing"}
    assert rejects["bad-truncated"].startswith("VideoError: truncated")
    assert rejects["bad-empty"].startswith("VideoError: empty")
    assert rejects["bad-text"].startswith("VideoError: not_a_video")
    assert rejects["bad-missing"].startswith("VideoError: missing")
    # every reject names the file it is about
    for vid, reason in rejects.items():
        assert Path(con.execute("SELECT item FROM rejects WHERE video_id = ?", [vid]).fetchone()[0]).name in reason

    status = Dataset(tmp_path / "out").item_status()
    assert sum(s == "done" for s in status.values()) == len(videos)
    assert sum(s == "failed" for s in status.values()) == 4
