"""TransformersVLM: any image-text-to-text model from transformers, batched, in-process."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tubelet.annotators.language.backends.base import VLMRequest, VLMResponse, schema_instruction

log = logging.getLogger(__name__)


@dataclass
class TransformersVLM:
    """A VLM loaded with ``AutoProcessor`` + ``AutoModelForImageTextToText``.

    ``model``: a Hub name found in the local cache (default Qwen2.5-VL-3B-Instruct) or a
    local folder; never downloaded unless ``allow_download``. ``device``/``dtype``:
    None picks CUDA + bfloat16 when a GPU is visible, else CPU + float32.
    ``batch_size`` requests share one ``generate`` call (left padding); requests are
    grouped by ``max_new_tokens`` first. Greedy unless ``do_sample``; the model's own
    generation config (e.g. repetition penalty, EOS ids) applies otherwise.
    ``min_pixels``/``max_pixels`` bound the image tokens of Qwen-style processors.

    A request the model cannot take (e.g. a bad image) gets ``error`` set: a failing
    batch is retried one request at a time so the others still get answers.
    """

    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 8
    do_sample: bool = False
    temperature: float | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    attn_implementation: str | None = None
    allow_download: bool = False
    model_id: str = field(init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        name = Path(self.model).name if Path(self.model).exists() else self.model
        self.model_id = f"{name}@{self.revision}" if self.revision else name
        self.processor: Any = None
        self.hf_model: Any = None
        self._eos_ids: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------
    def setup(self) -> None:
        """Load processor and model (once per worker). Raises OSError naming the model
        when it is neither a local folder nor in the local Hub cache."""
        import torch
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = (
            getattr(torch, self.dtype)
            if self.dtype
            else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        )
        hub = {"local_files_only": not self.allow_download, "revision": self.revision}
        pixels = {k: v for k, v in (("min_pixels", self.min_pixels), ("max_pixels", self.max_pixels)) if v}
        # transformers renamed torch_dtype to dtype in 4.56
        dtype_key = "dtype" if _major_minor(transformers.__version__) >= (4, 56) else "torch_dtype"
        model_kwargs: dict[str, Any] = {dtype_key: dtype}
        if self.attn_implementation:
            model_kwargs["attn_implementation"] = self.attn_implementation
        try:
            processor = AutoProcessor.from_pretrained(self.model, **hub, **pixels)
            model = AutoModelForImageTextToText.from_pretrained(self.model, **hub, **model_kwargs)
        except OSError as error:
            where = "local folder" if Path(self.model).exists() else "local folder or Hub cache entry"
            raise OSError(
                f"VLM {self.model!r} could not be loaded as a {where} (downloads are "
                f"{'allowed' if self.allow_download else 'off: allow_download=False'}); "
                f"give a local path or pre-download it: {error}"
            ) from error
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._eos_ids = _as_set(model.generation_config.eos_token_id) | _as_set(tokenizer.eos_token_id)
        self.processor, self.hf_model = processor, model.to(device).eval()
        log.info("loaded VLM %s on %s (%s)", self.model_id, device, dtype)

    def close(self) -> None:
        """Drop the model (and free cached GPU memory)."""
        had_model = self.hf_model is not None
        self.processor = self.hf_model = None
        if had_model:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # -- generation ------------------------------------------------------------------
    def generate(self, requests: list[VLMRequest]) -> list[VLMResponse]:
        """Answer ``requests`` in input order, ``batch_size`` at a time."""
        if self.hf_model is None:
            raise RuntimeError(f"TransformersVLM({self.model_id}): call setup() before generate()")
        out: list[VLMResponse | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, request in enumerate(requests):  # one generate call needs one max_new_tokens
            groups.setdefault(request.max_new_tokens, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for i, response in zip(chunk, self._generate_isolated([requests[i] for i in chunk])):
                    out[i] = response
        return [r for r in out if r is not None]

    def render_prompt(self, request: VLMRequest) -> str:
        """The chat-template text for one request: system, then image parts, then the prompt."""
        text = request.prompt + (schema_instruction(request.json_schema) if request.json_schema else "")
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
        content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": text}]
        messages.append({"role": "user", "content": content})
        templater = self.processor if getattr(self.processor, "chat_template", None) else self.processor.tokenizer
        return templater.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def build_inputs(self, requests: list[VLMRequest]) -> Any:
        """Processor outputs for one batch, on the model's device (floats in its dtype)."""
        texts = [self.render_prompt(r) for r in requests]
        images = [Image.fromarray(image) for r in requests for image in r.images]
        inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        return inputs.to(device=self.hf_model.device, dtype=self.hf_model.dtype)

    def generate_kwargs(self, max_new_tokens: int) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (shared with the benchmark's bare loop)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": self.do_sample,
            "pad_token_id": self.processor.tokenizer.pad_token_id,
        }
        if self.do_sample and self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if not self.do_sample:  # silence sampling knobs a model's generation config may carry
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _generate_isolated(self, batch: list[VLMRequest]) -> list[VLMResponse]:
        try:
            return self._generate_batch(batch)
        except Exception as error:  # noqa: BLE001 - isolate the failing request below
            self._free_cuda()
            if len(batch) == 1:
                return [self._failed(batch[0], error, attempts=1)]
            log.warning("VLM batch of %d failed (%s: %s); retrying one by one", len(batch), type(error).__name__, error)
        responses = []
        for request in batch:
            try:
                [response] = self._generate_batch([request])
                response.attempts = 2
            except Exception as error:  # noqa: BLE001
                self._free_cuda()
                response = self._failed(request, error, attempts=2)
            responses.append(response)
        return responses

    def _generate_batch(self, batch: list[VLMRequest]) -> list[VLMResponse]:
        import torch

        start = time.perf_counter()
        inputs = self.build_inputs(batch)
        with torch.inference_mode():
            output = self.hf_model.generate(**inputs, **self.generate_kwargs(batch[0].max_new_tokens))
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        kept = [self._until_eos(row) for row in new_tokens]
        texts = self.processor.tokenizer.batch_decode([k[0] for k in kept], skip_special_tokens=True)
        latency = time.perf_counter() - start
        return [
            VLMResponse(
                request_id=r.request_id,
                text=text.strip(),
                model_id=self.model_id,
                prompt_tokens=int(p),
                output_tokens=n,
                latency_s=latency,
            )
            for r, text, p, (_, n) in zip(batch, texts, prompt_tokens, kept)
        ]

    def _until_eos(self, row: list[int]) -> tuple[list[int], int]:
        """Tokens before the first EOS, and the count of generated tokens (EOS included;
        the padding ``generate`` appends after a finished row is not counted)."""
        for i, token in enumerate(row):
            if token in self._eos_ids:
                return row[:i], i + 1
        return row, len(row)

    def _failed(self, request: VLMRequest, error: Exception, attempts: int) -> VLMResponse:
        return VLMResponse(
            request_id=request.request_id,
            text="",
            model_id=self.model_id,
            attempts=attempts,
            error=f"{self.model_id}: {type(error).__name__}: {error}",
        )

    @staticmethod
    def _free_cuda() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _as_set(ids: int | list[int] | None) -> set[int]:
    if ids is None:
        return set()
    return {ids} if isinstance(ids, int) else set(ids)


def _major_minor(version: str) -> tuple[int, int]:
    """``"4.56.0.dev0"`` -> ``(4, 56)``."""
    major, minor = (re.findall(r"\d+", version) + ["0", "0"])[:2]
    return int(major), int(minor)
