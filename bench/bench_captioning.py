"""Benchmark: TransformersVLM batching, and its overhead over a bare ``model.generate`` loop.

A tiny random-weight Qwen2.5-VL (built like the tests', into a temporary folder) on
``--requests`` requests, each with one RGB crop (sizes vary: 4-16 image tokens) and a
short prompt, greedy, ``--max-new-tokens`` tokens at most:

(a) ``TransformersVLM.generate`` with ``batch_size=--batch`` vs ``batch_size=1``:
    requests per second and their ratio;
(b) ``TransformersVLM.generate`` vs a bare loop over the same batches: the same chat
    texts and PIL images prepared in advance, then per batch ``processor(...)`` +
    ``model.generate(**inputs, same kwargs)`` + ``batch_decode``. Target <= 1.1x.
    The outputs of both are checked to be identical.
(c) the ``DescribeEntities`` stage (mode "vlm", this backend, ``retries=0`` so each
    tubelet is asked exactly once although a random model's JSON is malformed) over
    ``--videos`` copies of the synthetic sample imported as tubelets, timing
    ``stage.process(tasks)`` (frame decoding, visual prompts, prompt rendering, JSON
    parsing and rejects included) vs the bare loop of (b) over the exact requests the
    stage sent (recorded from its backend), in the same batches, and ``backend.generate``
    over them. Target <= 1.1x. ``--hidden``/``--layers`` widen the random model (same
    tokenizer and processor) to see the ratios as the model's cost grows.

Repetitions alternate between the variants; medians are reported.

    python bench/bench_captioning.py [--reps 5] [--requests 32] [--batch 8] [--device cpu] [--threads 1]
                                     [--videos 3] [--n-frames 4] [--only ab|c] [--hidden 256 --layers 4]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl  # noqa: E402
from tubelet.annotators.language.backends import VLMRequest  # noqa: E402
from tubelet.annotators.language.backends.transformers_backend import TransformersVLM  # noqa: E402

SIZES = [(64, 64), (96, 128), (120, 80), (200, 150), (224, 224), (80, 160), (50, 90), (140, 140)]


def make_requests(n: int, max_new_tokens: int) -> list[VLMRequest]:
    rng = np.random.default_rng(0)
    return [
        VLMRequest(
            request_id=f"r{i}",
            prompt=f"Describe the highlighted object number {i} in one sentence.",
            images=[rng.integers(0, 256, (*SIZES[i % len(SIZES)], 3), dtype=np.uint8)],
            max_new_tokens=max_new_tokens,
        )
        for i in range(n)
    ]


def bare_loop(vlm: TransformersVLM, prepared: list[tuple[list[str], list]], max_new_tokens: int) -> list[str]:
    """What a hand-written script does with the same processor and model."""
    import torch

    model, processor = vlm.hf_model, vlm.processor
    kwargs = vlm.generate_kwargs(max_new_tokens)
    texts: list[str] = []
    for batch_texts, batch_images in prepared:
        inputs = processor(text=batch_texts, images=batch_images, padding=True, return_tensors="pt")
        inputs = inputs.to(device=model.device, dtype=model.dtype)
        with torch.inference_mode():
            out = model.generate(**inputs, **kwargs)
        decoded = processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        texts.extend(t.strip() for t in decoded)
    return texts


def prepare(vlm: TransformersVLM, calls: list[list[VLMRequest]], batch: int) -> list[tuple[list[str], list]]:
    """Chat texts and PIL images per batch, as ``TransformersVLM.generate`` would form them
    from ``calls`` (one list of requests per ``generate`` call)."""
    from PIL import Image

    out = []
    for requests in calls:
        groups: dict[int, list[VLMRequest]] = {}
        for r in requests:
            groups.setdefault(r.max_new_tokens, []).append(r)
        for group in groups.values():
            for i in range(0, len(group), batch):
                chunk = group[i : i + batch]
                out.append(
                    ([vlm.render_prompt(r) for r in chunk], [Image.fromarray(im) for r in chunk for im in r.images])
                )
    return out


def sample_tasks(root: Path, n: int) -> list:
    """``n`` copies of the synthetic sample, probed and imported with its masks as tubelets
    (as the language tests build them)."""
    from tubelet.annotators.importers.stage import ImportAnnotations
    from tubelet.cli.sample import write_sample
    from tubelet.engine.probe import ProbeVideo
    from tubelet.engine.stage import run_stage
    from tubelet.engine.task import VideoTask

    tasks = []
    for k in range(n):
        info = write_sample(root / f"sample{k}")
        row = json.loads(info.video_list.read_text().splitlines()[0])
        task = VideoTask(
            video_id=f"{row['video_id']}-{k}",
            uri=str(info.video),
            annotations={**row["annotations"], "path": str(info.masks_dir)},
        )
        [task] = run_stage(ImportAnnotations(), run_stage(ProbeVideo(), [task]))
        assert not task.failed and task.tubelets, task.rejects
        tasks.append(task)
    return tasks


def stage_vs_bare(args: argparse.Namespace, model_path: Path, root: Path) -> dict[str, object]:
    """Part (c): ``DescribeEntities.process`` vs a bare loop over the requests it sent."""
    from tubelet.annotators.language.entities import DescribeEntities

    stage = DescribeEntities(
        mode="vlm",
        backend="transformers",
        n_frames=args.n_frames,
        retries=0,
        max_new_tokens=args.max_new_tokens,
        backend_options={"model": str(model_path), "device": args.device, "batch_size": args.batch},
    )
    stage.setup()
    vlm = stage._backend
    tasks = sample_tasks(root, args.videos)
    calls: list[list[VLMRequest]] = []
    texts: list[str] = []
    original = vlm.generate

    def recording(requests: list[VLMRequest]) -> list:
        calls.append(list(requests))
        responses = original(requests)
        texts.extend(r.text for r in responses)
        return responses

    vlm.generate = recording  # record once (warm-up), then time the plain backend
    warm = stage.process(copy.deepcopy(tasks))
    vlm.generate = original
    n_requests = sum(len(c) for c in calls)
    n_rejects = sum(len(t.rejects) for t in warm)
    assert n_requests == sum(len(t.tubelets) for t in tasks), "each tubelet is asked once (retries=0)"
    prepared = prepare(vlm, calls, args.batch)
    assert bare_loop(vlm, prepared, args.max_new_tokens) == texts, "stage and bare loop disagree"

    times: dict[str, list[float]] = {"stage": [], "backend": [], "bare": []}
    for rep in range(args.reps):
        copies = copy.deepcopy(tasks)  # fresh tasks: process() appends entities and rejects
        variants = {
            "stage": lambda: stage.process(copies),
            "backend": lambda: [vlm.generate(c) for c in calls],
            "bare": lambda: bare_loop(vlm, prepared, args.max_new_tokens),
        }
        for name in list(variants) if rep % 2 == 0 else list(reversed(variants)):  # alternate order
            seconds, _ = timed(variants[name])
            times[name].append(seconds)
    parts = {name: statistics.median(ts) for name, ts in pixel_work(stage, tasks, args.reps).items()}
    images = sum(len(r.images) for c in calls for r in c)
    params = sum(p.numel() for p in vlm.hf_model.parameters())
    shapes = sorted({r.images[0].shape[:2] for c in calls for r in c if r.images})
    device = f"{vlm.hf_model.device} {str(vlm.hf_model.dtype).replace('torch.', '')}"
    stage.teardown()
    return {
        "times": times,
        "requests": n_requests,
        "rejects": n_rejects,
        "images": images,
        "shapes": shapes,
        "calls": len(calls),
        "parts": parts,
        "params": params,
        "device": device,
    }


def pixel_work(stage, tasks: list, reps: int) -> dict[str, list[float]]:
    """The stage's pixel work, step by step (what the bare loop does not do)."""
    from tubelet.annotators.language.attributes import measure_video
    from tubelet.annotators.language.visual_prompt import visual_prompt

    times: dict[str, list[float]] = {"decode frames": [], "measure attributes": [], "visual prompts": []}
    for _ in range(reps):
        tick = dict.fromkeys(times, 0.0)
        for task in tasks:
            tubelets = [t for t in task.tubelets if t.visible_frames]
            seconds, frames = timed(lambda: stage._read_frames(task, tubelets))
            tick["decode frames"] += seconds
            tick["measure attributes"] += timed(lambda: measure_video(tubelets, frames, stage.n_frames, stage._attrs))[
                0
            ]
            tick["visual prompts"] += timed(lambda: [visual_prompt(t, frames, stage._visual) for t in tubelets])[0]
        for name, seconds in tick.items():
            times[name].append(seconds)
    return times


def widen(tiny: Path, out: Path, hidden: int, layers: int) -> Path:
    """The tiny model with a wider, deeper random text model and vision tower (same
    tokenizer and processor), to see how the ratios move as the model's cost grows."""
    import shutil

    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig.from_pretrained(tiny)
    heads = max(4, hidden // 64)
    half = hidden // heads // 2  # M-RoPE sections (time, height, width) sum to head_dim / 2
    text = config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = hidden, 4 * hidden, layers
    text.num_attention_heads, text.num_key_value_heads = heads, max(1, heads // 2)
    text.layer_types = [text.layer_types[0]] * layers
    text.rope_parameters = {
        **text.rope_parameters,
        "mrope_section": [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2],
    }
    vision = config.vision_config
    vision.hidden_size, vision.intermediate_size, vision.depth = hidden // 2, hidden, layers
    vision.num_heads, vision.out_hidden_size, vision.fullatt_block_indexes = heads, hidden, [layers - 1]
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config)
    tiny_model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny)
    model.generation_config = tiny_model.generation_config
    model.save_pretrained(out)
    for f in tiny.iterdir():  # processor, tokenizer and chat template
        if not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    return out


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def backend_vs_bare(args: argparse.Namespace, model_path: Path) -> None:
    """Parts (a) and (b): the backend batched / one-by-one, and vs a bare loop."""
    import torch
    from PIL import Image

    vlm = TransformersVLM(model=str(model_path), batch_size=args.batch, device=args.device)
    vlm.setup()
    requests = make_requests(args.requests, args.max_new_tokens)
    prepared = [
        (
            [vlm.render_prompt(r) for r in requests[i : i + args.batch]],
            [Image.fromarray(im) for r in requests[i : i + args.batch] for im in r.images],
        )
        for i in range(0, len(requests), args.batch)
    ]

    def batched() -> list[str]:
        vlm.batch_size = args.batch
        return [r.text for r in vlm.generate(requests)]

    def single() -> list[str]:
        vlm.batch_size = 1
        return [r.text for r in vlm.generate(requests)]

    variants = {
        "backend batch": batched,
        "backend one-by-one": single,
        "bare batch": lambda: bare_loop(vlm, prepared, args.max_new_tokens),
    }
    for fn in variants.values():  # warm-up (allocator, kernels, lazy imports)
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, object] = {}
    for rep in range(args.reps):
        names = list(variants) if rep % 2 == 0 else list(reversed(variants))  # alternate order
        for name in names:
            seconds, outputs[name] = timed(variants[name])
            times[name].append(seconds)
    assert outputs["backend batch"] == outputs["bare batch"] == outputs["backend one-by-one"], (
        "backend and bare loop disagree"
    )
    device = str(vlm.hf_model.device)
    dtype = str(vlm.hf_model.dtype).replace("torch.", "")
    vlm.close()

    med = {name: statistics.median(ts) for name, ts in times.items()}
    n = args.requests
    print(
        f"tiny random Qwen2.5-VL, {n} requests (1 image, {args.max_new_tokens} new tokens max), "
        f"{device} {dtype}, torch threads {torch.get_num_threads()}, {args.reps} reps (medians)"
    )
    print(f"{'variant':<22}{'batch':>6}{'median s':>10}{'req/s':>8}")
    for name, batch in (("backend batch", args.batch), ("backend one-by-one", 1), ("bare batch", args.batch)):
        print(f"{name:<22}{batch:>6}{med[name]:>10.3f}{n / med[name]:>8.1f}")
    print(f"(a) batched / one-by-one throughput: {med['backend one-by-one'] / med['backend batch']:.2f}x")
    ratios = [b / r for b, r in zip(times["backend batch"], times["bare batch"])]
    print(
        f"(b) backend / bare loop time: {med['backend batch'] / med['bare batch']:.3f}x "
        f"(per-rep median {statistics.median(ratios):.3f}x; target <= 1.1x)"
    )


def report_stage(args: argparse.Namespace, result: dict) -> None:
    """Print part (c)."""
    times = result["times"]
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratios = [s / b for s, b in zip(times["stage"], times["bare"])]
    n = result["requests"]
    print(
        f"(c) random Qwen2.5-VL of {result['params'] / 1e6:.2f} M parameters, {result['device']}, "
        f"{args.max_new_tokens} new tokens max, batch {args.batch}"
    )
    print(
        f"(c) DescribeEntities(vlm, transformers, retries=0) on {args.videos} sample videos: "
        f"{n} tubelets = {n} requests in {result['calls']} generate calls, {result['images']} images "
        f"(sizes {result['shapes']}), {result['rejects']} rejects (random model), {args.reps} reps"
    )
    print(f"{'variant':<22}{'median s':>10}{'req/s':>8}")
    labels = {"stage": "stage.process", "backend": "backend.generate", "bare": "bare loop"}
    for name, label in labels.items():
        print(f"{label:<22}{med[name]:>10.3f}{n / med[name]:>8.1f}")
    print(
        "    stage's pixel work (medians, timed alone): "
        + ", ".join(f"{name} {seconds * 1e3:.0f} ms" for name, seconds in result["parts"].items())
    )
    print(f"    backend.generate (same requests) / bare loop: {med['backend'] / med['bare']:.3f}x")
    print(
        f"(c) stage / bare loop time: {med['stage'] / med['bare']:.3f}x "
        f"(per-rep median {statistics.median(ratios):.3f}x; target <= 1.1x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--videos", type=int, default=3, help="(c): copies of the synthetic sample")
    parser.add_argument("--n-frames", type=int, default=4, help="(c): frames per tubelet")
    parser.add_argument("--only", choices=("ab", "c"), default=None, help="run only these parts")
    parser.add_argument(
        "--hidden", type=int, default=None, help="widen the random model: text width (vision half of it), e.g. 512"
    )
    parser.add_argument("--layers", type=int, default=4, help="with --hidden: text and vision layers")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen25_vl(Path(tmp) / "tiny-qwen25-vl")
        if args.hidden:
            path = widen(path, Path(tmp) / f"random-qwen25-vl-{args.hidden}x{args.layers}", args.hidden, args.layers)
        if args.only in (None, "ab"):
            backend_vs_bare(args, path)
        if args.only in (None, "c"):
            report_stage(args, stage_vs_bare(args, path, Path(tmp)))


if __name__ == "__main__":
    main()
