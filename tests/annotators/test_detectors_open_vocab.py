"""OpenVocabDetector: tiny random-weight OWLv2 and GroundingDINO built from configs (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from tubelet.annotators.detectors import OpenVocabDetector
from tubelet.annotators.detectors.open_vocab import match_prompt, parse_prompts
from tubelet.cli.sample import SampleInfo
from tubelet.engine.stage import run_stage
from tubelet.engine.task import VideoTask
from tubelet.schemas.geometry import box_inside


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
        text_config={
            **layers,
            "vocab_size": n,
            "max_position_embeddings": 16,
            "bos_token_id": n - 2,
            "eos_token_id": n - 1,
            "pad_token_id": n - 1,
        },
        vision_config={**layers, "image_size": 64, "patch_size": 16},
        projection_dim=32,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("owlv2")
    Owlv2ForObjectDetection(config).save_pretrained(path)
    Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer
    ).save_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == "owlv2"
    return path


def test_tiny_owlv2_runs_through_the_stage(tiny_owlv2: Path, synthetic_sample: SampleInfo) -> None:
    scene = synthetic_sample.video
    stage = OpenVocabDetector(
        model=str(tiny_owlv2), prompts="Red square. circle.", box_threshold=0.0, keyframe_fps=2, frame_batch=3
    )
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


# -- GroundingDINO ------------------------------------------------------------------------

GD_QUERIES = 12


@pytest.fixture(scope="module")
def tiny_grounding_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-encoder/2-decoder-layer GroundingDINO (tiny Swin, tiny BERT, 12 queries) with a
    word-level BERT tokenizer, saved locally. (2 decoder layers: the box heads of the
    decoder layers are tied to the first, which needs a second one to tie.)"""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "person", "dog", "cup", "cat", "red", "square"]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(words)}, model_max_length=32)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64,
            patch_size=4,
            embed_dim=8,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=4,
            out_indices=[2, 3, 4],
        ),
        text_config=BertConfig(
            vocab_size=len(words),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
        ),
        d_model=32,  # the input projections' GroupNorm has 32 groups
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=GD_QUERIES,
        max_text_len=32,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("grounding-dino")
    GroundingDinoForObjectDetection(config).save_pretrained(path)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == "grounding-dino"
    return path


def test_tiny_grounding_dino_runs_through_the_stage(tiny_grounding_dino: Path, synthetic_sample: SampleInfo) -> None:
    scene = synthetic_sample.video
    prompts = ["person", "dog"]
    stage = OpenVocabDetector(model=str(tiny_grounding_dino), prompts="person. dog.", keyframe_fps=2, frame_batch=3)
    assert stage.categories == prompts
    stage.setup()

    def run(box_threshold: float, text_threshold: float) -> list:
        stage.box_threshold, stage.text_threshold = box_threshold, text_threshold
        [task] = run_stage(stage, [VideoTask(video_id="s", uri=str(scene))])
        assert not task.failed, task.rejects
        return task.detections

    dets = run(0.0, 0.0)
    frames = sorted({d.frame_idx for d in dets})
    assert frames == [0, 12, 24, 36, 48, 60]
    for f in frames:  # at most one box per query
        assert 1 <= sum(d.frame_idx == f for d in dets) <= GD_QUERIES
    for d in dets:
        # a prompt, never a decoded token string such as "person. dog. [SEP]" or ""
        assert d.category in prompts and match_prompt(d.category, prompts) == d.category
        assert d.detector == tiny_grounding_dino.name and d.appearance is not None
        assert box_inside(d.box_xyxy, 640, 360) and 0.0 <= d.score <= 1.0
    # the thresholds apply: a higher box threshold keeps exactly the boxes above it
    cut = float(np.median([d.score for d in dets]))
    kept = run(cut, 0.0)
    assert 0 < len(kept) < len(dets)
    expected = [(d.frame_idx, d.box_xyxy, d.category) for d in dets if d.score > cut]
    assert [(d.frame_idx, d.box_xyxy, d.category) for d in kept] == expected
    # ... and so does the token threshold (no token scores above 1)
    assert run(0.0, 1.0) == []
    assert len(run(0.0, cut)) == len(kept)


def test_grounding_boxes_agree_with_transformers(tiny_grounding_dino: Path) -> None:
    """Same boxes as transformers' own post-processing; labels from the prompts' tokens."""
    import torch

    stage = OpenVocabDetector(
        model=str(tiny_grounding_dino), prompts="person. dog.", box_threshold=-1.0, text_threshold=-1.0
    )
    stage.setup()
    frames = np.random.default_rng(0).integers(0, 255, (2, 90, 160, 3), dtype=np.uint8)
    ours = stage.detect(frames)
    proc, model = stage._processor, stage._model
    inputs = proc(images=list(frames), text=["person. dog."] * 2, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    theirs = proc.post_process_grounded_object_detection(
        outputs, threshold=-1.0, text_threshold=0.5, target_sizes=[(90, 160)] * 2
    )
    for mine, ref in zip(ours, theirs):
        assert len(mine) == GD_QUERIES
        np.testing.assert_allclose(mine.xyxy, ref["boxes"].numpy(), rtol=1e-5, atol=1e-4)
        # their score is over every token (separators too); ours over the prompts' tokens
        assert np.all(mine.scores <= ref["scores"].numpy() + 1e-6)
        assert set(mine.categories) <= {"person", "dog"}


def test_grounded_boxes_label_by_the_prompts_tokens() -> None:
    from tubelet.annotators.detectors.open_vocab import grounded_boxes, grounding_text, token_prompts

    categories = ["person", "coffee cup"]
    text = grounding_text(categories)
    assert text == "person. coffee cup."
    # [CLS] person . coffee cup . [SEP], as a BERT tokenizer's character offsets
    offsets = [(0, 0), (0, 6), (6, 7), (8, 14), (15, 18), (18, 19), (0, 0)]
    tokens = token_prompts(offsets, categories)
    assert tokens.tolist() == [-1, 0, -1, 1, 1, -1, -1]
    big, small = 4.0, -4.0  # probabilities ~0.98 and ~0.02
    logits = np.full((4, 10), -np.inf)  # tokens past the text: -inf, as the model pads
    logits[:, :7] = small
    logits[0, 4] = big  # "cup": coffee cup
    logits[1, 1] = 1.0  # "person", but only ~0.73
    logits[2, 2] = logits[2, 5] = logits[2, 6] = big  # separators and [SEP] only: no prompt
    logits[3, 1], logits[3, 3] = 2.0, 3.0  # both prompts: the better one
    boxes = np.array([[0.5, 0.5, 0.2, 0.4]] * 4)
    out = grounded_boxes(logits, boxes, tokens, categories, 0.5, 0.25, (100, 200))
    assert out.categories == ["coffee cup", "person", "coffee cup"]
    np.testing.assert_allclose(out.xyxy[0], [80, 30, 120, 70])
    np.testing.assert_allclose(out.scores, 1 / (1 + np.exp(-np.array([big, 1.0, 3.0]))))
    assert grounded_boxes(logits, boxes, tokens, categories, 0.8, 0.25, (100, 200)).categories == ["coffee cup"] * 2
    assert grounded_boxes(logits, boxes, tokens, categories, 0.5, 0.97, (100, 200)).categories == ["coffee cup"]
