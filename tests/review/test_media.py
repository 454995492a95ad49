"""How Label Studio serves a video: the task URL and the storage folder come from one path.

Label Studio serves ``/data/local-files/?d=REL`` as ``LOCAL_FILES_DOCUMENT_ROOT/REL`` only
when a storage's path is that file's folder (or above it), and resolves neither links nor
relative paths; ``served`` does what its view does, so these tests need no server.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest

from tubelet.review.media import LocalFile, MediaError, local_file


def served(document_root: Path, where: LocalFile) -> Path | None:
    """The file Label Studio would send for ``where``, or None (404)."""
    relative = urllib.parse.unquote(where.url.removeprefix("/data/local-files/?d="))
    full = Path(os.path.normpath(os.path.join(document_root, relative)))
    folder = os.path.normpath(os.path.dirname(full))
    allowed = folder == where.folder or folder.startswith(where.folder.rstrip(os.sep) + os.sep)
    return full if allowed and full.is_file() else None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/real/clip.mp4``, ``root/link -> real``, ``root/top.mp4``."""
    (tmp_path / "root" / "real").mkdir(parents=True)
    (tmp_path / "root" / "real" / "clip.mp4").write_bytes(b"video")
    (tmp_path / "root" / "link").symlink_to("real", target_is_directory=True)
    (tmp_path / "root" / "top.mp4").write_bytes(b"video")
    return tmp_path / "root"


def test_a_video_under_a_linked_folder_is_served(tree: Path) -> None:
    where = local_file(tree / "link" / "clip.mp4")
    assert where.folder == str(tree / "real")
    assert where.url == "/data/local-files/?d=" + urllib.parse.quote(str(tree / "real" / "clip.mp4").lstrip("/"))
    assert served(Path("/"), where) == tree / "real" / "clip.mp4"


def test_a_relative_path_becomes_absolute(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    where = local_file("link/clip.mp4")
    assert Path(where.folder).is_absolute() and Path(where.folder).is_dir()
    assert served(Path("/"), where) == tree / "real" / "clip.mp4"


def test_a_document_root_reached_through_a_link(tree: Path) -> None:
    """The root is ``link``; the file is only under it as written, not once resolved."""
    where = local_file(tree / "link" / "clip.mp4", document_root=str(tree))
    assert served(tree, where) == tree / "real" / "clip.mp4"
    (tree / "real" / "sub").mkdir()
    (tree / "real" / "sub" / "c.mp4").write_bytes(b"v")
    root_link = tree.parent / "root-link"
    root_link.symlink_to(tree, target_is_directory=True)
    where = local_file(root_link / "link" / "sub" / "c.mp4", document_root=str(root_link))
    assert where.folder.startswith(str(root_link)) and served(root_link, where) == root_link / "real" / "sub" / "c.mp4"


def test_files_outside_or_directly_in_the_root_are_refused(tree: Path) -> None:
    with pytest.raises(MediaError, match="outside Label Studio's document root"):
        local_file(tree / "real" / "clip.mp4", document_root=str(tree / "link" / "nowhere"))
    with pytest.raises(MediaError, match="directly in Label Studio's document root"):
        local_file(tree / "top.mp4", document_root=str(tree))
