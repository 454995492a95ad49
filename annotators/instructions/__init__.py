"""Instructions: question–answer rows computed from tubelets, entities and events.

Pure functions of the tables (no pixels, no model): ``generator`` (templates, computed
answers), ``derive`` (what is true, shared with the checker), ``checks`` (re-derivation,
leaks, balance), ``dedup`` (near-duplicate questions, optional model), ``renderers``
(VideoRefer/Strefer JSON, Uni-STG text, Open-o3 tags) and ``stage`` (the pipeline stage).
"""

from tubelet.annotators.instructions.checks import CheckReport, Problem, check_instructions
from tubelet.annotators.instructions.dedup import DedupResult, dedup_instructions, load_sentence_encoder
from tubelet.annotators.instructions.derive import GENERATOR_ID, VideoTables
from tubelet.annotators.instructions.generator import (
    GROUNDING_TASK_TYPES,
    TASK_TYPES,
    GeneratorConfig,
    answer_message,
    generate_instructions,
    instruction_id,
)
from tubelet.annotators.instructions.paraphrase import LLMParaphraser

__all__ = [
    "GENERATOR_ID",
    "GROUNDING_TASK_TYPES",
    "TASK_TYPES",
    "CheckReport",
    "DedupResult",
    "GeneratorConfig",
    "LLMParaphraser",
    "Problem",
    "VideoTables",
    "answer_message",
    "check_instructions",
    "dedup_instructions",
    "generate_instructions",
    "instruction_id",
    "load_sentence_encoder",
]
