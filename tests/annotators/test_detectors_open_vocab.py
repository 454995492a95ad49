"""OpenVocabDetector: a tiny random-weight OWLv2 built from a config (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from annotators.detectors import OpenVocabDetector  # noqa: E402
from annotators.detectors.open_vocab import match_prompt, parse_prompts  # noqa: E402
from engine.sample import write_sample  # noqa: E402
from engine.stage import run_stage  # noqa: E402
from engine.task import VideoTask  # noqa: E402
from schemas.geometry import box_inside  # noqa: E402


def _byte_chars() -> list[str]:
    """GPT-2/CLIP's printable stand-in for each of the 256 bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(extra))]


@pytest.fixture(scope="module")
def tiny_owlv2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer OWLv2 (64 px, 16 px patches) with a byte-level CLIP tokenizer, saved locally."""
    import torch
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    chars = _byte_chars()
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    n = len(vocab)
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = Owlv2Config(
        text_config={**layers, "vocab_size": n, "max_position_embeddings": 16,
                     "bos_token_id": n - 2, "eos_token_id": n - 1, "pad_token_id": n - 1},
        vision_config={**layers, "image_size": 64, "patch_size": 16},
        projection_dim=32,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("owlv2")
    Owlv2ForObjectDetection(config).save_pretrained(path)
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer).save_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == "owlv2"
    return path


def test_tiny_owlv2_runs_through_the_stage(tiny_owlv2: Path, tmp_path: Path) -> None:
    scene = write_sample(tmp_path).video
    stage = OpenVocabDetector(model=str(tiny_owlv2), prompts="Red square. circle.", box_threshold=0.0,
                              keyframe_fps=2, frame_batch=3)
    assert stage.categories == ["red square", "circle"] and stage.model_id == tiny_owlv2.name
    stage.setup()
    [task] = run_stage(stage, [VideoTask(video_id="s", uri=str(scene))])
    assert not task.failed, task.rejects
    frames = sorted({d.frame_idx for d in task.detections})
    assert frames == [0, 12, 24, 36, 48, 60]
    for f in frames:  # one box per 16 px patch of the 64 px input: at most 4 x 4
        assert 1 <= sum(d.frame_idx == f for d in task.detections) <= 16
    for d in task.detections:
        assert d.category in {"red square", "circle"} and d.detector == tiny_owlv2.name
        assert box_inside(d.box_xyxy, 640, 360) and 0.0 <= d.score <= 1.0


def test_missing_model_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        OpenVocabDetector(model=str(tmp_path / "no-such-model")).setup()
    with pytest.raises(OSError):
        OpenVocabDetector(model="nobody/not-a-cached-model").setup()


def test_prompts_become_categories() -> None:
    assert parse_prompts("person. Dog.  coffee   cup. dog.") == ["person", "dog", "coffee cup"]
    assert parse_prompts(["a cat", " "]) == ["a cat"]
    with pytest.raises(ValueError):
        parse_prompts(" . . ")
    prompts = ["person", "coffee cup", "dog"]
    assert match_prompt("Dog", prompts) == "dog"
    assert match_prompt("cup", prompts) == "coffee cup"  # GroundingDINO keeps part of a prompt
    assert match_prompt("sofa", prompts) == "sofa"
