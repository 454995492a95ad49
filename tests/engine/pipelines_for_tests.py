"""Stages and a pipeline builder for the runtime tests (``tests.engine.pipelines_for_tests:build``).

Every stage is deterministic per video, so the inline and Ray runners must write the
same rows. Side effects the tests check (setup calls, GPU ids) go to files in a folder
given by the params, never into the rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tubelet.engine import Pipeline, Resources, Stage, VideoTask
from tubelet.engine.video import VideoReader
from tubelet.schemas import Answer, Entity, Event, Instruction, Message, Tubelet, TubeletFrame, VideoRecord


def _seed(video_id: str) -> int:
    return int(hashlib.sha1(video_id.encode()).hexdigest()[:8], 16)


def _note(folder: str | None, prefix: str, text: str = "") -> None:
    """Leave a uniquely named file in ``folder`` (works across processes)."""
    if folder:
        Path(folder, f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}").write_text(text)


@dataclass
class MakeVideo(Stage):
    """A synthetic probe: a video record and one tubelet with a few frames per video."""

    frames: int = 5

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            s = _seed(task.video_id)
            width, height, fps = 64 + s % 32, 48, 10.0
            task.video = VideoRecord(
                video_id=task.video_id,
                uri=task.uri,
                fps=fps,
                n_frames=self.frames,
                duration_s=self.frames / fps,
                width=width,
                height=height,
                codec="synthetic",
                source=task.source,
                split=task.split,
                extra={"seed": s % 1000},
            )
            frames = [
                TubeletFrame(
                    frame_idx=i,
                    t_s=i / fps,
                    box_xyxy=[1.0 * i, 2.0, 10.0 + i, 20.0],
                    mask_rle={"size": [height, width], "counts": f"{s % 97}x{i}"},
                    score=0.5,
                )
                for i in range(self.frames)
            ]
            task.tubelets.append(
                Tubelet(
                    tubelet_id=f"{task.video_id}:t0",
                    video_id=task.video_id,
                    category="thing",
                    source="test",
                    track_id="0",
                    fps=fps,
                    width=width,
                    height=height,
                    frames=frames,
                    extra={"k": [1, 2]},
                )
            )
            task.events.append(
                Event(
                    event_id=f"{task.video_id}:e0",
                    video_id=task.video_id,
                    tubelet_ids=[f"{task.video_id}:t0"],
                    start_s=0.0,
                    end_s=(self.frames - 1) / fps,
                    start_frame=0,
                    end_frame=self.frames - 1,
                    text="moves",
                )
            )
        return batch


@dataclass
class HeavyMasks(Stage):
    """Gives each video's tubelet ``frames`` frames with a mask of ``mask_bytes`` of RLE
    counts each (what the driver must never have to carry)."""

    frames: int = 100
    mask_bytes: int = 20_000

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            [tubelet] = task.tubelets
            base = tubelet.frames[0]
            tubelet.frames = [
                dataclasses.replace(base, frame_idx=i, t_s=i / tubelet.fps, mask_rle={**base.mask_rle, "counts": c})
                for i, c in enumerate(self._counts(task.video_id))
            ]
        return batch

    def _counts(self, video_id: str) -> list[str]:
        """A distinct, deterministic string per frame (pickle cannot share or shrink them)."""
        out = []
        for i in range(self.frames):
            digest = hashlib.sha256(f"{video_id}:{i}".encode()).hexdigest()
            out.append((digest * (self.mask_bytes // len(digest) + 1))[: self.mask_bytes])
        return out


@dataclass
class Slow(Stage):
    """Sleeps per video (for kill/resume tests)."""

    sleep_s: float = 0.0

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        time.sleep(self.sleep_s * len(batch))
        return batch


@dataclass
class Spin(Stage):
    """Burns CPU for ``work_s`` per video with numpy (for the parallel benchmark)."""

    work_s: float = 0.05

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        import numpy as np

        for task in batch:
            end = time.perf_counter() + self.work_s
            x = np.arange(20_000, dtype=np.float64)
            while time.perf_counter() < end:
                x = np.sqrt(x * x + 1.0)
            task.extra["spun"] = True
        return batch


@dataclass
class FailOn(Stage):
    """Raises on the listed videos, in a batch (run_stage must isolate them)."""

    fail: tuple[str, ...] = ()
    batch_size: int = 4

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            if task.video_id in self.fail:
                raise ValueError(f"cannot handle {task.video_id}")
        return batch


@dataclass
class Crash(Stage):
    """Kills its worker process outright on the listed videos (a segfault in a decoder,
    the out-of-memory killer): no exception for ``run_stage`` to catch."""

    on: tuple[str, ...] = ()

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        if any(task.video_id in self.on for task in batch):
            os._exit(17)
        return batch


@dataclass
class Instruct(Stage):
    """A batch stage: one instruction per video; refuses batches larger than its batch size."""

    batch_size: int = 3

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        if len(batch) > self.batch_size:
            raise RuntimeError(f"got a batch of {len(batch)} > {self.batch_size}")
        for task in batch:
            task.instructions.append(
                Instruction(
                    instruction_id=f"{task.video_id}:i0",
                    video_id=task.video_id,
                    task_type="caption",
                    messages=[Message("user", "What moves?"), Message("assistant", "a thing")],
                    answer=Answer(text="a thing", span_s=[0.0, 0.4]),
                    generator_id="test",
                )
            )
        return batch


@dataclass
class Model(Stage):
    """An actor stage: ``setup()`` 'loads a model' (and notes it); entities name the model."""

    notes: str | None = None
    batch_size: int = 2
    model: str = "test-model@1"

    @property
    def model_id(self) -> str:
        return self.model

    def setup(self) -> None:
        _note(self.notes, "setup")
        self.loaded = "weights"

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        assert self.loaded == "weights", "process() before setup()"
        _note(self.notes, "process", str(len(batch)))
        for task in batch:
            task.entities.append(
                Entity(
                    entity_id=f"{task.video_id}:n0",
                    video_id=task.video_id,
                    tubelet_id=f"{task.video_id}:t0",
                    category="thing",
                    caption="a thing",
                    model_id=self.model_id,
                    attributes={"size": "small"},
                )
            )
        return batch

    def teardown(self) -> None:
        _note(self.notes, "teardown")


@dataclass
class TaskWithSetup(Stage):
    """A stage that runs as Ray tasks (``needs_actor`` False) yet has a ``setup()``: the
    runners must still call it once per worker before the first batch."""

    notes: str | None = None

    @property
    def needs_actor(self) -> bool:
        return False

    def setup(self) -> None:
        _note(self.notes, "tsetup")
        self.ready = True

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        assert getattr(self, "ready", False), "process() before setup()"
        _note(self.notes, "tprocess", str(len(batch)))
        return batch


@dataclass
class OnGpu(Stage):
    """Needs a GPU: notes which GPU ids Ray gave the worker (none inline)."""

    notes: str | None = None
    resources: Resources = Resources(cpus=0.5, gpus=1)

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        try:
            import ray

            gpu_ids = ray.get_gpu_ids() if ray.is_initialized() else []
        except ImportError:
            gpu_ids = []
        _note(self.notes, "gpu", ",".join(str(g) for g in gpu_ids) + f";{os.environ.get('CUDA_VISIBLE_DEVICES', '')}")
        return batch


@dataclass
class Interrupt(Stage):
    """Raises KeyboardInterrupt (not a per-video error) once ``after`` videos went through."""

    after: int = 4

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        self.seen = getattr(self, "seen", 0) + len(batch)
        if self.seen > self.after:
            raise KeyboardInterrupt("Ctrl-C")
        return batch


@dataclass
class Where(Stage):
    """Notes which Ray node ran each batch (cluster tests)."""

    notes: str | None = None

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "inline"
        _note(self.notes, "node", node)
        return batch


@dataclass
class Decoder(Stage):
    """Decodes frame 0 of ``video`` with this worker's default backend and notes which
    backend it was and a digest of the pixels (a task on Ray)."""

    video: str = ""
    notes: str | None = None

    @property
    def needs_actor(self) -> bool:
        return False

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        with VideoReader(self.video) as reader:
            digest = hashlib.sha1(reader.frames([0]).tobytes()).hexdigest()[:12]
        _note(self.notes, "decoder", f"{reader.backend};{digest}")
        return batch


@dataclass
class DecoderActor(Decoder):
    """``Decoder`` as an actor stage."""

    @property
    def needs_actor(self) -> bool:
        return True


@dataclass
class RejectItems(Stage):
    """Rejects one item of every video (a track too short to keep) without failing it."""

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        for task in batch:
            task.reject(self.name, f"{task.video_id}:t9", "track too short to keep (2 frames < 3)")
        return batch


@dataclass
class BrokenSetup(Stage):
    """A stage whose ``setup()`` fails (weights that are not there): the run stops."""

    def setup(self) -> None:
        raise OSError("no weights at /models/w.pt")

    def process(self, batch: list[VideoTask]) -> list[VideoTask]:
        return batch


STAGES = {
    "decoder": Decoder,
    "decoder_actor": DecoderActor,
    "where": Where,
    "interrupt": Interrupt,
    "make": MakeVideo,
    "slow": Slow,
    "spin": Spin,
    "fail": FailOn,
    "crash": Crash,
    "instruct": Instruct,
    "model": Model,
    "masks": HeavyMasks,
    "task_setup": TaskWithSetup,
    "gpu": OnGpu,
    "reject_items": RejectItems,
    "broken_setup": BrokenSetup,
}


def build(params: dict[str, Any]) -> Pipeline:
    """``params = {"stages": [{"kind": "make", ...config}, ...]}``; default: make + instruct."""
    specs = params.get("stages", [{"kind": "make"}, {"kind": "instruct"}])
    stages = []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("kind")
        for key in ("fail", "on"):
            if key in spec:
                spec[key] = tuple(spec[key])
        stages.append(STAGES[kind](**spec))
    return Pipeline(name="test", stages=stages, params=params)
