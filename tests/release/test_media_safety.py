"""A release (``--with-media``) or an export of a frame-folder video carries only the frames
the video is made of: nothing else lying in the folder (a private key, a ``.git/config``),
no link followed out of the folder, no file that is not an image — and nothing of them in
the checksums either."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tubelet.cli.main import main as tubelet
from tubelet.engine.video import VideoReader

N, W, H, FPS = 8, 64, 48, 10.0
VIDEO_ID = "hostile"
#: Bytes that must never reach a release or an export.
SECRETS = {
    "id_rsa": b"-----BEGIN OPENSSH PRIVATE KEY-----\nTUBELET-SECRET-KEY\n-----END OPENSSH PRIVATE KEY-----\n",
    ".git/config": b'[remote "origin"]\n\turl = https://TUBELET-SECRET-TOKEN@example.com/x.git\n',
}
OUTSIDE_TEXT = b"TUBELET-SECRET-OUTSIDE\n"
OUTSIDE_JPEG_COMMENT = b"TUBELET-SECRET-OUTSIDE-JPEG"
MARKERS = [b"TUBELET-SECRET", Path("/etc/passwd").read_bytes()[:24] if Path("/etc/passwd").is_file() else b"root:x:0"]


def hostile_folder(tmp: Path, *, extra_frame: str | None = None) -> Path:
    """A frame folder of ``N`` real JPEG frames (DAVIS masks beside it) with what must never leave it:
    a private key, a .git/config, a link to /etc/passwd and one to a file outside.
    ``extra_frame``: a frame ``N`` that is ``"outside"`` (a link to a JPEG outside the
    folder), ``"inside"`` (a link to frame 0) or ``"not-an-image"`` (a frame-named text file)."""
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(OUTSIDE_TEXT)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
        outside / "secret.jpg", comment=OUTSIDE_JPEG_COMMENT
    )
    folder = tmp / "seq" / "img1"
    folder.mkdir(parents=True)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / f"{i + 1:06d}.jpg", quality=90)
    for rel, data in SECRETS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink(outside / "secret.txt", folder / "notes.txt")
    name = folder / f"{N + 1:06d}.jpg"
    if extra_frame == "outside":
        os.symlink(outside / "secret.jpg", name)
    elif extra_frame == "inside":
        os.symlink(f"{1:06d}.jpg", name)
    elif extra_frame == "not-an-image":
        name.write_bytes(SECRETS["id_rsa"])
    masks = tmp / "seq" / "masks"
    masks.mkdir()
    for f in range(1, N + 1 + (extra_frame is not None)):
        mask = np.zeros((H, W), dtype=np.uint8)
        mask[5:25, 10 + f : 18 + f] = 1
        Image.fromarray(mask, mode="L").convert("P").save(masks / f"{f:06d}.png")
    return folder


def run_import(tmp: Path, folder: Path) -> Path:
    """The folder through ``tubelet run`` (the import pipeline reads its DAVIS masks)."""
    manifest = {
        "pipeline": "import",
        "output": str(tmp / "ds"),
        "runner": "inline",
        "params": {"decode_check": False},
        "videos": [
            {
                "uri": str(folder),
                "video_id": VIDEO_ID,
                "fps": FPS,
                "annotations": {"format": "davis", "path": str(folder.parent / "masks")},
            }
        ],
    }
    (tmp / "m.yaml").write_text(yaml.safe_dump(manifest))
    assert tubelet(["run", str(tmp / "m.yaml"), "--log-level", "error"]) == 0
    return tmp / "ds"


def leaks(folder: Path) -> list[str]:
    """Files of ``folder`` that hold a secret, are links, or are named like the folder's extras."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found.append(f"{rel}: a link")
        if path.name in ("id_rsa", "config", "passwd", "notes.txt", ".git"):
            found.append(f"{rel}: named like the source folder's extras")
        if path.is_file():
            data = path.read_bytes()
            found += [f"{rel}: holds {marker[:20]!r}" for marker in MARKERS if marker in data]
    return found


def checksummed(release: Path) -> list[str]:
    lines = (release / "SHA256SUMS").read_text().splitlines()
    return sorted(line.split("  ", 1)[1] for line in lines)


def test_a_release_carries_the_frames_and_nothing_else(tmp_path: Path, capsys) -> None:
    ds = run_import(tmp_path, hostile_folder(tmp_path))
    release = tmp_path / "release"
    assert tubelet(["release", str(ds), "--version", "1", "--to", str(release), "--with-media", "--format", ""]) == 0
    assert leaks(release) == []
    media = sorted(p.relative_to(release).as_posix() for p in (release / "media").rglob("*"))
    assert media == [f"media/{VIDEO_ID}.mp4"]
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file())
    assert checksummed(release) == [f for f in files if f != "SHA256SUMS"]
    with VideoReader(str(release / "media" / f"{VIDEO_ID}.mp4")) as video:
        assert video.n_frames == N


@pytest.mark.parametrize("fmt", ["mot", "davis", "youtube-vis", "webdataset"])
def test_an_export_carries_the_frames_and_nothing_else(tmp_path: Path, fmt: str) -> None:
    ds = run_import(tmp_path, hostile_folder(tmp_path))
    out = tmp_path / "export"
    assert tubelet(["export", str(ds), "--format", fmt, "--to", str(out)]) == 0
    assert leaks(out) == []
    assert any(out.rglob("*.jpg")) or any(out.rglob("*.tar"))


@pytest.mark.parametrize("extra", ["outside", "not-an-image"])
def test_a_frame_linked_out_of_the_folder_or_not_an_image_stops_the_release(tmp_path: Path, capsys, extra) -> None:
    ds = run_import(tmp_path, hostile_folder(tmp_path, extra_frame=extra))
    capsys.readouterr()
    release = tmp_path / "release"
    code = tubelet(["release", str(ds), "--version", "1", "--to", str(release), "--with-media", "--format", ""])
    err = capsys.readouterr().err
    assert code == 2 and VIDEO_ID in err and f"{N + 1:06d}.jpg" in err and "Traceback" not in err, err
    assert not release.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")]  # no staging folder left


@pytest.mark.parametrize("extra", ["outside", "not-an-image"])
@pytest.mark.parametrize("fmt", ["mot", "davis", "webdataset"])
def test_a_frame_linked_out_of_the_folder_or_not_an_image_stops_an_export(tmp_path: Path, capsys, extra, fmt) -> None:
    ds = run_import(tmp_path, hostile_folder(tmp_path, extra_frame=extra))
    capsys.readouterr()
    out = tmp_path / "export"
    code = tubelet(["export", str(ds), "--format", fmt, "--to", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and VIDEO_ID in err and f"{N + 1:06d}.jpg" in err and "Traceback" not in err, err
    if out.exists():
        assert leaks(out) == []


def test_a_frame_linked_inside_the_folder_is_a_frame(tmp_path: Path) -> None:
    ds = run_import(tmp_path, hostile_folder(tmp_path, extra_frame="inside"))
    release = tmp_path / "release"
    assert tubelet(["release", str(ds), "--version", "1", "--to", str(release), "--with-media", "--format", ""]) == 0
    assert leaks(release) == []
    with VideoReader(str(release / "media" / f"{VIDEO_ID}.mp4")) as video:
        assert video.n_frames == N + 1
    shutil.rmtree(release)
