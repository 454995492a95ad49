"""Frame folders: a video given as JPEG/PNG files, one per frame, decoded with Pillow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from tubelet.engine.remote_media import IMAGE_SUFFIXES
from tubelet.engine.video_types import Size, VideoError, VideoMeta


class FolderSource:
    """A folder of JPEG/PNG frames in natural name order, at an explicit fps."""

    name = "pillow"

    def __init__(self, path: Path, uri: str, fps: float | None) -> None:
        self.uri = uri
        self.files = frame_files(path)
        if not self.files:
            raise VideoError(uri, "no_frames", "folder has no JPEG/PNG frames")
        if fps is None:
            raise VideoError(uri, "no_fps", "an image folder needs an explicit fps (set fps in the manifest)")
        self.fps = float(fps)
        self.n_frames = len(self.files)
        self.width, self.height = self._header_size(0)
        self._closed = False

    def _header_size(self, idx: int) -> Size:
        try:
            with Image.open(self.files[idx]) as image:
                return image.size
        except (OSError, UnidentifiedImageError) as error:
            name = self.files[idx].name
            raise VideoError(self.uri, "corrupt", f"frame {idx} ({name}) is not an image: {error}") from None

    def meta(self) -> VideoMeta:
        suffixes = sorted({"jpeg" if p.suffix.lower() in (".jpg", ".jpeg") else "png" for p in self.files})
        return VideoMeta(
            fps=self.fps,
            n_frames=self.n_frames,
            duration_s=self.n_frames / self.fps,
            width=self.width,
            height=self.height,
            codec="+".join(suffixes),
            fps_source="manifest",
        )

    def timestamps(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.float64) / self.fps

    def decode(self, indices: list[int], size: Size | None) -> np.ndarray:
        if self._closed:
            raise RuntimeError(f"video reader closed: {self.uri}")
        w, h = size or (self.width, self.height)
        out = np.empty((len(indices), h, w, 3), dtype=np.uint8)
        for k, idx in enumerate(indices):
            out[k] = self._decode_one(idx, size)
        return out

    def _decode_one(self, idx: int, size: Size | None) -> np.ndarray:
        name = self.files[idx].name
        try:
            with Image.open(self.files[idx]) as image:
                self._check_frame_size(idx, image.size)
                if size is not None and size != image.size:
                    image.draft("RGB", size)  # JPEG: decode at a reduced scale >= size (cheap)
                    rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
                else:
                    rgb = image.convert("RGB")
                return np.asarray(rgb)
        except (OSError, UnidentifiedImageError) as error:
            raise VideoError(self.uri, "corrupt", f"frame {idx} ({name}) cannot be decoded: {error}") from None

    def _check_frame_size(self, idx: int, size: Size) -> None:
        if size != (self.width, self.height):
            raise VideoError(
                self.uri,
                "mixed_sizes",
                f"frames of different sizes: frame {idx} ({self.files[idx].name}) is {size[0]}x{size[1]}, "
                f"frame 0 is {self.width}x{self.height}",
            )

    def check(self) -> None:
        """Read every frame's header (cheap: no pixels) to catch mixed sizes."""
        for idx in range(self.n_frames):
            self._check_frame_size(idx, self._header_size(idx))

    def close(self) -> None:
        self._closed = True


def _natural_key(name: str) -> list[Any]:
    # frame_2.jpg before frame_10.jpg, whatever the zero padding
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """The JPEG/PNG frames of an image folder, in the order the reader numbers them."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
