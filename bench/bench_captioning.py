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

Repetitions alternate between the variants; medians are reported.

    python bench/bench_captioning.py [--reps 5] [--requests 32] [--batch 8] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
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

from annotators.language.backends import VLMRequest  # noqa: E402
from annotators.language.backends.transformers_backend import TransformersVLM  # noqa: E402
from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl  # noqa: E402

SIZES = [(64, 64), (96, 128), (120, 80), (200, 150), (224, 224), (80, 160), (50, 90), (140, 140)]


def make_requests(n: int, max_new_tokens: int) -> list[VLMRequest]:
    rng = np.random.default_rng(0)
    return [VLMRequest(request_id=f"r{i}", prompt=f"Describe the highlighted object number {i} in one sentence.",
                       images=[rng.integers(0, 256, (*SIZES[i % len(SIZES)], 3), dtype=np.uint8)],
                       max_new_tokens=max_new_tokens)
            for i in range(n)]


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
        decoded = processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        texts.extend(t.strip() for t in decoded)
    return texts


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: steadier on a shared machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen25_vl(Path(tmp) / "tiny-qwen25-vl")
        vlm = TransformersVLM(model=str(path), batch_size=args.batch, device=args.device)
        vlm.setup()
        requests = make_requests(args.requests, args.max_new_tokens)
        prepared = [([vlm.render_prompt(r) for r in requests[i:i + args.batch]],
                     [Image.fromarray(im) for r in requests[i:i + args.batch] for im in r.images])
                    for i in range(0, len(requests), args.batch)]

        def batched() -> list[str]:
            vlm.batch_size = args.batch
            return [r.text for r in vlm.generate(requests)]

        def single() -> list[str]:
            vlm.batch_size = 1
            return [r.text for r in vlm.generate(requests)]

        variants = {"backend batch": batched, "backend one-by-one": single,
                    "bare batch": lambda: bare_loop(vlm, prepared, args.max_new_tokens)}
        for fn in variants.values():  # warm-up (allocator, kernels, lazy imports)
            fn()
        times: dict[str, list[float]] = {name: [] for name in variants}
        outputs: dict[str, object] = {}
        for rep in range(args.reps):
            names = list(variants) if rep % 2 == 0 else list(reversed(variants))  # alternate order
            for name in names:
                seconds, outputs[name] = timed(variants[name])
                times[name].append(seconds)
        assert outputs["backend batch"] == outputs["bare batch"] == outputs["backend one-by-one"], \
            "backend and bare loop disagree"
        device = str(vlm.hf_model.device)
        dtype = str(vlm.hf_model.dtype).replace("torch.", "")
        vlm.close()

    med = {name: statistics.median(ts) for name, ts in times.items()}
    n = args.requests
    print(f"tiny random Qwen2.5-VL, {n} requests (1 image, {args.max_new_tokens} new tokens max), "
          f"{device} {dtype}, torch threads {torch.get_num_threads()}, {args.reps} reps (medians)")
    print(f"{'variant':<22}{'batch':>6}{'median s':>10}{'req/s':>8}")
    for name, batch in (("backend batch", args.batch), ("backend one-by-one", 1), ("bare batch", args.batch)):
        print(f"{name:<22}{batch:>6}{med[name]:>10.3f}{n / med[name]:>8.1f}")
    print(f"(a) batched / one-by-one throughput: {med['backend one-by-one'] / med['backend batch']:.2f}x")
    ratios = [b / r for b, r in zip(times["backend batch"], times["bare batch"])]
    print(f"(b) backend / bare loop time: {med['backend batch'] / med['bare batch']:.3f}x "
          f"(per-rep median {statistics.median(ratios):.3f}x; target <= 1.1x)")


if __name__ == "__main__":
    main()
