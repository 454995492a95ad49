"""SAM 2 masklet propagation: :class:`Sam2Propagator` implements ``Propagator`` on the
``sam2`` package's video predictor (full profile).

How frames reach the predictor: ``SAM2VideoPredictor.init_state`` takes an mp4 path or a
JPEG folder and decodes *every* frame into one tensor, which does not bound memory on a
long video and cannot follow sampled frames. Instead each ``propagate`` call decodes only
its window's tracked frames through ``tubelet.engine.video.VideoReader`` at the model's input
size (square ``image_size``, resized inside the decoder like sam2's own mp4 loader),
normalises them exactly as ``sam2.utils.misc.load_video_frames`` does, and builds the
inference state for that window (``_window_state``: the same fields as ``init_state``).
So SAM 2 needs no decord (sam2's mp4 loader does): either video backend serves the frames,
with the same pixels.
We measured the alternative, writing the window as JPEGs to a temporary folder for
``init_state``: it costs an encode and a decode per frame at full size (sam2 reads the
original size from the JPEGs), adds JPEG loss, and ``init_state`` runs one backbone pass
to warm up frame 0, wasted on a reverse window: 14-17 ms/frame against 1.5-6 ms/frame
for the adapter (16 frames of 640x360, image_size 256, 2-core CPU). The adapter's masks
are identical to a bare ``init_state`` + ``propagate_in_video`` run on the same frames
(a test checks it, and that the state has exactly ``init_state``'s fields). The state is dropped when
the window's propagation ends (or is closed early), so memory is one window.

All objects of a window share one inference state; prompts are recorded by
``add_prompt`` and given to the predictor (``add_new_mask`` / ``add_new_points_or_box``)
when ``propagate`` knows the window. A window longer than ``max_window`` tracked frames is
propagated in chunks, each re-prompted with the masks of the previous chunk's last frame.

torch and sam2 are imported only when the model is built (``load()``), so importing this
module stays cheap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tubelet.annotators.tracking.propagator import Region, frames_between, open_reader
from tubelet.engine.video import VideoReader
from tubelet.schemas.rle import RLE, decode_rle

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
# sam2's load_video_frames normalisation (ImageNet mean/std)
_IMG_MEAN = (0.485, 0.456, 0.406)
_IMG_STD = (0.229, 0.224, 0.225)


def _hydra_config_name(config: str) -> str:
    """The name sam2's hydra composes ``config`` by: a config packaged with sam2 as it is;
    a YAML file of one's own as ``//`` + its absolute path (hydra drops one leading slash
    and joins the rest to sam2's package folder, which an absolute path replaces)."""
    path = Path(config)
    return "/" + str(path.resolve()) if path.is_file() else config


class Sam2Propagator:
    """Propagate prompted objects with SAM 2's video predictor.

    ``config``: a config packaged with sam2, or a YAML file of one's own;
    ``checkpoint``: a local ``.pt`` file, a Hugging Face id known to sam2 (e.g.
    ``"facebook/sam2.1-hiera-tiny"``, loaded with ``SAM2VideoPredictor.from_pretrained``:
    its own config, from the hub cache, or downloaded if the environment allows), or
    None for random weights (tests only);
    ``image_size``: the model's input size (None: the config's, 1024); ``device``: None
    picks "cuda" when available, else "cpu"; ``offload_video_to_cpu`` /
    ``offload_state_to_cpu``: keep the window's frames / the tracking state in CPU
    memory (sam2's options: less GPU memory, a little slower); ``max_window``: most
    tracked frames held in one inference state (None: no limit).
    """

    def __init__(
        self,
        config: str = DEFAULT_CONFIG,
        checkpoint: str | None = None,
        image_size: int | None = None,
        device: str | None = None,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        max_window: int | None = 64,
    ) -> None:
        if image_size is not None and (image_size <= 0 or image_size % 16):
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        if max_window is not None and max_window < 2:
            raise ValueError(f"max_window must be at least 2 frames, got {max_window}")
        self.config = config
        self.checkpoint = checkpoint
        self.image_size = image_size
        self.device = device
        self.offload_video_to_cpu = offload_video_to_cpu
        self.offload_state_to_cpu = offload_state_to_cpu
        self.max_window = max_window
        self.predictor: Any = None
        self._reader: VideoReader | None = None
        self._own_reader = False
        self._frames: list[int] = []
        self._prompts: dict[int, dict[int, tuple[list[float] | None, np.ndarray | None]]] = {}
        self._state: dict[str, Any] | None = None

    # -- model -----------------------------------------------------------------------
    def load(self) -> Any:
        """Build the predictor once (later calls return it); what a stage's setup() calls."""
        if self.predictor is not None:
            return self.predictor
        import torch
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES, build_sam2_video_predictor
        from sam2.sam2_video_predictor import SAM2VideoPredictor

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        overrides = [f"++model.image_size={self.image_size}"] if self.image_size else []
        ckpt = self.checkpoint
        if ckpt is None or Path(ckpt).is_file():
            predictor = build_sam2_video_predictor(
                _hydra_config_name(self.config), ckpt_path=ckpt, device=device, hydra_overrides_extra=overrides
            )
        elif ckpt in HF_MODEL_ID_TO_FILENAMES:
            predictor = SAM2VideoPredictor.from_pretrained(ckpt, device=device, hydra_overrides_extra=overrides)
        else:
            known = ", ".join(sorted(HF_MODEL_ID_TO_FILENAMES))
            raise FileNotFoundError(f"SAM 2 checkpoint {ckpt!r} is neither a file nor a known hub id ({known})")
        self.predictor = predictor
        self.device = str(device)
        return predictor

    # -- Propagator ------------------------------------------------------------------
    def start(self, video: Any, frames: Sequence[int]) -> None:
        """Open ``video`` (an ``tubelet.engine.video.VideoReader``, left open for its owner, or a
        path/uri this propagator opens and closes) to track ``frames``."""
        self.load()
        self.reset()
        self._close_reader()
        opened = open_reader(video)
        if opened is None:
            raise TypeError(f"Sam2Propagator reads a VideoReader or a path, not {type(video).__name__}")
        self._reader, self._own_reader = opened
        self._frames = sorted(set(int(f) for f in frames))

    def add_prompt(
        self,
        frame_idx: int,
        obj_id: int,
        box: Sequence[float] | None = None,
        mask: np.ndarray | RLE | None = None,
    ) -> None:
        """Record object ``obj_id`` at ``box``/``mask`` on ``frame_idx`` (the mask wins
        when it is not empty); the predictor gets it when ``propagate`` opens the window."""
        if frame_idx not in self._frames:
            raise ValueError(f"frame {frame_idx} is not a tracked frame")
        array = None
        if mask is not None:
            array = decode_rle(mask) if isinstance(mask, dict) else np.asarray(mask) != 0
            if not array.any():
                array = None  # an empty mask would say "absent": use the box
        if array is None and box is None:
            raise ValueError(f"object {obj_id}: a prompt needs a box or a non-empty mask")
        self._prompts.setdefault(int(frame_idx), {})[int(obj_id)] = (
            None if box is None else [float(v) for v in box],
            array,
        )

    def propagate(
        self, start_frame: int, end_frame: int, reverse: bool = False
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        """Yield ``(frame, {obj_id: Region})`` over the tracked frames from
        ``start_frame`` to ``end_frame`` (see ``Propagator.propagate``)."""
        if self._reader is None:
            raise RuntimeError("call start() before propagate()")
        if (end_frame < start_frame) != reverse and end_frame != start_frame:
            raise ValueError(f"frames {start_frame}->{end_frame} do not match reverse={reverse}")
        walk = frames_between(self._frames, start_frame, end_frame)
        outside = [f for f in self._prompts if f not in walk]
        if outside:
            raise ValueError(f"prompts on frames {outside} outside the window {start_frame}->{end_frame}")
        if not self._prompts:  # nothing prompted, nothing to report: skip the model
            for frame in walk:
                yield frame, {}
            return
        prompts = {f: dict(p) for f, p in self._prompts.items()}
        step = len(walk) if self.max_window is None else self.max_window
        pos = 0
        while True:
            chunk = walk[pos : pos + step]
            last: dict[int, Region] = {}
            for frame, regions in self._propagate_window(chunk, prompts, reverse, skip_first=pos > 0):
                last = regions if frame == chunk[-1] else last
                yield frame, regions
            pos += step - 1  # the next chunk starts on this chunk's last frame
            if pos >= len(walk) - 1:
                return
            if not last:  # every object is gone: nothing to carry on
                for frame in walk[pos + 1 :]:
                    yield frame, {}
                return
            prompts = {chunk[-1]: {o: (r.box, r.mask_array) for o, r in last.items()}}

    def reset(self) -> None:
        """Forget objects, prompts and the window's state; the video stays open."""
        if self._state is not None and self.predictor is not None:
            self.predictor.reset_state(self._state)
        self._state = None
        self._prompts = {}

    def close(self) -> None:
        """Drop the state and close a reader this propagator opened."""
        self.reset()
        self._close_reader()

    # -- one inference state ---------------------------------------------------------
    def _propagate_window(
        self,
        walk: list[int],
        prompts: dict[int, dict[int, tuple[list[float] | None, np.ndarray | None]]],
        reverse: bool,
        skip_first: bool,
    ) -> Iterator[tuple[int, dict[int, Region]]]:
        frames = sorted(walk)  # the state holds the window in time order; sam2 walks it
        local = {f: i for i, f in enumerate(frames)}
        predictor = self.predictor
        self._state = state = self._window_state(frames)
        try:
            # sam2's methods run under inference_mode themselves; a `with` here would leak
            # that mode into the caller's code at every yield
            for frame, objs in sorted(prompts.items()):
                for obj, (box, mask) in objs.items():
                    if mask is not None:
                        predictor.add_new_mask(state, local[frame], obj, mask)
                    else:
                        predictor.add_new_points_or_box(state, local[frame], obj, box=box)
            # sam2 yields nothing when reversing from local frame 0: a one-frame window
            backwards = reverse and len(frames) > 1
            stream = predictor.propagate_in_video(
                state,
                start_frame_idx=local[walk[0]],
                max_frame_num_to_track=len(walk) - 1,
                reverse=backwards,
            )
            for i, obj_ids, masks in stream:
                if skip_first and i == local[walk[0]]:
                    continue  # yielded already as the previous chunk's last frame
                yield frames[i], self._regions(state, i, obj_ids, masks)
        finally:
            # the window is over (or was closed early): release its frames and outputs
            if self._state is state:
                predictor.reset_state(state)
                self._state = None

    def _regions(self, state: dict[str, Any], i: int, obj_ids: list[int], masks: Any) -> dict[int, Region]:
        """Masks at the video's size and object scores of local frame ``i``; absent objects left out."""
        binary = (masks[:, 0] > 0.0).cpu().numpy()
        out: dict[int, Region] = {}
        for obj_idx, obj_id in enumerate(obj_ids):
            outputs = state["output_dict_per_obj"][obj_idx]
            step = outputs["cond_frame_outputs"].get(i) or outputs["non_cond_frame_outputs"].get(i)
            logit = float(step["object_score_logits"].reshape(-1)[0]) if step is not None else 0.0
            if logit <= 0.0 or not binary[obj_idx].any():
                continue
            out[int(obj_id)] = Region(mask=binary[obj_idx], score=float(1.0 / (1.0 + np.exp(-logit))))
        return out

    def _window_state(self, frames: list[int]) -> dict[str, Any]:
        """An inference state over ``frames`` only: what ``init_state`` builds for a whole
        video (sam2 1.1), minus its warm-up pass on frame 0 (the first prompt computes the
        features it needs)."""

        import torch

        predictor = self.predictor
        assert self._reader is not None
        size = predictor.image_size
        rgb = self._reader.frames(frames, size=(size, size))
        device = torch.device(self.device)
        images = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0  # as load_video_frames
        mean = torch.tensor(_IMG_MEAN, dtype=torch.float32)[:, None, None]
        std = torch.tensor(_IMG_STD, dtype=torch.float32)[:, None, None]
        if not self.offload_video_to_cpu:
            images, mean, std = images.to(device), mean.to(device), std.to(device)
        images -= mean
        images /= std
        meta = self._reader.meta
        return {
            "images": images,
            "num_frames": len(frames),
            "offload_video_to_cpu": self.offload_video_to_cpu,
            "offload_state_to_cpu": self.offload_state_to_cpu,
            "video_height": meta.height,
            "video_width": meta.width,
            "device": device,
            "storage_device": torch.device("cpu") if self.offload_state_to_cpu else device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }

    def _close_reader(self) -> None:
        if self._reader is not None and self._own_reader:
            self._reader.close()
        self._reader, self._own_reader = None, False
