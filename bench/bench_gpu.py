"""GPU check: tubelet's GPU paths on one card, in one bounded run (docs/benchmarks.md, "GPU (H100)").

Parts (each bounded by its share of ``--budget`` seconds; a part that fails is recorded
with its error and the next one runs; the JSON is rewritten after every part):

``sam2``   ``Sam2Propagator`` (the project's SAM 2 adapter) per sam2.1 config (tiny, small,
           base_plus, large) on the video's frames, 3 box prompts on frame 0, random
           weights (no checkpoint offline; speed does not depend on the weights). Two
           passes per config: as the project runs it (float32, no autocast) and, as a
           what-if, under ``torch.autocast(bfloat16)`` (what sam2's own README uses).
           Reports frames/s, the share of time spent decoding + uploading the window
           (``_window_state``), peak GPU memory, and where the tensors really were
           (device of the window's images, autocast state, dtypes of sam2's outputs).
``track``  the ``TrackMasklets`` stage as the ``track`` pipeline builds it for SAM 2
           (``tracker="sam2"``, ``device="cuda"``, one GPU), after ``ProbeVideo``, on
           fixed boxes at 2 keyframes/s: association, windows, forward and backward sweeps.
``vlm``    ``TransformersVLM`` (the in-process VLM backend) with a random-weight
           Qwen2.5-VL-3B (the project's default model; the published 3B config built in
           code) in bfloat16: the project's ``setup()`` loads the tests' tiny model folder
           (its tokenizer and processor, with Qwen's released pixel bounds), then the
           3B model replaces the tiny one. Requests are shaped like ``DescribeEntities``'
           (4 frames at 640x360, the entity template and JSON schema). Sweeps the batch
           size through the backend's batch path, then checks the public ``generate``
           at the project's default ``batch_size``.
``cpu``    the ``sam2`` tiny pass on the CPU over a few frames, for comparison.

Ray's ``num_gpus`` placement is not checked: Ray's cp312 wheel (79 MB) does not fit the
device machine's 64 MiB working-tree limit.

    python bench/bench_gpu.py --video bedroom.mp4 --out gpu.json [--budget 285] [--parts sam2,vlm,track,cpu]
    python bench/bench_gpu.py --smoke --video bedroom.mp4 --out /tmp/gpu.json     # CPU, tiny sizes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # bench/ or .gpucheck/: one level below the repository
for entry in (ROOT, ROOT / "src"):  # tests.* (the tiny VLM's tokenizer) and tubelet
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")  # sam2's per-window progress bars would flood the log
# sam2 built without its CUDA extension (as the project's Makefile builds it) skips hole
# filling and says so on every window; env["sam2_C_extension"] records it once
warnings.filterwarnings("ignore", message="cannot import name '_C'")

SAM2_CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
#: Prompts on frame 0 of the SAM 2 demo's bedroom.mp4 (960x540): the boy, the girl, the bed.
BOXES_960x540 = [("person", [143, 131, 291, 406]), ("person", [309, 0, 514, 400]), ("bed", [0, 354, 720, 537])]
#: Share of the budget per part (what is left over flows to the next part).
PART_SHARE = {"sam2": 0.40, "vlm": 0.37, "track": 0.13, "cpu": 0.10}
#: Qwen2.5-VL's released processor bounds (preprocessor_config.json of the 3B and 7B).
QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 3136, 12845056

RESULTS: dict[str, Any] = {}
#: Where RESULTS go; rewritten after every measurement, so a run killed by its timeout
#: still leaves what it measured.
RESULTS_PATH = Path("gpu.json")


class OutOfTimeError(Exception):
    """A part ran past its deadline inside code the script cannot stop between steps."""


# -- bookkeeping -----------------------------------------------------------------------
class Clock:
    """The run's deadline and each part's share of what is left."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.perf_counter()
        self.end = self.start + budget_s

    def left(self) -> float:
        return self.end - time.perf_counter()

    def part_deadline(self, part: str, parts: list[str]) -> float:
        """Now + this part's share of the time left, among the parts still to run."""
        todo = parts[parts.index(part) :]
        share = PART_SHARE[part] / sum(PART_SHARE[p] for p in todo)
        return time.perf_counter() + max(0.0, self.left()) * share


def save(path: Path | None = None) -> None:
    path = path or RESULTS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=1, default=str))
    tmp.replace(path)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> dict[str, float] | None:
    import torch

    if not device.startswith("cuda"):
        return None
    gib = 1024**3
    return {
        "peak_alloc_gib": round(torch.cuda.max_memory_allocated() / gib, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 2),
    }


def free_memory(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "packages": {
            n: version(n) for n in ("transformers", "tokenizers", "sam2", "av", "numpy", "pillow", "hydra-core")
        },
    }
    try:
        import sam2._C  # noqa: F401

        env["sam2_C_extension"] = True
    except ImportError as error:
        env["sam2_C_extension"] = f"absent ({error}): sam2 skips hole filling, as in the project's venv"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_gib=round(props.total_memory / 1024**3, 1),
            multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
        )
    return env


# -- SAM 2 -----------------------------------------------------------------------------
def prompt_boxes(width: int, height: int) -> list[tuple[str, list[float]]]:
    """The bedroom prompts scaled to this video's size."""
    sx, sy = width / 960, height / 540
    return [(c, [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]) for c, b in BOXES_960x540]


def keep_objects_present(predictor: Any) -> None:
    """Random weights score objects at random, and an object scored absent at a chunk's
    end stops being propagated; a trained model keeps a visible object present. So the
    object-score head answers "present" (logit +10): every prompted object is tracked
    through the whole video, as it would be with real weights. Nothing else changes."""
    import torch

    head = predictor.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(10.0)


class PathProbe:
    """Watches a ``Sam2Propagator``: time in ``_window_state`` (decode, normalise,
    upload), windows, predictor steps, and where the tensors were (device, dtype,
    autocast) — proof of the code path that ran."""

    def __init__(self, prop: Any) -> None:
        import torch

        self.info: dict[str, Any] = {}
        self.deadline = float("inf")  # past it, the next predictor step raises OutOfTimeError
        self.reset()
        window_state, predictor = prop._window_state, prop.predictor
        propagate_in_video = predictor.propagate_in_video
        device = str(prop.device)

        def timed_window_state(frames: list[int]) -> dict[str, Any]:
            t0 = time.perf_counter()
            state = window_state(frames)
            sync(device)
            self.info["prep_s"] += time.perf_counter() - t0
            self.info["windows"] += 1
            self.info["images_device"] = str(state["images"].device)
            self.info["images_dtype"] = str(state["images"].dtype)
            return state

        def counted(state: dict[str, Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
            for out in propagate_in_video(state, *args, **kwargs):
                if time.perf_counter() > self.deadline:
                    raise OutOfTimeError(f"deadline passed after {self.info['steps']} predictor steps")
                self.info["steps"] += 1
                self.info["object_steps"] += len(out[1])
                if "autocast" not in self.info and self.info["steps"] >= 3:
                    kind = "cuda" if device.startswith("cuda") else "cpu"
                    self.info["autocast"] = torch.is_autocast_enabled(kind)
                    self.info["autocast_dtype"] = str(torch.get_autocast_dtype(kind))
                    self.info["mask_device"] = str(out[2].device)
                    self.info["output_dtypes"] = _output_dtypes(state)
                yield out

        prop._window_state = timed_window_state
        predictor.propagate_in_video = counted

    def reset(self) -> None:
        self.info = {"prep_s": 0.0, "windows": 0, "steps": 0, "object_steps": 0}


def _output_dtypes(state: dict[str, Any]) -> dict[str, str]:
    """Dtypes of sam2's per-frame outputs held in the state (the model's compute dtype)."""
    outputs = state["output_dict_per_obj"].get(0, {})
    for kind in ("non_cond_frame_outputs", "cond_frame_outputs"):
        for step in outputs.get(kind, {}).values():
            return {
                k: str(step[k].dtype) for k in ("pred_masks", "obj_ptr", "maskmem_features") if step.get(k) is not None
            }
    return {}


def propagate_pass(
    prop: Any, probe: PathProbe, reader: Any, frames: list[int], deadline: float, autocast: bool
) -> dict[str, Any]:
    """Prompt 3 boxes on ``frames[0]`` and propagate to ``frames[-1]`` (or until ``deadline``)."""
    import torch

    device = str(prop.device)
    boxes = prompt_boxes(reader.meta.width, reader.meta.height)
    probe.reset()
    reset_peak(device)
    context = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    sync(device)
    t0 = time.perf_counter()
    prop.start(reader, frames)
    for obj_id, (_, box) in enumerate(boxes, start=1):
        prop.add_prompt(frames[0], obj_id, box=box)
    n = present = 0
    cut = False
    with context:
        stream = prop.propagate(frames[0], frames[-1])
        try:
            for _frame, regions in stream:
                n += 1
                present += len(regions)
                if time.perf_counter() > deadline and n < len(frames):
                    cut = True
                    break
        finally:
            stream.close()  # runs the propagator's finally: the window's state is released
    sync(device)
    seconds = time.perf_counter() - t0
    prop.reset()
    return {
        "autocast_bf16": autocast,
        "frames": n,
        "cut_by_deadline": cut,
        "seconds": round(seconds, 3),
        "fps": round(n / seconds, 2) if seconds else None,
        "objects": len(boxes),
        "regions_reported": present,
        "prep_share": round(probe.info["prep_s"] / seconds, 3) if seconds else None,
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in probe.info.items()},
        **(peak_gib(device) or {}),
    }


def sam2_model(config: str, device: str, image_size: int | None) -> tuple[Any, PathProbe, dict[str, Any]]:
    """A ``Sam2Propagator`` built (random weights) on ``device``, watched by a probe."""
    import torch

    from tubelet.annotators.tracking.sam2_propagator import Sam2Propagator

    prop = Sam2Propagator(config=config, device=device, image_size=image_size)
    t0 = time.perf_counter()
    predictor = prop.load()
    sync(device)
    build_s = time.perf_counter() - t0
    keep_objects_present(predictor)
    params = list(predictor.parameters())
    meta = {
        "config": config,
        "build_s": round(build_s, 2),
        "params_m": round(sum(p.numel() for p in params) / 1e6, 1),
        "param_device": str(params[0].device),
        "param_dtype": str(params[0].dtype),
        "image_size": predictor.image_size,
        "weights_gib": round(torch.cuda.memory_allocated() / 1024**3, 2) if device.startswith("cuda") else None,
    }
    return prop, PathProbe(prop), meta


def part_sam2(
    args: argparse.Namespace, deadline: float, device: str, configs: list[str], part_name: str = "sam2"
) -> list[dict[str, Any]]:
    """Each config: a short warm-up, then the project's float32 pass, then the autocast pass."""
    from tubelet.engine.video import VideoReader

    rows: list[dict[str, Any]] = []
    RESULTS[part_name] = rows  # filled as it goes
    with VideoReader(str(args.video)) as reader:
        frames = list(range(min(args.frames, reader.n_frames)))
        for i, name in enumerate(configs):
            # each config gets an equal share of what is left (the large one is slower: it
            # may be cut by its deadline, which the row says)
            config_deadline = time.perf_counter() + (deadline - time.perf_counter()) / (len(configs) - i)
            row: dict[str, Any] = {"model": name, "device": device}
            rows.append(row)
            try:
                prop, probe, meta = sam2_model(SAM2_CONFIGS[name], device, args.image_size)
                row.update(meta)
                modes = [False, True] if device.startswith("cuda") else [False]
                for j, autocast in enumerate(modes):
                    warm = propagate_pass(prop, probe, reader, frames[: args.warmup_frames], float("inf"), autocast)
                    share = (config_deadline - time.perf_counter()) / (len(modes) - j)
                    result = propagate_pass(prop, probe, reader, frames, time.perf_counter() + share, autocast)
                    result["warmup_s"] = warm["seconds"]
                    row["bf16_autocast" if autocast else "fp32_as_project"] = result
                prop.close()
                del prop, probe
            except Exception as error:  # noqa: BLE001 - one config failing must not stop the others
                row["error"] = failure(error)
            free_memory(device)
            save()
            print(f"  sam2 {name}: {summary_sam2(row)}", flush=True)
            if time.perf_counter() > deadline:
                rows.extend({"model": n, "skipped": "out of time"} for n in configs[i + 1 :])
                break
    return rows


def part_track(args: argparse.Namespace, deadline: float, device: str) -> dict[str, Any]:
    """ProbeVideo + TrackMasklets (sam2 on ``device``) over fixed boxes at 2 keyframes/s."""
    from tubelet.annotators.tracking.stage import TrackMasklets
    from tubelet.engine.probe import ProbeVideo
    from tubelet.engine.resources import Resources
    from tubelet.engine.task import VideoTask
    from tubelet.engine.video import VideoReader
    from tubelet.schemas.records import Detection

    task = VideoTask(video_id=args.video.stem, uri=str(args.video))
    ProbeVideo().process([task])
    with VideoReader(task.uri) as reader:
        keyframes = [int(k) for k in reader.sample_indices(fps=args.keyframe_fps)]
        stamps = reader.timestamps()
        boxes = prompt_boxes(reader.meta.width, reader.meta.height)
    task.keyframes = keyframes
    task.detections = [
        Detection(frame_idx=k, t_s=float(stamps[k]), box_xyxy=box, score=0.9, category=cat, detector="fixed-boxes")
        for k in keyframes
        for cat, box in boxes
    ]
    options: dict[str, Any] = {"config": SAM2_CONFIGS[args.track_model], "device": device}
    if args.image_size:
        options["image_size"] = args.image_size
    # what pipelines/track.py builds for profile full, tracker sam2, device cuda
    stage = TrackMasklets(
        tracker="sam2",
        tracker_options=options,
        track_fps=args.track_fps,
        resources=Resources(gpus=1) if device.startswith("cuda") else Resources(),
    )
    out: dict[str, Any] = {
        "model": args.track_model,
        "device": device,
        "video_frames": task.video.n_frames if task.video else None,
        "keyframes": len(keyframes),
        "detections": len(task.detections),
        "track_fps": args.track_fps,
        "budget_s": round(deadline - time.perf_counter(), 1),
    }
    RESULTS["track"] = out
    with stage.started():
        prop = stage._propagator
        prop.load()  # what start() does first; loaded here to fix the object-score head
        keep_objects_present(prop.predictor)
        probe = PathProbe(prop)
        probe.deadline = deadline
        reset_peak(device)
        t0 = time.perf_counter()
        try:
            stage.process([task])
            out["cut_by_deadline"] = False
        except OutOfTimeError:
            out["cut_by_deadline"] = True  # the figures below cover the steps done
        sync(device)
        seconds = time.perf_counter() - t0
    out.update(
        seconds=round(seconds, 2),
        video_fps=None
        if out["cut_by_deadline"] or not out["video_frames"]
        else round(out["video_frames"] / seconds, 2),
        tubelets=len(task.tubelets),
        rejects=len(task.rejects),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in probe.info.items()},
        steps_per_s=round(probe.info["steps"] / seconds, 2),
        **(peak_gib(device) or {}),
    )
    return out


# -- VLM -------------------------------------------------------------------------------
def qwen25_vl_config(size: str, ids: Any) -> Any:
    """The published Qwen2.5-VL config of ``size`` ("3b", "7b"; "tiny": the tests'), with
    the special-token ids of ``ids`` (the tiny model's config: the tokenizer we have)."""
    from transformers import Qwen2_5_VLConfig

    text = {
        "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                   num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
        "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                   num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
        "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    }[size]  # fmt: skip
    vision = {
        "3b": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                   fullatt_block_indexes=[7, 15, 23, 31]),
        "7b": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                   fullatt_block_indexes=[7, 15, 23, 31]),
        "tiny": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                     fullatt_block_indexes=[1]),
    }[size]  # fmt: skip
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    mrope = [16, 24, 24] if head_dim == 128 else [2, 3, 3]  # time, height, width: sums to head_dim / 2
    tokens = {
        "bos_token_id": ids.text_config.bos_token_id,
        "eos_token_id": ids.text_config.eos_token_id,
        "pad_token_id": ids.text_config.pad_token_id,
    }
    return Qwen2_5_VLConfig(
        text_config={
            **text,
            **tokens,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "hidden_act": "silu",
            "rope_parameters": {"rope_type": "default", "mrope_section": mrope, "rope_theta": 1000000.0},
        },
        vision_config={
            **vision,
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "tokens_per_second": 2,
        },
        image_token_id=ids.image_token_id,
        video_token_id=ids.video_token_id,
        vision_start_token_id=ids.vision_start_token_id,
        vision_end_token_id=ids.vision_end_token_id,
        tie_word_embeddings=text["tie_word_embeddings"],
    )


def english_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE trained on the repository's English docs, with the tiny model's
    special tokens at the same ids: prompts come out at about the length Qwen's own
    tokenizer gives them (the tests' 400-token BPE splits English ~2.5x finer, which
    would inflate the prefill)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.annotators.language.tiny_vlm import SPECIAL_TOKENS

    texts = [path.read_text() for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.padding_side = "left"  # as TransformersVLM.setup() sets it
    return tokenizer


def clip_requests(args: argparse.Namespace, n: int) -> list[Any]:
    """``n`` requests shaped like DescribeEntities': 4 frames of one clip, the entity
    template (rendered with plausible values) and its JSON schema."""
    from tubelet.annotators.language.backends import VLMRequest
    from tubelet.annotators.language.prompts import ENTITY_DESCRIBE
    from tubelet.engine.video import VideoReader

    width, height = args.vlm_image
    with VideoReader(str(args.video)) as reader:
        picks = [int(i) for i in reader.sample_indices(fps=None, max_frames=n + 3)]
        frames = reader.frames(picks, size=(width, height))
        stamps = reader.timestamps()
    requests = []
    for i in range(n):
        shown = [i, i + 1, i + 2, i + 3]
        times = ", ".join(f"{stamps[picks[j]]:.1f} s" for j in shown)
        text = ENTITY_DESCRIBE.render(
            marker="red",
            image_guide=f"Images 1-4 are whole frames at {times}, the object highlighted.",
            category_hint="person",
            start_s=float(stamps[picks[shown[0]]]),
            end_s=float(stamps[picks[shown[-1]]]),
            others="1 person, 1 bed",
        )
        requests.append(
            VLMRequest(
                request_id=f"clip{i}",
                prompt=text,
                system=ENTITY_DESCRIBE.system,
                images=[frames[j] for j in shown],
                max_new_tokens=args.max_new_tokens,
                json_schema=ENTITY_DESCRIBE.schema,
            )
        )
    return requests


def part_vlm(args: argparse.Namespace, deadline: float, device: str) -> dict[str, Any]:
    import dataclasses

    import torch
    import transformers
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl
    from tubelet.annotators.language.backends.transformers_backend import TransformersVLM

    default_bs = next(f.default for f in dataclasses.fields(TransformersVLM) if f.name == "batch_size")
    out: dict[str, Any] = {
        "model": f"Qwen2.5-VL-{args.vlm_size} (random weights)",
        "project_default_batch_size": default_bs,
    }
    RESULTS["vlm"] = out
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_qwen25_vl(Path(tmp) / "tiny")
        vlm = TransformersVLM(model=str(folder), device=device, min_pixels=QWEN_MIN_PIXELS, max_pixels=QWEN_MAX_PIXELS)
        vlm.setup()  # the project's loading path: processor, left padding, EOS ids, dtype
    tiny = vlm.hf_model
    dtype = tiny.dtype
    tokenizer = english_tokenizer(args.vocab)
    old = vlm.processor.tokenizer
    same_ids = all(tokenizer.convert_tokens_to_ids(t) == old.convert_tokens_to_ids(t) for t in old.all_special_tokens)
    if same_ids:  # the processor and the EOS ids the backend read in setup() stay right
        vlm.processor.tokenizer = tokenizer
    out["tokenizer"] = f"BPE {len(tokenizer)} tokens on the docs" if same_ids else "tests' tiny BPE (ids differ)"
    t0 = time.perf_counter()
    config = qwen25_vl_config(args.vlm_size, tiny.config)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model = model.to(device).eval()
    model.generation_config = tiny.generation_config
    sync(device)
    vlm.hf_model = model
    del tiny
    free_memory(device)
    out.update(
        build_s=round(time.perf_counter() - t0, 1),
        params_b=round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        param_device=str(next(model.parameters()).device),
        dtype=str(dtype),
        attn_implementation=getattr(model.config, "_attn_implementation", None),
        transformers=transformers.__version__,
        weights_gib=round(torch.cuda.memory_allocated() / 1024**3, 2) if device.startswith("cuda") else None,
        max_new_tokens=args.max_new_tokens,
        image_size=list(args.vlm_image),
    )
    sizes = sorted(set(args.batch_sizes))
    requests = clip_requests(args, max(max(sizes), 2 * default_bs))
    sample = vlm.build_inputs(requests[:1])["input_ids"][0]
    out["image_tokens_per_clip"] = int((sample == config.image_token_id).sum())
    out["text_tokens_per_clip"] = int(sample.numel()) - out["image_tokens_per_clip"]
    warm = [dataclasses.replace(r, max_new_tokens=4) for r in requests[:2]]
    t0 = time.perf_counter()
    vlm._generate_batch(warm)
    sync(device)
    out["warmup_s"] = round(time.perf_counter() - t0, 2)
    print(f"  vlm built in {out['build_s']} s, warm-up {out['warmup_s']} s", flush=True)
    # first the public path at the project's default batch size: two batches through
    # generate() (grouping, batching, isolation), as DescribeEntities calls it
    vlm.batch_size = default_bs
    reset_peak(device)
    t0 = time.perf_counter()
    responses = vlm.generate(requests[: 2 * default_bs])
    sync(device)
    seconds = time.perf_counter() - t0
    out["generate_default"] = {
        "batch_size": default_bs,
        "clips": len(responses),
        "seconds": round(seconds, 2),
        "clips_per_s": round(len(responses) / seconds, 2),
        "errors": sum(1 for r in responses if r.error),
        "retried": sum(1 for r in responses if r.attempts > 1),
        **(peak_gib(device) or {}),
    }
    print(f"  vlm generate() at batch_size {default_bs}: {out['generate_default']['clips_per_s']} clips/s", flush=True)
    rows: list[dict[str, Any]] = []
    out["sweep"] = rows
    estimate = 0.0
    for bs in sizes:
        if time.perf_counter() + estimate > deadline:
            rows.append({"batch_size": bs, "skipped": "out of time"})
            continue
        row: dict[str, Any] = {"batch_size": bs}
        rows.append(row)
        reset_peak(device)
        times: list[float] = []
        try:
            while len(times) < args.reps and (not times or time.perf_counter() + times[-1] < deadline):
                t0 = time.perf_counter()
                responses = vlm._generate_batch(requests[:bs])  # the batch path of generate()
                sync(device)
                times.append(time.perf_counter() - t0)
        except Exception as error:  # noqa: BLE001 - out of memory (or a kernel's error): stop the sweep here
            row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            free_memory(device)
            break
        seconds = statistics.median(times)
        out_tokens = sum(r.output_tokens for r in responses)
        row.update(
            seconds=round(seconds, 3),
            runs=len(times),
            clips_per_s=round(bs / seconds, 2),
            output_tokens_per_s=round(out_tokens / seconds, 1),
            output_tokens_per_clip=round(out_tokens / bs, 1),
            prompt_tokens_per_clip=round(statistics.mean(r.prompt_tokens for r in responses), 1),
            errors=sum(1 for r in responses if r.error),
            # a random model that emits an EOS id stops early: then clips/s is not comparable
            early_eos=out_tokens < 0.9 * bs * args.max_new_tokens,
            **(peak_gib(device) or {}),
        )
        print(f"  vlm bs={bs}: {row['clips_per_s']} clips/s, {row.get('peak_alloc_gib')} GiB", flush=True)
        estimate = seconds * 1.5  # the next size (double) costs about this, or less
        free_memory(device)
        save()
    timed = [r for r in rows if "clips_per_s" in r]
    if timed:
        best = max(timed, key=lambda r: r["clips_per_s"])
        # the smallest batch within 10% of the best: more only costs memory and latency
        enough = min((r for r in timed if r["clips_per_s"] >= 0.9 * best["clips_per_s"]), key=lambda r: r["batch_size"])
        out["best_batch_size"] = best["batch_size"]
        out["recommended_batch_size"] = enough["batch_size"]
    vlm.close()
    return out


# -- report ----------------------------------------------------------------------------
def failure(error: BaseException) -> str:
    tail = "".join(traceback.format_exception(error)[-3:]).strip()
    return f"{type(error).__name__}: {error}\n{tail}"[-1500:]


def summary_sam2(row: dict[str, Any]) -> str:
    if "error" in row:
        return "ERROR " + row["error"].splitlines()[0]
    parts = []
    for key in ("fp32_as_project", "bf16_autocast"):
        if key in row:
            r = row[key]
            parts.append(f"{key} {r['fps']} fps ({r['frames']} fr, peak {r.get('peak_alloc_gib')} GiB)")
    return "; ".join(parts) or "nothing measured"


def sam2_rows(part: str) -> list[dict[str, Any]]:
    """A SAM 2 part's rows, whether it finished, failed (an error row is added) or was skipped."""
    got = RESULTS.get(part, [])
    if isinstance(got, list):
        return got
    note = got.get("error") or got.get("skipped") or "no result"
    return list(got.get("measured") or []) + [{"model": f"{part}:", "error": note}]


def table() -> str:
    """The short table printed last."""
    lines = []
    env = RESULTS.get("env", {})
    lines.append(
        f"GPU: {env.get('gpu', 'none')}  torch {env.get('torch')}  transformers {env.get('packages', {}).get('transformers')}"
        f"  sam2 {env.get('packages', {}).get('sam2')}  tf32 matmul={env.get('matmul_allow_tf32')}"
    )
    lines.append("SAM 2 propagator (3 objects, frames/s; project = fp32 as the code runs; bf16 = autocast what-if)")
    lines.append(f"{'model':<10} {'params':>7} {'fp32 fps':>9} {'peak GiB':>9} {'bf16 fps':>9} {'peak GiB':>9}  path")
    for row in sam2_rows("sam2") + sam2_rows("cpu"):
        if "error" in row or "skipped" in row:
            lines.append(f"{row['model']:<10} {row.get('error', row.get('skipped', '')).splitlines()[0]}")
            continue
        a, b = row.get("fp32_as_project", {}), row.get("bf16_autocast", {})
        path = f"{row.get('param_device')} images={a.get('images_device')} autocast={a.get('autocast')}"
        if b:
            path += f"/{b.get('autocast')} out={b.get('output_dtypes', {}).get('pred_masks')}"
        name = row["model"] + ("(cpu)" if row.get("device") == "cpu" else "")
        lines.append(
            f"{name:<10} {row.get('params_m', ''):>6}M {a.get('fps', ''):>9} {a.get('peak_alloc_gib', ''):>9} "
            f"{b.get('fps', ''):>9} {b.get('peak_alloc_gib', ''):>9}  {path}"
        )
    track = RESULTS.get("track")
    if track:
        if "error" in track:
            lines.append("TrackMasklets: ERROR " + track["error"].splitlines()[0])
        if "seconds" in track:
            lines.append(
                f"TrackMasklets ({track['model']}, {track['device']}): {track['video_frames']} frames in "
                f"{track['seconds']} s = {track['video_fps']} video fps; {track['steps']} sam2 steps, "
                f"{track['windows']} windows, {track['tubelets']} tubelets, peak {track.get('peak_alloc_gib')} GiB"
                + (" (CUT by its deadline)" if track.get("cut_by_deadline") else "")
            )
    vlm = RESULTS.get("vlm")
    if vlm:
        if "error" in vlm:
            lines.append("VLM: ERROR " + vlm["error"].splitlines()[0])
        if "sweep" in vlm or "generate_default" in vlm:
            lines.append(
                f"VLM {vlm['model']} {vlm.get('params_b')}B {vlm.get('dtype')} on {vlm.get('param_device')}, "
                f"attn={vlm.get('attn_implementation')}, {vlm.get('max_new_tokens')} new tokens/clip, "
                f"{vlm.get('image_tokens_per_clip')} image + {vlm.get('text_tokens_per_clip')} text tokens/clip"
            )
            lines.append(
                f"{'batch':>5} {'s/batch':>8} {'clips/s':>8} {'out tok/s':>10} {'prompt tok':>10} {'peak GiB':>9}"
            )
            for r in vlm.get("sweep", []):
                if "clips_per_s" not in r:
                    lines.append(f"{r['batch_size']:>5} {r.get('error', r.get('skipped', ''))}")
                    continue
                lines.append(
                    f"{r['batch_size']:>5} {r['seconds']:>8} {r['clips_per_s']:>8} {r['output_tokens_per_s']:>10} "
                    f"{r['prompt_tokens_per_clip']:>10} {r.get('peak_alloc_gib', ''):>9}"
                )
            lines.append(
                f"default batch_size={vlm['project_default_batch_size']}, best={vlm.get('best_batch_size')}, "
                f"recommended (smallest within 10% of best)={vlm.get('recommended_batch_size')}; "
                f"generate() at default: {vlm.get('generate_default')}"
            )
    lines.append(f"Ray num_gpus placement: {RESULTS.get('ray', {}).get('skipped')}")
    if RESULTS.get("errors"):
        lines.append("errors: " + "; ".join(RESULTS["errors"]))
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_video = (
        Path(os.environ.get("TUBELET_ASSETS", ROOT.parent / "shared" / "assets")) / "videos/sam2-demo/bedroom.mp4"
    )
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=default_video)
    p.add_argument("--out", type=Path, default=Path("gpu.json"))
    p.add_argument("--budget", type=float, default=285.0, help="seconds for all parts together")
    p.add_argument("--parts", default="sam2,vlm,track,cpu")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script, not the card")
    p.add_argument("--sam2-models", default="tiny,small,base_plus,large")
    p.add_argument("--frames", type=int, default=200, help="frames per SAM 2 pass (max_window 64: chunks)")
    p.add_argument("--warmup-frames", type=int, default=4)
    p.add_argument("--image-size", type=int, default=None, help="SAM 2 input size (None: the config's 1024)")
    p.add_argument("--cpu-frames", type=int, default=6)
    p.add_argument("--track-model", default="tiny", choices=sorted(SAM2_CONFIGS))
    p.add_argument("--track-fps", type=float, default=None, help="frames/s the stage tracks (None: every frame)")
    p.add_argument("--keyframe-fps", type=float, default=2.0, help="the track pipeline's default for full")
    p.add_argument("--vlm-size", default="3b", choices=["tiny", "3b", "7b"])
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--vocab", type=int, default=8000, help="BPE vocabulary trained on docs/ for the prompts")
    p.add_argument("--vlm-image", default="640x360", help="frame size per image (VisualPromptConfig.max_side 640)")
    args = p.parse_args(argv)
    if args.smoke:  # the whole script on a CPU in a minute or two
        args.device = args.device or "cpu"
        args.sam2_models, args.frames, args.image_size, args.warmup_frames = "tiny", 6, 256, 2
        args.cpu_frames, args.track_fps = 3, 2.0
        args.vlm_size, args.batch_sizes, args.reps, args.max_new_tokens, args.vlm_image = "tiny", "1,2", 1, 6, "160x90"
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.vlm_image = tuple(int(v) for v in args.vlm_image.split("x"))
    return args


def run_part(name: str, fn: Callable[[], Any], out: Path) -> None:
    t0 = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        RESULTS[name] = fn()
    except Exception as error:  # noqa: BLE001 - record it and go on with the next part
        so_far = RESULTS.get(name)
        if isinstance(so_far, dict):  # keep what the part measured before it failed
            so_far["error"] = failure(error)
        else:
            RESULTS[name] = {"error": failure(error), "measured": so_far}
        RESULTS.setdefault("errors", []).append(f"{name}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        traceback.print_exc()
    RESULTS.setdefault("part_seconds", {})[name] = round(time.perf_counter() - t0, 1)
    save(out)


def main(argv: list[str] | None = None) -> int:
    global RESULTS_PATH
    args = parse_args(argv)
    RESULTS_PATH = args.out
    clock = Clock(args.budget)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PART_SHARE]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {sorted(PART_SHARE)}")
    if not args.video.is_file():
        raise SystemExit(f"video not found: {args.video}")
    RESULTS.update(
        env=environment(device),
        args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        ray={"skipped": "Ray's cp312 wheel (79 MB) exceeds the device's 64 MiB working-tree limit"},
    )
    save(args.out)
    print(json.dumps(RESULTS["env"]), flush=True)
    models = [m for m in args.sam2_models.split(",") if m]
    for part in parts:
        if clock.left() <= 5:
            RESULTS[part] = {"skipped": "out of time"}
            continue
        deadline = clock.part_deadline(part, parts)
        if part == "sam2":
            run_part(part, lambda: part_sam2(args, deadline, device, models), args.out)
        elif part == "cpu":
            cpu_args = argparse.Namespace(**{**vars(args), "frames": args.cpu_frames, "warmup_frames": 1})
            run_part(part, lambda: part_sam2(cpu_args, deadline, "cpu", ["tiny"], "cpu"), args.out)
        elif part == "track":
            run_part(part, lambda: part_track(args, deadline, device), args.out)
        elif part == "vlm":
            run_part(part, lambda: part_vlm(args, deadline, device), args.out)
        free_memory(device)
    RESULTS["total_s"] = round(time.perf_counter() - clock.start, 1)
    save(args.out)
    print("\n" + table(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
