"""TransformersVLM on a tiny random Qwen2.5-VL built in the test (no download)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.annotators.language.tiny_vlm import build_tiny_qwen25_vl
from tubelet.annotators.language.backends import VLMRequest, make_backend
from tubelet.annotators.language.backends.transformers_backend import TransformersVLM

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen25-vl"))


@pytest.fixture(scope="module")
def vlm(tiny_path: Path) -> Iterator[TransformersVLM]:
    # CPU float32 even where a GPU is present: batched == one-at-a-time is exact only
    # where padding does not change the arithmetic (bf16 GPU kernels may differ by a tie).
    backend = make_backend("transformers", {"model": str(tiny_path), "batch_size": 4, "device": "cpu"})
    backend.setup()
    yield backend
    backend.close()


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _requests() -> list[VLMRequest]:
    sizes = [[(64, 64)], [(120, 80), (30, 200)], [], [(224, 224)], [(50, 90)], [(64, 64)]]
    return [
        VLMRequest(
            request_id=f"r{i}",
            prompt=f"Describe the highlighted region {i}.",
            system="You describe objects." if i % 2 else None,
            images=[_image(h, w, 10 * i + k) for k, (h, w) in enumerate(shapes)],
            max_new_tokens=8,
        )
        for i, shapes in enumerate(sizes)
    ]


def test_batched_equals_one_at_a_time(vlm: TransformersVLM) -> None:
    requests = _requests()
    batched = vlm.generate(requests)  # batches of 4 and 2, images of five sizes mixed
    vlm.batch_size = 1
    try:
        single = vlm.generate(requests)
    finally:
        vlm.batch_size = 4
    assert [r.request_id for r in batched] == [r.request_id for r in requests]
    assert all(r.ok and r.model_id == vlm.model_id for r in batched + single)
    for b, s in zip(batched, single):
        assert (b.text, b.prompt_tokens, b.output_tokens) == (s.text, s.prompt_tokens, s.output_tokens)
        assert 1 <= b.output_tokens <= 8
    # Different image sizes give different prompt lengths, so the batch really was padded.
    assert len({r.prompt_tokens for r in batched[:4]}) == 4


def test_token_counts_match_the_model(vlm: TransformersVLM) -> None:
    import torch

    base = VLMRequest(request_id="a", prompt="Describe the object.", max_new_tokens=8)
    with_image = VLMRequest(request_id="b", prompt="Describe the object.", images=[_image(64, 64, 1)], max_new_tokens=8)
    r_text, r_image = vlm.generate([base, with_image])
    # 64x64 -> 56x56 px -> 4x4 patches of 14 px -> 2x2 merged: 4 image tokens + start/end
    assert r_image.prompt_tokens == r_text.prompt_tokens + 4 + 2
    inputs = vlm.build_inputs([with_image])
    assert inputs["input_ids"].shape[1] == r_image.prompt_tokens
    with torch.inference_mode():
        out = vlm.hf_model.generate(**inputs, **vlm.generate_kwargs(8))
    new = out[0, inputs["input_ids"].shape[1] :].tolist()  # one row: generate stops at EOS, no padding
    assert r_image.output_tokens == len(new)
    eos = set(vlm.hf_model.generation_config.eos_token_id)
    body = new[:-1] if new[-1] in eos else new
    assert r_image.text == vlm.processor.tokenizer.decode(body, skip_special_tokens=True).strip()


def test_mixed_max_new_tokens_keep_order(vlm: TransformersVLM) -> None:
    requests = [
        VLMRequest(request_id=str(i), prompt=f"Caption {i}.", images=[_image(64, 64, i)], max_new_tokens=n)
        for i, n in enumerate([2, 8, 2, 5, 8])
    ]
    responses = vlm.generate(requests)
    assert [r.request_id for r in responses] == ["0", "1", "2", "3", "4"]
    for request, response in zip(requests, responses):
        assert response.ok and 1 <= response.output_tokens <= request.max_new_tokens
    # Greedy decoding is a prefix of itself: the 2-token answer starts the 8-token one.
    long, short = vlm.generate(
        [
            VLMRequest(request_id="L", prompt="Caption 0.", images=[_image(64, 64, 0)], max_new_tokens=8),
            VLMRequest(request_id="S", prompt="Caption 0.", images=[_image(64, 64, 0)], max_new_tokens=2),
        ]
    )
    assert long.text.startswith(short.text)


def test_one_bad_request_does_not_fail_the_batch(vlm: TransformersVLM) -> None:
    requests = _requests()[:3]
    bad = VLMRequest(request_id="bad", prompt="A sliver.", images=[_image(2, 500, 0)], max_new_tokens=8)
    responses = vlm.generate([requests[0], bad, requests[1], requests[2]])
    assert [r.request_id for r in responses] == ["r0", "bad", "r1", "r2"]
    assert responses[1].error is not None and "aspect ratio" in responses[1].error
    assert responses[1].attempts == 2 and responses[1].text == ""
    good = [responses[0], *responses[2:]]  # retried alone after the batch failed
    assert all(r.ok and r.attempts == 2 for r in good)
    assert [r.text for r in good] == [r.text for r in vlm.generate(requests)]


def test_schema_is_written_into_the_prompt(vlm: TransformersVLM) -> None:
    schema = {"type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"]}
    text = vlm.render_prompt(
        VLMRequest(request_id="s", prompt="Describe.", images=[_image(64, 64, 0)], json_schema=schema)
    )
    assert '"required":["caption"]' in text and text.endswith("<|im_start|>assistant\n")
    assert text.count("<|image_pad|>") == 1 and "You are a helpful assistant." in text


def test_missing_model_is_named_and_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no-such-model"):
        TransformersVLM(model=str(tmp_path / "no-such-model")).setup()
    with pytest.raises(OSError, match="nobody/not-a-cached-vlm"):
        TransformersVLM(model="nobody/not-a-cached-vlm").setup()
    with pytest.raises(RuntimeError, match="setup"):
        TransformersVLM(model=str(tmp_path)).generate([VLMRequest(request_id="x", prompt="hi")])


def test_make_backend_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match="openai"):
        make_backend("llamacpp", {})
    with pytest.raises(ValueError, match="batch_sise"):
        make_backend("transformers", {"batch_sise": 4})
    with pytest.raises(ValueError, match="uint8"):
        VLMRequest(request_id="x", prompt="hi", images=[np.zeros((4, 4, 3), dtype=np.float32)])


def test_importing_the_backends_does_not_import_torch() -> None:
    code = (
        "import sys, tubelet.annotators.language.backends as b, tubelet.annotators.language.backends.structured, "
        "tubelet.annotators.language.backends.transformers_backend, tubelet.annotators.language.backends.openai_backend; "
        "b.make_backend('transformers', {}); b.make_backend('openai', {}); "
        "heavy = {'torch', 'transformers', 'httpx'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
