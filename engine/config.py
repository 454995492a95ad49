"""Run configuration: the manifest model, validated with pydantic.

A manifest is one YAML file = one reproducible run. Loading (line-numbered errors,
video lists in JSONL/CSV/Parquet, ``--set`` overrides) lives in ``tubelet.engine.manifest``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, PrivateAttr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnotationRef(_Strict):
    """Existing ground truth for a video, for the ``import`` pipeline."""

    format: Literal["davis", "mot"]
    path: str  # DAVIS: folder of per-frame PNG masks; MOT: the gt.txt file
    categories: dict[str, str] = Field(
        default_factory=dict, description="object id -> category name (DAVIS palette index, MOT class)"
    )


class VideoEntry(_Strict):
    """One video of a run: a file, or a folder of JPEG/PNG frames (which needs ``fps``)."""

    uri: str
    video_id: str | None = None
    fps: PositiveFloat | None = None
    source: str | None = None
    split: str | None = None
    licence: str | None = None
    annotations: AnnotationRef | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class VideoList(_Strict):
    """A file listing videos, one row per video, with the fields of ``VideoEntry``."""

    path: str
    format: Literal["jsonl", "csv", "parquet"] | None = None  # by default from the extension
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="fields applied to every row that does not set them"
    )


class DatasetVideos(_Strict):
    """The videos of an existing tubelet dataset (a folder or a URL), one task each."""

    dataset: str
    version: str | None = None  # a named version of it (`tubelet versions`); None: its current state
    where: str | None = None  # a DuckDB condition on its videos table, e.g. "split = 'val'"


class RayOptions(_Strict):
    """How RayRunner reaches Ray."""

    address: str | None = None  # join an existing cluster; None starts a local instance
    num_cpus: int | None = None  # a local instance (and the process runner's workers)
    num_gpus: float | None = None  # local instance only; declare GPUs Ray cannot detect


class RunConfig(_Strict):
    """A whole run: which videos, which pipeline, which parameters, where to write."""

    name: str | None = None
    pipeline: str
    output: str
    runner: Literal["auto", "process", "ray", "inline"] = "auto"  # auto: ray for a cluster or GPUs, else process
    params: dict[str, Any] = Field(default_factory=dict)
    shard_size: PositiveInt = 32  # videos per committed shard
    videos: list[VideoEntry | VideoList | DatasetVideos] = Field(min_length=1)
    ray: RayOptions = Field(default_factory=RayOptions)
    # what decodes video files in every worker; None: TUBELET_VIDEO_BACKEND, else auto
    # (decord where it imports, else PyAV). See tubelet.engine.video_backend.
    video_backend: Literal["auto", "decord", "pyav"] | None = None
    # Set by the loader: where relative paths (output, uris, lists) are resolved from.
    base_dir: str = "."
    manifest_path: str | None = None
    # Set by the loader: params keys given with --set ("weights", "track.weights") -> the
    # folder they were given in (the current directory), where their paths resolve from.
    param_dirs: dict[str, str] = Field(default_factory=dict)
    # Set by the loader, never saved: the manifest's name as the user gave it, and the keys
    # --set overrode (key path -> the option as given), so that a problem found later (the
    # pipeline refusing a parameter) names the same file, line or option the loader would.
    _name: str | None = PrivateAttr(default=None)
    _overridden: dict[tuple[str | int, ...], str] = PrivateAttr(default_factory=dict)
